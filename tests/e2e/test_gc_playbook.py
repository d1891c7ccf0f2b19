"""playbooks/gc.yml on the deployed embedded default, with artifacts proxied through MLflow (issue #15, item 3).

A user logs two runs with artifacts through the MLflow client and deletes one. gc.yml in check mode reports that run
and deletes nothing; gc.yml deletes its objects in MinIO and its row, keeps the live run's objects; a second gc
changes nothing; once the experiment is deleted, gc removes it with its last run's objects. No secret shows. The
schedule runs under supervisord. (The Kubernetes target: tests/integration/kubernetes/test_chart_role.py.)
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.ansible_runner import run_playbook
from tests.conftest import STATE_DIR
from tests.e2e.mlflow_web import WebLogin
from tests.gc_runs import bucket_client, delete_experiment, objects, record_runs, report, run_status

pytestmark = [pytest.mark.e2e, pytest.mark.keycloak, pytest.mark.minio]

# server_state_dir of the local inventory: the script gc.yml runs there, written by site.yml.
GC_SCRIPT = Path("/var/lib/mlops-mlflow/mlflow/gc-mlflow.sh")
SECRET_FILES = ["database_owner_password", "minio_mlflow_secret_key", "mlflow_secret_key"]


@pytest.fixture(scope="module")
def gc_deployment(deployed_mlflow) -> str:
    """The deployed embedded default with this checkout's gc script (site.yml writes it)."""
    if not GC_SCRIPT.exists():
        result = run_playbook("playbooks/site.yml")
        assert result.returncode == 0, result.output[-6000:]
    return deployed_mlflow


def gc(*args: str):
    result = run_playbook("playbooks/gc.yml", "-e", "older_than=0s", *args, timeout=600)
    assert result.returncode == 0, result.output[-4000:]
    for name in SECRET_FILES:
        assert (STATE_DIR / "secrets" / name).read_text().strip() not in result.output, f"{name} in gc.yml's output"
    return result


def test_gc_deletes_a_deleted_runs_artifacts_and_keeps_the_live_ones(
        gc_deployment, realm_user, mlflow_users, minio_admin):
    username, password = realm_user()
    mlflow_users.append(username)
    key = WebLogin(gc_deployment, username, password).create_default_key()
    recorded = record_runs(gc_deployment, username, key)
    bucket = bucket_client(minio_admin.url, minio_admin.user, minio_admin.password)
    live, deleted = objects(bucket, recorded["live_prefix"]), objects(bucket, recorded["deleted_prefix"])
    assert len(live) == 2 and len(deleted) == 2, (live, deleted)

    checked = gc("--check")
    assert checked.recap()["changed"] == 1
    assert recorded["deleted_run"] in report(checked.output)["would_delete"]["runs"]
    assert objects(bucket, recorded["deleted_prefix"]) == deleted
    assert run_status(gc_deployment, username, key, recorded["deleted_run"]) == 200

    collected = gc()
    assert collected.recap()["changed"] == 1
    found = report(collected.output)["deleted"]
    assert recorded["deleted_run"] in found["runs"] and recorded["live_run"] not in found["runs"]
    assert objects(bucket, recorded["deleted_prefix"]) == {}
    assert run_status(gc_deployment, username, key, recorded["deleted_run"]) == 404
    assert objects(bucket, recorded["live_prefix"]) == live
    assert run_status(gc_deployment, username, key, recorded["live_run"]) == 200

    again = gc()
    assert again.recap()["changed"] == 0 and report(again.output)["deleted"]["count"] == 0

    delete_experiment(gc_deployment, username, key, recorded["experiment_id"])
    emptied = report(gc().output)["deleted"]
    assert recorded["experiment_id"] in emptied["experiments"] and recorded["live_run"] in emptied["runs"]
    assert objects(bucket, recorded["live_prefix"]) == {}


def test_the_schedule_runs_under_supervisord(gc_deployment, local_stack):
    supervisor = local_stack["supervisor"]
    status = subprocess.run([supervisor["supervisorctl"], "-c", supervisor["config"], "status", "mlflow-gc"],
                            capture_output=True, text=True, timeout=60, check=False).stdout
    assert re.search(r"^mlflow-gc\s+RUNNING\b", status, re.MULTILINE), status
    log = (Path(supervisor["logs_dir"]) / "mlflow-gc.log").read_text()
    assert "gc schedule '30 3 * * *' (UTC)" in log and "--older-than 30d" in log
