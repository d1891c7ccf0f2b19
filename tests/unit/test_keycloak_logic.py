"""Comparison, representation and error-message helpers of module_utils/_keycloak.py (pure logic)."""

from __future__ import annotations

import pytest
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ConnectTimeout

from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak import (
    connection_error_message,
    differs,
    group_mapper_representation,
    managed_view,
    merge,
    token_error_message,
    without_secrets,
)

pytestmark = pytest.mark.unit

URL = "http://127.0.0.1:8080"


def test_differs_ignores_keys_keycloak_adds():
    current = {"clientId": "mlflow", "id": "x", "attributes": {"pkce.code.challenge.method": "S256", "other": "1"}}
    assert not differs(current, {"clientId": "mlflow", "attributes": {"pkce.code.challenge.method": "S256"}})


def test_differs_sees_a_changed_nested_value():
    current = {"config": {"claim.name": "grps", "full.path": "false"}}
    assert differs(current, {"config": {"claim.name": "groups"}})


def test_differs_compares_lists_without_order():
    assert not differs({"redirectUris": ["b", "a"]}, {"redirectUris": ["a", "b"]})
    assert differs({"redirectUris": ["a", "http://x/*"]}, {"redirectUris": ["a"]})


def test_differs_sees_a_missing_key():
    assert differs({}, {"directAccessGrantsEnabled": False})


def test_merge_keeps_unmanaged_keys_and_nested_attributes():
    current = {"id": "1", "name": "old", "attributes": {"a": "1", "b": "2"}}
    merged = merge(current, {"name": "new", "attributes": {"b": "3"}})
    assert merged == {"id": "1", "name": "new", "attributes": {"a": "1", "b": "3"}}
    assert current["attributes"] == {"a": "1", "b": "2"}, "merge must not modify its input"


def test_managed_view_shows_only_managed_keys_and_never_the_secret():
    current = {"clientId": "c", "secret": "s3cr3t", "id": "1", "redirectUris": ["b", "a"], "attributes": {"x": "1"}}
    desired = {"clientId": "c", "secret": "ignored", "redirectUris": [], "attributes": {"x": "2"}}
    assert managed_view(current, desired) == {"clientId": "c", "redirectUris": ["a", "b"], "attributes": {"x": "1"}}
    assert managed_view(None, desired) == {}


def test_without_secrets_drops_the_secret():
    assert without_secrets({"clientId": "c", "secret": "s3cr3t"}) == {"clientId": "c"}
    assert without_secrets(None) is None


def test_group_mapper_representation_uses_keycloak_strings():
    mapper = group_mapper_representation("groups", "groups", False, True, True, False)
    assert mapper["protocolMapper"] == "oidc-group-membership-mapper"
    assert mapper["config"] == {
        "claim.name": "groups",
        "full.path": "false",
        "id.token.claim": "true",
        "access.token.claim": "true",
        "userinfo.token.claim": "false",
    }


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, '{"error":"invalid_grant","error_description":"Invalid user credentials"}'),
        (401, '{"error":"invalid_client","error_description":"Invalid client or Invalid client credentials"}'),
    ],
)
def test_refused_credentials_are_named(status, body):
    message = token_error_message(status, body, URL, "user 'admin'", "master")
    assert message.startswith("Keycloak at http://127.0.0.1:8080 refused the credentials of user 'admin' in realm")
    assert "check them" in message


def test_a_missing_admin_realm_is_named():
    message = token_error_message(404, '{"error":"Realm does not exist"}', URL, "user 'admin'", "nosuch")
    assert "has no realm 'nosuch' to log in to" in message


def test_another_login_failure_keeps_the_reason():
    message = token_error_message(503, "Service Unavailable", URL, "user 'admin'", "master")
    assert "(HTTP 503: Service Unavailable)" in message


def _wrapped(cause):
    # python-keycloak raises its own error "from" the requests exception.
    try:
        try:
            raise cause
        except Exception as exc:
            raise RuntimeError("Can't connect to server") from exc
    except RuntimeError as wrapper:
        return wrapper


def test_a_refused_connection_is_named():
    error = _wrapped(RequestsConnectionError("[Errno 111] Connection refused"))
    assert connection_error_message(URL, 10, error) == (
        "Cannot reach Keycloak at http://127.0.0.1:8080 (connection refused): "
        "is it running, and is auth_keycloak_url right?"
    )


def test_a_timeout_names_the_wait():
    error = _wrapped(ConnectTimeout("Connection to 127.0.0.1 timed out. (connect timeout=3)"))
    assert "(no answer within 3 s)" in connection_error_message(URL, 3, error)
