#!/usr/bin/env python
"""runc as containerd's runtime binary on these test machines: this VM's workaround, not a Kubernetes feature.

The VM refuses two things every CRI container asks for: process rlimits (`error setting rlimit type 7: operation not
permitted`) and a negative oom_score_adj (the sandbox gets -998: `failed to update /proc/self/oom_score_adj:
Permission denied`, surfacing as `can't get final child's PID from pipe: EOF`). crun and podman fail the same way.
Before `create` and `run` this removes both from the bundle's config.json, before `exec` from its process file, then
execs the real runc with the same arguments. Every other call goes to runc unchanged. Any Python 3 runs it
(stdlib only).
"""

import json
import os
import sys

REAL_RUNC = os.environ.get("MLOPS_MLFLOW_RUNC", "/usr/sbin/runc")


def option(args, long_name, short_name, default):
    """The value of an option given as `--name value`, `-n value` or `--name=value`."""
    for index, arg in enumerate(args):
        if arg in (long_name, short_name) and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(long_name + "="):
            return arg.split("=", 1)[1]
    return default


def strip_refused_settings(path, in_process_key):
    with open(path) as handle:
        spec = json.load(handle)
    process = spec.get("process", {}) if in_process_key else spec
    process.pop("rlimits", None)
    if process.get("oomScoreAdj", 0) < 0:
        process.pop("oomScoreAdj")
    scratch = path + ".mlops-new"
    with open(scratch, "w") as handle:
        json.dump(spec, handle)
    os.replace(scratch, path)


def main():
    args = sys.argv[1:]
    if "create" in args or "run" in args:
        # runc's default bundle is the working directory.
        strip_refused_settings(os.path.join(option(args, "--bundle", "-b", "."), "config.json"), True)
    elif "exec" in args:
        process_file = option(args, "--process", "-p", None)
        if process_file:
            strip_refused_settings(process_file, False)
    os.execv(REAL_RUNC, [REAL_RUNC, *args])


if __name__ == "__main__":
    main()
