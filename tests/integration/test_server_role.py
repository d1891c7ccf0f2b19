"""The local MLflow server: restarted only when its configuration changes, secrets kept and unreadable to others."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from tests.ansible_runner import run_playbook
from tests.conftest import STATE_DIR

pytestmark = pytest.mark.e2e


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


def test_configuration_change_restarts_the_server_once_and_keeps_its_secret_key(local_stack):
    secret_key_file = STATE_DIR / "secrets" / "mlflow_secret_key"
    env_file = STATE_DIR / "server" / "mlflow.env"
    converged = run_playbook("playbooks/site.yml")
    assert converged.returncode == 0, converged.output[-4000:]
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
