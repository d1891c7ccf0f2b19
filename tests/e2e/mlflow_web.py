"""The deployed MLflow as its users reach it: Keycloak's login form, access keys, the REST API, the client.

The one browser-like login of the project: the pytest e2e tests, the journey scripts that the Molecule scenarios run
with the MLflow server's own interpreter (it has requests and the mlflow client) and the benchmarks all log in with
WebLogin. Plain HTTP, no browser; it needs requests alone.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
import secrets
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import requests

if TYPE_CHECKING:  # the pytest tests use the login helpers from the project's .venv, which has no mlflow
    from mlflow import MlflowClient

TIMEOUT = 30
ARTIFACT_NAME = "note.txt"
CREDENTIAL_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
LOGIN_FORM = re.compile(r'<form[^>]*\bid="kc-form-login"[^>]*>', re.IGNORECASE)
FORM_ACTION = re.compile(r'\baction="([^"]*)"', re.IGNORECASE)


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def read_secret(path: str | Path) -> str:
    return Path(path).read_text(encoding="utf-8").strip()


def check(condition: bool, message: str) -> None:
    """Fail the journey with a message that says what was expected (assert vanishes under python -O)."""
    if not condition:
        raise AssertionError(message)


def log(message: str) -> None:
    print(f"ok: {message}", flush=True)


def submit_login_form(session: requests.Session, form_page: requests.Response, username: str, password: str,
                      **kwargs) -> requests.Response:
    """Fill in Keycloak's login form found on `form_page` and post it with the same cookie jar."""
    form = LOGIN_FORM.search(form_page.text)
    check(form is not None, f"no Keycloak login form at {form_page.url}")
    action = html.unescape(FORM_ACTION.search(form.group(0)).group(1))
    return session.post(action, data={"username": username, "password": password}, timeout=TIMEOUT, **kwargs)


class WebLogin:
    """One browser-like login: the cookie jar from /login to the page MLflow lands on.

    `session` is the caller's when it needs its own TLS or proxy settings (the benchmarks through the ingress)."""

    def __init__(self, mlflow_url: str, username: str, password: str, session: requests.Session | None = None):
        self.mlflow_url = mlflow_url.rstrip("/")
        self.username = username
        self.session = session or requests.Session()
        form_page = self.session.get(f"{self.mlflow_url}/login", timeout=TIMEOUT)
        form_page.raise_for_status()
        # Keycloak marks its cookies Secure even over http; a browser keeps them on 127.0.0.1, requests does not.
        # MLflow's own stay as they are when it is served over https (they must be Secure then).
        https = self.mlflow_url.startswith("https://")
        for cookie in self.session.cookies:
            if not (https and cookie.domain == self.host):
                cookie.secure = False
        landing = submit_login_form(self.session, form_page, username, password)
        landing.raise_for_status()
        self.landing_url = landing.url

    @property
    def landing_path(self) -> str:
        return urlsplit(self.landing_url).path

    @property
    def host(self) -> str:
        return urlsplit(self.mlflow_url).hostname

    def mlflow_cookies(self) -> list:
        """The cookies MLflow set (the session's), as the jar holds them."""
        return [cookie for cookie in self.session.cookies if cookie.domain == self.host]

    def cookie_header(self) -> str:
        """MLflow's cookies as a Cookie header, for a request to one pod by its address (no jar would send them)."""
        return "; ".join(f"{cookie.name}={cookie.value}" for cookie in self.mlflow_cookies())

    def status(self) -> dict:
        """/auth/status: {"authenticated": true, "username": ...}; 401 without a session."""
        answer = self.session.get(f"{self.mlflow_url}/auth/status", timeout=TIMEOUT)
        if answer.status_code == 401:
            return {"authenticated": False}
        answer.raise_for_status()
        return answer.json()

    @property
    def account(self) -> str:
        """The MLflow account this login is bound to: the user name for an account made since OIDC_USERNAME_FIELD is
        preferred_username; an older account keeps its e-mail key (the plugin binds accounts to the token's subject)."""
        status = self.status()
        check(bool(status.get("authenticated")), f"{self.username} holds no session: {status}")
        return status["username"]

    def create_named_key(self, name: str, lifetime: timedelta = timedelta(hours=1)) -> dict:
        """An access key of its own ({"id", "token", ...}): the user's default key, which others may use, stays."""
        expiration = (datetime.now(timezone.utc) + lifetime).isoformat()
        answer = self.session.post(
            f"{self.mlflow_url}/api/2.0/mlflow/users/current/tokens",
            json={"name": name, "expiration": expiration},
            timeout=TIMEOUT,
        )
        check(answer.status_code == 201, f"creating access key {name}: HTTP {answer.status_code} {answer.text[:200]}")
        return answer.json()

    def create_default_key(self) -> str:
        """The user's default key (PATCH users/access-token, the documented call); replaces the previous one."""
        answer = self.session.patch(f"{self.mlflow_url}/api/2.0/mlflow/users/access-token", json={}, timeout=TIMEOUT)
        check(answer.status_code == 200, f"creating the default key: HTTP {answer.status_code} {answer.text[:200]}")
        return answer.json()["token"]

    def delete_key(self, key_id: int) -> None:
        answer = self.session.delete(f"{self.mlflow_url}/api/2.0/mlflow/users/current/tokens/{key_id}", timeout=TIMEOUT)
        check(answer.status_code == 200, f"deleting access key {key_id}: HTTP {answer.status_code} {answer.text[:200]}")


