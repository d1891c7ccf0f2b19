"""Session fixtures: the real local stack, brought up by the same playbook the local inventory uses."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.ansible_runner import run_playbook

STATE_DIR = Path(
    os.environ.get("MLOPS_MLFLOW_STATE_DIR", Path.home() / ".local" / "state" / "mlops-mlflow")
)


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
