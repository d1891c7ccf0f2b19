"""The mlflow role's contract: every setting of mlflow_server_config.settings reaches both targets.

One list of settings (name, value, secret) is all the local server role and the chart role derive their forms from.
For every setting this checks, with the real programs:
  - local: the environment of the running `mlflow server` process of the deployed embedded default;
  - Kubernetes: the mlflow container of the REAL Community Charts chart, rendered by `helm template` from the
    values the chart role writes (environment resolved as the kubelet does, the role's Secrets included);
and on both, the options MLflow's own CLI resolves from the command line and the environment: a flag the chart puts
on the command line wins over its environment variable, so it must say the same as the setting.
A setting that reaches one target and not the other, or arrives changed, fails. The test prints where each setting
lands (names only, never a value).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.ansible_runner import REPO_ROOT, run_playbook

pytestmark = pytest.mark.kubernetes

OPTIONS_PROGRAM = REPO_ROOT / "tests/integration/mlflow_server_options.py"
# What a target adds to a setting, on purpose: on Kubernetes the Host headers of in-cluster callers (the Service's
# names, the pods' addresses) are allowed too. The setting's own hosts must still all be there, first.
EXTENDED_LISTS = {("chart", "MLFLOW_SERVER_ALLOWED_HOSTS")}


def local_settings(directory: Path) -> list[dict]:
    """The settings the mlflow role computes for the deployed embedded default."""
    settings_file = directory / "settings.json"
    result = run_playbook("tests/integration/playbooks/mlflow_settings.yml",
                          "-e", json.dumps({"mlflow_settings_file": str(settings_file)}), timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    return json.loads(settings_file.read_text())


def server_process(local_stack: dict) -> tuple[str, list[str], dict[str, str]]:
    """The interpreter, the `mlflow server` arguments and the environment of the running local server."""
    supervisor = local_stack["supervisor"]
    pid = subprocess.run([supervisor["supervisorctl"], "-c", supervisor["config"], "pid", "mlflow"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    command = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    environ = dict(entry.split("=", 1) for entry in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
                   if "=" in entry)
    # python <venv>/bin/mlflow server <options>
    return command[0], command[command.index("server") + 1:], environ


def arrives(found, wanted, extended: bool) -> bool:
    """Whether a value arrived as it was set; for a list a target extends, whether it still starts with it."""
    if extended and isinstance(found, str) and isinstance(wanted, str):
        return found.split(",")[:len(wanted.split(","))] == wanted.split(",")
    return found == wanted


def resolve_options(python: str, requests: list[dict]) -> dict:
    completed = subprocess.run([python, str(OPTIONS_PROGRAM)], input=json.dumps(requests),
                               capture_output=True, text=True, timeout=120, check=False)
    # No secret in a message: the program prints option values only on success, and only into this process.
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout)


def test_every_setting_reaches_the_local_server_and_the_chart_container(deployed_mlflow, local_stack, render,
                                                                        tmp_path):
    local = local_settings(tmp_path)
    rendered = render("tracking", False)
    # One contract: the same settings on both targets (the values differ with the inventories).
    assert [setting["name"] for setting in local] == [setting["name"] for setting in rendered.settings]

    python, local_args, local_environment = server_process(local_stack)
    chart_args, chart_environment = rendered.container["args"][1:], rendered.environment()
    targets = {
        "local": (local, local_args, local_environment),
        "chart": (rendered.settings, chart_args, chart_environment),
    }
    # Per target: the options its command line and environment give, and those its settings alone give.
    requests = []
    for settings, args, environment in targets.values():
        requests += [{"args": args, "environment": environment},
                     {"args": [], "environment": {s["name"]: s["value"] for s in settings}}]
    answer = resolve_options(python, requests)
    envvars, resolved = answer["envvars"], answer["resolved"]

    problems = []
    for index, (target, (settings, args, environment)) in enumerate(targets.items()):
        started_with, meant = resolved[2 * index], resolved[2 * index + 1]
        for setting in settings:
            name = setting["name"]
            extended = (target, name) in EXTENDED_LISTS
            if not arrives(environment.get(name), setting["value"], extended):
                problems.append(f"{target}: {name} is not in the server's environment as the setting says")
            option = envvars.get(name)
            if option and not arrives(started_with[option], meant[option], extended):
                problems.append(f"{target}: --{option.replace('_', '-')} on the command line overrides {name}")
    assert not problems, "\n".join(problems)

    print("\n" + "\n".join(where_each_setting_lands(local, rendered, chart_args, envvars)))


def where_each_setting_lands(settings: list[dict], rendered, chart_args: list[str], envvars: dict) -> list[str]:
    """A markdown table: each setting, and the form it takes on each target."""
    plain = rendered.values["extraEnvVars"]
    rows = ["| setting | secret | local server | Kubernetes (chart) |", "| --- | --- | --- | --- |"]
    for setting in settings:
        name = setting["name"]
        forms = [f"extraEnvVars.{name}"] if name in plain else []
        forms += ["with the in-cluster Host headers added"] if ("chart", name) in EXTENDED_LISTS else []
        forms += [f"Secret {secret} (envFrom)" for secret in sorted(rendered.role_secret_data) if name in rendered.role_secret_data[secret]]
        option = envvars.get(name)
        flags = [arg.split("=", 1)[0] for arg in chart_args if option and arg.split("=", 1)[0] in
                 (f"--{option.replace('_', '-')}", f"--no-{option.replace('_', '-')}")]
        forms += [f"and `{flag}` of the chart's command line" for flag in flags]
        rows.append(f"| `{name}` | {'yes' if setting['secret'] else ''} | mlflow.env | {', '.join(forms)} |")
    return rows