def code_flow_token(issuer: str, client_id: str, client_secret: str, redirect_uri: str, username: str,
                    password: str) -> str:
    """An access token issued to `client_id` through the authorization code flow with PKCE (what MLflow's login does).

    Logs in on Keycloak's form, takes the code from the redirect to `redirect_uri` without following it, and
    redeems the code with the client's secret: a token for MLflow, for a client without direct access grants.
    """
    session = requests.Session()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    form_page = session.get(
        f"{issuer}/protocol/openid-connect/auth",
        params={"client_id": client_id, "response_type": "code", "scope": "openid", "redirect_uri": redirect_uri,
                "state": secrets.token_urlsafe(16), "code_challenge": challenge, "code_challenge_method": "S256"},
        timeout=TIMEOUT,
    )
    form_page.raise_for_status()
    for cookie in session.cookies:  # Keycloak's cookies are Secure even over http (see WebLogin)
        cookie.secure = False
    answer = submit_login_form(session, form_page, username, password, allow_redirects=False)
    location = answer.headers.get("Location", "")
    code = parse_qs(urlsplit(location).query).get("code", [""])[0]
    check(answer.status_code == 302 and location.startswith(redirect_uri) and code,
          f"Keycloak's login answered HTTP {answer.status_code}, not a redirect to {redirect_uri} with a code")
    token = requests.post(
        f"{issuer}/protocol/openid-connect/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "client_id": client_id,
              "client_secret": client_secret, "code_verifier": verifier},
        timeout=TIMEOUT,
    )
    check(token.status_code == 200, f"Keycloak token: HTTP {token.status_code} {token.text[:200]}")
    return token.json()["access_token"]


class Api:
    """MLflow's REST API with one credential: HTTP Basic (user name + access key), a bearer token, or none."""

    def __init__(self, mlflow_url: str, basic: tuple[str, str] | None = None, bearer: str | None = None):
        self.mlflow_url = mlflow_url.rstrip("/")
        self.session = requests.Session()
        if basic:
            self.session.auth = basic
        if bearer:
            self.session.headers["Authorization"] = f"Bearer {bearer}"

    def call(self, method: str, path: str, body: dict | None = None, params: dict | None = None) -> requests.Response:
        return self.session.request(
            method, f"{self.mlflow_url}/api/2.0/mlflow/{path}", json=body, params=params, timeout=TIMEOUT
        )

    def expect(self, status: int | tuple, method: str, path: str, body: dict | None = None, params: dict | None = None):
        answer = self.call(method, path, body, params)
        statuses = (status,) if isinstance(status, int) else status
        check(
            answer.status_code in statuses,
            f"{method} {path}: expected {status}, got {answer.status_code} {answer.text[:200]}",
        )
        return answer.json() if answer.content else None

    def expect_within(self, seconds: float, status: int, method: str, path: str, params: dict | None = None):
        """Like expect, retried: permission decisions are cached by each worker for PERMISSION_CACHE_TTL_SECONDS."""
        deadline = time.monotonic() + seconds
        while True:
            answer = self.call(method, path, params=params)
            if answer.status_code == status or time.monotonic() > deadline:
                break
            time.sleep(2)
        check(answer.status_code == status, f"{method} {path}: {answer.status_code}, not {status} within {seconds}s")
        return answer.json()

    def experiment_names(self, name_like: str) -> set[str]:
        found = self.expect(
            200, "POST", "experiments/search", {"max_results": 1000, "filter": f"name LIKE '{name_like}'"}
        )
        return {experiment["name"] for experiment in found.get("experiments", [])}


@contextmanager
def mlflow_credentials(**variables: str):
    """The MLflow client reads its credentials from the environment on every request."""
    saved = {name: os.environ.pop(name, None) for name in CREDENTIAL_VARIABLES}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name in CREDENTIAL_VARIABLES:
            os.environ.pop(name, None)
            if saved[name] is not None:
                os.environ[name] = saved[name]


def track_a_run(client: MlflowClient, experiment: str, content: str) -> dict:
    """What a data scientist does with the client: experiment, params, metrics, an artifact, a model version."""
    experiment_id = client.create_experiment(experiment)
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    client.log_param(run_id, "alpha", "0.5")
    client.log_metric(run_id, "rmse", 0.25)
    with tempfile.TemporaryDirectory() as scratch:
        artifact = Path(scratch) / ARTIFACT_NAME
        artifact.write_text(content, encoding="utf-8")
        client.log_artifact(run_id, str(artifact))
        client.log_artifact(run_id, str(artifact), artifact_path="model")
    client.set_terminated(run_id)

    data = client.get_run(run_id).data
    check(data.params == {"alpha": "0.5"} and data.metrics == {"rmse": 0.25}, f"the run holds {data}")
    client.create_registered_model(experiment)
    version = client.create_model_version(experiment, source=f"{run.info.artifact_uri}/model", run_id=run_id)
    check(version.status == "READY", f"model version {version.version} is {version.status}")
    # mlflow-artifacts:/<experiment>/<run>/artifacts: the server stores it below the bucket's artifacts/ prefix.
    run_path = urlsplit(run.info.artifact_uri).path.strip("/")
    return {"experiment_id": experiment_id, "run_id": run_id, "artifact_key": f"artifacts/{run_path}/{ARTIFACT_NAME}"}
