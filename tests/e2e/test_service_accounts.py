"""Machine-to-machine access on the deployed embedded default (issue #15, item 4): a service account of
identity_service_accounts logs runs from a fresh process with its client id and secret alone (client credentials
grant: no human login, no access key); one outside the MLflow groups gets nothing; the secret is never printed.

The tests run in file order on one service account that site.yml creates (at -vvv) and identity.yml deletes.
"""

from __future__ import annotations

import base64
import json
import re
import stat
import subprocess
from pathlib import Path

import pytest
import requests

from tests.ansible_runner import run_module, run_playbook
from tests.conftest import STATE_DIR
from tests.e2e.conftest import REALM
from tests.keycloak_api import client_secret, find_client, realm_openid, unique_name, user_group_names

pytestmark = [pytest.mark.e2e, pytest.mark.keycloak]

ISSUER = f"http://127.0.0.1:8080/realms/{REALM}"
# Creates an experiment and logs a run with a metric, then prints what the server recorded.
CLIENT_PROGRAM = """
import json, sys
from mlflow import MlflowClient

client = MlflowClient()
experiment_id = client.create_experiment(sys.argv[1])
run_id = client.create_run(experiment_id).info.run_id
client.log_metric(run_id, "rmse", 0.25)
client.set_terminated(run_id)
print(json.dumps({"experiment_id": experiment_id, "metrics": client.get_run(run_id).data.metrics}))
"""


def accounts(*entries: dict) -> tuple[str, str]:
    return "-e", json.dumps({"identity_service_accounts": list(entries)})


def server_python(local_stack: dict) -> str:
    """The MLflow server's interpreter (it has mlflow), from the start script supervisord runs."""
    program = (Path(local_stack["supervisor"]["programs_dir"]) / "mlflow.conf").read_text()
    start_script = re.search(r"^command=(\S+)", program, re.MULTILINE).group(1)
    venv = re.search(r"^exec (\S+)/bin/mlflow ", Path(start_script).read_text(), re.MULTILINE).group(1)
    return f"{venv}/bin/python"


def client_credentials_token(keycloak_admin, client_id: str, secret: str) -> tuple[str, dict]:
    """An access token of the client's service account, and its claims checked against the realm's keys."""
    openid = realm_openid(keycloak_admin, REALM, client_id, secret)
    token = openid.token(grant_type="client_credentials")["access_token"]
    return token, openid.decode_token(token)


def audiences(claims: dict) -> list[str]:
    return [claims["aud"]] if isinstance(claims["aud"], str) else claims["aud"]


def bearer(token: str) -> dict:
    return {"headers": {"Authorization": f"Bearer {token}"}, "timeout": 30}


@pytest.fixture(scope="module")
def pipeline(deployed_mlflow, local_stack, keycloak):
    """A service account in mlflow-users, deployed by site.yml at -vvv; deleted afterwards by identity.yml."""
    name = unique_name("e2e-pipeline")
    entry = {"name": name, "group": "mlflow-users", "description": "e2e test pipeline"}
    secret_file = STATE_DIR / "secrets" / f"keycloak_client_{name}_secret"
    try:
        deployed = run_playbook("playbooks/site.yml", "-vvv", *accounts(entry), timeout=1200)
        yield {"name": name, "entry": entry, "deployed": deployed, "secret_file": secret_file}
    finally:
        removed = run_playbook("playbooks/identity.yml", *accounts({"name": name, "state": "absent"}), timeout=600)
        secret_file.unlink(missing_ok=True)
        assert removed.returncode == 0, removed.output[-4000:]
        assert find_client(keycloak, name) is None


def test_site_creates_the_client_with_a_stored_secret_it_never_prints(pipeline, keycloak):
    deployed = pipeline["deployed"]
    assert deployed.returncode == 0, deployed.output[-6000:]
    secret_file = pipeline["secret_file"]
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text().strip()
    assert len(secret) == 32
    assert secret not in deployed.output, "the secret is in site.yml's -vvv output"
    # Nor encoded as an HTTP Basic credential would carry it.
    assert base64.b64encode(f"{pipeline['name']}:{secret}".encode()).decode() not in deployed.output

    client = find_client(keycloak, pipeline["name"])
    assert client["serviceAccountsEnabled"] is True
    assert client["standardFlowEnabled"] is False and client["directAccessGrantsEnabled"] is False
    assert client["implicitFlowEnabled"] is False and client["publicClient"] is False
    assert client["description"] == "e2e test pipeline"
    assert client_secret(keycloak, pipeline["name"]) == secret
    assert user_group_names(keycloak, f"service-account-{pipeline['name']}") == {"mlflow-users"}


