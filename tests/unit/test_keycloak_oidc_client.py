"""What keycloak_oidc_client asks of Keycloak for one client (pure logic)."""

from __future__ import annotations

import pytest

from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak import differs
from ansible_collections.mlops.mlflow.plugins.modules.keycloak_oidc_client import (
    CLIENT_MUTUALLY_EXCLUSIVE,
    CLIENT_OPTIONS,
    as_read,
    audience_mapper,
    desired_client,
    duplicates,
)

pytestmark = pytest.mark.unit


def options(**given):
    """One client's options as AnsibleModule fills them in: the defaults, then what is given."""
    return dict({name: spec.get("default") for name, spec in CLIENT_OPTIONS.items()}, **given)


def test_a_service_account_client_has_the_client_credentials_grant_only():
    desired = desired_client(options(client_id="pipeline", service_accounts=True, standard_flow=False,
                                     pkce_method="none"))
    assert desired["serviceAccountsEnabled"] is True
    assert desired["standardFlowEnabled"] is False and desired["implicitFlowEnabled"] is False
    assert desired["directAccessGrantsEnabled"] is False
    assert desired["publicClient"] is False and desired["clientAuthenticatorType"] == "client-secret"
    assert desired["attributes"] == {"pkce.code.challenge.method": ""}


def test_a_login_client_has_no_service_account_and_leaves_omitted_settings_alone():
    desired = desired_client(options(client_id="mlflow", redirect_uris=["https://m.example.com/callback"]))
    assert desired["serviceAccountsEnabled"] is False
    assert desired["redirectUris"] == ["https://m.example.com/callback"]
    assert "webOrigins" not in desired and "name" not in desired and "description" not in desired


def test_a_client_read_without_pkce_matches_pkce_none_and_one_with_pkce_does_not():
    none = desired_client(options(client_id="pipeline", pkce_method="none"))
    # Keycloak stores no empty attribute: the client it returns has no pkce.code.challenge.method at all.
    assert not differs(as_read({"clientId": "pipeline", "attributes": {"other": "1"}}), {"attributes": none["attributes"]})
    assert not differs(as_read({"clientId": "pipeline"}), {"attributes": none["attributes"]})
    with_pkce = as_read({"attributes": {"pkce.code.challenge.method": "S256"}})
    assert differs(with_pkce, {"attributes": none["attributes"]})
    assert as_read(None) is None


def test_the_secret_is_never_part_of_the_compared_representation():
    assert "secret" not in desired_client(options(client_id="pipeline", secret="s3cr3t"))


def test_the_audience_mapper_is_named_after_its_audience_and_goes_into_access_tokens_only():
    mapper = audience_mapper("mlflow")
    assert mapper["name"] == "mlflow-audience"
    assert mapper["protocolMapper"] == "oidc-audience-mapper"
    assert mapper["config"]["included.client.audience"] == "mlflow"
    assert mapper["config"]["access.token.claim"] == "true" and mapper["config"]["id.token.claim"] == "false"


def test_clients_listed_twice_are_named_once():
    assert duplicates(["a", "b", "a", "c", "b", "a"]) == ["a", "b"]
    assert duplicates(["a", "b"]) == []


def test_a_given_secret_and_a_rotation_exclude_each_other_and_the_secret_is_no_log():
    assert ("secret", "rotate_secret") in CLIENT_MUTUALLY_EXCLUSIVE
    assert CLIENT_OPTIONS["secret"]["no_log"] is True
