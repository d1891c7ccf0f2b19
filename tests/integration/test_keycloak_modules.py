"""The keycloak_* modules against the real Keycloak of the local stack, in a realm of their own."""

from __future__ import annotations

import json
import socket
import time

import pytest
from keycloak import KeycloakAdmin

from tests.ansible_runner import run_module
from tests.keycloak_api import (
    client_mappers,
    client_secret,
    create_realm_admin_client,
    create_user,
    default_scope_names,
    delete_if_present,
    find_client,
    find_scope_mapper,
    group_names,
    realm_admin,
    realm_exists,
    unique_name,
    update_scope_mapper,
    user_group_names,
)

pytestmark = pytest.mark.keycloak


@pytest.fixture(scope="module")
def master(keycloak_admin) -> KeycloakAdmin:
    """The admin API of the admin's own realm, which reads, creates and deletes realms."""
    return realm_admin(keycloak_admin, keycloak_admin.realm)


@pytest.fixture(scope="module")
def connection(keycloak_admin) -> str:
    """Connection options, without a realm."""
    return (
        f"auth_keycloak_url={keycloak_admin.url} auth_realm={keycloak_admin.realm} "
        f"auth_username={keycloak_admin.user} auth_password={keycloak_admin.password}"
    )


@pytest.fixture(scope="module")
def realm(master, connection):
    """A realm created (in check mode first) and deleted by keycloak_realm itself."""
    name = unique_name("modules")
    checked = run_module("mlops.mlflow.keycloak_realm", f"{connection} realm={name}", "--check")
    assert checked.returncode == 0, checked.output
    assert checked.module_result["changed"] is True
    assert not realm_exists(master, name), "check mode must not create the realm"
    created = run_module("mlops.mlflow.keycloak_realm", f"{connection} realm={name}")
    assert created.returncode == 0, created.output
    assert created.module_result["changed"] is True and realm_exists(master, name)
    try:
        yield name
        removed = run_module("mlops.mlflow.keycloak_realm", f"{connection} realm={name} state=absent")
        assert removed.returncode == 0, removed.output
        assert removed.module_result["changed"] is True
        assert not realm_exists(master, name)
    finally:
        delete_if_present(master.delete_realm, name)


@pytest.fixture(scope="module")
def keycloak(keycloak_admin, realm) -> KeycloakAdmin:
    """The admin API of the test realm: the tests' independent view of what the modules did."""
    return realm_admin(keycloak_admin, realm)


def module(name, args, *options):
    result = run_module(f"mlops.mlflow.{name}", args, *options)
    assert result.returncode == 0, result.output
    return result.module_result


