"""The local inventory: the values it derives from the public URL, the groups the playbooks name (the k3s example
inventory alike), and the demo users the local run names at its end."""

from __future__ import annotations

import json

import pytest

from tests.ansible_runner import REPO_ROOT, run_module, run_playbook

pytestmark = pytest.mark.harness


@pytest.mark.parametrize(
    ("url", "address", "port"),
    [
        ("http://127.0.0.1:5000", "127.0.0.1", 5000),
        # No port: the scheme's, as browsers use it.
        ("http://127.0.0.1", "127.0.0.1", 80),
        ("https://localhost/", "localhost", 443),
    ],
)
def test_the_server_listens_where_the_public_url_points(url, address, port):
    result = run_module("ansible.builtin.debug", "msg={{ [server_bind_address, server_port | int] }}",
                        "-e", f"mlflow_public_url={url}")
    assert result.returncode == 0, result.output
    assert result.module_result["msg"] == [address, port]


@pytest.mark.parametrize("inventory", ["inventories/local", "inventories/k3s-example"])
def test_every_play_finds_its_group_without_a_warning(inventory):
    # --list-hosts only matches the plays' host patterns: nothing runs.
    result = run_playbook("playbooks/site.yml", "playbooks/teardown.yml", "--list-hosts",
                          inventory=REPO_ROOT / inventory, timeout=60)
    assert result.returncode == 0, result.output
    assert "Could not match supplied host pattern" not in result.output, result.output


def test_the_local_run_ends_naming_the_demo_users_groups_and_the_name_scripts_use():
    # Only the last task of server.yml runs, given the facts the mlflow and identity roles publish before it.
    facts = {
        "mlflow_server_config": {
            "public_url": "http://127.0.0.1:5000",
            "settings": [
                {"name": "OIDC_PROVIDER_DISPLAY_NAME", "value": "Keycloak", "secret": False},
                {"name": "OIDC_GROUP_NAME", "value": "/mlflow-admins,/mlflow-users", "secret": False},
                {"name": "OIDC_ADMIN_GROUP_NAME", "value": "/mlflow-admins", "secret": False},
            ],
        },
        "identity_admin_group": "mlflow-admins",
        "identity_user_group": "mlflow-users",
    }
    result = run_playbook("playbooks/server.yml", "--start-at-task", "Say where MLflow is and how to log in",
                          "-e", json.dumps(facts), timeout=60)
    assert result.returncode == 0, result.output
    assert result.recap()["ok"] == 1, result.output
    # The callback wraps long lines.
    text = " ".join(result.output.split())
    assert ("Demo users: demo-admin in group mlflow-admins, demo-user in group mlflow-users, demo-outsider in no "
            "MLflow group;") in text, text
    # MLflow's accounts are keyed by the Keycloak user name (identity_username_claim), not the e-mail address.
    assert "MLFLOW_TRACKING_USERNAME=<username>" in text, text
