"""Where MLflow is reachable is a decision: the mlflow and identity roles refuse a public URL with a wildcard host, and
plain HTTP to a host that is not loopback unless mlflow_allow_insecure_http says so. Each refusal names the condition
and the variable to set; the inventories of the project pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.ansible_runner import LOCAL_INVENTORY, REPO_ROOT, run_playbook

# The inventories name Keycloak by the local stack's endpoints.json.
pytestmark = [pytest.mark.harness, pytest.mark.usefixtures("local_stack")]

PREFLIGHT = Path(__file__).parent / "playbooks" / "mlflow_identity_preflight.yml"


# The facts the mlflow preflight requires from the database, storage and identity roles, each with a stand-in value.
INPUT_FACTS = {
    name: name
    for name in yaml.safe_load((REPO_ROOT / "roles" / "mlflow" / "vars" / "main.yml").read_text())["_mlflow_input_facts"]
}


def _preflight(extra_vars: dict, inventory: Path = LOCAL_INVENTORY):
    return run_playbook(
        PREFLIGHT, "-e", json.dumps(INPUT_FACTS), "-e", json.dumps(extra_vars), inventory=inventory, timeout=120
    )


def _mlflow_url(url, **more):
    # The inventories set identity_mlflow_url to mlflow_public_url: a user sets the latter only.
    return {"mlflow_public_url": url, **more}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5000",
        "http://127.0.0.53:8000/mlflow",
        "http://localhost:5000",
        "http://[::1]:5000",
        "https://mlflow.example.com",
        "https://10.0.0.5:8443",
    ],
)
def test_https_anywhere_and_http_on_loopback_are_accepted(url):
    result = _preflight(_mlflow_url(url))
    assert result.returncode == 0, result.output[-3000:]


def test_http_to_another_host_is_accepted_when_asked_for():
    result = _preflight(_mlflow_url("http://mlflow.internal:5000", mlflow_allow_insecure_http=True))
    assert result.returncode == 0, result.output[-3000:]


@pytest.mark.parametrize("url", ["http://mlflow.internal:5000", "http://10.0.0.5:5000", "http://0.0.0.0:5000"])
def test_http_to_another_host_is_refused_by_identity_first(url):
    result = _preflight(_mlflow_url(url))
    assert result.returncode != 0
    assert (
        f"identity_mlflow_url ({url}) is plain http:// to a host that is not loopback: the login's authorization code "
        "would cross the network unencrypted. Use an https:// URL, or set mlflow_allow_insecure_http: true if this is "
        "deliberate."
    ) in result.output
    assert "Traceback" not in result.output


def test_http_to_another_host_is_refused_by_the_mlflow_role():
    url = "http://mlflow.internal:5000"
    # The identity role is given a URL it accepts: the mlflow role's own check speaks.
    result = _preflight({"mlflow_public_url": url, "identity_mlflow_url": "https://mlflow.internal"})
    assert result.returncode != 0
    assert (
        f"mlflow_public_url ({url}) is plain http:// to a host that is not loopback: session cookies, access keys and "
        "the login's authorization code would cross the network unencrypted. Use an https:// URL (TLS at a reverse "
        "proxy or the ingress), or set mlflow_allow_insecure_http: true if this is deliberate."
    ) in result.output


@pytest.mark.parametrize("url", ["https://*.example.com", "https://mlflow*:443", "http://*:5000"])
def test_a_wildcard_host_is_refused(url):
    result = _preflight(_mlflow_url(url, mlflow_allow_insecure_http=True))
    assert result.returncode != 0
    assert (
        f"identity_mlflow_url ({url}) has a wildcard in its host: Keycloak would redirect logins to any matching host. "
        "Set it to the one URL users reach MLflow at."
    ) in result.output

    alone = _preflight({"mlflow_public_url": url, "identity_mlflow_url": "https://mlflow.example.com"})
    assert alone.returncode != 0
    assert (
        f"mlflow_public_url ({url}) has a wildcard in its host: set it to the one URL users reach MLflow at."
    ) in alone.output


@pytest.mark.parametrize("variable", ["identity_realm", "identity_admin_realm"])
def test_an_empty_realm_name_is_refused_in_one_line(variable):
    result = _preflight({variable: ""})
    assert result.returncode != 0
    assert f"{variable} is empty: set it to the name of a Keycloak realm." in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("inventory", "extra"),
    [
        ("inventories/local", {}),
        ("inventories/k3s-example", {}),
        # Its Redis URL reads a password that only the test cluster's harness (tests/kube) writes.
        ("tests/inventories/kubernetes", {"mlflow_cache_redis_url": ""}),
    ],
)
def test_the_projects_inventories_pass(inventory, extra):
    result = _preflight(extra, inventory=REPO_ROOT / inventory)
    assert result.returncode == 0, result.output[-3000:]
