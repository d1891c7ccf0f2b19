"""The MLflow client side of test_gc_playbook.py, run with the MLflow server's interpreter (it has mlflow).

MLflow's URL and the user's credentials are MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME and
MLFLOW_TRACKING_PASSWORD, as for any script. In a new experiment it logs two runs, each with an artifact uploaded
through the server's proxied artifacts, deletes the second run, and prints one JSON line: {"experiment_id",
"live_run", "deleted_run", "live_prefix", "deleted_prefix"}, the prefixes being the runs' folders in the bucket.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from mlflow import MlflowClient

from mlflow_web import ARTIFACT_NAME


def log_a_run(client: MlflowClient, experiment_id: str, content: str) -> str:
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "alpha", "0.5")
    with tempfile.TemporaryDirectory() as scratch:
        artifact = Path(scratch) / ARTIFACT_NAME
        artifact.write_text(content, encoding="utf-8")
        client.log_artifact(run_id, str(artifact))
        client.log_artifact(run_id, str(artifact), artifact_path="model")
    client.set_terminated(run_id)
    return run_id


def bucket_prefix(client: MlflowClient, run_id: str) -> str:
    # mlflow-artifacts:/<experiment>/<run>/artifacts is stored below the bucket's artifacts/ prefix.
    run_path = urlsplit(client.get_run(run_id).info.artifact_uri).path.strip("/")
    return "artifacts/" + run_path.rsplit("/", 1)[0] + "/"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", required=True, help="name of the new experiment")
    args = parser.parse_args()
    client = MlflowClient()
    experiment_id = client.create_experiment(args.experiment)
    live_run = log_a_run(client, experiment_id, "kept by gc")
    deleted_run = log_a_run(client, experiment_id, "removed by gc")
    prefixes = {"live_prefix": bucket_prefix(client, live_run), "deleted_prefix": bucket_prefix(client, deleted_run)}
    client.delete_run(deleted_run)
    print(json.dumps({"experiment_id": experiment_id, "live_run": live_run, "deleted_run": deleted_run, **prefixes}))


if __name__ == "__main__":
    main()
