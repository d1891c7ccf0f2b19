"""A second run of the local stack changes nothing and restarts nothing."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.ansible_runner import run_playbook
from tests.stack_layout import SECRETS_DIR, STATE_DIR

pytestmark = pytest.mark.harness

SUPERVISOR_CONFIG = STATE_DIR / "supervisor" / "supervisord.conf"
# The programs of the local_services role; the MLflow server (role server) may run beside them.
LOCAL_PROGRAMS = {"postgresql", "keycloak", "minio"}


def _program_pids() -> dict[str, int]:
    """Pids of the running local services (supervisorctl exits 3 when another program is not running)."""
    supervisorctl = next((Path.home() / ".cache" / "mlops-mlflow" / "supervisor").glob("*/venv/bin/supervisorctl"))
    status = subprocess.run(
        [supervisorctl, "-c", SUPERVISOR_CONFIG, "status"], capture_output=True, text=True, check=False, timeout=60
    ).stdout
    running = re.findall(r"^(\S+)\s+RUNNING\s+pid (\d+)", status, re.MULTILINE)
    return {name: int(pid) for name, pid in running if name in LOCAL_PROGRAMS}


def test_second_run_changes_nothing_and_restarts_nothing(local_stack):
    before = _program_pids()
    assert set(before) == LOCAL_PROGRAMS
    result = run_playbook("playbooks/local_services.yml")
    assert result.returncode == 0, result.output[-3000:]
    assert result.recap()["changed"] == 0
    assert _program_pids() == before


def test_check_mode_on_the_running_stack_reports_no_change(local_stack):
    result = run_playbook("playbooks/local_services.yml", "--check", "--diff")
    assert result.returncode == 0, result.output[-3000:]
    assert result.recap()["changed"] == 0


def test_admin_passwords_are_private_files(local_stack):
    secrets = SECRETS_DIR
    assert (secrets.stat().st_mode & 0o777) == 0o700
    for name in ("postgresql_admin_password", "keycloak_admin_password", "minio_root_password"):
        assert ((secrets / name).stat().st_mode & 0o777) == 0o600
        assert len((secrets / name).read_text().strip()) == 32


def test_a_hand_edited_supervisord_config_is_repaired_and_every_service_comes_back(local_stack):
    original = SUPERVISOR_CONFIG.read_text()
    SUPERVISOR_CONFIG.write_text(original + "; edited by hand\n")
    result = run_playbook("playbooks/local_services.yml")
    assert result.returncode == 0, result.output[-3000:]
    assert "RUNNING HANDLER [mlops.mlflow.local_services : Reload supervisord]" in result.output
    assert SUPERVISOR_CONFIG.read_text() == original
    assert set(_program_pids()) == LOCAL_PROGRAMS
    assert run_playbook("playbooks/local_services.yml").recap()["changed"] == 0
