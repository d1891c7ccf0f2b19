"""What the e2e tests of the deployed embedded default share: throwaway Keycloak users and MLflow accounts."""

from __future__ import annotations

import secrets

import pytest
from keycloak import KeycloakAdmin

from tests.keycloak_api import create_user, delete_if_present, realm_admin, unique_name

REALM = "mlflow"


@pytest.fixture(scope="module")
def keycloak(keycloak_admin) -> KeycloakAdmin:
    """The admin API of MLflow's realm."""
    return realm_admin(keycloak_admin, REALM)


@pytest.fixture
def realm_user(keycloak):
    """Makes throwaway users of the MLflow realm, in a top-level group or none; deletes them afterwards."""
    made = []

    def make(group: str = "mlflow-users", prefix: str = "e2e") -> tuple[str, str]:
        username, password = unique_name(prefix), secrets.token_urlsafe(18)
        user_id = create_user(keycloak, username, password)
        made.append(user_id)
        if group:
            keycloak.group_user_add(user_id, keycloak.get_group_by_path(f"/{group}")["id"])
        return username, password

    yield make
    for user_id in made:
        delete_if_present(keycloak.delete_user, user_id)


@pytest.fixture(scope="module")
def mlflow_admin(deployed_mlflow, local_stack):
    """demo-admin's login and an access key of its own (deleted afterwards): the admin API's credential."""
    from tests.e2e.mlflow_web import WebLogin
    from tests.stack_layout import SECRETS_DIR

    password = (SECRETS_DIR / "keycloak_user_demo-admin_password").read_text().strip()
    login = WebLogin(deployed_mlflow, "demo-admin", password)
    key = login.create_named_key(unique_name("e2e-admin"))
    yield login, key["token"]
    login.delete_key(key["id"])


@pytest.fixture
def mlflow_users(deployed_mlflow, mlflow_admin):
    """A list to put the MLflow accounts a test makes in; they are deleted afterwards with the admin API."""
    import requests

    usernames: list[str] = []
    yield usernames
    _login, key = mlflow_admin
    for username in usernames:
        answer = requests.delete(f"{deployed_mlflow}/api/2.0/mlflow/users", json={"username": username},
                                 auth=("demo-admin", key), timeout=30)
        assert answer.status_code in (200, 404), f"deleting MLflow user {username}: HTTP {answer.status_code}"
