"""playbooks/offboard.yml on the deployed embedded default: after it, the user's access key gets 401 and their
login is refused; a second run changes nothing; a user still listed in the inventory is refused (issue #14, item 4)."""

from __future__ import annotations

import json

import pytest
import requests

from tests.ansible_runner import run_playbook
from tests.e2e.mlflow_web import WebLogin
from tests.keycloak_api import user_group_names

pytestmark = [pytest.mark.e2e, pytest.mark.keycloak]


def search_status(url: str, username: str, key: str) -> int:
    return requests.get(f"{url}/api/2.0/mlflow/experiments/search", params={"max_results": 1},
                        auth=(username, key), timeout=30).status_code


def offboard(user: str, admin_key_file) -> object:
    return run_playbook("playbooks/offboard.yml", "-e", f"offboard_user={user}",
                        "-e", "mlflow_admin_username=demo-admin", "-e", f"@{admin_key_file}")


def test_offboarding_revokes_the_access_key_and_the_login(deployed_mlflow, keycloak, realm_user, mlflow_users,
                                                          mlflow_admin, tmp_path):
    username, password = realm_user()
    mlflow_users.append(username)
    key = WebLogin(deployed_mlflow, username, password).create_default_key()
    assert search_status(deployed_mlflow, username, key) == 200

    _admin_login, admin_key = mlflow_admin
    admin_key_file = tmp_path / "admin-key.json"
    admin_key_file.write_text(json.dumps({"mlflow_admin_access_key": admin_key}))
    admin_key_file.chmod(0o600)

    result = offboard(username, admin_key_file)
    assert result.returncode == 0, result.output[-4000:]
    assert result.recap()["changed"] == 2, "out of mlflow-users, and the MLflow account deactivated"
    assert admin_key not in result.output and key not in result.output
    assert user_group_names(keycloak, username) == set()
    assert search_status(deployed_mlflow, username, key) == 401
    again = WebLogin(deployed_mlflow, username, password)
    assert again.landing_path == "/oidc/ui/auth" and not again.status().get("authenticated")

    second = offboard(username, admin_key_file)
    assert second.returncode == 0, second.output[-4000:]
    assert second.recap()["changed"] == 0


def test_a_user_still_listed_in_the_inventory_is_refused(deployed_mlflow, mlflow_admin, tmp_path):
    admin_key_file = tmp_path / "admin-key.json"
    admin_key_file.write_text(json.dumps({"mlflow_admin_access_key": mlflow_admin[1]}))
    result = offboard("demo-user", admin_key_file)
    assert result.returncode != 0
    assert "demo-user is still listed in identity_admin_members, identity_user_members or identity_users" in result.output
