"""The running MLflow rides out its dependencies' faults on the local stack (bounded fault tests on loopback).

For Keycloak, PostgreSQL and MinIO in turn: the real MLflow client logs a run with an access key in a fresh process;
the dependency is stopped through supervisord for OUTAGE_SECONDS while probes call MLflow every PROBE_PERIOD seconds
(each with PROBE_TIMEOUT) and record what a client sees; then it is started again, and MLflow must serve again
without being restarted (its supervisord pid stays the same):
  - Keycloak down: access-key requests (a run with params and metrics, metric after metric) keep succeeding;
  - PostgreSQL restarted: the tracking API, access-key check included (the auth database is PostgreSQL too), answers
    200 again within RECOVERY_SECONDS;
  - MinIO restarted: the next artifact upload through the server's proxied artifacts works.
What the clients saw is printed (pytest -s) and written to tests/output/dependency_faults.json.
It stops shared services: run it holding the stack lock,
  flock /tmp/mlops-stack.lock python -m pytest tests/e2e/test_site_dependency_faults.py -x -q -s
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import psycopg2
import pytest
import requests
import yaml

from tests.ansible_runner import REPO_ROOT, run_playbook
from tests.stack_layout import SECRETS_DIR, SERVER_VENV, STATE_DIR

pytestmark = pytest.mark.e2e

MLFLOW_URL = yaml.safe_load((REPO_ROOT / "inventories/local/group_vars/all/mlflow.yml").read_text())[
    "mlflow_public_url"
]
USER = "demo-user"
REPORT = REPO_ROOT / "tests" / "output" / "dependency_faults.json"
FAULT_CLIENT = Path(__file__).with_name("fault_client.py")
OUTAGE_SECONDS = 10
PROBE_PERIOD = 0.5
PROBE_TIMEOUT = 3
# After the dependency answers again; MLflow's database pools check a connection before using it.
RECOVERY_SECONDS = 30
# Probes that keep running once MLflow recovered: they must all succeed (no relapse).
SETTLE_SECONDS = 3
CLIENT_SECONDS = 90


def endpoints() -> dict:
    """Read at every use: another deployment may move the stack's state between runs."""
    return json.loads((STATE_DIR / "endpoints.json").read_text())


def supervisorctl(*args: str) -> list[str]:
    supervisor = endpoints()["supervisor"]
    return [supervisor["supervisorctl"], "-c", supervisor["config"], *args]


def supervise(*args: str) -> str:
    return subprocess.run(supervisorctl(*args), capture_output=True, text=True, timeout=120, check=False).stdout.strip()


def program_pid(program: str) -> int:
    status = supervise("status", program)
    running = re.search(r"\bRUNNING\s+pid (\d+)", status)
    assert running, f"{program} is not running: {status}"
    return int(running.group(1))


def server_python() -> str:
    """The MLflow server's interpreter (it has mlflow)."""
    return str(SERVER_VENV / "bin" / "python")


def answers_200(url: str) -> bool:
    try:
        return requests.get(url, timeout=PROBE_TIMEOUT).status_code == 200
    except requests.RequestException:
        return False


def keycloak_ready() -> bool:
    return answers_200(f"{endpoints()['keycloak']['management_url']}/health/ready")


def minio_ready() -> bool:
    return answers_200(f"{endpoints()['minio']['url']}/minio/health/ready")


def postgresql_ready() -> bool:
    pg = endpoints()["postgresql"]
    try:
        connection = psycopg2.connect(
            host=pg["host"], port=pg["port"], user=pg["admin_user"], dbname="postgres", connect_timeout=PROBE_TIMEOUT,
            password=Path(pg["admin_password_file"]).read_text().strip(),
        )
    except psycopg2.OperationalError:
        return False
    connection.close()
    return True


@dataclass(frozen=True)
class Dependency:
    program: str
    ready: Callable[[], bool]
    # Seconds it may take to answer again once supervisord started it (Keycloak: 30-90 s on 2 cores).
    start_seconds: int


KEYCLOAK = Dependency("keycloak", keycloak_ready, 120)
POSTGRESQL = Dependency("postgresql", postgresql_ready, 30)
MINIO = Dependency("minio", minio_ready, 30)


def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(PROBE_PERIOD)
    return True


