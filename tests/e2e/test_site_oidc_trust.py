"""How far the deployed MLflow trusts Keycloak: only tokens meant for it, accounts keyed by what users cannot change,
and only the two top-level groups (issue #14, items 1-3). Each test fails on a deployment without the fix."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.conftest import REALM
from tests.e2e.mlflow_web import WebLogin, code_flow_token
from tests.keycloak_api import client_secret, realm_openid, unique_name

pytestmark = [pytest.mark.e2e, pytest.mark.keycloak]

ISSUER = f"http://127.0.0.1:8080/realms/{REALM}"


def api(url: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{url}/api/2.0/mlflow/{path}", timeout=30, **kwargs)


def bearer(token: str) -> dict:
    return {"headers": {"Authorization": f"Bearer {token}"}}


def test_a_token_issued_to_another_client_of_the_realm_is_refused(deployed_mlflow, keycloak_admin, keycloak, realm_user,
                                                                  mlflow_users):
    username, password = realm_user()
    mlflow_users.append(username)
    # The user has an MLflow account, so only the token's audience can make MLflow refuse it.
    assert WebLogin(deployed_mlflow, username, password).landing_path == "/oidc/ui/user"
    other = unique_name("other-app")
    other_id = keycloak.create_client({
        "clientId": other, "publicClient": True, "standardFlowEnabled": False, "directAccessGrantsEnabled": True,
    })
    try:
        # The claims of both tokens are read once their signature is checked with the realm's keys.
        other_app = realm_openid(keycloak_admin, REALM, other)
        foreign = other_app.token(username, password, scope="openid")["access_token"]
        assert "mlflow" not in str(other_app.decode_token(foreign).get("aud"))
        assert api(deployed_mlflow, "GET", "experiments/search", params={"max_results": 1}, **bearer(foreign)).status_code == 401

        meant_for_mlflow = code_flow_token(ISSUER, "mlflow", client_secret(keycloak, "mlflow"),
                                           f"{deployed_mlflow}/callback", username, password)
        assert "mlflow" in str(other_app.decode_token(meant_for_mlflow)["aud"])
        assert api(deployed_mlflow, "GET", "experiments/search", params={"max_results": 1},
                   **bearer(meant_for_mlflow)).status_code == 200
    finally:
        keycloak.delete_client(other_id)


def test_taking_another_users_email_does_not_take_their_account(deployed_mlflow, keycloak, realm_user, mlflow_users):
    victim, victim_password = realm_user(prefix="victim")
    attacker, attacker_password = realm_user(prefix="attacker")
    mlflow_users.extend([victim, attacker])
    victim_login = WebLogin(deployed_mlflow, victim, victim_password)
    victim_key = victim_login.create_default_key()
    created = api(deployed_mlflow, "POST", "experiments/create", json={"name": unique_name("victims")},
                  auth=(victim, victim_key))
    assert created.status_code == 200, created.text[:300]
    experiment = {"experiment_id": created.json()["experiment_id"]}

    # The victim moves to another address; the attacker takes the old one (Keycloak's defaults let users edit
    # their own e-mail without verification; the admin API stands in for the attacker's account console here).
    victim_email = f"{victim}@example.com"
    for username, email in ((victim, f"{victim}@elsewhere.example"), (attacker, victim_email)):
        keycloak.update_user(keycloak.get_user_id(username), {"email": email})

    attacker_login = WebLogin(deployed_mlflow, attacker, attacker_password)
    assert attacker_login.status()["username"] == attacker, "the account is the user name, not the e-mail"
    attacker_key = attacker_login.create_default_key()
    assert api(deployed_mlflow, "GET", "experiments/get", params=experiment,
               auth=(attacker, attacker_key)).status_code == 403
    assert api(deployed_mlflow, "GET", "experiments/get", params=experiment, auth=(victim_email, attacker_key)).status_code == 401
    assert api(deployed_mlflow, "GET", "experiments/get", params=experiment, auth=(victim, victim_key)).status_code == 200
    api(deployed_mlflow, "DELETE", "experiments/delete", json=experiment, auth=(victim, victim_key))


def test_a_same_named_subgroup_grants_nothing(deployed_mlflow, keycloak, realm_user, mlflow_users):
    team = unique_name("team")
    parent = keycloak.create_group({"name": team})
    try:
        subgroup = keycloak.create_group({"name": "mlflow-admins"}, parent=parent)
        only_sub, only_sub_password = realm_user(group="")
        member, member_password = realm_user()
        mlflow_users.extend([only_sub, member])
        for username in (only_sub, member):
            keycloak.group_user_add(keycloak.get_user_id(username), subgroup)

        # In /team/mlflow-admins only: not let in at all.
        refused = WebLogin(deployed_mlflow, only_sub, only_sub_password)
        assert refused.landing_path == "/oidc/ui/auth" and not refused.status().get("authenticated")
        # In /mlflow-users and /team/mlflow-admins: a user, not an administrator.
        login = WebLogin(deployed_mlflow, member, member_password)
        assert login.landing_path == "/oidc/ui/user"
        current = login.session.get(f"{deployed_mlflow}/api/2.0/mlflow/users/current", timeout=30)
        assert current.status_code == 200 and current.json()["is_admin"] is False, current.text[:300]
    finally:
        keycloak.delete_group(parent)