def test_a_pipeline_logs_a_run_with_its_client_id_and_secret_alone(pipeline, deployed_mlflow, keycloak_admin,
                                                                   local_stack, mlflow_users, tmp_path):
    username = f"service-account-{pipeline['name']}"
    mlflow_users.append(username)
    secret = pipeline["secret_file"].read_text().strip()
    token, claims = client_credentials_token(keycloak_admin, pipeline["name"], secret)
    # What MLflow checks: its audience, the realm as issuer, the account name, the group as a full path.
    assert "mlflow" in audiences(claims)
    assert claims["iss"] == ISSUER
    assert claims["preferred_username"] == username
    assert claims["groups"] == ["/mlflow-users"]

    experiment = unique_name("e2e-pipeline-runs")
    # A fresh process that knows MLflow's URL and the token only (HOME empty: no ~/.netrc, no MLflow config).
    completed = subprocess.run(
        [server_python(local_stack), "-c", CLIENT_PROGRAM, experiment],
        env={"MLFLOW_TRACKING_URI": deployed_mlflow, "MLFLOW_TRACKING_TOKEN": token, "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    logged = json.loads(completed.stdout.strip().splitlines()[-1])
    assert logged["metrics"] == {"rmse": 0.25}

    # The account MLflow made on the first request: the service account in its group, not an administrator.
    current = requests.get(f"{deployed_mlflow}/api/2.0/mlflow/users/current", **bearer(token))
    assert current.status_code == 200, current.text[:300]
    assert current.json()["username"] == username and current.json()["is_admin"] is False
    assert [group["group_name"] for group in current.json()["groups"]] == ["/mlflow-users"]


def test_a_service_account_outside_the_mlflow_groups_gets_nothing(pipeline, deployed_mlflow, keycloak_admin, keycloak):
    outsider = unique_name("e2e-outsider")
    connection = (f"auth_keycloak_url={keycloak_admin.url} auth_realm={keycloak_admin.realm} "
                  f"auth_username={keycloak_admin.user} auth_password={keycloak_admin.password} realm={REALM}")
    # Everything a service account of the role has, except the group; MLflow provisions bearer users (site.yml ran).
    created = run_module("mlops.mlflow.keycloak_oidc_client",
                         f"{connection} client_id={outsider} service_accounts=true standard_flow=false "
                         "pkce_method=none audience=mlflow default_client_scopes=profile,groups")
    try:
        assert created.returncode == 0, created.output[-3000:]
        token, claims = client_credentials_token(keycloak_admin, outsider, client_secret(keycloak, outsider))
        assert "mlflow" in audiences(claims) and claims["iss"] == ISSUER
        assert claims["preferred_username"] == f"service-account-{outsider}"
        assert claims.get("groups", []) == []

        read = requests.get(f"{deployed_mlflow}/api/2.0/mlflow/experiments/search", params={"max_results": 1},
                            **bearer(token))
        create = requests.post(f"{deployed_mlflow}/api/2.0/mlflow/experiments/create",
                               json={"name": unique_name("e2e-outsider")}, **bearer(token))
        assert read.status_code in (401, 403), read.text[:300]
        assert create.status_code in (401, 403), create.text[:300]
    finally:
        keycloak.delete_client(keycloak.get_client_id(outsider))


def test_a_second_run_changes_nothing_and_a_changed_secret_is_set_back(pipeline, keycloak):
    again = run_playbook("playbooks/identity.yml", *accounts(pipeline["entry"]), timeout=600)
    assert again.returncode == 0, again.output[-4000:]
    assert again.recap()["changed"] == 0

    secret = pipeline["secret_file"].read_text().strip()
    keycloak.generate_client_secrets(keycloak.get_client_id(pipeline["name"]))
    assert client_secret(keycloak, pipeline["name"]) != secret
    repaired = run_playbook("playbooks/identity.yml", "--diff", *accounts(pipeline["entry"]), timeout=600)
    assert repaired.returncode == 0, repaired.output[-4000:]
    assert repaired.recap()["changed"] == 1, "only the service-account clients task"
    assert client_secret(keycloak, pipeline["name"]) == secret
    assert secret not in repaired.output


def test_check_mode_reports_a_new_service_account_and_creates_nothing(pipeline, keycloak):
    new = unique_name("e2e-planned")
    checked = run_playbook("playbooks/identity.yml", "--check", "--diff",
                           *accounts(pipeline["entry"], {"name": new, "group": "mlflow-admins"}), timeout=600)
    assert checked.returncode == 0, checked.output[-4000:]
    assert checked.recap()["changed"] == 1, "only the service-account clients task"
    assert find_client(keycloak, new) is None
    assert not (STATE_DIR / "secrets" / f"keycloak_client_{new}_secret").exists()
    assert pipeline["secret_file"].read_text().strip() not in checked.output
