"""Keycloak's admin API through python-keycloak (pinned in requirements.txt): the tests' independent view of what the
modules and roles did. Only what python-keycloak has no single call for is written here."""

from __future__ import annotations

import uuid

from keycloak import KeycloakAdmin, KeycloakOpenID
from keycloak.exceptions import KeycloakDeleteError, KeycloakGetError

HTTP_NOT_FOUND = 404
TIMEOUT = 30


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def realm_admin(login, realm: str) -> KeycloakAdmin:
    """The admin API of `realm`, as the stack's admin (a tests.conftest.ServiceLogin) logged in to its own realm.

    python-keycloak renews the admin token before it expires (master's admin tokens live only 60 s)."""
    return KeycloakAdmin(
        server_url=login.url, username=login.user, password=login.password, realm_name=realm,
        user_realm_name=login.realm, timeout=TIMEOUT,
    )


def realm_openid(login, realm: str, client_id: str, client_secret: str | None = None) -> KeycloakOpenID:
    """The OpenID endpoints of `realm` as `client_id` sees them: tokens, and their claims checked against the realm's
    signing keys."""
    return KeycloakOpenID(
        server_url=login.url, realm_name=realm, client_id=client_id, client_secret_key=client_secret, timeout=TIMEOUT
    )


def delete_if_present(delete, *args) -> None:
    """A cleanup through a KeycloakAdmin.delete_* method: an object that is gone already is fine."""
    try:
        delete(*args)
    except KeycloakDeleteError as error:
        if error.response_code != HTTP_NOT_FOUND:
            raise


def realm_exists(admin: KeycloakAdmin, realm: str) -> bool:
    try:
        admin.get_realm(realm)
    except KeycloakGetError as error:
        if error.response_code == HTTP_NOT_FOUND:
            return False
        raise
    return True


def find_client(admin: KeycloakAdmin, client_id: str) -> dict | None:
    """The representation of the client named `client_id` (its clientId), or None."""
    internal_id = admin.get_client_id(client_id)
    return admin.get_client(internal_id) if internal_id else None


def client_secret(admin: KeycloakAdmin, client_id: str) -> str:
    return admin.get_client_secrets(admin.get_client_id(client_id))["value"]


def default_scope_names(admin: KeycloakAdmin, client_id: str) -> set[str]:
    return {scope["name"] for scope in admin.get_client_default_client_scopes(admin.get_client_id(client_id))}


def client_mappers(admin: KeycloakAdmin, client_id: str) -> list[dict]:
    return admin.get_mappers_from_client(admin.get_client_id(client_id))


def find_scope_mapper(admin: KeycloakAdmin, scope: str, name: str) -> dict | None:
    """The protocol mapper `name` of the client scope `scope`, or None."""
    mappers = admin.get_mappers_from_client_scope(admin.get_client_scope_by_name(scope)["id"])
    return next((mapper for mapper in mappers if mapper["name"] == name), None)


def update_scope_mapper(admin: KeycloakAdmin, scope: str, mapper: dict) -> None:
    admin.update_mapper_in_client_scope(admin.get_client_scope_by_name(scope)["id"], mapper["id"], mapper)


def group_names(admin: KeycloakAdmin) -> set[str]:
    """The names of the realm's top-level groups."""
    return {group["name"] for group in admin.get_groups()}


def create_user(admin: KeycloakAdmin, username: str, password: str) -> str:
    """A user with a complete profile and no required actions, so the password grant works at once; returns its id."""
    return admin.create_user({
        "username": username,
        "enabled": True,
        "email": f"{username}@example.com",
        "emailVerified": True,
        "firstName": username.capitalize(),
        "lastName": "Test",
        "credentials": [{"type": "password", "value": password, "temporary": False}],
    })


def user_group_names(admin: KeycloakAdmin, username: str) -> set[str]:
    user_id = admin.get_user_id(username)
    assert user_id, f"no user {username} in realm {admin.connection.realm_name}"
    return {group["name"] for group in admin.get_user_groups(user_id)}


def create_realm_admin_client(admin: KeycloakAdmin, client_id: str) -> str:
    """A confidential client whose service account administers the admin's realm; returns its secret."""
    internal_id = admin.create_client(
        {"clientId": client_id, "publicClient": False, "serviceAccountsEnabled": True, "standardFlowEnabled": False}
    )
    account = admin.get_client_service_account_user(internal_id)
    management = admin.get_client_id("realm-management")
    admin.assign_client_role(account["id"], management, [admin.get_client_role(management, "realm-admin")])
    return admin.get_client_secrets(internal_id)["value"]
