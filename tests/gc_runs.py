"""What the tests of playbooks/gc.yml share, on either target: runs a user records through the MLflow client (one
of them deleted), the bucket's objects as MinIO's root user sees them, and gc.yml's report."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import requests
import yaml
from minio import Minio

from tests.ansible_runner import REPO_ROOT
from tests.conftest import STATE_DIR
from tests.keycloak_api import unique_name

CLIENT = REPO_ROOT / "tests" / "e2e" / "gc_client.py"
BUCKET = "mlflow"


def bucket_client(url: str, user: str, password: str) -> Minio:
    endpoint = urlsplit(url)
    return Minio(endpoint.netloc, access_key=user, secret_key=password, secure=endpoint.scheme == "https")


def objects(bucket: Minio, prefix: str) -> dict[str, str]:
    """Name -> ETag of the objects under a prefix."""
    return {item.object_name: item.etag for item in bucket.list_objects(BUCKET, prefix=prefix, recursive=True)}


def server_python() -> str:
    """The local MLflow server's interpreter (it has mlflow), from the start script supervisord runs."""
    programs = Path(json.loads((STATE_DIR / "endpoints.json").read_text())["supervisor"]["programs_dir"])
    start_script = re.search(r"^command=(\S+)", (programs / "mlflow.conf").read_text(), re.MULTILINE).group(1)
    return re.search(r"^exec (\S+)/bin/mlflow ", Path(start_script).read_text(), re.MULTILINE).group(1) + "/bin/python"


def record_runs(mlflow_url: str, username: str, key: str) -> dict:
    """Two runs with artifacts in a new experiment, the second deleted (tests/e2e/gc_client.py): its JSON line."""
    environment = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_url, MLFLOW_TRACKING_USERNAME=username,
                       MLFLOW_TRACKING_PASSWORD=key)
    logged = subprocess.run([server_python(), str(CLIENT), "--experiment", unique_name("e2e-gc")], env=environment,
                            cwd=CLIENT.parent, capture_output=True, text=True, timeout=300, check=False)
    assert logged.returncode == 0, logged.stderr[-3000:]
    return json.loads(logged.stdout.splitlines()[-1])


def run_status(mlflow_url: str, username: str, key: str, run_id: str) -> int:
    return requests.get(f"{mlflow_url}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, auth=(username, key),
                        timeout=30).status_code


def delete_experiment(mlflow_url: str, username: str, key: str, experiment_id: str) -> None:
    answer = requests.post(f"{mlflow_url}/api/2.0/mlflow/experiments/delete", json={"experiment_id": experiment_id},
                           auth=(username, key), timeout=30)
    assert answer.status_code == 200, answer.text


def report(output: str) -> dict:
    """The message of the task 'Report what gc deleted' of either role (yaml result format)."""
    section = output.split("Report what gc deleted]", 1)[1].split("=>", 1)[1].split("\n\n", 1)[0]
    return yaml.safe_load(section)["msg"]
