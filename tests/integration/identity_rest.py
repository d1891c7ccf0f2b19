"""Keycloak's admin REST API, called directly: the tests' independent view of what the modules did."""

from __future__ import annotations

import base64
import json
import uuid

import requests

TIMEOUT = 30


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class KeycloakRest:
    def __init__(self, login):
        self.url = login.url.rstrip("/")
        self.login = login

    def _headers(self) -> dict:
        # A fresh admin token per call: master's admin tokens live only 60 s.
        answer = requests.post(
            f"{self.url}/realms/{self.login.realm}/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": self.login.user,
                "password": self.login.password,
            },
            timeout=TIMEOUT,
        )
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def call(self, method: str, path: str, body=None, params=None, ok=(200, 201, 204)):
        answer = requests.request(
            method, f"{self.url}/admin/{path}", json=body, params=params, headers=self._headers(), timeout=TIMEOUT
        )
        if answer.status_code not in ok:
            raise AssertionError(f"{method} {path}: HTTP {answer.status_code} {answer.text[:300]}")
        return answer.json() if answer.content else None

    def realm_exists(self, realm: str) -> bool:
        answer = requests.get(f"{self.url}/admin/realms/{realm}", headers=self._headers(), timeout=TIMEOUT)
        return answer.status_code == 200

    def create_realm(self, realm: str) -> None:
        self.call("POST", "realms", {"realm": realm, "enabled": True})

    def delete_realm(self, realm: str) -> None:
        self.call("DELETE", f"realms/{realm}", ok=(204, 404))

    def client(self, realm: str, client_id: str) -> dict | None:
        clients = self.call("GET", f"realms/{realm}/clients", params={"clientId": client_id})
        return clients[0] if clients else None

    def client_secret(self, realm: str, client_id: str) -> str:
        client = self.client(realm, client_id)
        return self.call("GET", f"realms/{realm}/clients/{client['id']}/client-secret")["value"]

    def default_scope_names(self, realm: str, client_id: str) -> set[str]:
        client = self.client(realm, client_id)
        scopes = self.call("GET", f"realms/{realm}/clients/{client['id']}/default-client-scopes")
        return {scope["name"] for scope in scopes}

    def create_realm_admin_client(self, realm: str, client_id: str) -> str:
        """A confidential client whose service account administers `realm`; returns its secret."""
        self.call(
            "POST",
            f"realms/{realm}/clients",
            {"clientId": client_id, "publicClient": False, "serviceAccountsEnabled": True, "standardFlowEnabled": False},
        )
        client = self.client(realm, client_id)
        account = self.call("GET", f"realms/{realm}/clients/{client['id']}/service-account-user")
        management = self.client(realm, "realm-management")
        role = self.call("GET", f"realms/{realm}/clients/{management['id']}/roles/realm-admin")
        self.call("POST", f"realms/{realm}/users/{account['id']}/role-mappings/clients/{management['id']}", [role])
        return self.client_secret(realm, client_id)

    def client_scope(self, realm: str, name: str) -> dict | None:
        scopes = self.call("GET", f"realms/{realm}/client-scopes")
        return next((scope for scope in scopes if scope["name"] == name), None)

    def scope_mapper(self, realm: str, scope: str, name: str) -> dict | None:
        scope_id = self.client_scope(realm, scope)["id"]
        mappers = self.call("GET", f"realms/{realm}/client-scopes/{scope_id}/protocol-mappers/models")
        return next((mapper for mapper in mappers if mapper["name"] == name), None)

    def update_scope_mapper(self, realm: str, scope: str, mapper: dict) -> None:
        scope_id = self.client_scope(realm, scope)["id"]
        self.call("PUT", f"realms/{realm}/client-scopes/{scope_id}/protocol-mappers/models/{mapper['id']}", mapper)

    def group_names(self, realm: str) -> set[str]:
        return {group["name"] for group in self.call("GET", f"realms/{realm}/groups")}

    def create_user(self, realm: str, username: str, password: str) -> str:
        # A complete profile and no required actions, so the password grant works at once.
        self.call(
            "POST",
            f"realms/{realm}/users",
            {
                "username": username,
                "enabled": True,
                "email": f"{username}@example.com",
                "emailVerified": True,
                "firstName": username.capitalize(),
                "lastName": "Test",
                "credentials": [{"type": "password", "value": password, "temporary": False}],
            },
        )
        return self.call("GET", f"realms/{realm}/users", params={"username": username, "exact": "true"})[0]["id"]

    def user_group_names(self, realm: str, username: str) -> set[str]:
        user = self.call("GET", f"realms/{realm}/users", params={"username": username, "exact": "true"})[0]
        return {group["name"] for group in self.call("GET", f"realms/{realm}/users/{user['id']}/groups")}

    def password_grant(self, realm: str, client_id: str, secret: str, username: str, password: str) -> dict:
        answer = requests.post(
            f"{self.url}/realms/{realm}/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": client_id,
                "client_secret": secret,
                "username": username,
                "password": password,
                "scope": "openid",
            },
            timeout=TIMEOUT,
        )
        if answer.status_code != 200:
            raise AssertionError(f"password grant for {username}: HTTP {answer.status_code} {answer.text[:300]}")
        return answer.json()
