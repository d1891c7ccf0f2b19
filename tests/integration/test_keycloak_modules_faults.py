"""The keycloak_* modules when Keycloak is briefly away, when their admin token expires, over TLS, with input that cannot
name a realm, and a URL without a port.

Keycloak's outages are played by a reverse proxy of the test's own on a loopback port, in front of the real Keycloak of
the local stack: the shared Keycloak itself is never stopped.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from keycloak import KeycloakAdmin

from tests.ansible_runner import run_module
from tests.integration.port_forward import ADDRESS, PortForward
from tests.keycloak_api import delete_if_present, group_names, realm_admin, unique_name

pytestmark = pytest.mark.keycloak

# Response headers that the proxy recomputes: requests has already decoded and joined the body.
HOP_HEADERS = frozenset(("connection", "content-encoding", "content-length", "keep-alive", "transfer-encoding"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RestartingKeycloak:
    """Keycloak as a client sees it while it restarts behind a reverse proxy, on http://127.0.0.1:<port>.

    The first connection is dropped unanswered (Keycloak stopping), then the port refuses connections for
    `down_seconds` (Keycloak starting), then requests reach the real Keycloak through a proxy that still answers the
    first `busy` requests of `busy_method` on the admin API with `busy_status` (503: the proxy's view of a backend not
    ready yet). With `certificate` (its certificate and key files) the proxy speaks https.
    """

    def __init__(
        self, upstream: str, down_seconds: float = 2.0, busy: int = 1, busy_method: str = "GET",
        busy_status: int = 503, certificate: tuple[Path, Path] | None = None,
    ):
        self.upstream = upstream.rstrip("/")
        self.port = _free_port()
        self.url = f"{'https' if certificate else 'http'}://127.0.0.1:{self.port}"
        self.down_seconds = down_seconds
        self.busy_left = busy
        self.busy_method = busy_method
        self.busy_status = busy_status
        self.certificate = certificate
        self.dropped = 0
        self.answered_busy = 0
        self.requests: list[tuple[str, str]] = []
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RestartingKeycloak:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        # Short timeouts everywhere, so that __exit__ stops this thread in any phase.
        self._listener.settimeout(0.1)
        with self._listener:
            while not self._stopping.is_set():
                try:
                    connection = self._listener.accept()[0]
                except TimeoutError:
                    continue
                connection.close()
                self.dropped += 1
                break
        if self._stopping.wait(self.down_seconds):
            return
        with ThreadingHTTPServer(("127.0.0.1", self.port), self._handler()) as server:
            server.timeout = 0.1
            if self.certificate:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(*self.certificate)
                server.socket = context.wrap_socket(server.socket, server_side=True)
            while not self._stopping.is_set():
                server.handle_request()

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _relay(self):
                proxy.requests.append((self.command, self.path))
                if self.command == proxy.busy_method and self.path.startswith("/admin/") and proxy.busy_left > 0:
                    proxy.busy_left -= 1
                    proxy.answered_busy += 1
                    self._answer(proxy.busy_status, {"Content-Type": "text/plain"}, b"Busy")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                headers = {name: value for name, value in self.headers.items() if name.lower() not in ("host",)}
                answer = requests.request(
                    self.command, proxy.upstream + self.path, headers=headers,
                    data=self.rfile.read(length) if length else None, allow_redirects=False, timeout=30,
                )
                kept = {name: value for name, value in answer.headers.items() if name.lower() not in HOP_HEADERS}
                self._answer(answer.status_code, kept, answer.content)

            def _answer(self, status, headers, body):
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _relay

        return Handler


@pytest.fixture(scope="module")
def master(keycloak_admin) -> KeycloakAdmin:
    """The admin API of the admin's own realm, which creates and deletes realms."""
    return realm_admin(keycloak_admin, keycloak_admin.realm)


def _login(url, keycloak_admin) -> str:
    return (
        f"auth_keycloak_url={url} auth_realm={keycloak_admin.realm} "
        f"auth_username={keycloak_admin.user} auth_password={keycloak_admin.password}"
    )


