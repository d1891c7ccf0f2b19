"""The deployed local stack as the benchmarks see it: its settings, a login, scratch databases, extra servers."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shlex
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import psycopg2
import requests
from psycopg2 import sql

from tests.e2e.mlflow_web import WebLogin
from tests.stack_layout import SECRETS_DIR, SERVER_VENV, STATE_DIR

DEPLOYED_URL = "http://127.0.0.1:5000"
DEMO_USER = "demo-user"


def read_env_file(path):
    """The variables of a shell file of `export NAME='value'` lines (the server role's mlflow.env)."""
    environment = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            environment[name] = value
    return environment


def server_mlflow_binary():
    """The `mlflow` executable of the deployed server's virtualenv."""
    return SERVER_VENV / "bin" / "mlflow"


def installed_versions(mlflow_binary):
    """Versions of the server's main packages, read from the virtualenv's dist-info directories."""
    versions = {}
    for site_packages in Path(mlflow_binary).parent.parent.glob("lib/python*/site-packages"):
        for dist_info in site_packages.glob("*.dist-info"):
            name, version = (dist_info.name[: -len(".dist-info")].split("-", 1) + [""])[:2]
            if name.lower() in {"mlflow", "mlflow_oidc_auth", "uvicorn", "boto3", "sqlalchemy"}:
                versions[name.lower()] = version
    return versions


def load_endpoints():
    """Addresses and admin logins of the local services (written by the local_services role)."""
    return json.loads((STATE_DIR / "endpoints.json").read_text(encoding="utf-8"))


def read_secret(name):
    return (SECRETS_DIR / name).read_text(encoding="utf-8").strip()


def wait_for_http(url, timeout, process=None):
    """Poll `url` until it answers 200; fail early when `process` (a Popen) exits."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with code {process.returncode} before it was ready")
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
            last_error = "not ready"
        except requests.RequestException as error:
            last_error = str(error)
        time.sleep(1)
    raise RuntimeError(f"{url} not ready after {timeout} s: {last_error}")


def port_is_free(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) != 0


class Login:
    """A Keycloak user's login to MLflow (WebLogin, as the e2e tests log in), and a named access token for API
    clients."""

    def __init__(self, base_url, username, password):
        self.base_url = base_url
        self.username = username
        self.password = password
        self.web = None
        self.account = None
        self.token = None
        self.token_id = None

    def log_in_and_create_token(self):
        """Keycloak login and access-token creation; returns the seconds the round trip took."""
        started = time.monotonic()
        self.web = WebLogin(self.base_url, self.username, self.password)
        if self.web.landing_path != "/oidc/ui/user":
            raise RuntimeError(f"login of {self.username} ended at {self.web.landing_url}")
        self.account = self.web.account
        # A named token of its own: PATCH /users/access-token would replace the user's default token.
        created = self.web.create_named_key(f"bench-{uuid.uuid4().hex[:12]}", lifetime=datetime.timedelta(hours=2))
        seconds = time.monotonic() - started
        self.token, self.token_id = created["token"], created["id"]
        return seconds

    def delete_token(self):
        if self.token_id is not None:
            self.web.delete_key(self.token_id)
            self.token_id = None

    @property
    def basic_auth(self):
        return (self.account, self.token)


def demo_login(base_url=DEPLOYED_URL):
    return Login(base_url, DEMO_USER, read_secret(f"keycloak_user_{DEMO_USER}_password"))


class ScratchDatabase:
    """A fresh PostgreSQL database owned by the tracking database's owner, dropped on exit."""

    def __init__(self, owner, endpoints):
        self.name = f"mlflow_bench_{uuid.uuid4().hex[:10]}"
        self.owner = owner
        postgresql = endpoints["postgresql"]
        self.admin = {
            "host": postgresql["host"],
            "port": postgresql["port"],
            "user": postgresql["admin_user"],
            "password": Path(postgresql["admin_password_file"]).read_text(encoding="utf-8").strip(),
            "dbname": "postgres",
            "connect_timeout": 10,
        }

    @property
    def uri(self):
        """Its URI for MLflow; libpq takes the server and the login from PG*, as for the deployed server."""
        return f"postgresql+psycopg2:///{self.name}"

    def _execute(self, statement):
        connection = psycopg2.connect(**self.admin)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def __enter__(self):
        self._execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(self.name), sql.Identifier(self.owner))
        )
        return self

    def __exit__(self, *exc_info):
        self._execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))


class ServerProcess:
    """An `mlflow server` the benchmark starts itself, in its own process group, stopped on exit."""

    def __init__(self, name, mlflow_binary, environment, port, log_dir, app_name=None, health_path="/health"):
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.command = [str(mlflow_binary), "server"] + (["--app-name", app_name] if app_name else [])
        self.environment = dict(environment, MLFLOW_HOST="127.0.0.1", MLFLOW_PORT=str(port))
        self.health_url = self.url + health_path
        self.log_path = Path(log_dir) / f"{name}.log"
        self.process = None

    def start(self):
        if not port_is_free("127.0.0.1", self.port):
            raise RuntimeError(f"port {self.port} is taken; the {self.name} server needs it")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(  # pylint: disable=consider-using-with  # stopped by stop()
                self.command, env=self.environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, timeout):
        try:
            wait_for_http(self.health_url, timeout, self.process)
        except RuntimeError as error:
            tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"{error}\n--- {self.log_path} (tail) ---\n{tail}") from None

    def wait_idle(self, timeout, busy_share=0.15):
        """Wait until the server's processes use less than `busy_share` of a CPU: a server just started spends
        a minute importing in its job runner processes, which would be measured as the server's own slowness."""
        deadline = time.monotonic() + timeout
        previous = group_cpu_seconds(self.process.pid)
        while time.monotonic() < deadline:
            time.sleep(2)
            current = group_cpu_seconds(self.process.pid)
            if (current - previous) / 2 < busy_share:
                return
            previous = current
        raise RuntimeError(f"the {self.name} server is still busy {timeout} s after it answered")

    def stop(self):
        """SIGTERM to the whole group (uvicorn, its workers, the job runner), SIGKILL after 30 s."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        # Whatever of the group outlived its leader (or ignored SIGTERM).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


def group_cpu_seconds(process_group):
    """User + system CPU seconds of the live processes of a process group (Linux /proc)."""
    ticks = 0
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # Fields after the command name (which may hold spaces): state ppid pgrp ... utime(14) stime(15).
            fields = stat_file.read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()
            if int(fields[2]) == process_group:
                ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")
