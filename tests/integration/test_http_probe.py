"""http_probe against the local stack's Keycloak: a URL without a port, and one whose port is not a port."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.ansible_runner import run_module
from tests.integration.port_forward import ADDRESS, PortForward

pytestmark = pytest.mark.keycloak


def test_a_url_without_a_port_uses_the_schemes(keycloak_admin):
    keycloak = urlsplit(keycloak_admin.url)
    with PortForward(80, (keycloak.hostname, keycloak.port)):
        result = run_module("mlops.mlflow.http_probe", f"url=http://{ADDRESS}/realms/master")
    assert result.returncode == 0, result.output
    assert result.module_result["status"] == 200


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:abc/", "Port could not be cast to integer value as 'abc'"),
        ("http://127.0.0.1:99999/", "Port out of range 0-65535"),
        ("http://[::1/", "Invalid IPv6 URL"),
    ],
)
def test_a_url_that_cannot_be_parsed_is_refused_in_one_line(url, reason):
    result = run_module("mlops.mlflow.http_probe", f"url={url}")
    assert result.returncode != 0
    assert result.module_result["msg"] == f"url '{url}' cannot be parsed: {reason}"
    assert "Traceback" not in result.output
