"""playbooks/backup.yml and restore.yml on the deployed embedded default, the whole round trip (issue #15, item 2).

demo-user records an experiment, a run with a param, a metric and an artifact, a model version and an access key
(tests/e2e/survivor.py, as the Molecule teardown scenario does) and grants READ on the experiment to a second user,
who has an access key too. backup.yml writes the backup; a copy of it with a damaged dump is refused by restore.yml
before anything is stopped or dropped (once caught by the manifest's SHA256, once by pg_restore when the manifest was
forged to match). Then teardown.yml -e delete_db=true -e delete_bucket=true, site.yml (a fresh deployment: the access
key is unknown there), restore.yml: the experiment, run, artifact bytes, model version, the grant and both access
keys work again, and a second restore.yml changes nothing.

It drops and restores the shared stack's databases and bucket: whatever happens, the finalizer leaves MLflow deployed
with the data it had (site.yml, then restore.yml when the teardown ran and the restore did not).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.ansible_runner import REPO_ROOT, run_playbook
from tests.conftest import MLFLOW_URL, http_status
from tests.e2e.mlflow_web import Api, WebLogin
from tests.stack_layout import SECRETS_DIR, SERVER_VENV, STATE_DIR

pytestmark = [pytest.mark.e2e, pytest.mark.keycloak, pytest.mark.postgres, pytest.mark.minio]

SURVIVOR = REPO_ROOT / "tests" / "e2e" / "survivor.py"
BACKUPS = STATE_DIR / "backups"


def survivor(action: str, state_file: Path) -> dict:
    completed = subprocess.run(
        # The MLflow server's interpreter has the mlflow client.
        [str(SERVER_VENV / "bin" / "python"), str(SURVIVOR), action, f"--mlflow-url={MLFLOW_URL}",
         f"--state-file={state_file}", f"--secrets-dir={SECRETS_DIR}"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert completed.returncode == 0, f"survivor.py {action}:\n{completed.stdout[-2000:]}{completed.stderr[-4000:]}"
    return json.loads(state_file.read_text())


def timed_playbook(playbook: str, *args: str) -> tuple[object, float]:
    started = time.monotonic()
    result = run_playbook(playbook, *args, timeout=1200)
    return result, time.monotonic() - started


def newest_backup(since: float) -> Path:
    found = [path for path in BACKUPS.iterdir() if (path / "manifest.json").is_file() and path.stat().st_mtime >= since]
    assert found, f"no backup with a manifest in {BACKUPS} since the test started"
    return max(found, key=lambda path: path.name)


def damaged_copy(backup: Path, destination: Path, forge_manifest: bool) -> Path:
    """A copy of the backup with a damaged tracking dump: bytes flipped in its middle; with forge_manifest, its last bytes
    cut off (table data: the archive ends with it, and pg_restore --list never reads it) and the manifest's SHA256
    made to match, so that only pg_restore's reading of the data can tell."""
    copy = destination / backup.name
    shutil.copytree(backup, copy)
    dump = copy / "mlflow.pgc"
    data = bytearray(dump.read_bytes())
    if forge_manifest:
        data = data[:-16]
    else:
        for offset in range(len(data) // 2, len(data) // 2 + 64):
            data[offset] ^= 0xFF
    dump.write_bytes(bytes(data))
    if forge_manifest:
        manifest = json.loads((copy / "manifest.json").read_text())
        manifest["files"]["mlflow.pgc"]["sha256"] = hashlib.sha256(data).hexdigest()
        (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def flat(output: str) -> str:
    """The output with every run of white space made one space: the YAML callback folds long messages."""
    return " ".join(output.split())


def read_experiment(username: str, key: str, experiment_id: str) -> int:
    return Api(MLFLOW_URL, basic=(username, key)).call(
        "GET", "experiments/get", params={"experiment_id": experiment_id}).status_code


def test_backup_teardown_site_restore_round_trip(deployed_mlflow, realm_user, tmp_path, record_property):
    state_file = tmp_path / "survivor.json"
    state = survivor("record", state_file)
    owner = Api(MLFLOW_URL, basic=(state["username"], state["key"]))
    reader, password = realm_user(prefix="e2e-restore")
    reader_key = WebLogin(MLFLOW_URL, reader, password).create_default_key()
    assert read_experiment(reader, reader_key, state["experiment_id"]) == 403
    owner.expect((200, 201), "POST", f"permissions/users/{reader}/experiments/{state['experiment_id']}",
                 {"permission": "READ"})
    Api(MLFLOW_URL, basic=(reader, reader_key)).expect_within(
        40, 200, "GET", "experiments/get", {"experiment_id": state["experiment_id"]})

    started = time.time()
    torn_down = restored = False
    try:
        result, backup_seconds = timed_playbook("playbooks/backup.yml")
        assert result.returncode == 0, result.output[-6000:]
        backup = newest_backup(started)
        manifest = json.loads((backup / "manifest.json").read_text())
        assert backup.stat().st_mode & 0o777 == 0o700
        artifact = "objects/" + state["artifact_key"]
        assert {"mlflow.pgc", "mlflow_auth.pgc", "realm.json", artifact} <= set(manifest["files"])
        assert all(manifest["versions"][name] for name in ("mlflow", "mlflow_oidc_auth", "postgresql", "keycloak"))
        assert manifest["databases"]["tracking"]["schema_revision"] and manifest["databases"]["auth"]["schema_revision"]
        realm = (backup / "realm.json").read_text()
        assert '"clientId": "mlflow"' in realm and '"secret"' not in realm and "**********" not in realm
        size = sum(path.stat().st_size for path in backup.rglob("*") if path.is_file())
        record_property("backup_seconds", round(backup_seconds, 1))
        record_property("backup_bytes", size)

        # Refused before anything is stopped or dropped: the server keeps serving the recorded data.
        for forge, message in ((False, "file(s) missing, changed or not in its manifest: mlflow.pgc"),
                               (True, "/mlflow.pgc is damaged: pg_restore cannot read its data back")):
            (tmp_path / str(forge)).mkdir()
            copy = damaged_copy(backup, tmp_path / str(forge), forge)
            refused = run_playbook("playbooks/restore.yml", "-e", f"backup={copy}")
            assert refused.returncode != 0 and message in flat(refused.output), refused.output[-4000:]
            assert "Stop the server while its databases are replaced" not in refused.output
            assert read_experiment(reader, reader_key, state["experiment_id"]) == 200

        result = run_playbook("playbooks/teardown.yml", "-e", "delete_db=true", "-e", "delete_bucket=true")
        torn_down = True
        assert result.returncode == 0, result.output[-6000:]
        result = run_playbook("playbooks/site.yml", timeout=1800)
        assert result.returncode == 0, result.output[-6000:]
        # A fresh deployment: the auth database knows neither user's access key.
        assert read_experiment(reader, reader_key, state["experiment_id"]) == 401

        result, restore_seconds = timed_playbook("playbooks/restore.yml", "-e", f"backup={backup}")
        assert result.returncode == 0, result.output[-6000:]
        restored = True
        record_property("restore_seconds", round(restore_seconds, 1))
        print(f"backup {backup_seconds:.1f} s, {size} bytes; restore {restore_seconds:.1f} s")

        survivor("check", state_file)
        Api(MLFLOW_URL, basic=(reader, reader_key)).expect(
            200, "GET", "experiments/get", params={"experiment_id": state["experiment_id"]})
        Api(MLFLOW_URL, basic=(reader, reader_key)).expect(403, "POST", "runs/create",
                                                           {"experiment_id": state["experiment_id"]})

        again = run_playbook("playbooks/restore.yml", "-e", f"backup={backup}")
        assert again.returncode == 0, again.output[-6000:]
        assert again.recap()["changed"] == 0, again.output[-6000:]
    finally:
        if torn_down and not restored:
            run_playbook("playbooks/site.yml", timeout=1800)
            run_playbook("playbooks/restore.yml", "-e", f"backup={newest_backup(started)}", timeout=1800)
        if http_status(f"{MLFLOW_URL}/health/ready") != 200:
            run_playbook("playbooks/site.yml", timeout=1800)
        clean_up(state, reader)
    # This test's backup and the teardown's dumps, once they served (a failed run keeps them to look at).
    for path in BACKUPS.iterdir():
        if path.stat().st_mtime >= started:
            shutil.rmtree(path)


def clean_up(state: dict, reader: str) -> None:
    """The recorded model and experiment go (as their owner), and the second user's MLflow account (as demo-admin)."""
    auth = (state["username"], state["key"])
    requests.delete(f"{MLFLOW_URL}/api/2.0/mlflow/registered-models/delete", json={"name": state["name"]}, auth=auth,
                    timeout=30)
    requests.post(f"{MLFLOW_URL}/api/2.0/mlflow/experiments/delete", json={"experiment_id": state["experiment_id"]},
                  auth=auth, timeout=30)
    admin = WebLogin(MLFLOW_URL, "demo-admin", (SECRETS_DIR / "keycloak_user_demo-admin_password").read_text().strip())
    key = admin.create_named_key(f"clean-up-{reader}")
    requests.delete(f"{MLFLOW_URL}/api/2.0/mlflow/users", json={"username": reader}, auth=("demo-admin", key["token"]),
                    timeout=30)
    admin.delete_key(key["id"])