def mlflow_serves() -> bool:
    """Ready, and a login starts (302 to Keycloak): /health/ready alone passes while MLflow's realm is missing."""
    try:
        login = requests.get(f"{MLFLOW_URL}/login", allow_redirects=False, timeout=PROBE_TIMEOUT).status_code
    except requests.RequestException:
        return False
    return login == 302 and answers_200(f"{MLFLOW_URL}/health/ready")


def client_run(command: list[str], env: dict, what: str) -> str:
    """A fault_client.py run; its stdout. It may hold an access key: never in a failure message."""
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=CLIENT_SECONDS, check=False)
    if result.returncode != 0:
        pytest.fail(f"{what} failed:\n{result.stderr[-3000:]}", pytrace=False)
    return result.stdout


@dataclass(frozen=True)
class AccessKey:
    username: str
    key: str = field(repr=False)


class Probe(threading.Thread):
    """One kind of request every PROBE_PERIOD seconds: when each started and what came back (status or error)."""

    def __init__(self, name: str, request: Callable[[], requests.Response], success: int = 200):
        super().__init__(name=name, daemon=True)
        self.request = request
        self.success = success
        self.seen: list[tuple[float, int | str]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                outcome: int | str = self.request().status_code
            except requests.RequestException as error:
                outcome = type(error).__name__
            self.seen.append((started, outcome))
            self.stopping.wait(started + PROBE_PERIOD - time.monotonic())

    def stop(self) -> None:
        self.stopping.set()
        self.join(PROBE_TIMEOUT * 2)

    def outcomes(self, start: float, end: float = float("inf")) -> list[int | str]:
        return [outcome for started, outcome in self.seen if start <= started < end]

    def recovered(self, since: float) -> float | None:
        """Seconds from `since` to the first success of a request started then or later."""
        for started, outcome in self.seen:
            if started >= since and outcome == self.success:
                return started - since
        return None


def counts(outcomes: list) -> dict[str, int]:
    return {str(outcome): number for outcome, number in sorted(Counter(outcomes).items(), key=str)}


@contextmanager
def stopped(dependency: Dependency) -> Iterator[dict]:
    """The dependency stopped through supervisord until the block ends, then started again and awaited.

    Yields the monotonic times of the outage as they happen: stopping, down (it no longer answers), starting, back.
    """
    events = {"stopping": time.monotonic()}
    output = supervise("stop", dependency.program)
    try:
        assert "stopped" in output, f"supervisorctl stop {dependency.program}: {output}"
        assert not dependency.ready(), f"{dependency.program} still answers once stopped"
        events["down"] = time.monotonic()
        yield events
        # Nothing restarted it behind the test's back: what the probes saw was an outage throughout.
        assert not dependency.ready(), f"{dependency.program} answered again before the test started it"
    finally:
        events["starting"] = time.monotonic()
        # supervisorctl start returns after the program's startsecs; it answers earlier, and that is when it is back.
        with subprocess.Popen(supervisorctl("start", dependency.program), stdout=subprocess.PIPE, text=True) as start:
            back = wait_until(dependency.ready, dependency.start_seconds)
            events["back"] = time.monotonic()
            output = start.communicate(timeout=120)[0].strip()
    assert back, f"{dependency.program} did not answer within {dependency.start_seconds} s of its start: {output}"


def run_probes(probes: list[Probe]):
    """Starts the probes; the caller stops them."""
    for probe in probes:
        probe.start()
    return probes


class Faults:
    """The module's client, its run, and the report of what the probes saw."""

    def __init__(self, key: AccessKey):
        self.key = key
        self.experiment = f"faults-{uuid.uuid4().hex[:10]}"
        self.experiment_id = ""
        self.api = requests.Session()
        self.api.auth = (key.username, key.key)
        self.report: dict = {}

    def track(self, artifact: str | None = None) -> str:
        """A run logged by the real MLflow client in a fresh process; its run id."""
        env = {name: value for name, value in os.environ.items() if not name.startswith("MLFLOW_")}
        env.update(
            MLFLOW_TRACKING_URI=MLFLOW_URL,
            MLFLOW_TRACKING_USERNAME=self.key.username,
            MLFLOW_TRACKING_PASSWORD=self.key.key,
            # The client's retries would hide a failed request (and stretch the test by minutes).
            MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
            MLFLOW_HTTP_REQUEST_TIMEOUT="20",
        )
        command = [server_python(), str(FAULT_CLIENT), "track", "--name", self.experiment]
        if artifact is not None:
            command += ["--artifact", artifact]
        tracked = json.loads(client_run(command, env, "the MLflow client").splitlines()[-1])
        self.experiment_id = tracked["experiment_id"]
        return tracked["run_id"]

    def log_metric(self, run_id: str) -> requests.Response:
        return self.api.post(
            f"{MLFLOW_URL}/api/2.0/mlflow/runs/log-metric",
            json={"run_id": run_id, "key": "probe", "value": 1.0, "timestamp": int(time.time() * 1000), "step": 0},
            timeout=PROBE_TIMEOUT,
        )

    def upload(self, run_id: str) -> requests.Response:
        """What the client's log_artifact sends: a PUT to the server's proxied artifacts."""
        return self.api.put(
            f"{MLFLOW_URL}/api/2.0/mlflow-artifacts/artifacts/{self.experiment_id}/{run_id}/artifacts/probe.txt",
            data=b"probe", timeout=PROBE_TIMEOUT,
        )

    def clean_up(self) -> None:
        """The experiment's artifacts (in MinIO, through MLflow's proxy), then the experiment."""
        if not self.experiment_id:
            return
        removed = self.api.delete(f"{MLFLOW_URL}/api/2.0/mlflow-artifacts/artifacts/{self.experiment_id}",
                                  timeout=PROBE_TIMEOUT)
        assert removed.status_code == 200, f"removing the artifacts of {self.experiment}: HTTP {removed.status_code}"
        deleted = self.api.post(f"{MLFLOW_URL}/api/2.0/mlflow/experiments/delete",
                                json={"experiment_id": self.experiment_id}, timeout=PROBE_TIMEOUT)
        assert deleted.status_code == 200, f"deleting {self.experiment}: HTTP {deleted.status_code}"

    def record(self, dependency: Dependency, events: dict, probes: list[Probe]) -> None:
        """What each probe saw while the dependency was stopped, while it started, and once it answered again."""
        summary = {
            "stopped_seconds": round(events["starting"] - events["down"], 1),
            "start_to_ready_seconds": round(events["back"] - events["starting"], 1),
            "probes": {},
        }
        for probe in probes:
            recovered = probe.recovered(events["back"])
            summary["probes"][probe.name] = {
                "while_stopped": counts(probe.outcomes(events["down"], events["starting"])),
                "while_starting": counts(probe.outcomes(events["starting"], events["back"])),
                "once_back": counts(probe.outcomes(events["back"])),
                "first_success_once_back_seconds": None if recovered is None else round(recovered, 1),
                # Seconds since the stop command, and what came back.
                "timeline": [[round(started - events["stopping"], 1), outcome] for started, outcome in probe.seen],
            }
        self.report[dependency.program] = summary
        print(f"\n{dependency.program}: stopped {summary['stopped_seconds']} s, "
              f"answering {summary['start_to_ready_seconds']} s after its start")
        for name, seen in summary["probes"].items():
            recovered = seen["first_success_once_back_seconds"]
            print(f"  {name}: while stopped {seen['while_stopped']}, while starting {seen['while_starting']}, "
                  f"once back {seen['once_back']}, "
                  + ("no success" if recovered is None else f"first success {recovered} s after it answered"))


@pytest.fixture(scope="module")
def faults() -> Iterator[Faults]:
    """An access key of the demo user (a browser-like login), deleted at the end; the stack healthy throughout."""
    if not mlflow_serves():
        result = run_playbook("playbooks/site.yml")
        assert result.returncode == 0, result.output[-6000:]
    command = [server_python(), str(FAULT_CLIENT), "--secrets-dir", str(SECRETS_DIR), "--user", USER]
    env = dict(os.environ, MLFLOW_TRACKING_URI=MLFLOW_URL)
    made = client_run([*command, "key", "--name", f"faults-{uuid.uuid4().hex[:10]}"], env, "creating an access key")
    created = json.loads(made.splitlines()[-1])
    faults = Faults(AccessKey(created["username"], created["key"]))
    try:
        yield faults
    finally:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(faults.report, indent=2) + "\n")
        # Whatever failed, the shared stack is left serving.
        assert wait_until(mlflow_serves, RECOVERY_SECONDS), "MLflow does not serve at the end of the fault tests"
        faults.clean_up()
        client_run([*command, "forget", "--key-id", str(created["key_id"])], env, "deleting the access key")


