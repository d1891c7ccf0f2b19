"""Session fixtures for the Kubernetes tests: the real test control plane of tests/kube and a scratch namespace."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client, config

# Fixtures of the render tests, shared with the contract test.
from tests.integration.kubernetes.chart_render import helm, render  # noqa: F401 pylint: disable=unused-import
from tests.kube import build, control_plane
from tests.kube.control_plane import KubeCluster


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    """The control plane (built and started when needed); stopped at the end only if this session started it."""
    already_running = control_plane.is_healthy()
    try:
        kube = control_plane.up()
    except (control_plane.ControlPlaneError, build.BuildError) as error:
        pytest.fail(f"the test Kubernetes control plane did not start: {error}", pytrace=False)
    yield kube
    if not already_running:
        control_plane.down()


@pytest.fixture(scope="session")
def kube_api(kube_cluster: KubeCluster) -> client.ApiClient:
    """A Kubernetes API client logged in with the kubeconfig's admin certificate."""
    return config.new_client_from_config(config_file=str(kube_cluster.kubeconfig))


@pytest.fixture
def kube_namespace(kube_api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace, deleted after the test."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)
