"""Comparison, representation and error-message helpers of module_utils/_keycloak.py (pure logic)."""

from __future__ import annotations

import ssl
from http.client import RemoteDisconnected
from urllib.error import URLError

import pytest

from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak import (
    RETRY_BUDGET,
    Answer,
    Unreachable,
    connection_error_message,
    differs,
    group_mapper_representation,
    managed_view,
    merge,
    retrying,
    token_error_message,
    transient,
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


# What urllib raises: a URLError around what failed before the request went out, the error itself after.
REFUSED = Unreachable(URLError(ConnectionRefusedError(111, "Connection refused")))
CONNECT_TIMEOUT = Unreachable(URLError(TimeoutError("timed out")))
READ_TIMEOUT = Unreachable(TimeoutError("timed out"))
CLOSED = Unreachable(RemoteDisconnected("Remote end closed connection without response"))
CLOSED_IN_HANDSHAKE = Unreachable(URLError(ssl.SSLEOFError(8, "EOF occurred in violation of protocol (_ssl.c:1000)")))
UNTRUSTED = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:1032)"
BAD_CERTIFICATE = Unreachable(URLError(ssl.SSLCertVerificationError(1, UNTRUSTED)))
BAD_PORT = Unreachable(ValueError("nonnumeric port: 'x'"))


def test_a_refused_connection_is_named():
    assert connection_error_message(URL, 10, REFUSED) == (
        "Cannot reach Keycloak at http://127.0.0.1:8080 (connection refused): "
        "is it running, and is auth_keycloak_url right?"
    )


@pytest.mark.parametrize("timeout", [CONNECT_TIMEOUT, READ_TIMEOUT])
def test_a_timeout_names_the_wait(timeout):
    assert "(no answer within 3 s)" in connection_error_message(URL, 3, timeout)


def test_a_closed_connection_keeps_its_reason():
    assert "(Remote end closed connection without response)" in connection_error_message(URL, 10, CLOSED)


def test_a_tls_failure_names_the_certificate_check():
    assert connection_error_message("https://keycloak.example.com", 10, BAD_CERTIFICATE) == (
        "Keycloak at https://keycloak.example.com failed the TLS handshake ([SSL: CERTIFICATE_VERIFY_FAILED] certificate "
        "verify failed: self-signed certificate (_ssl.c:1032)): check its certificate, or validate_certs"
    )


# --- retries of reads -----------------------------------------------------------------------------------------------

class FakeTransport:
    """Answers each attempt with the next scripted outcome; its clock moves only when the retry logic sleeps."""

    def __init__(self, *outcomes, attempt_seconds=0.0):
        self.outcomes = list(outcomes)
        self.attempt_seconds = attempt_seconds
        self.now = 0.0
        self.attempts = 0
        self.pauses = []

    def attempt(self):
        self.attempts += 1
        self.now += self.attempt_seconds
        return self.outcomes.pop(0)

    def sleep(self, seconds):
        self.pauses.append(seconds)
        self.now += seconds

    def run(self):
        return retrying(self.attempt, transient, clock=lambda: self.now, sleep=self.sleep)


def test_a_read_is_tried_again_until_keycloak_is_back():
    transport = FakeTransport(REFUSED, Answer(503, b""), Answer(502, b""), Answer(200, b""))
    assert transport.run().status == 200
    assert transport.attempts == 4
    assert transport.pauses == [0.5, 1, 2], "the pauses grow"


def test_a_success_is_not_repeated():
    transport = FakeTransport(Answer(200, b""))
    assert transport.run().status == 200
    assert transport.attempts == 1 and transport.pauses == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 500])
def test_a_client_error_or_a_server_bug_is_not_retried(status):
    transport = FakeTransport(Answer(status, b""), Answer(200, b""))
    assert transport.run().status == status
    assert transport.attempts == 1


@pytest.mark.parametrize("outcome", [BAD_CERTIFICATE, BAD_PORT])
def test_a_tls_error_or_an_unusable_url_is_not_retried(outcome):
    transport = FakeTransport(outcome, Answer(200, b""))
    assert transport.run() is outcome
    assert transport.attempts == 1


def test_lost_connections_and_busy_proxies_are_retried_refused_logins_are_not():
    assert all(transient(outcome) for outcome in (REFUSED, CONNECT_TIMEOUT, READ_TIMEOUT, CLOSED, CLOSED_IN_HANDSHAKE))
    assert transient(Answer(503, b"Service Unavailable"))
    assert not transient(Answer(401, b'{"error":"invalid_client"}'))
    assert not transient(Answer(200, b'{"access_token":"x"}'))


def test_a_lasting_outage_ends_with_its_last_outcome_within_the_budget():
    transport = FakeTransport(*[Answer(503, b"")] * 10)
    assert transport.run().status == 503
    assert transport.attempts == 5
    assert transport.now <= RETRY_BUDGET


def test_slow_attempts_stop_the_retries_at_the_budget():
    # Each attempt waits for its timeout: a second one would start after the budget.
    transport = FakeTransport(*[CONNECT_TIMEOUT] * 10, attempt_seconds=RETRY_BUDGET)
    assert transport.run() is CONNECT_TIMEOUT
    assert transport.attempts == 1