def test_keycloak_down_access_keys_keep_logging_runs(faults):
    run_id = faults.track()
    mlflow_pid = program_pid("mlflow")
    probes = run_probes([
        Probe("log-metric with the access key", lambda: faults.log_metric(run_id)),
        Probe("GET /login (a browser starting a login: 302 to Keycloak)",
              lambda: requests.get(f"{MLFLOW_URL}/login", allow_redirects=False, timeout=PROBE_TIMEOUT), success=302),
        Probe("GET /health/ready", lambda: requests.get(f"{MLFLOW_URL}/health/ready", timeout=PROBE_TIMEOUT)),
    ])
    try:
        with stopped(KEYCLOAK) as events:
            # A script's whole run, in a fresh client process, while Keycloak is down (track asserts it worked).
            faults.track()
            time.sleep(max(0.0, events["down"] + OUTAGE_SECONDS - time.monotonic()))
        time.sleep(SETTLE_SECONDS)
    finally:
        for probe in probes:
            probe.stop()
    faults.record(KEYCLOAK, events, probes)

    api = probes[0]
    while_down = api.outcomes(events["down"], events["back"])
    assert len(while_down) >= OUTAGE_SECONDS / PROBE_PERIOD / 2, f"too few calls while Keycloak was down: {while_down}"
    assert set(while_down) == {200}, f"access-key calls while Keycloak was down: {counts(while_down)}"
    once_back = api.outcomes(events["back"])
    assert set(once_back) == {200}, f"access-key calls once Keycloak was back: {counts(once_back)}"
    assert program_pid("mlflow") == mlflow_pid, "MLflow was restarted"


