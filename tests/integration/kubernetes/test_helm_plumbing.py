"""kubernetes.core.helm with our Helm build against the real API server, on the plumbing fixture chart.

The fixture chart (tests/fixtures/charts/plumbing) is NOT the Community Charts mlflow chart: these tests only prove that
install, re-run, upgrade, rollback of a failed upgrade, uninstall and `--wait` work end to end.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.ansible_runner import REPO_ROOT, run_module

pytestmark = pytest.mark.kubernetes

CHART = REPO_ROOT / "tests" / "fixtures" / "charts" / "plumbing"


@pytest.fixture
def namespace(kube_namespace, kube_api) -> str:
    """A scratch namespace holding the existing Secret the chart's Deployment refers to."""
    client.CoreV1Api(kube_api).create_namespaced_secret(kube_namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="plumbing-credentials"),
        data={"password": base64.b64encode(uuid.uuid4().hex.encode()).decode()},
    ))
    return kube_namespace


@pytest.fixture
def release() -> str:
    return f"plumbing-{uuid.uuid4().hex[:8]}"


def _helm(module: str, kube_cluster, namespace: str, release: str, **args) -> dict:
    common = {
        "binary_path": str(kube_cluster.helm),
        "kubeconfig": str(kube_cluster.kubeconfig),
        "release_name": release,
        "release_namespace": namespace,
    }
    return run_module(f"kubernetes.core.{module}", json.dumps({**common, **args})).module_result


def _install(kube_cluster, namespace: str, release: str, **values) -> dict:
    return _helm("helm", kube_cluster, namespace, release, chart_ref=str(CHART), release_values=values)


def _message(kube_api, namespace: str, release: str) -> str:
    return client.CoreV1Api(kube_api).read_namespaced_config_map(f"{release}-settings", namespace).data["message"]


def _absent(read) -> bool:
    try:
        read()
    except ApiException as error:
        return error.status == 404
    return False


def test_install_rerun_and_upgrade(kube_cluster, kube_api, namespace, release):
    installed = _install(kube_cluster, namespace, release, message="first")
    assert installed["changed"] is True, installed
    assert installed["status"]["status"] == "deployed"
    assert _message(kube_api, namespace, release) == "first"
    deployment = client.AppsV1Api(kube_api).read_namespaced_deployment(release, namespace)
    password = deployment.spec.template.spec.containers[0].env[1].value_from.secret_key_ref
    assert (password.name, password.key) == ("plumbing-credentials", "password")

    rerun = _install(kube_cluster, namespace, release, message="first")
    assert rerun["changed"] is False, rerun

    upgraded = _install(kube_cluster, namespace, release, message="second")
    assert upgraded["changed"] is True, upgraded
    assert str(upgraded["status"]["revision"]) == "2"
    assert _message(kube_api, namespace, release) == "second"


def test_failed_upgrade_with_atomic_rolls_back(kube_cluster, kube_api, namespace, release):
    assert _install(kube_cluster, namespace, release, message="good")["changed"] is True

    failed = _helm("helm", kube_cluster, namespace, release, chart_ref=str(CHART), atomic=True,
                   release_values={"message": "bad", "breakRelease": True})

    assert failed["failed"] is True, failed
    assert "Invalid_Name" in failed["msg"], failed["msg"]
    assert "rolled back due to atomic being set" in failed["msg"], failed["msg"]
    info = _helm("helm_info", kube_cluster, namespace, release)["status"]
    # Revision 2 is the failed upgrade; the rollback to revision 1 is revision 3.
    assert (info["status"], str(info["revision"])) == ("deployed", "3")
    assert info["release_values"] == {"message": "good"}
    assert _message(kube_api, namespace, release) == "good"


def test_uninstall_removes_the_release_and_its_objects(kube_cluster, kube_api, namespace, release):
    assert _install(kube_cluster, namespace, release)["changed"] is True

    removed = _helm("helm", kube_cluster, namespace, release, state="absent")

    assert removed["changed"] is True, removed
    assert "status" not in _helm("helm_info", kube_cluster, namespace, release)
    assert _absent(lambda: client.CoreV1Api(kube_api).read_namespaced_config_map(f"{release}-settings", namespace))
    assert _absent(lambda: client.AppsV1Api(kube_api).read_namespaced_deployment(release, namespace))
    assert _helm("helm", kube_cluster, namespace, release, state="absent")["changed"] is False


def test_install_with_wait_returns_once_the_deployment_is_available(kube_cluster, kube_api, namespace, release):
    # kube-controller-manager makes the pods, kube-scheduler places them on the node, its kubelet runs them.
    installed = _helm("helm", kube_cluster, namespace, release, chart_ref=str(CHART), wait=True, wait_timeout="120s")

    assert installed["changed"] is True, installed
    assert installed["status"]["status"] == "deployed"
    status = client.AppsV1Api(kube_api).read_namespaced_deployment_status(release, namespace).status
    assert status.available_replicas == 2
