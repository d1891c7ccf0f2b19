"""The test control plane is a real Kubernetes API server, and kubernetes.core talks to it as it would to k3s."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.ansible_runner import REPO_ROOT, run_module
from tests.kube import control_plane

pytestmark = pytest.mark.kubernetes


def _cluster_ca(kubeconfig: Path) -> str:
    cluster = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]
    return base64.b64decode(cluster["certificate-authority-data"]).decode()


def _k8s(module: str, **args) -> dict:
    return run_module(f"kubernetes.core.{module}", json.dumps(args)).module_result


def _absent(read) -> bool:
    try:
        read()
    except ApiException as error:
        return error.status == 404
    return False


def test_api_server_reports_its_version(kube_api):
    version = client.VersionApi(kube_api).get_code()
    assert (version.git_version, version.major, version.minor) == ("v1.36.3", "1", "36")


def test_anonymous_request_is_refused(kube_cluster):
    # The server's certificate is checked against the cluster CA: only the missing client certificate can fail here.
    context = ssl.create_default_context(cadata=_cluster_ca(kube_cluster.kubeconfig))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{kube_cluster.server}/api/v1/namespaces", context=context, timeout=10)
    assert refused.value.code == 401


def test_admin_certificate_is_cluster_admin(kube_api):
    review = client.AuthenticationV1Api(kube_api).create_self_subject_review(client.V1SelfSubjectReview())
    assert review.status.user_info.username == "mlops-mlflow-test-admin"
    assert "system:masters" in review.status.user_info.groups
    access = client.AuthorizationV1Api(kube_api).create_self_subject_access_review(
        client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(verb="*", group="*", resource="*")))
    )
    assert access.status.allowed is True


def test_up_reuses_the_running_control_plane(kube_cluster):
    before = control_plane.status()
    started = time.monotonic()
    completed = subprocess.run([sys.executable, "-m", "tests.kube.control_plane", "up"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == str(kube_cluster.kubeconfig)
    assert time.monotonic() - started < 30
    assert control_plane.status() == before
    assert all(state.startswith("healthy (pid ") for state in before.values()), before


def test_k8s_module_creates_and_deletes_a_namespace_and_a_secret(kube_cluster, kube_api):
    core = client.CoreV1Api(kube_api)
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "credentials", "namespace": namespace},
        "type": "Opaque",
        "data": {"password": base64.b64encode(password.encode()).decode()},
    }
    kubeconfig = str(kube_cluster.kubeconfig)
    try:
        created = _k8s("k8s", kubeconfig=kubeconfig, api_version="v1", kind="Namespace", name=namespace)
        assert created["changed"] is True, created
        assert core.read_namespace(namespace).status.phase == "Active"

        assert _k8s("k8s", kubeconfig=kubeconfig, definition=secret)["changed"] is True
        stored = core.read_namespaced_secret("credentials", namespace).data["password"]
        assert base64.b64decode(stored).decode() == password
        assert _k8s("k8s", kubeconfig=kubeconfig, definition=secret)["changed"] is False

        deleted = _k8s("k8s", kubeconfig=kubeconfig, definition=secret, state="absent")
        assert deleted["changed"] is True, deleted
        assert _absent(lambda: core.read_namespaced_secret("credentials", namespace))

        # Namespace deletion is finished by kube-controller-manager's namespace controller; wait for it.
        deleted = _k8s("k8s", kubeconfig=kubeconfig, api_version="v1", kind="Namespace", name=namespace,
                       state="absent", wait=True, wait_timeout=120)
        assert deleted["changed"] is True, deleted
        assert _absent(lambda: core.read_namespace(namespace))
    finally:
        if not _absent(lambda: core.read_namespace(namespace)):
            core.delete_namespace(namespace)


def test_unreachable_api_server_gives_a_clear_error(kube_cluster, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    config = yaml.safe_load(kube_cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{closed_port}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))

    result = _k8s("k8s_info", kubeconfig=str(kubeconfig), api_version="v1", kind="Namespace")

    assert result["failed"] is True
    # What a user sees: where the module tried to connect, and why it could not.
    assert f"host='127.0.0.1', port={closed_port}" in result["msg"], result["msg"]
    assert "Connection refused" in result["msg"], result["msg"]


def test_missing_kubeconfig_gives_a_clear_error(tmp_path):
    missing = tmp_path / "no-such-kubeconfig"

    result = _k8s("k8s_info", kubeconfig=str(missing), api_version="v1", kind="Namespace")

    assert result["failed"] is True
    assert result["msg"] == f"Could not find or access '{missing}' on the Ansible Controller.", result["msg"]