def test_postgresql_restarted_mlflow_answers_again(faults):
    run_id = faults.track()
    mlflow_pid = program_pid("mlflow")
    probes = run_probes([
        Probe("log-metric with the access key", lambda: faults.log_metric(run_id)),
        Probe("GET /health/ready", lambda: requests.get(f"{MLFLOW_URL}/health/ready", timeout=PROBE_TIMEOUT)),
    ])
    api = probes[0]
    try:
        with stopped(POSTGRESQL) as events:
            time.sleep(OUTAGE_SECONDS)
        wait_until(lambda: api.recovered(events["back"]) is not None, RECOVERY_SECONDS)
        time.sleep(SETTLE_SECONDS)
    finally:
        for probe in probes:
            probe.stop()
    faults.record(POSTGRESQL, events, probes)

    while_down = api.outcomes(events["down"], events["starting"])
    assert while_down and 200 not in while_down, f"MLflow served without its database: {counts(while_down)}"
    recovered = api.recovered(events["back"])
    once_back = api.outcomes(events["back"])
    assert recovered is not None and recovered <= RECOVERY_SECONDS, (
        f"MLflow did not answer 200 within {RECOVERY_SECONDS} s after PostgreSQL was back: {counts(once_back)}"
    )
    since_recovered = api.outcomes(events["back"] + recovered)
    assert set(since_recovered) == {200}, f"MLflow relapsed after recovering: {counts(since_recovered)}"
    faults.track()
    assert program_pid("mlflow") == mlflow_pid, "MLflow was restarted"


def test_minio_restarted_next_artifact_upload_works(faults):
    run_id = faults.track(artifact="before the outage")
    mlflow_pid = program_pid("mlflow")
    probes = run_probes([
        Probe("artifact upload (proxied)", lambda: faults.upload(run_id)),
        Probe("log-metric with the access key", lambda: faults.log_metric(run_id)),
    ])
    uploads = probes[0]
    try:
        with stopped(MINIO) as events:
            time.sleep(OUTAGE_SECONDS)
        wait_until(lambda: uploads.outcomes(events["back"]), PROBE_TIMEOUT + PROBE_PERIOD)
        time.sleep(SETTLE_SECONDS)
    finally:
        for probe in probes:
            probe.stop()
    faults.record(MINIO, events, probes)

    while_down = uploads.outcomes(events["down"], events["starting"])
    assert while_down and 200 not in while_down, f"uploads succeeded while MinIO was down: {counts(while_down)}"
    # The first upload once MinIO answers, and every later one, works.
    once_back = uploads.outcomes(events["back"])
    assert once_back and set(once_back) == {200}, f"uploads once MinIO was back, in order: {once_back}"
    tracking = probes[1].outcomes(events["down"], events["back"])
    assert set(tracking) == {200}, f"the tracking API while MinIO was down: {counts(tracking)}"
    faults.track(artifact="after the outage")
    assert program_pid("mlflow") == mlflow_pid, "MLflow was restarted"
