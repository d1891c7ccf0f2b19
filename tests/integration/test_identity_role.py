"""The identity role against the real Keycloak of the local stack, in a realm it creates.

The tests run in file order on one realm: create, members, idempotence, check mode, drift, token, rotation, teardown.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from keycloak import KeycloakAdmin

from tests.ansible_runner import run_playbook
from tests.keycloak_api import (
    client_mappers,
    client_secret,
    create_user,
    default_scope_names,
    delete_if_present,
    find_client,
    find_scope_mapper,
    group_names,
    realm_admin,
    realm_exists,
    realm_openid,
    unique_name,
    update_scope_mapper,
    user_group_names,
)

pytestmark = pytest.mark.keycloak

PLAYBOOKS = Path(__file__).parent / "playbooks"
FACTS_PLAYBOOK = PLAYBOOKS / "identity_facts.yml"
IDENTITY_PLAYBOOK = "playbooks/identity.yml"
MLFLOW_URL = "http://127.0.0.1:5000"
ALICE_PASSWORD = "alice-Password-1"


@pytest.fixture(scope="module")
def master(keycloak_admin) -> KeycloakAdmin:
    """The admin API of the admin's own realm, which reads and deletes realms."""
    return realm_admin(keycloak_admin, keycloak_admin.realm)


@pytest.fixture(scope="module")
def realm(master):
    name = unique_name("identity")
    yield name
    delete_if_present(master.delete_realm, name)


@pytest.fixture(scope="module")
def keycloak(keycloak_admin, realm) -> KeycloakAdmin:
    """The admin API of the role's realm: the tests' independent view of what the role did."""
    return realm_admin(keycloak_admin, realm)


@pytest.fixture(scope="module")
def state() -> dict:
    """What one test learns for the next ones (the first secret)."""
    return {}


def run_role(realm, *args, playbook=IDENTITY_PLAYBOOK, facts_file=None):
    """Run the role on `realm`; with `facts_file`, through the playbook that writes the published facts there."""
    extra = {"identity_realm": realm, "identity_mlflow_url": MLFLOW_URL}
    if facts_file:
        extra["identity_facts_file"] = str(facts_file)
        playbook = FACTS_PLAYBOOK
    return run_playbook(playbook, "-e", json.dumps(extra), *args, timeout=600)


def members(**lists) -> tuple[str, str]:
    return "-e", json.dumps({f"identity_{group}_members": users for group, users in lists.items()})


def test_check_mode_on_nothing_reports_the_realm_and_creates_nothing(master, realm):
    result = run_role(realm, "--check", "--diff")
    assert result.returncode == 0, result.output[-4000:]
    assert result.recap()["changed"] == 1
    assert f"+    realm: {realm}" in result.output
    assert not realm_exists(master, realm)


def test_role_creates_everything_from_nothing(master, keycloak, realm, state, tmp_path):
    assert not realm_exists(master, realm)
    facts_file = tmp_path / "facts.json"
    result = run_role(realm, facts_file=facts_file)
    assert result.returncode == 0, result.output[-4000:]
    assert result.recap()["changed"] > 0

    client = find_client(keycloak, "mlflow")
    assert client["publicClient"] is False
    assert client["clientAuthenticatorType"] == "client-secret"
    assert client["standardFlowEnabled"] is True
    assert client["implicitFlowEnabled"] is False
    assert client["directAccessGrantsEnabled"] is False
    assert client["redirectUris"] == [f"{MLFLOW_URL}/callback"]
    assert client["webOrigins"] == [MLFLOW_URL]
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert {"groups", "profile", "email", "basic"} <= default_scope_names(keycloak, "mlflow")
    mapper = find_scope_mapper(keycloak, "groups", "groups")
    assert mapper["protocolMapper"] == "oidc-group-membership-mapper"
    assert mapper["config"]["claim.name"] == "groups" and mapper["config"]["full.path"] == "true"
    (audience,) = [found for found in client_mappers(keycloak, "mlflow")
                   if found["protocolMapper"] == "oidc-audience-mapper"]
    assert audience["config"]["included.client.audience"] == "mlflow"
    assert {"mlflow-admins", "mlflow-users"} <= group_names(keycloak)
    settings = keycloak.get_realm(realm)
    assert settings["bruteForceProtected"] is True and settings["editUsernameAllowed"] is False
    assert "length(12)" in settings["passwordPolicy"] and settings["registrationAllowed"] is False

    secret = client_secret(keycloak, "mlflow")
    issuer = f"http://127.0.0.1:8080/realms/{realm}"
    assert json.loads(facts_file.read_text()) == {
        "identity_client_id": "mlflow",
        "identity_client_secret": secret,
        "identity_discovery_url": f"{issuer}/.well-known/openid-configuration",
        "identity_issuer": issuer,
        "identity_admin_group": "mlflow-admins",
        "identity_user_group": "mlflow-users",
        "identity_admin_group_claim": "/mlflow-admins",
        "identity_user_group_claim": "/mlflow-users",
        "identity_audience": "mlflow",
        "identity_username_claim": "preferred_username",
    }
    state["secret"] = secret


