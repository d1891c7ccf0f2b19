"""playbooks/doctor.yml against the deployed embedded default: every check passes, and a broken part shows as FAIL."""

from __future__ import annotations

import datetime
import re

import pytest

from tests.ansible_runner import run_playbook

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deployed(local_stack):
    """site.yml converged (a no-op when the deployment is already there)."""
    result = run_playbook("playbooks/site.yml")
    assert result.returncode == 0, result.output[-4000:]


def rows(output: str) -> dict[str, str]:
    """The doctor's table: check name -> PASS, FAIL or WARN."""
    return {match[1].strip(): match[0] for match in re.findall(r"^\s*(PASS|FAIL|WARN)  (.{45})", output, re.MULTILINE)}


def backup(backups_dir, taken_at):
    """A backup as playbooks/backup.yml names it (the doctor reads the name and the manifest's presence only)."""
    directory = backups_dir / taken_at.strftime("%Y%m%dT%H%M%SZ")
    directory.mkdir(parents=True)
    (directory / "manifest.json").write_text("{}")


def test_doctor_passes_on_a_working_deployment(deployed, tmp_path):
    now = datetime.datetime.now(datetime.timezone.utc)
    backup(tmp_path, now - datetime.timedelta(days=400))
    backup(tmp_path, now - datetime.timedelta(hours=2))
    result = run_playbook("playbooks/doctor.yml", "-e", f"database_backup_dir={tmp_path}")
    assert result.returncode == 0, result.output[-4000:]
    table = rows(result.output)
    assert len(table) == 14, table
    assert set(table.values()) == {"PASS"}, table
    assert re.search(r"PASS  Last backup +\S+, 2\.0 h old \(limit 26 h\)", result.output), result.output[-4000:]
    for database in ("mlflow", "mlflow_auth"):
        assert re.search(rf"PASS  Schema version of {database} +Alembic revision [0-9a-f]{{12}}\b", result.output)
    assert result.recap()["changed"] == 0


def test_doctor_fails_naming_the_broken_part(deployed, tmp_path):
    # Nothing listens on port 1: MLflow's own checks must fail, the others still pass.
    result = run_playbook("playbooks/doctor.yml", "-e", "doctor_mlflow_url=http://127.0.0.1:1",
                          "-e", f"database_backup_dir={tmp_path}")
    assert result.returncode != 0
    table = rows(result.output)
    # No backup is a warning, not a failure.
    assert table["Last backup"] == "WARN", table
    assert table["/health/ready"] == "FAIL" and table["/metrics serves MLflow metrics"] == "FAIL", table
    assert table["Issuer matches what MLflow expects"] == "PASS", table
    assert "2 check(s) failed" in result.output
