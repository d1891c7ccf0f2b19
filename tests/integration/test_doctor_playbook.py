"""playbooks/doctor.yml against the deployed embedded default: every check passes, and a broken part shows as FAIL."""

from __future__ import annotations

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
    """The doctor's table: check name -> PASS or FAIL."""
    return {match[1].strip(): match[0] for match in re.findall(r"^\s*(PASS|FAIL)  (.{45})", output, re.MULTILINE)}


def test_doctor_passes_on_a_working_deployment(deployed):
    result = run_playbook("playbooks/doctor.yml")
    assert result.returncode == 0, result.output[-4000:]
    table = rows(result.output)
    assert len(table) == 13, table
    assert set(table.values()) == {"PASS"}, table
    for database in ("mlflow", "mlflow_auth"):
        assert re.search(rf"PASS  Schema version of {database} +Alembic revision [0-9a-f]{{12}}\b", result.output)
    assert result.recap()["changed"] == 0


def test_doctor_fails_naming_the_broken_part(deployed):
    # Nothing listens on port 1: MLflow's own checks must fail, the others still pass.
    result = run_playbook("playbooks/doctor.yml", "-e", "doctor_mlflow_url=http://127.0.0.1:1")
    assert result.returncode != 0
    table = rows(result.output)
    assert table["/health/ready"] == "FAIL" and table["/metrics serves MLflow metrics"] == "FAIL", table
    assert table["Issuer matches what MLflow expects"] == "PASS", table
    assert "2 check(s) failed" in result.output