def test_listed_users_join_their_groups(keycloak, realm):
    create_user(keycloak, "alice", ALICE_PASSWORD)
    create_user(keycloak, "bob", "bob-Password-1")
    result = run_role(realm, *members(user=["alice"], admin=["bob"]))
    assert result.returncode == 0, result.output[-4000:]
    assert result.recap()["changed"] == 1, "only the membership task changes"
    assert user_group_names(keycloak, "alice") == {"mlflow-users"}
    assert user_group_names(keycloak, "bob") == {"mlflow-admins"}


def test_second_run_changes_nothing_keeps_the_secret_and_never_logs_it(keycloak, realm, state):
    result = run_role(realm, "-v", *members(user=["alice"], admin=["bob"]))
    assert result.returncode == 0, result.output[-4000:]
    assert result.recap()["changed"] == 0
    assert client_secret(keycloak, "mlflow") == state["secret"]
    assert state["secret"] not in result.output


def test_check_mode_reports_the_change_shows_the_diff_and_changes_nothing(keycloak, realm, state):
    result = run_playbook(
        IDENTITY_PLAYBOOK,
        "-e", json.dumps({"identity_realm": realm, "identity_mlflow_url": "http://127.0.0.1:5999"}),
        *members(user=["alice"], admin=["bob"]),
        "--check", "--diff",
        timeout=600,
    )
    assert result.returncode == 0, result.output[-4000:]
    assert result.recap()["changed"] == 1
    assert "-    - http://127.0.0.1:5000/callback" in result.output
    assert "+    - http://127.0.0.1:5999/callback" in result.output
    assert find_client(keycloak, "mlflow")["redirectUris"] == [f"{MLFLOW_URL}/callback"]
    assert state["secret"] not in result.output


def test_drift_is_repaired(keycloak, realm):
    client = find_client(keycloak, "mlflow")
    client["redirectUris"] = ["http://127.0.0.1:5000/*"]
    client.pop("secret", None)
    keycloak.update_client(client["id"], client)
    mapper = find_scope_mapper(keycloak, "groups", "groups")
    mapper["config"]["claim.name"] = "drifted"
    update_scope_mapper(keycloak, "groups", mapper)

    result = run_role(realm, *members(user=["alice"], admin=["bob"]), "-e", "identity_direct_access_grants=true")
    assert result.returncode == 0, result.output[-4000:]
    assert result.recap()["changed"] == 2, "the mapper and the client are repaired"
    repaired = find_client(keycloak, "mlflow")
    assert repaired["redirectUris"] == [f"{MLFLOW_URL}/callback"]
    assert repaired["directAccessGrantsEnabled"] is True
    assert find_scope_mapper(keycloak, "groups", "groups")["config"]["claim.name"] == "groups"


