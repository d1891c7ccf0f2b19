"""The MLflow client side of test_site_dependency_faults.py, run with the MLflow server's interpreter (it has mlflow).

MLflow's URL is MLFLOW_TRACKING_URI, as for any script.

  key:    the user logs in through Keycloak's form and creates an access key of its own; prints one JSON line
          {"username", "key", "key_id"}: the HTTP Basic credentials of the user's scripts (kept off any output).
  track:  a fresh client process, credentials from MLFLOW_TRACKING_USERNAME/PASSWORD as any script has them, logs a
          run in the experiment (made on first use): params, a metric, with --artifact a file uploaded through the
          server's proxied artifacts and read back; prints one JSON line {"experiment_id", "run_id"}.
  forget: logs in again and deletes the access key.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from datetime import timedelta
from pathlib import Path

from mlflow import MlflowClient

from mlflow_web import ARTIFACT_NAME, WebLogin, check, read_secret

# The key outlives the test run (a few minutes) but not by much, should forget never run.
KEY_LIFETIME = timedelta(minutes=30)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["key", "track", "forget"])
    parser.add_argument("--secrets-dir", type=Path, help="holds keycloak_user_<name>_password files (key, forget)")
    parser.add_argument("--user", default="demo-user")
    parser.add_argument("--name", help="of the access key (key), of the experiment (track)")
    parser.add_argument("--key-id", type=int, help="the access key to delete (forget)")
    parser.add_argument("--artifact", help="content of an artifact to upload and read back (track)")
    return parser.parse_args()


def login(args: argparse.Namespace) -> WebLogin:
    password = read_secret(args.secrets_dir / f"keycloak_user_{args.user}_password")
    user = WebLogin(os.environ["MLFLOW_TRACKING_URI"], args.user, password)
    check(user.landing_path == "/oidc/ui/user", f"{args.user} landed on {user.landing_url}")
    return user


def track(client: MlflowClient, experiment: str, content: str | None) -> dict:
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "alpha", "0.5")
    client.log_metric(run_id, "rmse", 0.25)
    if content is not None:
        with tempfile.TemporaryDirectory() as scratch, tempfile.TemporaryDirectory() as back:
            artifact = Path(scratch) / ARTIFACT_NAME
            artifact.write_text(content, encoding="utf-8")
            client.log_artifact(run_id, str(artifact))
            copy = Path(client.download_artifacts(run_id, ARTIFACT_NAME, back))
            check(copy.read_text(encoding="utf-8") == content, f"{ARTIFACT_NAME} came back changed")
    client.set_terminated(run_id)
    data = client.get_run(run_id).data
    check(data.params == {"alpha": "0.5"} and data.metrics == {"rmse": 0.25}, f"the run holds {data}")
    return {"experiment_id": experiment_id, "run_id": run_id}


def main() -> None:
    args = parse_args()
    if args.action == "key":
        user = login(args)
        key = user.create_named_key(args.name, lifetime=KEY_LIFETIME)
        # The client's user name is the one MLflow knows the user by (OIDC_USERNAME_FIELD's claim).
        print(json.dumps({"username": user.status()["username"], "key": key["token"], "key_id": key["id"]}))
    elif args.action == "track":
        print(json.dumps(track(MlflowClient(), args.name, args.artifact)))
    else:
        login(args).delete_key(args.key_id)


if __name__ == "__main__":
    main()
