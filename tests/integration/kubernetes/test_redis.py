"""Redis beside the test cluster: pods reach it at the node address and must give its password."""

from __future__ import annotations

import time
import urllib.parse

import pytest
from kubernetes import client

from tests.kube import images, node, observability

pytestmark = pytest.mark.kubernetes

POD_DONE_TIMEOUT = 120
# Both conversations end with QUIT, so Redis closes the connection and nc exits. The password comes from a Secret,
# as CACHE_REDIS_URL reaches MLflow's pods.
REDIS_SCRIPT = (
    'echo "with-password:"; printf "AUTH %s\\r\\nPING\\r\\nQUIT\\r\\n" "$REDIS_PASSWORD" | /bin/busybox nc "$REDIS_HOST" "$REDIS_PORT";'
    ' echo "without-password:"; printf "PING\\r\\nQUIT\\r\\n" | /bin/busybox nc "$REDIS_HOST" "$REDIS_PORT"'
)


def test_the_redis_url_names_the_node_address_and_the_port(kube_cluster):
    url = urllib.parse.urlsplit(kube_cluster.redis_url)
    assert (url.scheme, url.hostname, url.port, url.path) == ("redis", node.NODE_ADDRESS, observability.REDIS_PORT,
                                                              "/0")
    assert url.password and not url.username


def test_a_pod_reaches_redis_with_the_password_and_is_refused_without(kube_api, kube_cluster, kube_namespace):
    core = client.CoreV1Api(kube_api)
    url = urllib.parse.urlsplit(kube_cluster.redis_url)
    core.create_namespaced_secret(kube_namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="redis"), string_data={"password": url.password}))
    container = client.V1Container(
        name="client", image=images.SANDBOX_IMAGE, command=["/bin/sh", "-c", REDIS_SCRIPT],
        env=[
            client.V1EnvVar(name="REDIS_HOST", value=url.hostname),
            client.V1EnvVar(name="REDIS_PORT", value=str(url.port)),
            client.V1EnvVar(name="REDIS_PASSWORD", value_from=client.V1EnvVarSource(
                secret_key_ref=client.V1SecretKeySelector(name="redis", key="password"))),
        ],
        security_context=client.V1SecurityContext(run_as_user=1001, run_as_non_root=True,
                                                  read_only_root_filesystem=True, allow_privilege_escalation=False),
    )
    core.create_namespaced_pod(kube_namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name="redis-client"),
        spec=client.V1PodSpec(containers=[container], restart_policy="Never", termination_grace_period_seconds=5),
    ))
    deadline = time.monotonic() + POD_DONE_TIMEOUT
    phase = core.read_namespaced_pod("redis-client", kube_namespace).status.phase
    while phase not in ("Succeeded", "Failed"):
        assert time.monotonic() < deadline, f"the client pod is still {phase} after {POD_DONE_TIMEOUT} s"
        time.sleep(1)
        phase = core.read_namespaced_pod("redis-client", kube_namespace).status.phase

    log = core.read_namespaced_pod_log("redis-client", kube_namespace)
    with_password, without_password = log.split("without-password:")
    assert with_password.split() == ["with-password:", "+OK", "+PONG", "+OK"], log
    assert without_password.split()[:2] == ["-NOAUTH", "Authentication"], log
    assert "PONG" not in without_password, log