def test_a_members_token_is_for_mlflow_and_carries_full_group_paths(keycloak_admin, keycloak, realm, state):
    # A same-named subgroup elsewhere in the realm: its members must not look like MLflow's administrators.
    team = keycloak.create_group({"name": "team"})
    subgroup = keycloak.create_group({"name": "mlflow-admins"}, parent=team)
    carol = create_user(keycloak, "carol", "carol-Password-1")
    keycloak.group_user_add(carol, subgroup)

    # Password grants (the client allows them since the drift test); the claims are read from tokens whose signature
    # is checked against the realm's keys.
    mlflow = realm_openid(keycloak_admin, realm, "mlflow", state["secret"])
    tokens = mlflow.token("alice", ALICE_PASSWORD, scope="openid")
    access = mlflow.decode_token(tokens["access_token"])
    identity = mlflow.decode_token(tokens["id_token"])
    assert access["groups"] == ["/mlflow-users"]
    assert identity["groups"] == ["/mlflow-users"]
    assert access["iss"] == f"http://127.0.0.1:8080/realms/{realm}"
    assert "mlflow" in ([access["aud"]] if isinstance(access["aud"], str) else access["aud"])
    carols = mlflow.decode_token(mlflow.token("carol", "carol-Password-1", scope="openid")["access_token"])
    assert carols["groups"] == ["/team/mlflow-admins"], "the subgroup is told apart from /mlflow-admins"


def test_a_user_taken_off_a_list_loses_the_membership(keycloak, realm):
    # The local inventory sets identity_exact_members: the lists are the groups' whole membership.
    result = run_role(realm, *members(user=["alice"]), "-e", "identity_direct_access_grants=true")
    assert result.returncode == 0, result.output[-4000:]
    assert result.recap()["changed"] == 1, "only the membership task changes"
    assert user_group_names(keycloak, "bob") == set()
    assert user_group_names(keycloak, "alice") == {"mlflow-users"}
    assert user_group_names(keycloak, "carol") == {"mlflow-admins"}, "the subgroup /team/mlflow-admins is not owned"


def test_rotation_gives_a_new_secret_and_publishes_it(keycloak, realm, state, tmp_path):
    facts_file = tmp_path / "facts.json"
    result = run_role(
        realm,
        "-e", "identity_rotate_client_secret=true",
        "-e", "identity_direct_access_grants=true",
        *members(user=["alice"]),
        facts_file=facts_file,
    )
    assert result.returncode == 0, result.output[-4000:]
    new_secret = client_secret(keycloak, "mlflow")
    assert new_secret != state["secret"]
    assert json.loads(facts_file.read_text())["identity_client_secret"] == new_secret
    assert new_secret not in result.output


def test_teardown_removes_the_client_and_keeps_realm_groups_and_users(master, keycloak, realm):
    result = run_role(realm, playbook=PLAYBOOKS / "identity_teardown.yml")
    assert result.returncode == 0, result.output[-4000:]
    assert result.recap()["changed"] == 1
    assert find_client(keycloak, "mlflow") is None
    assert realm_exists(master, realm)
    assert {"mlflow-admins", "mlflow-users"} <= group_names(keycloak)
    assert user_group_names(keycloak, "alice") == {"mlflow-users"}


def test_a_missing_realm_is_named_with_the_variable_that_creates_it(master):
    realm = unique_name("missing")
    try:
        result = run_role(realm, "-e", "identity_create_realm=false")
        created = realm_exists(master, realm)
    finally:
        delete_if_present(master.delete_realm, realm)
    assert not created
    assert result.returncode != 0
    assert f"Realm '{realm}' does not exist (or is disabled) on Keycloak at http://127.0.0.1:8080" in result.output
    assert "identity_create_realm: true" in result.output
    assert "Ensure the groups client scope" not in result.output, "the role stops at the missing realm"


def test_a_wrong_admin_password_is_named():
    result = run_role(unique_name("unused"), "-e", "identity_admin_password=wrong-password")
    assert result.returncode != 0
    assert "refused the credentials of user 'admin' in realm 'master'" in result.output
    assert "wrong-password" not in result.output
    assert "Traceback" not in result.output


def test_a_keycloak_that_is_down_is_named_quickly():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = run_role(unique_name("unused"), "-e", f"identity_keycloak_url=http://127.0.0.1:{port}")
    assert result.returncode != 0
    assert f"Cannot reach Keycloak at http://127.0.0.1:{port} (connection refused)" in result.output
    assert time.monotonic() - started < 60
