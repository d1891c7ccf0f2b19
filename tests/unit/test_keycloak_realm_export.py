"""Pure logic of the module keycloak_realm_export: secrets left out of the export, and its summary."""

from __future__ import annotations

import pytest

from ansible_collections.mlops.mlflow.plugins.modules.keycloak_realm_export import MASK, summary, without_secrets

pytestmark = pytest.mark.unit

EXPORT = {
    "realm": "mlflow",
    "accessTokenLifespan": 300,
    "smtpServer": {"host": "mail", "password": MASK},
    "clients": [
        {"clientId": "mlflow", "secret": MASK, "attributes": {"client.secret.creation.time": "1"},
         "protocolMappers": [{"name": "audience"}]},
        {"clientId": "other", "secret": "plain-text", "clientAuthenticatorType": "client-secret"},
    ],
    "clientScopes": [{"name": "groups", "protocolMappers": [{"name": "groups"}, {"name": "x"}]}, {"name": "basic"}],
    "components": {"org.keycloak.keys.KeyProvider": [{"config": {"privateKey": [MASK], "priority": ["100"]}}]},
    "identityProviders": [{"alias": "corp", "config": {"clientSecret": "s3cret", "clientId": "corp"}}],
    "groups": [{"name": "mlflow-users", "path": "/mlflow-users",
                "subGroups": [{"name": "team", "path": "/mlflow-users/team"}]}],
}


def test_every_secret_is_left_out_and_the_rest_kept():
    kept, removed = without_secrets(EXPORT)
    text = repr(kept)
    assert MASK not in text and "plain-text" not in text and "s3cret" not in text
    assert removed == 5
    assert kept["clients"][0] == {"clientId": "mlflow", "attributes": {"client.secret.creation.time": "1"},
                                  "protocolMappers": [{"name": "audience"}]}
    # Names that merely mention a secret or a token are no secret.
    assert kept["clients"][1]["clientAuthenticatorType"] == "client-secret"
    assert kept["accessTokenLifespan"] == 300
    assert kept["components"]["org.keycloak.keys.KeyProvider"][0]["config"] == {"priority": ["100"]}
    assert kept["identityProviders"][0]["config"] == {"clientId": "corp"}


def test_summary():
    assert summary(without_secrets(EXPORT)[0]) == {
        "clients": ["mlflow", "other"],
        "groups": ["/mlflow-users", "/mlflow-users/team"],
        "client_scopes": 2,
        "mappers": 3,
    }
