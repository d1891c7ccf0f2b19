"""Benchmarks of the deployed local stack (issue 8). Usage: `.venv/bin/python -m benchmarks.run [--quick]`.

Measures, side by side in one run: a no-op re-run of site.yml, the tracking throughput through the deployed server
(auth on) against a bare `mlflow server` started here, a 64 MiB upload through MLflow's artifact proxy against a
direct upload to MinIO, and the login + access-token round trip. Writes benchmarks/results/<date>.json and .md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from minio import Minio

from benchmarks import stack, stats, workloads
from tests.stack_layout import SERVER_STATE_DIR

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = Path(sys.executable).parent
MIB = 1 << 20
BARE_PORT = 5055
SEED_PORT = 5056
FIRST_VARIANT_PORT = 5057
SERVER_START_TIMEOUT = 300
SERVER_SETTLE_TIMEOUT = 180
# The server's boto3 uploads with its default TransferConfig (8 MiB parts, 10 threads); the direct upload matches.
DIRECT_PART_SIZE = 8 * MIB
DIRECT_PARALLEL_UPLOADS = 10
# Settings of the process environment a server started here inherits; everything else comes from mlflow.env.
INHERITED_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
# Servers started here run no job runner: it is a separate process tree, off the request path and idle once started,
# but its five huey consumers importing MLflow at start would load a 2-core machine for a minute.
NO_JOB_RUNNER = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
DEPLOYED_LOG = stack.STATE_DIR / "logs" / "mlflow.log"


class Deadline:
    """The whole run's time budget: a phase that would start after it is skipped and reported."""

    def __init__(self, minutes):
        self.end = time.monotonic() + 60 * minutes

    def remaining(self):
        return self.end - time.monotonic()


def parse_arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: 1 run each, small sizes, under 2 minutes")
    parser.add_argument("--runs", type=int, help="runs per figure (default 3, quick 1)")
    parser.add_argument("--only", action="append", choices=["site", "login", "tracking", "artifacts"],
                        help="measure only these figures (repeatable)")
    parser.add_argument("--playbook", help="playbook of the no-op re-run (default playbooks/site.yml; "
                        "quick: playbooks/local_services.yml)")
    parser.add_argument("--inventory", action="append", default=[], metavar="PATH",
                        help="inventory of the no-op re-run (repeatable; default ansible.cfg's inventories/local), "
                        "e.g. --inventory inventories/local --inventory benchmarks/inventories/users")
    parser.add_argument("--extra-vars", action="append", default=[], metavar="VAR=VALUE",
                        help="extra variable of the no-op re-run (repeatable), e.g. benchmark_users=50")
    parser.add_argument("--label", help="added to the results' file names (<date>-<label>.json), so that runs of one "
                        "day with different inventories are kept side by side")
    parser.add_argument("--tracking-runs", type=int, help="side-by-side tracking rounds (default 5, quick 1): "
                        "more short rounds than the other figures, since other work on the machine makes them noisy")
    parser.add_argument("--threads", type=int, help="tracking client threads (default 8, quick 4)")
    parser.add_argument("--seconds", type=float, help="seconds per tracking measurement (default 10, quick 4)")
    parser.add_argument("--artifact-mib", type=int, help="artifact size in MiB (default 64, quick 8)")
    parser.add_argument("--auth-variant", action="append", default=[], metavar="NAME:VAR=VALUE[,VAR=VALUE]",
                        help="also measure an auth server of the deployed configuration with these environment "
                        "overrides (repeatable), e.g. 'pool20:MLFLOW_SQLALCHEMYSTORE_POOL_SIZE=20'")
    parser.add_argument("--no-seed-row", action="store_true", help="skip the seed's 1-worker reference row")
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    parser.add_argument("--max-minutes", type=float, default=14.0, help="time budget of the whole run")
    arguments = parser.parse_args(argv)
    quick = arguments.quick
    arguments.runs = arguments.runs or (1 if quick else 3)
    arguments.playbook = arguments.playbook or ("playbooks/local_services.yml" if quick else "playbooks/site.yml")
    arguments.tracking_runs = arguments.tracking_runs or (1 if quick else 5)
    arguments.threads = arguments.threads or (4 if quick else 8)
    arguments.seconds = arguments.seconds or (4.0 if quick else 10.0)
    arguments.warmup_seconds = 1.0 if quick else 5.0
    arguments.artifact_mib = arguments.artifact_mib or (8 if quick else 64)
    arguments.seed_row = not (quick or arguments.no_seed_row)
    arguments.only = set(arguments.only or ["site", "login", "tracking", "artifacts"])
    arguments.variants = [parse_variant(text) for text in arguments.auth_variant]
    return arguments


