"""Prometheus beside the test cluster scrapes what ServiceMonitors describe, as with the Prometheus Operator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.integration.kubernetes.test_node import _wait_ready
from tests.kube import control_plane, images, observability

pytestmark = pytest.mark.kubernetes

CRD = Path(__file__).resolve().parents[2] / "fixtures" / "crds" / "servicemonitors.monitoring.coreos.com.yaml"
CRD_NAME = "servicemonitors.monitoring.coreos.com"
SCRAPE_TIMEOUT = 60
# Both pods serve the same metric; only the one behind the selected Service may be scraped.
METRICS_SCRIPT = (
    "mkdir -p /tmp/www && printf '# TYPE mlops_test_total counter\\nmlops_test_total 3\\n' > /tmp/www/metrics"
    " && exec /bin/busybox httpd -f -p 8080 -h /tmp/www"
)
SELECTED_LABELS = {"app.kubernetes.io/name": "mlops-metrics"}


@pytest.fixture(scope="module")
def service_monitor_crd(kube_api) -> Iterator[None]:
    """The ServiceMonitor CRD (the schema-less fixture) unless the cluster has it; removed again if created here, and
    waited for until gone (test_chart_role creates it again)."""
    extensions = client.ApiextensionsV1Api(kube_api)
    try:
        extensions.read_custom_resource_definition(CRD_NAME)
        created = False
    except ApiException as error:
        assert error.status == 404, error
        extensions.create_custom_resource_definition(yaml.safe_load(CRD.read_text()))
        created = True
    deadline = time.monotonic() + 60
    while not any(c.type == "Established" and c.status == "True"
                  for c in extensions.read_custom_resource_definition(CRD_NAME).status.conditions or []):
        assert time.monotonic() < deadline, "the ServiceMonitor CRD was not established within 60 s"
        time.sleep(1)
    yield
    if not created:
        return
    extensions.delete_custom_resource_definition(CRD_NAME)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            extensions.read_custom_resource_definition(CRD_NAME)
        except ApiException as error:
            assert error.status == 404, error
            return
        time.sleep(1)
    pytest.fail("the ServiceMonitor CRD was still there 60 s after its deletion", pytrace=False)


def _metrics_pod(core: client.CoreV1Api, namespace: str, name: str, role: str) -> client.V1Pod:
    container = client.V1Container(
        name="exporter", image=images.SANDBOX_IMAGE, command=["/bin/sh", "-c", METRICS_SCRIPT],
        # Named differently from the Service port, like the chart's containers ("mlflow") and Service ("http").
        ports=[client.V1ContainerPort(container_port=8080, name="metrics")],
        readiness_probe=client.V1Probe(http_get=client.V1HTTPGetAction(path="/metrics", port="metrics"),
                                       period_seconds=2),
        security_context=client.V1SecurityContext(run_as_user=1001, run_as_non_root=True,
                                                  read_only_root_filesystem=True, allow_privilege_escalation=False),
        volume_mounts=[client.V1VolumeMount(name="tmp", mount_path="/tmp")],
    )
    core.create_namespaced_pod(namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"role": role}),
        spec=client.V1PodSpec(containers=[container], termination_grace_period_seconds=5,
                              volumes=[client.V1Volume(name="tmp", empty_dir=client.V1EmptyDirVolumeSource())]),
    ))
    return _wait_ready(core, namespace, name)


def _service(core: client.CoreV1Api, namespace: str, name: str, role: str, labels: dict[str, str]) -> None:
    core.create_namespaced_service(namespace, client.V1Service(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1ServiceSpec(selector={"role": role}, ports=[
            client.V1ServicePort(name="http", port=80, target_port="metrics")]),
    ))


@pytest.mark.parametrize("endpoint", [{"port": "http"}, {"targetPort": "metrics"}, {"targetPort": 8080}],
                         ids=["service-port-name", "container-port-name", "container-port-number"])
def test_prometheus_scrapes_the_pods_a_service_monitor_selects(kube_api, kube_cluster, kube_namespace,
                                                               service_monitor_crd, endpoint):
    core = client.CoreV1Api(kube_api)
    custom = client.CustomObjectsApi(kube_api)
    selected = _metrics_pod(core, kube_namespace, "selected", "selected")
    _metrics_pod(core, kube_namespace, "ignored", "ignored")
    _service(core, kube_namespace, "metrics", "selected", SELECTED_LABELS)
    _service(core, kube_namespace, "other-metrics", "ignored", {"app.kubernetes.io/name": "other"})
    # As the chart renders it: jobLabel, namespaceSelector.matchNames, selector.matchLabels, labels.
    custom.create_namespaced_custom_object("monitoring.coreos.com", "v1", kube_namespace, "servicemonitors", {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": {"name": "mlops-metrics", "labels": {"release": "prometheus"}},
        "spec": {
            # busybox httpd serves the file as application/octet-stream; Prometheus 3 needs to be told it is text.
            "endpoints": [{**endpoint, "path": "/metrics", "interval": "5s", "scrapeTimeout": "4s",
                           "fallbackScrapeProtocol": "PrometheusText0.0.4"}],
            "jobLabel": "app.kubernetes.io/name",
            "namespaceSelector": {"matchNames": [kube_namespace]},
            "selector": {"matchLabels": SELECTED_LABELS},
        },
    })
    job = f"serviceMonitor/{kube_namespace}/mlops-metrics/0"
    try:
        assert job in observability.sync_service_monitors(control_plane.STATE_DIR, kube_cluster.server)

        deadline = time.monotonic() + SCRAPE_TIMEOUT
        while not (samples := observability.query(f'mlops_test_total{{namespace="{kube_namespace}"}}')):
            assert time.monotonic() < deadline, f"Prometheus scraped nothing from {kube_namespace} in {SCRAPE_TIMEOUT} s"
            time.sleep(1)
        [sample] = samples
        assert sample["value"][1] == "3"
        assert sample["metric"] == {
            "__name__": "mlops_test_total",
            "instance": f"{selected.status.pod_ip}:8080",
            "job": "mlops-metrics",
            "namespace": kube_namespace,
            "service": "metrics",
            "pod": "selected",
            "container": "exporter",
            "endpoint": str(next(iter(endpoint.values()))),
        }
        # The pod behind the other Service is discovered in the same namespace, then dropped by the selector.
        assert [s["metric"]["pod"] for s in observability.query(f'up{{namespace="{kube_namespace}"}}')] == ["selected"]
    finally:
        custom.delete_namespaced_custom_object("monitoring.coreos.com", "v1", kube_namespace, "servicemonitors",
                                               "mlops-metrics")
        assert job not in observability.sync_service_monitors(control_plane.STATE_DIR, kube_cluster.server)


def test_prometheus_reads_the_api_server_with_its_own_read_only_token(kube_api, kube_cluster):
    """Least privilege: the service account may list what discovery needs and nothing else."""
    authorization = client.AuthorizationV1Api(kube_api)
    account = f"system:serviceaccount:{observability.PROMETHEUS_NAMESPACE}:{observability.PROMETHEUS_ACCOUNT}"

    def allowed(verb: str, resource: str, group: str = "") -> bool:
        review = authorization.create_subject_access_review(client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
            user=account, resource_attributes=client.V1ResourceAttributes(verb=verb, resource=resource, group=group))))
        return review.status.allowed

    for resource, group in [("pods", ""), ("services", ""), ("endpoints", ""), ("namespaces", ""),
                            ("endpointslices", "discovery.k8s.io")]:
        assert allowed("list", resource, group) and allowed("watch", resource, group), resource
    assert not allowed("get", "secrets")
    assert not allowed("create", "pods")
    assert not allowed("delete", "services")
    token = control_plane.STATE_DIR / "prometheus" / "token"
    assert token.stat().st_mode & 0o777 == 0o600
