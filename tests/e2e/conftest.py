"""What the e2e tests of the deployed embedded default share: the deployment, and throwaway Keycloak users."""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request

import pytest

from tests.ansible_runner import run_playbook
from tests.integration.identity_rest import KeycloakRest, unique_name

MLFLOW_URL = "http://127.0.0.1:5000"
REALM = "mlflow"


def http_status(url: str, headers: dict | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


@pytest.fixture(scope="module")
def deployed_mlflow() -> str:
    """The deployed MLflow of the embedded default; site.yml converges it first when it does not answer."""
    if http_status(f"{MLFLOW_URL}/health/ready") != 200:
        result = run_playbook("playbooks/site.yml")
        assert result.returncode == 0, result.output[-6000:]
    assert http_status(f"{MLFLOW_URL}/health/ready") == 200
    return MLFLOW_URL


@pytest.fixture(scope="module")
def keycloak(keycloak_admin) -> KeycloakRest:
    return KeycloakRest(keycloak_admin)


@pytest.fixture
def realm_user(keycloak):
    """Makes throwaway users of the MLflow realm, in a top-level group or none; deletes them afterwards."""
    made = []

    def make(group: str = "mlflow-users", prefix: str = "e2e") -> tuple[str, str]:
        username, password = unique_name(prefix), secrets.token_urlsafe(18)
        user_id = keycloak.create_user(REALM, username, password)
        made.append(user_id)
        if group:
            groups = keycloak.call("GET", f"realms/{REALM}/groups", params={"search": group, "exact": "true"})
            (top_level,) = [found for found in groups if found["path"] == f"/{group}"]
            keycloak.call("PUT", f"realms/{REALM}/users/{user_id}/groups/{top_level['id']}")
        return username, password

    yield make
    for user_id in made:
        keycloak.call("DELETE", f"realms/{REALM}/users/{user_id}", ok=(204, 404))


@pytest.fixture(scope="module")
def mlflow_admin(deployed_mlflow, local_stack):
    """demo-admin's login and an access key of its own (deleted afterwards): the admin API's credential."""
    from tests.conftest import STATE_DIR
    from tests.e2e.mlflow_web import WebLogin

    password = (STATE_DIR / "secrets" / "keycloak_user_demo-admin_password").read_text().strip()
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
