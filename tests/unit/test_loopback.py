"""The loopback Jinja test (plugins/test/loopback.py), pure logic."""

from __future__ import annotations

import pytest

from ansible_collections.mlops.mlflow.plugins.test.loopback import loopback

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "value",
    [
        "127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "[::1]", "localhost", "LocalHost",
        "http://127.0.0.1:5000", "https://localhost", "http://[::1]:5000/mlflow", "http://127.0.0.1:notaport/",
    ],
)
def test_loopback_hosts_and_urls(value):
    assert loopback(value)


@pytest.mark.parametrize(
    "value",
    [
        "0.0.0.0", "::", "10.0.0.5", "128.0.0.1", "mlflow.example.com", "localhost.example.com", "127.0.0.1.nip.io",
        "", "*", "http://mlflow.example.com", "https://*.example.com", "http://0.0.0.0:5000", "http://",
    ],
)
def test_other_hosts_and_urls(value):
    assert not loopback(value)