def verbose_result(result) -> dict:
    """The module result of a run with -v (which prints a config line before the JSON)."""
    assert result.returncode == 0, result.output
    document = json.loads(result.output[result.output.index("{"):])
    return document["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_realm_module_is_idempotent(connection, realm):
    assert module("keycloak_realm", f"{connection} realm={realm}")["changed"] is False


def test_realm_settings_converge(keycloak, keycloak_admin, realm):
    settings = {"bruteForceProtected": True, "failureFactor": 7, "passwordPolicy": "length(12) and notUsername"}
    args = json.dumps({
        "auth_keycloak_url": keycloak_admin.url, "auth_username": keycloak_admin.user,
        "auth_password": keycloak_admin.password, "realm": realm, "settings": settings,
    })
    checked = module("keycloak_realm", args, "--check", "--diff")
    assert checked["changed"] is True and checked["diff"]["after"]["failureFactor"] == 7
    assert keycloak.get_realm(realm)["bruteForceProtected"] is False, "check mode must not change the realm"
    assert module("keycloak_realm", args)["changed"] is True
    stored = keycloak.get_realm(realm)
    assert {key: stored[key] for key in settings} == settings
    assert module("keycloak_realm", args)["changed"] is False


def test_group_mapper_lifecycle_on_a_client_scope(keycloak, connection, realm):
    base = f"{connection} realm={realm}"
    scope = unique_name("scope")
    assert module("keycloak_client_scope", f"{base} name={scope}")["changed"] is True
    assert module("keycloak_client_scope", f"{base} name={scope}")["changed"] is False
    mapper = f"{base} client_scope={scope} name=groups claim_name=groups"

    checked = module("keycloak_group_mapper", mapper, "--check", "--diff")
    assert checked["changed"] is True
    assert checked["diff"]["before"] == {}
    assert checked["diff"]["after"]["config"]["claim.name"] == "groups"
    assert find_scope_mapper(keycloak, scope, "groups") is None, "check mode must not create the mapper"

    assert module("keycloak_group_mapper", mapper)["changed"] is True
    created = find_scope_mapper(keycloak, scope, "groups")
    assert created["protocolMapper"] == "oidc-group-membership-mapper"
    assert created["config"]["claim.name"] == "groups"
    assert created["config"]["full.path"] == "false"
    for token in ("id.token.claim", "access.token.claim", "userinfo.token.claim"):
        assert created["config"][token] == "true"
    assert module("keycloak_group_mapper", mapper)["changed"] is False

    diff = module("keycloak_group_mapper", f"{mapper} full_path=true", "--check", "--diff")["diff"]
    assert diff["before"]["config"]["full.path"] == "false"
    assert diff["after"]["config"]["full.path"] == "true"
    assert find_scope_mapper(keycloak, scope, "groups")["config"]["full.path"] == "false"

    created["config"]["claim.name"] = "drifted"
    update_scope_mapper(keycloak, scope, created)
    assert module("keycloak_group_mapper", mapper)["changed"] is True
    assert find_scope_mapper(keycloak, scope, "groups")["config"]["claim.name"] == "groups"

    assert module("keycloak_group_mapper", f"{mapper} state=absent", "--check")["changed"] is True
    assert find_scope_mapper(keycloak, scope, "groups") is not None
    assert module("keycloak_group_mapper", f"{mapper} state=absent")["changed"] is True
    assert find_scope_mapper(keycloak, scope, "groups") is None
    assert module("keycloak_group_mapper", f"{mapper} state=absent")["changed"] is False

    assert module("keycloak_client_scope", f"{base} name={scope} state=absent")["changed"] is True
    assert keycloak.get_client_scope_by_name(scope) is None


def test_group_mapper_on_a_client(keycloak, connection, realm):
    base = f"{connection} realm={realm}"
    client_id = unique_name("client")
    module("keycloak_oidc_client", f"{base} client_id={client_id}")
    mapper = f"{base} client_id={client_id} name=teams claim_name=teams id_token=false"
    assert module("keycloak_group_mapper", mapper)["changed"] is True
    mappers = client_mappers(keycloak, client_id)
    (created,) = [mapper for mapper in mappers if mapper["name"] == "teams"]
    assert created["config"]["claim.name"] == "teams" and created["config"]["id.token.claim"] == "false"
    assert module("keycloak_group_mapper", mapper)["changed"] is False
    assert module("keycloak_group_mapper", f"{mapper} state=absent")["changed"] is True


def test_audience_mapper_on_a_client(keycloak, connection, realm):
    base = f"{connection} realm={realm}"
    client_id = unique_name("client")
    module("keycloak_oidc_client", f"{base} client_id={client_id}")
    mapper = f"{base} client_id={client_id} name=audience audience={client_id}"
    assert module("keycloak_audience_mapper", mapper, "--check")["changed"] is True
    assert module("keycloak_audience_mapper", mapper)["changed"] is True
    mappers = client_mappers(keycloak, client_id)
    (created,) = [mapper for mapper in mappers if mapper["name"] == "audience"]
    assert created["protocolMapper"] == "oidc-audience-mapper"
    assert created["config"]["included.client.audience"] == client_id
    assert created["config"]["access.token.claim"] == "true" and created["config"]["id.token.claim"] == "false"
    assert module("keycloak_audience_mapper", mapper)["changed"] is False
    # Drift of a managed setting is repaired; a group mapper of the same name is not overwritten.
    assert module("keycloak_audience_mapper", f"{mapper} id_token=true")["changed"] is True
    clash = run_module("mlops.mlflow.keycloak_group_mapper", f"{base} client_id={client_id} name=audience")
    assert clash.returncode != 0 and "exists with type oidc-audience-mapper" in clash.module_result["msg"]
    assert module("keycloak_audience_mapper", f"{mapper} state=absent")["changed"] is True


def test_group_mapper_names_a_missing_scope_and_a_bad_target(connection, realm):
    base = f"{connection} realm={realm} name=groups"
    missing = run_module("mlops.mlflow.keycloak_group_mapper", f"{base} client_scope=nosuchscope")
    assert missing.returncode != 0
    assert missing.module_result["msg"] == f"Client scope 'nosuchscope' does not exist in realm '{realm}'"
    both = run_module("mlops.mlflow.keycloak_group_mapper", f"{base} client_scope=a client_id=b")
    assert both.returncode != 0
    assert both.module_result["msg"] == "parameters are mutually exclusive: client_scope|client_id"


def test_client_converges_and_its_secret_is_only_returned_on_request(keycloak, connection, realm):
    client_id = unique_name("client")
    args = (
        f"{connection} realm={realm} client_id={client_id} redirect_uris=http://127.0.0.1:5000/callback "
        "web_origins=http://127.0.0.1:5000 default_client_scopes=profile,email"
    )
    checked = module("keycloak_oidc_client", args, "--check")
    assert checked["changed"] is True and find_client(keycloak, client_id) is None

    created = run_module("mlops.mlflow.keycloak_oidc_client", args, "-v")
    created_result = verbose_result(created)
    secret = client_secret(keycloak, client_id)
    assert len(secret) >= 32
    assert secret not in created.output
    assert "client_secret" not in created_result
    client = find_client(keycloak, client_id)
    assert client["publicClient"] is False and client["standardFlowEnabled"] is True
    assert client["directAccessGrantsEnabled"] is False
    assert client["redirectUris"] == ["http://127.0.0.1:5000/callback"]
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert {"profile", "email", "basic"} <= default_scope_names(keycloak, client_id)

    again = module("keycloak_oidc_client", f"{args} return_secret=true")
    assert again["changed"] is False
    assert again["client_secret"] == secret
    assert client_secret(keycloak, client_id) == secret

    rotated = module("keycloak_oidc_client", f"{args} rotate_secret=true return_secret=true")
    assert rotated["changed"] is True and rotated["secret_rotated"] is True
    assert rotated["client_secret"] != secret
    assert rotated["client_secret"] == client_secret(keycloak, client_id)

    assert module("keycloak_oidc_client", f"{args} state=absent")["changed"] is True
    assert find_client(keycloak, client_id) is None
    assert module("keycloak_oidc_client", f"{args} state=absent")["changed"] is False


def test_realm_export_keeps_clients_groups_and_mappers_without_any_secret(keycloak, connection, realm, tmp_path):
    client_id = unique_name("client")
    module("keycloak_oidc_client", f"{connection} realm={realm} client_id={client_id} "
                                   "redirect_uris=http://127.0.0.1:5000/callback")
    module("keycloak_group", f"{connection} realm={realm} names={unique_name('group')}")
    secret = client_secret(keycloak, client_id)
    dest = tmp_path / "realm.json"

    checked = module("keycloak_realm_export", f"{connection} realm={realm} dest={dest}", "--check")
    assert checked["changed"] is True and not dest.exists()
    exported = run_module("mlops.mlflow.keycloak_realm_export", f"{connection} realm={realm} dest={dest}", "-v")
    result = verbose_result(exported)
    text = dest.read_text()
    assert secret not in text and secret not in exported.output and "**********" not in text
    assert oct(dest.stat().st_mode & 0o777) == "0o600"
    export = json.loads(text)
    client = next(client for client in export["clients"] if client["clientId"] == client_id)
    assert "secret" not in client and client["redirectUris"] == ["http://127.0.0.1:5000/callback"]
    assert client_id in result["clients"] and result["removed_secrets"] >= 1
    top_level = {"/" + name for name in group_names(keycloak)}
    assert {group["path"] for group in export["groups"]} == top_level and top_level <= set(result["groups"])
    assert result["mappers"] > 0 and result["keycloak_version"].startswith("26.")

    assert module("keycloak_realm_export", f"{connection} realm={realm} dest={dest}")["changed"] is False


def test_client_names_a_missing_default_scope(keycloak, connection, realm):
    client_id = unique_name("client")
    result = run_module(
        "mlops.mlflow.keycloak_oidc_client",
        f"{connection} realm={realm} client_id={client_id} default_client_scopes=profile,nosuchscope",
    )
    assert result.returncode != 0
    assert result.module_result["msg"] == f"Client scope(s) nosuchscope do not exist in realm '{realm}'"
    assert find_client(keycloak, client_id) is None, "nothing is created when the input is wrong"


def test_clients_listed_twice_or_with_one_clients_options_are_refused_before_any_change(keycloak, connection, realm):
    client_id = unique_name("client")
    # Module arguments as JSON: a list of dicts has no key=value form.
    base = dict(option.split("=", 1) for option in connection.split()) | {"realm": realm}
    twice = run_module("mlops.mlflow.keycloak_oidc_client",
                       json.dumps(base | {"clients": [{"client_id": client_id}, {"client_id": client_id}]}))
    assert twice.returncode != 0
    assert twice.module_result["msg"] == f"Client(s) {client_id} are listed more than once in clients"
    mixed = run_module("mlops.mlflow.keycloak_oidc_client",
                       json.dumps(base | {"client_id": client_id, "clients": [{"client_id": client_id}]}))
    assert mixed.returncode != 0
    assert mixed.module_result["msg"] == "parameters are mutually exclusive: clients|client_id"
    assert find_client(keycloak, client_id) is None


def test_group_and_members(keycloak, connection, realm):
    base = f"{connection} realm={realm}"
    group = unique_name("group")
    user = unique_name("user")
    create_user(keycloak, user, "unused-password-1")

    assert module("keycloak_group", f"{base} name={group}", "--check")["changed"] is True
    assert group not in group_names(keycloak)
    assert module("keycloak_group", f"{base} name={group}")["changed"] is True
    assert module("keycloak_group", f"{base} name={group}")["changed"] is False

    members = f"{base} group={group} members={user}"
    checked = module("keycloak_group_members", members, "--check", "--diff")
    assert checked["changed"] is True and checked["groups"] == [{"name": group, "added": [user], "removed": []}]
    assert checked["diff"] == {"before": {group: []}, "after": {group: [user]}}
    assert user_group_names(keycloak, user) == set()
    assert module("keycloak_group_members", members)["changed"] is True
    assert user_group_names(keycloak, user) == {group}
    assert module("keycloak_group_members", members)["changed"] is False
    assert module("keycloak_group_members", f"{members} state=absent")["groups"][0]["removed"] == [user]
    assert user_group_names(keycloak, user) == set()

    # exact: the listed users become the only members; a user taken off the list loses the membership.
    other = unique_name("user")
    create_user(keycloak, other, "unused-password-2")
    module("keycloak_group_members", f"{base} group={group} members={user},{other}")
    exact = f"{base} group={group} members={other} state=exact"
    checked = module("keycloak_group_members", exact, "--check", "--diff")
    assert checked["changed"] is True and checked["groups"] == [{"name": group, "added": [], "removed": [user]}]
    assert checked["diff"] == {"before": {group: sorted([user, other])}, "after": {group: [other]}}
    assert user_group_names(keycloak, user) == {group}
    assert module("keycloak_group_members", exact)["groups"][0]["removed"] == [user]
    assert user_group_names(keycloak, user) == set() and user_group_names(keycloak, other) == {group}
    assert module("keycloak_group_members", exact)["changed"] is False

    unknown = run_module("mlops.mlflow.keycloak_group_members", f"{base} group={group} members=nosuchuser")
    assert unknown.returncode != 0
    assert unknown.module_result["msg"] == f"User(s) nosuchuser do not exist in realm '{realm}'"

    assert module("keycloak_group", f"{base} name={group} state=absent")["changed"] is True
    assert group not in group_names(keycloak)


def test_users_groups_and_memberships_as_lists(keycloak, keycloak_admin, realm):
    """The list forms the identity role uses: one module run (one admin login) for several users or groups."""
    login = {
        "auth_keycloak_url": keycloak_admin.url, "auth_username": keycloak_admin.user,
        "auth_password": keycloak_admin.password, "realm": realm,
    }
    names = [unique_name("user"), unique_name("user")]
    users = [
        {"username": name, "email": f"{name}@example.com", "first_name": "List", "last_name": "Test",
         "password": f"{name}-Passw0rd"}
        for name in names
    ]
    args = json.dumps(dict(login, users=users))

    checked = run_module("mlops.mlflow.keycloak_user", args, "--check", "--diff", "-v")
    result = verbose_result(checked)
    assert result["changed"] is True and result["changed_users"] == names
    assert sorted(result["diff"]["after"]) == sorted(names) and result["diff"]["before"] == {}
    assert "Passw0rd" not in checked.output, "no password in the output, diff included"
    assert all(not keycloak.get_users({"username": name, "exact": True})
               for name in names), "check mode must not create the users"

    created = module("keycloak_user", args)
    assert created["changed"] is True and [user["username"] for user in created["users"]] == names
    assert all(user["id"] for user in created["users"])
    assert module("keycloak_user", args)["changed"] is False

    # A drifted profile: only that user changes, and the diff shows only that user.
    users[1]["email"] = f"{names[1]}@example.org"
    changed = module("keycloak_user", json.dumps(dict(login, users=users)), "--diff")
    assert changed["changed_users"] == [names[1]]
    assert changed["diff"] == {
        "before": {names[1]: {"username": names[1], "email": f"{names[1]}@example.com", "firstName": "List",
                              "lastName": "Test", "emailVerified": True, "enabled": True}},
        "after": {names[1]: {"username": names[1], "email": f"{names[1]}@example.org", "firstName": "List",
                             "lastName": "Test", "emailVerified": True, "enabled": True}},
    }

    twice = run_module("mlops.mlflow.keycloak_user", json.dumps(dict(login, users=users + users[:1])))
    assert twice.returncode != 0
    assert twice.module_result["msg"] == f"User(s) {names[0]} are listed more than once in users"

    groups = [unique_name("group"), unique_name("group")]
    group_args = json.dumps(dict(login, names=groups))
    assert module("keycloak_group", group_args, "--check")["changed"] is True
    assert not set(groups) & group_names(keycloak)
    created_groups = module("keycloak_group", group_args)
    assert created_groups["changed"] is True and [group["name"] for group in created_groups["groups"]] == groups
    assert module("keycloak_group", group_args)["changed"] is False

    # Both groups in one run; a user missing from the second group fails it before the first group changes.
    members = [{"name": groups[0], "members": [names[0]]}, {"name": groups[1], "members": names}]
    missing = run_module("mlops.mlflow.keycloak_group_members",
                         json.dumps(dict(login, groups=members[:1] + [{"name": groups[1], "members": ["nosuchuser"]}])))
    assert missing.returncode != 0
    assert missing.module_result["msg"] == f"User(s) nosuchuser do not exist in realm '{realm}'"
    assert user_group_names(keycloak, names[0]) == set()

    member_args = json.dumps(dict(login, groups=members, state="exact"))
    checked = module("keycloak_group_members", member_args, "--check", "--diff")
    assert checked["groups"] == [
        {"name": groups[0], "added": [names[0]], "removed": []},
        {"name": groups[1], "added": sorted(names), "removed": []},
    ]
    assert checked["diff"] == {"before": {groups[0]: [], groups[1]: []},
                               "after": {groups[0]: [names[0]], groups[1]: sorted(names)}}
    assert user_group_names(keycloak, names[0]) == set(), "check mode must not add members"
    assert module("keycloak_group_members", member_args)["changed"] is True
    assert user_group_names(keycloak, names[0]) == set(groups) and user_group_names(keycloak, names[1]) == {groups[1]}
    assert module("keycloak_group_members", member_args)["changed"] is False

    # exact across both groups: taking a user off one list removes that membership only.
    members[1]["members"] = [names[1]]
    fewer = module("keycloak_group_members", json.dumps(dict(login, groups=members, state="exact")), "--diff")
    assert fewer["groups"][1] == {"name": groups[1], "added": [], "removed": [names[0]]}
    assert user_group_names(keycloak, names[0]) == {groups[0]}

    removed = module("keycloak_user", json.dumps(dict(login, users=users, state="absent")), "--diff")
    assert removed["changed_users"] == names and removed["users"] == []
    assert sorted(removed["diff"]["before"]) == sorted(names) and removed["diff"]["after"] == {}
    assert module("keycloak_user", json.dumps(dict(login, users=users, state="absent")))["changed"] is False
    assert module("keycloak_group", json.dumps(dict(login, names=groups, state="absent")))["changed"] is True
    assert not set(groups) & group_names(keycloak)


def test_client_credentials_log_in_and_a_wrong_secret_is_named(keycloak, keycloak_admin, realm):
    client_id = unique_name("automation")
    secret = create_realm_admin_client(keycloak, client_id)
    group = unique_name("group")
    url = keycloak_admin.url
    login = f"auth_keycloak_url={url} auth_realm={realm} auth_client_id={client_id} realm={realm} name={group}"
    assert module("keycloak_group", f"{login} auth_client_secret={secret}")["changed"] is True
    assert group in group_names(keycloak)

    refused = run_module("mlops.mlflow.keycloak_group", f"{login} auth_client_secret=wrong-secret")
    assert refused.returncode != 0
    assert refused.module_result["msg"].startswith(
        f"Keycloak at {url} refused the credentials of client '{client_id}' in realm '{realm}' (HTTP 401"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_wrong_admin_password_is_named(keycloak_admin, realm):
    result = run_module(
        "mlops.mlflow.keycloak_group",
        f"auth_keycloak_url={keycloak_admin.url} auth_username={keycloak_admin.user} auth_password=wrong-password "
        f"realm={realm} name=anything",
    )
    assert result.returncode != 0
    message = result.module_result["msg"]
    assert message.startswith(
        f"Keycloak at {keycloak_admin.url} refused the credentials of user '{keycloak_admin.user}' in realm 'master'"
    )
    assert "Invalid user credentials" in message
    assert "Traceback" not in result.output


def test_a_keycloak_that_is_down_is_named_quickly(keycloak_admin):
    url = f"http://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    result = run_module(
        "mlops.mlflow.keycloak_group",
        f"auth_keycloak_url={url} auth_username=admin auth_password=x realm=mlflow name=anything",
    )
    assert result.returncode != 0
    assert result.module_result["msg"] == (
        f"Cannot reach Keycloak at {url} (connection refused): is it running, and is auth_keycloak_url right?"
    )
    assert "Traceback" not in result.output
    assert time.monotonic() - started < 30


def test_a_missing_realm_is_named(connection, keycloak_admin):
    realm = unique_name("missing")
    result = run_module("mlops.mlflow.keycloak_client_scope", f"{connection} realm={realm} name=groups")
    assert result.returncode != 0
    assert result.module_result["msg"] == f"Realm '{realm}' does not exist on Keycloak at {keycloak_admin.url}"
