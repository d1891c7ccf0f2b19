"""The local MLflow server: restarted only when its configuration changes, secrets kept and unreadable to others."""

from __future__ import annotations

import json
import os
import pwd
import re
import stat
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.ansible_runner import run_playbook
from tests.conftest import MLFLOW_URL
from tests.stack_layout import SECRETS_DIR, SERVER_STATE_DIR, SERVER_VENV, STATE_DIR

pytestmark = pytest.mark.e2e

# The local inventory's server_user.
SERVER_USER = "mlflow"
# Longer than MLflow's own retries of its first database connection (about 50 s): it exits once, and supervisord
# has to start it again.
POSTGRESQL_DOWN_SECONDS = 70


def server_pid() -> int:
    supervisor = json.loads((STATE_DIR / "endpoints.json").read_text())["supervisor"]
    status = subprocess.run(
        [supervisor["supervisorctl"], "-c", supervisor["config"], "status", "mlflow"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert "RUNNING" in status.stdout, status.stdout
    return int(status.stdout.split("pid ")[1].split(",")[0])


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def owner(path) -> str:
    return pwd.getpwuid(os.stat(path).st_uid).pw_name


def as_server_user(*command) -> int:
    return subprocess.run(["runuser", "-u", SERVER_USER, "--", *command], capture_output=True, timeout=30,
                          check=False, cwd="/").returncode


def test_configuration_change_restarts_the_server_once_and_keeps_its_secret_key(deployed_mlflow):
    secret_key_file = SECRETS_DIR / "mlflow_secret_key"
    env_file = SERVER_STATE_DIR / "mlflow.env"
    assert "export LOG_LEVEL=INFO" in env_file.read_text()
    secret_key = secret_key_file.read_text()
    before = server_pid()

    changed = run_playbook("playbooks/site.yml", "-e", "mlflow_log_level=DEBUG")
    assert changed.returncode == 0, changed.output[-4000:]
    assert "export LOG_LEVEL=DEBUG" in env_file.read_text()
    after_change = server_pid()
    assert after_change != before, "a changed environment must restart the server"

    restored = run_playbook("playbooks/site.yml")
    assert restored.returncode == 0, restored.output[-4000:]
    assert "export LOG_LEVEL=INFO" in env_file.read_text()
    assert server_pid() != after_change
    assert secret_key_file.read_text() == secret_key
    assert mode(secret_key_file) == 0o600 and mode(env_file) == 0o600


def supervisorctl(*args, timeout=120) -> str:
    supervisor = json.loads((STATE_DIR / "endpoints.json").read_text())["supervisor"]
    return subprocess.run(
        [supervisor["supervisorctl"], "-c", supervisor["config"], *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    ).stdout


def wait_until_mlflow_is_ready(timeout) -> float:
    """Seconds until /health/ready answers 200; fails when supervisord gives up on MLflow or time runs out."""
    started = time.monotonic()
    while time.monotonic() < started + timeout:
        assert "FATAL" not in supervisorctl("status", "mlflow"), "supervisord gave up on MLflow"
        try:
            if requests.get(f"{MLFLOW_URL}/health/ready", timeout=5).status_code == 200:
                return time.monotonic() - started
        except requests.ConnectionError:
            pass
        time.sleep(2)
    raise AssertionError(f"MLflow was not ready within {timeout} s: {supervisorctl('status', 'mlflow')}")


def test_mlflow_started_while_postgresql_is_down_comes_back_on_its_own(local_stack):
    supervisorctl("stop", "postgresql")
    try:
        supervisorctl("restart", "mlflow")
        time.sleep(POSTGRESQL_DOWN_SECONDS)
    finally:
        supervisorctl("start", "postgresql")
    # Nobody touches MLflow from here on.
    wait_until_mlflow_is_ready(timeout=180)
    assert "RUNNING" in supervisorctl("status", "mlflow")


def test_a_supervisord_restart_starts_postgresql_first_mlflow_last_and_mlflow_comes_back(local_stack):
    log = Path(local_stack["supervisor"]["logs_dir"]) / "supervisord.log"
    offset = log.stat().st_size
    supervisorctl("reload")
    wait_until_mlflow_is_ready(timeout=300)
    events = log.read_bytes()[offset:].decode()
    stopped = re.findall(r"stopped: (\w+) ", events)
    spawned = re.findall(r"spawned: '(\w+)'", events)
    assert stopped[0] == "mlflow" and stopped[-1] == "postgresql", stopped
    assert spawned[0] == "postgresql" and spawned[-1] == "mlflow", spawned
    assert set(spawned) == {"postgresql", "keycloak", "minio", "mlflow"}


def test_the_server_runs_as_its_own_user_which_alone_reads_its_environment_file(local_stack):
    account = pwd.getpwnam(SERVER_USER)
    assert account.pw_uid < 1000 and account.pw_shell == "/usr/sbin/nologin"
    # The server, uvicorn and its workers: the program's process group.
    processes = subprocess.run(["pgrep", "-g", str(server_pid())], capture_output=True, text=True, check=True)
    assert len(processes.stdout.split()) > 1
    users = subprocess.run(["ps", "-o", "user=", "-p", ",".join(processes.stdout.split())],
                           capture_output=True, text=True, check=True)
    assert set(users.stdout.split()) == {SERVER_USER}
    env_file = SERVER_STATE_DIR / "mlflow.env"
    assert (owner(SERVER_STATE_DIR), mode(SERVER_STATE_DIR)) == (SERVER_USER, 0o700)
    assert (owner(env_file), mode(env_file)) == (SERVER_USER, 0o600)
    secrets = SECRETS_DIR
    assert (owner(secrets), mode(secrets)) == ("root", 0o700)
    assert as_server_user("cat", str(secrets / "mlflow_secret_key")) != 0


def test_the_server_runs_from_a_virtualenv_and_an_interpreter_its_user_cannot_change(local_stack):
    start_script = SERVER_STATE_DIR / "start-mlflow.sh"
    venv = SERVER_VENV.resolve()
    assert f"exec {venv}/bin/mlflow server " in start_script.read_text()
    interpreter = Path(f"/proc/{server_pid()}/exe").resolve()
    assert interpreter == (venv / "bin" / "python3").resolve()
    for path in (interpreter, interpreter.parent, venv, venv / "bin", venv / "bin" / "mlflow", start_script):
        assert owner(path) == "root" and not mode(path) & 0o022, path
    assert as_server_user("test", "-w", str(venv / "bin")) != 0
