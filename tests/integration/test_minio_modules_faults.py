"""The minio_* modules with input of the wrong shape: one clear message and no traceback, or the scheme's default."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.ansible_runner import run_module
from tests.integration.port_forward import ADDRESS, PortForward

pytestmark = pytest.mark.minio


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(minio_admin, module, **module_args):
    args = {"endpoint": minio_admin.url, "access_key": minio_admin.user, "secret_key": minio_admin.password}
    args.update(module_args)
    return run_module(f"mlops.mlflow.{module}", json.dumps(args))


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("s3:GetObject", "its Statement is a string, not one statement (a dictionary) or a list of them"),
        (["s3:GetObject"], 'Statement 1 is a string, not a dictionary of Effect, Action, Resource ...: "s3:GetObject"'),
        ([["s3:GetObject"]], 'Statement 1 is a list, not a dictionary of Effect, Action, Resource ...: ["s3:GetObject"]'),
        (
            [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": "bad"}],
            "the Condition of Statement 1 is not a dictionary of operators, each with a dictionary of keys and values "
            "(like {StringEquals: {s3:prefix: [...]}})",
        ),
    ],
)
def test_a_policy_statement_of_the_wrong_shape_is_refused_in_one_line(minio_admin, statement, reason):
    # Nothing listens on the endpoint: only a check made before connecting can produce the message.
    result = run(
        minio_admin, "minio_policy", name="mlt-shape", endpoint=f"http://127.0.0.1:{_free_port()}",
        policy={"Version": "2012-10-17", "Statement": statement},
    )
    assert result.returncode != 0
    assert result.module_result["msg"] == f"Invalid policy mlt-shape: {reason}."
    assert "Traceback" not in result.output


def test_an_endpoint_without_a_port_uses_the_schemes(minio_admin):
    minio = urlsplit(minio_admin.url)
    with PortForward(80, (minio.hostname, minio.port)):
        # Read-only: the policy does not exist, and stays absent.
        result = run(minio_admin, "minio_policy", name="mlt-no-such-policy", state="absent", endpoint=f"http://{ADDRESS}")
    assert result.returncode == 0, result.output
    assert result.module_result["changed"] is False


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:abc", "http://127.0.0.1:99999", "http://127.0.0.1:0"])
def test_an_endpoint_with_a_bad_port_is_refused_in_one_line(minio_admin, endpoint):
    result = run(minio_admin, "minio_policy", name="mlt-x", state="absent", endpoint=endpoint)
    assert result.returncode != 0
    assert result.module_result["msg"] == (
        f"endpoint '{endpoint}' has an invalid port: give a number from 1 to 65535, or no port for the scheme's "
        "default (80 for http, 443 for https)"
    )
    assert "Traceback" not in result.output


def test_an_unclosed_ipv6_bracket_is_refused_in_one_line(minio_admin):
    result = run(minio_admin, "minio_policy", name="mlt-x", state="absent", endpoint="http://[::1")
    assert result.returncode != 0
    assert result.module_result["msg"] == (
        "endpoint must be a URL like http://127.0.0.1:9000 or https://minio.example.com, got 'http://[::1'"
    )
