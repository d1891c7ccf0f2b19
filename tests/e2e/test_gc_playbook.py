"""playbooks/gc.yml on the deployed embedded default, with artifacts proxied through MLflow (issue #15, item 3).

A user logs two runs with artifacts through the MLflow client and deletes one. gc.yml in check mode reports that run
and deletes nothing; gc.yml deletes its objects in MinIO and its row, keeps the live run's objects; a second gc
changes nothing; once the experiment is deleted, gc removes it with its last run's objects. No secret shows. The
schedule runs under supervisord.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from minio import Minio

from tests.ansible_runner import run_playbook
from tests.conftest import STATE_DIR
from tests.e2e.mlflow_web import WebLogin
from tests.keycloak_api import unique_name

pytestmark = [pytest.mark.e2e, pytest.mark.keycloak, pytest.mark.minio]

# server_state_dir of the local inventory: the script gc.yml runs, written by site.yml.
GC_SCRIPT = Path("/var/lib/mlops-mlflow/mlflow/gc-mlflow.sh")
CLIENT = Path(__file__).with_name("gc_client.py")
BUCKET = "mlflow"
SECRET_FILES = ["database_owner_password", "minio_mlflow_secret_key", "mlflow_secret_key"]


@pytest.fixture(scope="module")
def gc_deployment(deployed_mlflow) -> str:
    """The deployed embedded default with this checkout's gc script (site.yml writes it)."""
    if not GC_SCRIPT.exists():
        result = run_playbook("playbooks/site.yml")
        assert result.returncode == 0, result.output[-6000:]
    return deployed_mlflow


@pytest.fixture(scope="module")
def bucket(minio_admin) -> Minio:
    endpoint = urlsplit(minio_admin.url)
    return Minio(endpoint.netloc, access_key=minio_admin.user, secret_key=minio_admin.password,
                 secure=endpoint.scheme == "https")


def objects(bucket: Minio, prefix: str) -> dict[str, str]:
    return {item.object_name: item.etag for item in bucket.list_objects(BUCKET, prefix=prefix, recursive=True)}


def server_python() -> str:
    """The MLflow server's interpreter (it has mlflow), from the gc script."""
    return re.search(r"^exec (\S+/bin/python) ", GC_SCRIPT.read_text(), re.MULTILINE).group(1)


def gc(*args: str):
    result = run_playbook("playbooks/gc.yml", "-e", "older_than=0s", *args, timeout=600)
    assert result.returncode == 0, result.output[-4000:]
    for name in SECRET_FILES:
        assert (STATE_DIR / "secrets" / name).read_text().strip() not in result.output, f"{name} in gc.yml's output"
    return result


def report(output: str) -> dict:
    """The message of the task 'Report what gc deleted' (yaml result format)."""
    section = output.split("Report what gc deleted]", 1)[1].split("=>", 1)[1].split("\n\n", 1)[0]
    return yaml.safe_load(section)["msg"]


def test_gc_deletes_a_deleted_runs_artifacts_and_keeps_the_live_ones(gc_deployment, realm_user, mlflow_users, bucket):
    username, password = realm_user()
    mlflow_users.append(username)
    key = WebLogin(gc_deployment, username, password).create_default_key()
    environment = dict(os.environ, MLFLOW_TRACKING_URI=gc_deployment, MLFLOW_TRACKING_USERNAME=username,
                       MLFLOW_TRACKING_PASSWORD=key)
    logged = subprocess.run([server_python(), str(CLIENT), "--experiment", unique_name("e2e-gc")], env=environment,
                            cwd=CLIENT.parent, capture_output=True, text=True, timeout=300, check=False)
    assert logged.returncode == 0, logged.stderr[-3000:]
    recorded = json.loads(logged.stdout.splitlines()[-1])
    live, deleted = objects(bucket, recorded["live_prefix"]), objects(bucket, recorded["deleted_prefix"])
    assert len(live) == 2 and len(deleted) == 2, (live, deleted)

    def run_status(run_id: str) -> int:
        return requests.get(f"{gc_deployment}/api/2.0/mlflow/runs/get", params={"run_id": run_id},
                            auth=(username, key), timeout=30).status_code

    checked = gc("--check")
    assert checked.recap()["changed"] == 1
    assert recorded["deleted_run"] in report(checked.output)["would_delete"]["runs"]
    assert objects(bucket, recorded["deleted_prefix"]) == deleted and run_status(recorded["deleted_run"]) == 200

    collected = gc()
    assert collected.recap()["changed"] == 1
    found = report(collected.output)
    assert recorded["deleted_run"] in found["deleted"]["runs"] and recorded["live_run"] not in found["deleted"]["runs"]
    assert objects(bucket, recorded["deleted_prefix"]) == {}
    assert run_status(recorded["deleted_run"]) == 404
    assert objects(bucket, recorded["live_prefix"]) == live and run_status(recorded["live_run"]) == 200

    again = gc()
    assert again.recap()["changed"] == 0
    assert report(again.output)["deleted"]["count"] == 0

    answer = requests.post(f"{gc_deployment}/api/2.0/mlflow/experiments/delete",
                           json={"experiment_id": recorded["experiment_id"]}, auth=(username, key), timeout=30)
    assert answer.status_code == 200, answer.text
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