def parse_variant(text):
    """'name:VAR=VALUE,VAR=VALUE' -> (name, {VAR: VALUE})."""
    name, assignments = text.split(":", 1) if ":" in text else (text, "")
    overrides = dict(item.split("=", 1) for item in assignments.split(",") if "=" in item)
    if not name or not overrides:
        raise SystemExit(f"--auth-variant: expected NAME:VAR=VALUE[,VAR=VALUE], got {text!r}")
    return name, overrides


def rotated(items, round_index):
    """The targets in a different order each round, so no target always runs first (or last) on a busy machine."""
    shift = round_index % len(items)
    return items[shift:] + items[:shift]


# --- site.yml no-op re-run ----------------------------------------------------------------------------------------

def measure_site(arguments, results):
    environment = dict(
        os.environ,
        PATH=f"{BIN_DIR}{os.pathsep}{os.environ['PATH']}",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
        PROFILE_TASKS_TASK_OUTPUT_LIMIT="all",
        ANSIBLE_NOCOLOR="1",
    )
    runs, profiles = [], []
    for index in range(arguments.runs):
        started = time.monotonic()
        completed = subprocess.run(
            [str(BIN_DIR / "ansible-playbook"), *playbook_options(arguments), arguments.playbook],
            cwd=REPO_ROOT, env=environment,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=400, check=False,
        )
        seconds = time.monotonic() - started
        recap = stats.parse_recap(completed.stdout) if "PLAY RECAP" in completed.stdout else {}
        runs.append({"seconds": round(seconds, 2), "returncode": completed.returncode, "recap": recap})
        if completed.returncode != 0 or recap.get("changed", 1) != 0 or recap.get("failed", 1) != 0:
            results["problems"].append(
                f"{arguments.playbook} run {index + 1} was not a clean no-op (rc={completed.returncode}, "
                f"recap={recap}): {completed.stdout[-1500:]}"
            )
        if "TASKS RECAP" in completed.stdout:
            profiles.append(stats.parse_profile_tasks(completed.stdout))
    seconds = [run["seconds"] for run in runs]
    results["figures"]["site_noop_rerun_seconds"] = round(stats.median(seconds), 2)
    results["details"]["site_noop_rerun"] = {
        "playbook": arguments.playbook,
        "options": playbook_options(arguments),
        "runs": runs,
        "tasks": runs[0]["recap"].get("ok", 0) + runs[0]["recap"].get("skipped", 0),
        "slowest_tasks": stats.slowest_tasks(profiles) if profiles else [],
    }
    results["rows"].append(_row(f"{arguments.playbook} no-op re-run", "s", seconds))


def playbook_options(arguments):
    """The ansible-playbook options of the no-op re-run: its inventories and extra variables."""
    options = [option for path in arguments.inventory for option in ("--inventory", path)]
    return options + [option for assignment in arguments.extra_vars for option in ("--extra-vars", assignment)]


# --- servers ------------------------------------------------------------------------------------------------------

class Target:
    """A server the workloads run against: its URL, credentials and (for servers started here) the process."""

    def __init__(self, name, label, url, auth, process=None):
        self.name = name
        self.label = label
        self.url = url
        self.auth = auth
        self.process = process
        self.experiment_id = None
        self.client = None


