"""`mlflow gc` for a tracking server that proxies its artifacts (run artifact URIs `mlflow-artifacts:/...`).

Run with the server's interpreter and environment: `python gc.py --older-than 30d [--dry-run]`. It permanently
deletes the runs, experiments and logged models in the `deleted` lifecycle stage for longer than --older-than, with
their artifacts, and prints one line per object as `mlflow gc` does.

MLflow's own repository for `mlflow-artifacts:` URIs deletes through the server's HTTP API, which needs a user's login
and fails without one (`mlflow gc --artifacts-destination` only sets the store's default artifact root). Here such a
URI resolves the way the server itself resolves it: its path below MLFLOW_ARTIFACTS_DESTINATION
(mlflow/server/handlers.py, _get_proxied_run_artifact_destination_path), deleted with the server's own S3 login.

--dry-run deletes nothing and prints what would be deleted, chosen by `mlflow gc` itself.

Ansible templates it into the chart's values, and the chart passes it through Helm's `tpl`: no template braces here.
"""

import os
import posixpath
import sys
from urllib.parse import urlsplit

import mlflow.cli
from mlflow.store.artifact import artifact_repository_registry

BACKEND_STORE_URI = os.environ["MLFLOW_BACKEND_STORE_URI"]
DESTINATION = os.environ["MLFLOW_ARTIFACTS_DESTINATION"]


def proxied_artifact_repository(artifact_uri, tracking_uri=None, registry_uri=None):
    path = urlsplit(artifact_uri).path.strip("/")
    # An artifact location is always below an experiment's folder: the root would be every artifact of the server.
    if not path:
        raise ValueError("refusing to delete the whole artifacts destination for %s" % artifact_uri)
    return artifact_repository_registry.get_artifact_repository(posixpath.join(DESTINATION, path))


class KeptArtifacts:
    def delete_artifacts(self, artifact_path=None):
        pass


def keep_everything():
    """What --dry-run changes: mlflow gc chooses and reports as usual, and deletes neither rows nor objects."""
    get_store = mlflow.cli._get_store

    def store_that_keeps(*args, **kwargs):
        store = get_store(*args, **kwargs)
        for name in ("_hard_delete_run", "_hard_delete_experiment", "_hard_delete_logged_model"):
            if hasattr(store, name):
                setattr(store, name, lambda *_args, **_kwargs: None)
        return store

    mlflow.cli._get_store = store_that_keeps
    mlflow.cli.get_artifact_repository = lambda *_args, **_kwargs: KeptArtifacts()
    print("Dry run: nothing is deleted; the lines below say what gc would delete.", flush=True)


artifact_repository_registry._artifact_repository_registry.register("mlflow-artifacts", proxied_artifact_repository)
arguments = sys.argv[1:]
if "--dry-run" in arguments:
    arguments.remove("--dry-run")
    keep_everything()
# gc insists on a tracking URI; it is used for nothing else here (the store is the backend store's).
mlflow.cli.cli.main(
    ["gc", "--backend-store-uri", BACKEND_STORE_URI, "--tracking-uri", BACKEND_STORE_URI, *arguments],
    prog_name="mlflow gc",
)
