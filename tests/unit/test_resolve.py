"""tests/e2e/resolve.py: --resolve HOST:ADDRESS sends this process's connections for HOST to ADDRESS."""

from __future__ import annotations

import argparse
import http.server
import socket
import threading

import pytest
import requests

from tests.e2e.resolve import host_and_address, resolve

pytestmark = pytest.mark.unit


class _EchoHost(http.server.BaseHTTPRequestHandler):
    """Answers with the Host header it received."""

    def do_GET(self):
        body = self.headers["Host"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        """Keep the test output quiet."""


@pytest.fixture
def echo_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoHost)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def restored_getaddrinfo(monkeypatch):
    """resolve() replaces socket.getaddrinfo for the whole process: put the original back after the test."""
    monkeypatch.setattr(socket, "getaddrinfo", socket.getaddrinfo)


def test_requests_reach_the_address_with_the_public_host_header(echo_port, restored_getaddrinfo):
    resolve(*host_and_address("Some-Name.test:127.0.0.1"))
    answer = requests.get(f"http://some-name.test:{echo_port}/", timeout=10)
    assert answer.status_code == 200
    assert answer.text == f"some-name.test:{echo_port}"


def test_other_names_resolve_as_before(echo_port, restored_getaddrinfo):
    resolve("some-name.test", "127.0.0.1")
    assert requests.get(f"http://localhost:{echo_port}/", timeout=10).text == f"localhost:{echo_port}"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://other-name.invalid:{echo_port}/", timeout=10)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("mlflow.kubernetes.test:10.88.0.7", ("mlflow.kubernetes.test", "10.88.0.7")),
        ("Name.Test:::1", ("name.test", "::1")),
    ],
)
def test_host_and_address(value, expected):
    assert host_and_address(value) == expected


@pytest.mark.parametrize("value", ["mlflow.kubernetes.test", "mlflow.kubernetes.test:pod", ":10.88.0.7"])
def test_host_and_address_refuses_anything_else(value):
    with pytest.raises(argparse.ArgumentTypeError, match="HOST:ADDRESS"):
        host_and_address(value)
