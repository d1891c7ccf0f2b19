"""The test cluster's node is real: containerd runs the containers, probes pass, the host reaches pod IPs."""

from __future__ import annotations

import time
import urllib.request

import pytest
from kubernetes import client

from tests.kube import images, node

pytestmark = pytest.mark.kubernetes

POD_READY_TIMEOUT = 120
# Serves one page from the pod's only writable directory, as the MLflow pods must (read-only root file system).
WEB_SCRIPT = (
    "mkdir -p /tmp/www && echo hello-from-the-pod > /tmp/www/index.html"
    " && echo uid=$(/bin/busybox id -u) && /bin/busybox ip route"
    " && exec /bin/busybox httpd -f -p 8080 -h /tmp/www"
)


def _wait_ready(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod:
    deadline = time.monotonic() + POD_READY_TIMEOUT
    while time.monotonic() < deadline:
        pod = core.read_namespaced_pod(name, namespace)
        if any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []):
            return pod
        time.sleep(1)
    pytest.fail(f"pod {name} not Ready after {POD_READY_TIMEOUT} s: {pod.status}", pytrace=False)


def test_node_is_ready_at_the_bridge_address(kube_api):
    found = client.CoreV1Api(kube_api).read_node(node.NODE_NAME)
    assert {c.type: c.status for c in found.status.conditions}["Ready"] == "True"
    assert [a.address for a in found.status.addresses if a.type == "InternalIP"] == [node.NODE_ADDRESS]
    assert found.status.node_info.container_runtime_version.startswith("containerd://")
    assert found.status.node_info.kubelet_version == "v1.36.3"


def test_a_pod_runs_as_non_root_on_a_read_only_root_and_serves_the_host(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    container = client.V1Container(
        name="web", image=images.SANDBOX_IMAGE, command=["/bin/sh", "-c", WEB_SCRIPT],
        ports=[client.V1ContainerPort(container_port=8080, name="http")],
        readiness_probe=client.V1Probe(http_get=client.V1HTTPGetAction(path="/", port="http"), period_seconds=2),
        security_context=client.V1SecurityContext(
            run_as_user=1001, run_as_non_root=True, read_only_root_filesystem=True,
            allow_privilege_escalation=False, capabilities=client.V1Capabilities(drop=["ALL"])),
        volume_mounts=[client.V1VolumeMount(name="tmp", mount_path="/tmp")],
    )
    core.create_namespaced_pod(kube_namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1PodSpec(containers=[container], termination_grace_period_seconds=5,
                              volumes=[client.V1Volume(name="tmp", empty_dir=client.V1EmptyDirVolumeSource())]),
    ))
    pod = _wait_ready(core, kube_namespace, "web")

    assert pod.status.pod_ip.startswith(node.POD_SUBNET.rsplit(".", 1)[0] + ".")
    with urllib.request.urlopen(f"http://{pod.status.pod_ip}:8080/", timeout=10) as response:
        assert response.read().decode().strip() == "hello-from-the-pod"
    # Logs come from the kubelet through the API server (by the node's address: its name does not resolve).
    log = core.read_namespaced_pod_log("web", kube_namespace)
    assert "uid=1001" in log
    # Pods reach their bridge's subnet and nothing else: no default route.
    routes = [line for line in log.splitlines() if " dev " in line]
    assert routes and not any(line.startswith("default") for line in routes), log