def start_targets(arguments, deployed_environment, login, work_dir, exits):
    """The deployed server, plus the servers this benchmark starts (stopped by `exits` whatever happens)."""
    mlflow_binary = stack.server_mlflow_binary()
    base_environment = {name: os.environ[name] for name in INHERITED_ENVIRONMENT if name in os.environ}
    workers = deployed_environment["MLFLOW_WORKERS"]
    bucket = urlsplit(deployed_environment["MLFLOW_ARTIFACTS_DESTINATION"]).netloc
    targets = [Target("deployed", f"deployed (auth, {workers} workers)", stack.DEPLOYED_URL, login.basic_auth)]

    database = exits.enter_context(stack.ScratchDatabase(deployed_environment["PGUSER"], stack.load_endpoints()))
    bare_environment = dict(
        base_environment,
        **NO_JOB_RUNNER,
        **{name: deployed_environment[name] for name in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD")},
        AWS_ACCESS_KEY_ID=deployed_environment["AWS_ACCESS_KEY_ID"],
        AWS_SECRET_ACCESS_KEY=deployed_environment["AWS_SECRET_ACCESS_KEY"],
        MLFLOW_S3_ENDPOINT_URL=deployed_environment["MLFLOW_S3_ENDPOINT_URL"],
        MLFLOW_BACKEND_STORE_URI=database.uri,
        MLFLOW_ARTIFACTS_DESTINATION=f"s3://{bucket}/{database.name}",
        MLFLOW_SERVE_ARTIFACTS="true",
        MLFLOW_WORKERS=workers,
        MLFLOW_SERVER_ALLOWED_HOSTS=f"127.0.0.1:{BARE_PORT}",
        MLFLOW_EXPOSE_PROMETHEUS=str(work_dir / "prometheus-bare"),
    )
    # Same uvicorn options as the deployed server, so only the auth app differs.
    if "MLFLOW_UVICORN_OPTS" in deployed_environment:
        bare_environment["MLFLOW_UVICORN_OPTS"] = deployed_environment["MLFLOW_UVICORN_OPTS"]
    servers = [("bare", f"bare mlflow server ({workers} workers, no auth)", None,
                stack.ServerProcess("bare", mlflow_binary, bare_environment, BARE_PORT, work_dir))]

    def auth_server(name, port, overrides):
        environment = {**base_environment, **deployed_environment, **NO_JOB_RUNNER}
        environment.update(MLFLOW_SERVER_ALLOWED_HOSTS=f"127.0.0.1:{port}",
                           MLFLOW_EXPOSE_PROMETHEUS=str(work_dir / f"prometheus-{name}"), **overrides)
        return stack.ServerProcess(name, mlflow_binary, environment, port, work_dir, app_name="oidc-auth",
                                   health_path="/health/ready")

    if arguments.seed_row:
        servers.append(("seed", "seed configuration (auth, 1 worker)", login.basic_auth,
                        auth_server("seed", SEED_PORT, {"MLFLOW_WORKERS": "1"})))
    for index, (name, overrides) in enumerate(arguments.variants):
        settings = ", ".join(f"{key}={value}" for key, value in overrides.items())
        servers.append((name, f"variant {name} (auth, {settings})", login.basic_auth,
                        auth_server(name, FIRST_VARIANT_PORT + index, overrides)))

    for name, label, auth, process in servers:
        exits.callback(process.stop)
        process.start()
        targets.append(Target(name, label, process.url, auth, process))
    for target in targets[1:]:
        target.process.wait_ready(SERVER_START_TIMEOUT)
    for target in targets[1:]:
        target.process.wait_idle(SERVER_SETTLE_TIMEOUT)
    return targets


# --- tracking -----------------------------------------------------------------------------------------------------

def measure_tracking(arguments, targets, results, exits):
    for target in targets:
        target.client = workloads.TrackingClient(target.url, target.auth)
        target.experiment_id = target.client.create_experiment(workloads.unique_name("bench-tracking"))
        exits.callback(_best_effort, target.client.delete_experiment, target.experiment_id)
        # Not counted: starts every worker's lazy imports, connection pools and permission caches.
        workloads.run_tracking(target.url, target.auth, target.experiment_id, arguments.threads,
                               arguments.warmup_seconds, max_requests=100_000)
    measurements = {target.name: [] for target in targets}
    deaths_before = {target.name: worker_deaths(target) for target in targets}
    for round_index in range(arguments.tracking_runs):
        for target in rotated(targets, round_index):
            measurements[target.name].append(workloads.run_tracking(
                target.url, target.auth, target.experiment_id, arguments.threads, arguments.seconds,
                max_requests=100_000))
    rates = {name: [run["requests_per_second"] for run in runs] for name, runs in measurements.items()}
    ratios = stats.paired_ratios(rates["deployed"], rates["bare"])
    results["figures"]["tracking_throughput_ratio_vs_bare"] = round(stats.median(ratios), 3)
    results["details"]["tracking"] = {
        "rounds": arguments.tracking_runs,
        "threads": arguments.threads,
        "seconds_per_run": arguments.seconds,
        "mix": f"log_batch ({workloads.METRICS_PER_BATCH} metrics, {workloads.PARAMS_PER_BATCH} params), "
               f"search_runs every {workloads.SEARCH_EVERY}th call, a new run every {workloads.BATCHES_PER_RUN} calls",
        "targets": {target.name: {"label": target.label, "runs": measurements[target.name],
                                  "requests_per_second": stats.summarize(rates[target.name]),
                                  "worker_deaths": worker_deaths(target) - deaths_before[target.name]}
                    for target in targets},
        "ratios_vs_bare": {name: stats.summarize(stats.paired_ratios(rates[name], rates["bare"]))
                           for name in rates if name != "bare"},
    }
    for target in targets:
        results["rows"].append(_row(f"tracking: {target.label}", "req/s", rates[target.name]))
    for name in rates:
        if name != "bare":
            ratios = stats.paired_ratios(rates[name], rates["bare"])
            results["rows"].append(_row(f"tracking ratio {name} / bare", "", ratios))


def worker_deaths(target):
    """How many workers the uvicorn supervisor has replaced so far (it logs each one), from the server's log."""
    log = target.process.log_path if target.process else DEPLOYED_LOG
    with contextlib.suppress(OSError):
        return log.read_text(encoding="utf-8", errors="replace").count(" died\n")
    return 0


# --- artifacts ----------------------------------------------------------------------------------------------------

def measure_artifacts(arguments, targets, deployed_environment, results, work_dir, exits):
    size = arguments.artifact_mib * MIB
    blob = work_dir / "blob.bin"
    workloads.make_blob(blob, size)
    endpoint = urlsplit(deployed_environment["MLFLOW_S3_ENDPOINT_URL"])
    destination = urlsplit(deployed_environment["MLFLOW_ARTIFACTS_DESTINATION"])
    bucket, prefix = destination.netloc, destination.path.strip("/")
    minio_client = Minio(endpoint.netloc, access_key=deployed_environment["AWS_ACCESS_KEY_ID"],
                         secret_key=deployed_environment["AWS_SECRET_ACCESS_KEY"], secure=endpoint.scheme == "https")
    direct_prefix = f"{prefix}/{workloads.unique_name('bench-direct')}"
    exits.callback(_best_effort, _remove_prefix, minio_client, bucket, direct_prefix)
    run_paths = {}
    for target in targets:
        client = target.client or workloads.TrackingClient(target.url, target.auth)
        if target.experiment_id is None:
            target.experiment_id = client.create_experiment(workloads.unique_name("bench-artifacts"))
            exits.callback(_best_effort, client.delete_experiment, target.experiment_id)
        run_paths[target.name] = f"{target.experiment_id}/{client.create_run(target.experiment_id)}/artifacts"
    exits.callback(_best_effort, _remove_proxied, minio_client, bucket, prefix, targets, run_paths)

    timeout = max(120, arguments.artifact_mib * 4)
    seconds = {"direct": [], **{target.name: [] for target in targets}}
    for round_index in range(arguments.runs):
        for name in rotated(["direct"] + [target.name for target in targets], round_index):
            key = f"blob-{round_index}.bin"
            if name == "direct":
                seconds[name].append(workloads.upload_direct(minio_client, bucket, f"{direct_prefix}/{key}", blob,
                                                             DIRECT_PART_SIZE, DIRECT_PARALLEL_UPLOADS))
            else:
                target = next(target for target in targets if target.name == name)
                seconds[name].append(workloads.upload_proxied(target.url, target.auth, f"{run_paths[name]}/{key}",
                                                              blob, timeout))
    throughput = {name: [arguments.artifact_mib / value for value in values] for name, values in seconds.items()}
    ratios = stats.paired_ratios(throughput["deployed"], throughput["direct"])
    results["figures"]["artifact_upload_ratio_vs_direct"] = round(stats.median(ratios), 3)
    results["details"]["artifact_upload"] = {
        "size_mib": arguments.artifact_mib,
        "direct": f"minio SDK fput_object, {DIRECT_PART_SIZE // MIB} MiB parts, {DIRECT_PARALLEL_UPLOADS} in parallel",
        "proxied": "PUT /api/2.0/mlflow-artifacts/artifacts/<experiment>/<run>/artifacts/<file> (as log_artifact)",
        "mib_per_second": {name: stats.summarize(values) for name, values in throughput.items()},
        "ratios_vs_direct": {name: stats.summarize(stats.paired_ratios(throughput[name], throughput["direct"]))
                             for name in throughput if name != "direct"},
    }
    results["rows"].append(_row("upload: direct to MinIO", "MiB/s", throughput["direct"]))
    for target in targets:
        results["rows"].append(_row(f"upload: proxied, {target.label}", "MiB/s", throughput[target.name]))


def _remove_prefix(minio_client, bucket, prefix):
    for item in minio_client.list_objects(bucket, prefix=prefix + "/", recursive=True):
        minio_client.remove_object(bucket, item.object_name)


def _remove_proxied(minio_client, bucket, prefix, targets, run_paths):
    for target in targets:
        if target.name == "bare":
            # The bare server writes below its own prefix: its scratch database's name.
            bare_prefix = urlsplit(target.process.environment["MLFLOW_ARTIFACTS_DESTINATION"]).path.strip("/")
            _remove_prefix(minio_client, bucket, bare_prefix)
        else:
            _remove_prefix(minio_client, bucket, f"{prefix}/{run_paths[target.name]}")


# --- login --------------------------------------------------------------------------------------------------------

def measure_login(arguments, results, exits):
    """Login + token round trips; the first login's token stays for the workloads."""
    logins, seconds = [], []
    for _run in range(arguments.runs):
        login = stack.demo_login()
        exits.callback(_best_effort, login.delete_token)
        seconds.append(login.log_in_and_create_token())
        logins.append(login)
    results["figures"]["login_to_token_seconds"] = round(stats.median(seconds), 3)
    results["details"]["login"] = {"user": stack.DEMO_USER, "seconds": stats.summarize(seconds)}
    results["rows"].append(_row("Keycloak login + access token", "s", seconds))
    return logins[0]


def _row(name, unit, samples):
    return {"name": name, "unit": unit, "median": stats.median(samples), "samples": list(samples)}


# --- main ---------------------------------------------------------------------------------------------------------

def _phase(results, name, measure, *args):
    """Run one measurement; a failure is reported in the results and the next measurement still runs."""
    try:
        return measure(*args)
    except Exception as error:  # pylint: disable=broad-exception-caught  # reported, the run goes on
        results["problems"].append(f"{name} failed: {type(error).__name__}: {error}")
        print(f"benchmark: {name} failed: {error}", file=sys.stderr)
        return None


def _token_login(exits):
    login = stack.demo_login()
    exits.callback(_best_effort, login.delete_token)
    login.log_in_and_create_token()
    return login


def _best_effort(cleanup, *args):
    """A cleanup step that must not hide the run's own error, nor stop the cleanup steps after it."""
    try:
        cleanup(*args)
    except Exception as error:  # pylint: disable=broad-exception-caught  # reported, cleanup goes on
        print(f"benchmark: cleanup {getattr(cleanup, '__name__', cleanup)} failed: {error}", file=sys.stderr)


def _raise_system_exit(signum, _frame):
    raise SystemExit(128 + signum)


def benchmark(arguments):
    deadline = Deadline(arguments.max_minutes)
    deployed_environment = stack.read_env_file(SERVER_STATE_DIR / "mlflow.env")
    # A server that supervisord is (re)starting gets two minutes.
    stack.wait_for_http(f"{stack.DEPLOYED_URL}/health/ready", 120)
    results = {
        "date": datetime.date.today().isoformat(),
        "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": arguments.quick,
        "label": arguments.label,
        "runs": arguments.runs,
        "host": {"cpus": os.cpu_count(), "load_before": [round(load, 2) for load in os.getloadavg()]},
        "versions": stack.installed_versions(stack.server_mlflow_binary()),
        "deployed_settings": {name: deployed_environment.get(name) for name in
                              ("MLFLOW_WORKERS", "PERMISSION_CACHE_TTL_SECONDS", "MLFLOW_SERVER_ALLOWED_HOSTS")},
        "figures": {name: None for name in stats.FIGURES},
        "details": {},
        "rows": [],
        "problems": [],
    }
    phases = [phase for phase in ("site", "login", "tracking", "artifacts") if phase in arguments.only]
    # The servers (in `exits`) stop before their work directory goes.
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as work_dir, contextlib.ExitStack() as exits:
        work_dir = Path(work_dir)
        if "site" in phases:
            _phase(results, "site", measure_site, arguments, results)
        servers_needed = {"tracking", "artifacts"} & set(phases)
        login = None
        if "login" in phases:
            login = _phase(results, "login", measure_login, arguments, results, exits)
        elif servers_needed:
            login = _phase(results, "login", _token_login, exits)
        targets = None
        if servers_needed and login is not None:
            if deadline.remaining() < 120:
                results["problems"].append("time budget spent: tracking and artifacts not measured")
            else:
                targets = _phase(results, "server start", start_targets, arguments, deployed_environment, login,
                                 work_dir, exits)
        if targets and "tracking" in phases:
            _phase(results, "tracking", measure_tracking, arguments, targets, results, exits)
        if targets and "artifacts" in phases:
            if deadline.remaining() < 30:
                results["problems"].append("time budget spent: artifacts not measured")
            else:
                _phase(results, "artifacts", measure_artifacts, arguments, targets, deployed_environment, results,
                       work_dir, exits)
    results["host"]["load_after"] = [round(load, 2) for load in os.getloadavg()]
    results["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    results["goals"] = stats.goal_status(results["figures"])
    return results


def write_results(results, output_dir):
    output_dir.mkdir(parents=True, exist_ok=True)
    stem = results["date"] + (f"-{results['label']}" if results["label"] else "") + ("-quick" if results["quick"] else "")
    written = []
    for suffix, text in ((".json", json.dumps(results, indent=2) + "\n"), (".md", stats.render_markdown(results))):
        path = output_dir / f"{stem}{suffix}"
        partial = path.with_name(path.name + ".tmp")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
        written.append(path)
    return written


def main(argv=None):
    arguments = parse_arguments(argv)
    signal.signal(signal.SIGTERM, _raise_system_exit)
    try:
        results = benchmark(arguments)
    except (OSError, RuntimeError) as error:
        # The deployed stack is missing or down: nothing was measured.
        print(f"benchmark: {error}\nDeploy the local stack first: ansible-playbook playbooks/site.yml", file=sys.stderr)
        return 2
    for path in write_results(results, arguments.output_dir):
        print(f"wrote {path}")
    print(stats.render_markdown(results))
    return 1 if results["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
