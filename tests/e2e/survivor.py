"""An experiment that must survive a teardown that keeps the data (Molecule scenario teardown).

Run with the MLflow server's interpreter.
  record: the user logs in, creates an access key and tracks a run with an artifact; what to look for later
          (names, ids, the key) goes to a state file (mode 0600).
  check:  with that same access key, the experiment, the run's params and metrics and the artifact's content
          are still served; the access key still working shows the auth database survived too.
Both print one JSON line last: where the artifact must be in the bucket and what it holds.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mlflow import MlflowClient

from mlflow_web import ARTIFACT_NAME, WebLogin, check, log, mlflow_credentials, read_secret, track_a_run, unique_name


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["record", "check"])
    parser.add_argument("--mlflow-url", required=True)
    parser.add_argument("--state-file", required=True, type=Path)
    parser.add_argument("--secrets-dir", type=Path, help="holds keycloak_user_<name>_password files (record)")
    parser.add_argument("--user", default="demo-user")
    return parser.parse_args()


def record(args: argparse.Namespace, client: MlflowClient) -> dict:
    name = unique_name("survivor")
    user = WebLogin(args.mlflow_url, args.user, read_secret(args.secrets_dir / f"keycloak_user_{args.user}_password"))
    check(user.landing_path == "/oidc/ui/user", f"{args.user} landed on {user.landing_url}")
    key = user.create_named_key(name, lifetime=timedelta(hours=3))
    state = {
        "name": name,
        "username": user.account,
        "key": key["token"],
        "content": f"artifact of {name}",
        # Backups taken from now on (directories named by UTC time) are this scenario's.
        "recorded_at": datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
    }
    with mlflow_credentials(MLFLOW_TRACKING_USERNAME=state["username"], MLFLOW_TRACKING_PASSWORD=state["key"]):
        state.update(track_a_run(client, name, state["content"]))
    descriptor = os.open(args.state_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as state_file:
        json.dump(state, state_file)
    log(f"{args.user} tracked {name} (experiment {state['experiment_id']}, run {state['run_id']})")
    return state


def check_survived(args: argparse.Namespace, client: MlflowClient) -> dict:
    state = json.loads(args.state_file.read_text(encoding="utf-8"))
    with mlflow_credentials(MLFLOW_TRACKING_USERNAME=state["username"], MLFLOW_TRACKING_PASSWORD=state["key"]):
        experiment = client.get_experiment_by_name(state["name"])
        check(experiment is not None, f"experiment {state['name']} is gone")
        check(experiment.experiment_id == state["experiment_id"], f"{state['name']} has a new id")
        data = client.get_run(state["run_id"]).data
        check(data.params == {"alpha": "0.5"} and data.metrics == {"rmse": 0.25}, f"the run holds {data}")
        check(client.get_registered_model(state["name"]).latest_versions, f"model {state['name']} has no version")
        with tempfile.TemporaryDirectory() as scratch:
            artifact = Path(client.download_artifacts(state["run_id"], ARTIFACT_NAME, scratch))
            check(artifact.read_text(encoding="utf-8") == state["content"], f"{ARTIFACT_NAME} changed")
    log(f"{state['name']}, its run, model version and artifact survived, and so did the access key")
    return state


def main() -> None:
    args = parse_args()
    client = MlflowClient(tracking_uri=args.mlflow_url.rstrip("/"))
    state = record(args, client) if args.action == "record" else check_survived(args, client)
    print(json.dumps({"artifact_key": state["artifact_key"], "artifact_content": state["content"]}))


if __name__ == "__main__":
    main()
