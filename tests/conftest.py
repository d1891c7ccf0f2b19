"""Session fixtures: the real local stack, brought up by the same playbook the local inventory uses, and MLflow."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.ansible_runner import run_playbook
from tests.stack_layout import STATE_DIR

MLFLOW_URL = "http://127.0.0.1:5000"


def http_status(url: str, headers: dict | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


@dataclass(frozen=True)
class ServiceLogin:
    """Where a service answers and how its admin logs in."""

    url: str
    user: str
    password: str = field(repr=False)
    host: str = ""
    port: int = 0
    realm: str = ""


@pytest.fixture(scope="session")
def local_stack() -> dict:
    """Converge playbooks/local_services.yml once per session and return endpoints.json."""
    result = run_playbook("playbooks/local_services.yml")
    if result.returncode != 0:
        pytest.fail("playbooks/local_services.yml failed:\n" + result.output[-6000:], pytrace=False)
    return json.loads((STATE_DIR / "endpoints.json").read_text())


def _secret(path: str) -> str:
    return Path(path).read_text().strip()


@pytest.fixture(scope="session")
def postgresql_admin(local_stack) -> ServiceLogin:
    pg = local_stack["postgresql"]
    return ServiceLogin(
        url=f"postgresql://{pg['host']}:{pg['port']}",
        host=pg["host"],
        port=int(pg["port"]),
        user=pg["admin_user"],
        password=_secret(pg["admin_password_file"]),
    )


@pytest.fixture(scope="session")
def keycloak_admin(local_stack) -> ServiceLogin:
    kc = local_stack["keycloak"]
    return ServiceLogin(
        url=kc["url"], user=kc["admin_user"], password=_secret(kc["admin_password_file"]), realm=kc["admin_realm"]
    )


@pytest.fixture(scope="session")
def minio_admin(local_stack) -> ServiceLogin:
    mn = local_stack["minio"]
    return ServiceLogin(url=mn["url"], user=mn["root_user"], password=_secret(mn["root_password_file"]))


@pytest.fixture(scope="module")
def deployed_mlflow(local_stack) -> str:
    """The deployed MLflow of the embedded default; site.yml converges it first when it does not answer."""
    if http_status(f"{MLFLOW_URL}/health/ready") != 200:
        result = run_playbook("playbooks/site.yml")
        assert result.returncode == 0, result.output[-6000:]
    assert http_status(f"{MLFLOW_URL}/health/ready") == 200
    return MLFLOW_URL
