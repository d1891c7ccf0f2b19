"""Values the local inventory derives from the public URL."""

from __future__ import annotations

import pytest

from tests.ansible_runner import run_module

pytestmark = pytest.mark.harness


@pytest.mark.parametrize(
    ("url", "address", "port"),
    [
        ("http://127.0.0.1:5000", "127.0.0.1", 5000),
        # No port: the scheme's, as browsers use it.
        ("http://127.0.0.1", "127.0.0.1", 80),
        ("https://localhost/", "localhost", 443),
    ],
)
def test_the_server_listens_where_the_public_url_points(url, address, port):
    result = run_module("ansible.builtin.debug", "msg={{ [server_bind_address, server_port | int] }}",
                        "-e", f"mlflow_public_url={url}")
    assert result.returncode == 0, result.output
    assert result.module_result["msg"] == [address, port]