def test_a_module_rides_out_a_keycloak_restart(keycloak_admin):
    with RestartingKeycloak(keycloak_admin.url, down_seconds=2.0, busy=1) as keycloak:
        started = time.monotonic()
        # A read-only run: the master realm exists and is enabled, so nothing changes.
        result = run_module(
            "mlops.mlflow.keycloak_realm", f"{_login(keycloak.url, keycloak_admin)} realm=master", "--check"
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.output
    assert result.module_result["changed"] is False
    assert keycloak.dropped == 1, "the login met Keycloak stopping"
    assert keycloak.answered_busy == 1, "the realm's read met the proxy's 503"
    assert keycloak.requests.count(("GET", "/admin/realms/master")) == 2, "the read was sent again, once"
    assert elapsed < 30


def test_an_expired_admin_token_is_renewed_once(keycloak_admin):
    # The proxy answers the first admin read 401, as Keycloak answers a token that expired during a long run.
    with RestartingKeycloak(keycloak_admin.url, down_seconds=0, busy=1, busy_status=401) as keycloak:
        result = run_module(
            "mlops.mlflow.keycloak_realm", f"{_login(keycloak.url, keycloak_admin)} realm=master", "--check"
        )
    assert result.returncode == 0, result.output
    assert result.module_result["changed"] is False
    token = ("POST", f"/realms/{keycloak_admin.realm}/protocol/openid-connect/token")
    assert keycloak.requests.count(token) == 2, "a second login after the 401"
    assert keycloak.requests.count(("GET", "/admin/realms/master")) == 2, "the read was sent again, once"


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no certificate authority signed, and its key."""
    directory = tmp_path_factory.mktemp("tls")
    certificate, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", certificate, "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return certificate, key


def test_an_untrusted_certificate_fails_at_once_unless_validate_certs_is_off(keycloak_admin, self_signed):
    with RestartingKeycloak(keycloak_admin.url, down_seconds=0, busy=0, certificate=self_signed) as keycloak:
        login = f"{_login(keycloak.url, keycloak_admin)} realm=master"
        started = time.monotonic()
        checked = run_module("mlops.mlflow.keycloak_realm", login, "--check")
        elapsed = time.monotonic() - started
        unchecked = run_module("mlops.mlflow.keycloak_realm", f"{login} validate_certs=false", "--check")
    assert checked.returncode != 0
    message = checked.module_result["msg"]
    assert message.startswith(
        f"Keycloak at {keycloak.url} failed the TLS handshake ([SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
        "failed: self-signed certificate"
    ), message
    assert message.endswith("): check its certificate, or validate_certs")
    assert keycloak.dropped == 1, "the connection closed during the first handshake was tried again"
    # Further attempts would have paused 1 + 2 + 4 s more.
    assert elapsed < 6
    assert unchecked.returncode == 0, unchecked.output
    assert unchecked.module_result["changed"] is False
    assert ("GET", "/admin/realms/master") in keycloak.requests


def test_a_write_is_never_sent_twice(keycloak_admin, master):
    realm = unique_name("faults")
    master.create_realm({"realm": realm, "enabled": True})
    try:
        with RestartingKeycloak(keycloak_admin.url, down_seconds=0, busy=1, busy_method="POST") as keycloak:
            result = run_module(
                "mlops.mlflow.keycloak_group", f"{_login(keycloak.url, keycloak_admin)} realm={realm} name=once"
            )
        assert result.returncode != 0
        assert result.module_result["msg"].startswith(
            f"Keycloak at {keycloak.url} answered HTTP 503 to POST admin/realms/{realm}/groups: "
        )
        posts = [path for method, path in keycloak.requests if method == "POST" and path.startswith("/admin/")]
        assert posts == [f"/admin/realms/{realm}/groups"]
        assert group_names(realm_admin(keycloak_admin, realm)) == set()
    finally:
        delete_if_present(master.delete_realm, realm)


def test_a_keycloak_that_stays_down_is_given_up_on_within_the_retry_budget(keycloak_admin):
    url = f"http://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    result = run_module("mlops.mlflow.keycloak_group", f"{_login(url, keycloak_admin)} realm=mlflow name=anything")
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert result.module_result["msg"] == (
        f"Cannot reach Keycloak at {url} (connection refused): is it running, and is auth_keycloak_url right?"
    )
    # Pauses of 0.5 + 1 + 2 + 4 s between five attempts, plus Ansible's own start.
    assert 7.5 <= elapsed < 25


@pytest.mark.parametrize(
    ("module", "args", "option"),
    [
        ("keycloak_realm", "realm=''", "realm"),
        ("keycloak_group", "realm='' name=x", "realm"),
        ("keycloak_client_scope", "realm=' ' name=x", "realm"),
        ("keycloak_oidc_client", "realm='' client_id=x", "realm"),
        ("keycloak_group_mapper", "realm='' client_scope=x name=x", "realm"),
        ("keycloak_group_members", "realm='' group=x members=[]", "realm"),
        ("keycloak_user", "realm='' users=username=x", "realm"),
        ("keycloak_group", "realm=mlflow name=x auth_realm=''", "auth_realm"),
    ],
)
def test_an_empty_realm_name_is_refused_in_one_line(keycloak_admin, module, args, option):
    login = (
        f"auth_keycloak_url={keycloak_admin.url} auth_username={keycloak_admin.user} "
        f"auth_password={keycloak_admin.password}"
    )
    result = run_module(f"mlops.mlflow.{module}", f"{login} {args}", "--check")
    assert result.returncode != 0
    assert result.module_result["msg"] == f"{option} is empty: set it to the name of a Keycloak realm"
    assert "Traceback" not in result.output


def test_a_url_without_a_port_uses_the_schemes(keycloak_admin):
    keycloak = urlsplit(keycloak_admin.url)
    with PortForward(80, (keycloak.hostname, keycloak.port)):
        result = run_module(
            "mlops.mlflow.keycloak_realm", f"{_login(f'http://{ADDRESS}', keycloak_admin)} realm=master", "--check"
        )
    assert result.returncode == 0, result.output
    assert result.module_result["changed"] is False
