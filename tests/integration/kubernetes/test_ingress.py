"""Traefik, the test cluster's ingress controller, routes an Ingress as k3s's does: TLS from the Ingress's Secret,
http redirected to https and HSTS by traefik.io Middlewares, X-Forwarded-Proto https to the pod."""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client

from tests.ansible_runner import run_module
from tests.kube import build, images, ingress

pytestmark = pytest.mark.kubernetes

HOST = "ingress-test.kubernetes.test"
READY_TIMEOUT = 120
PAGE = "hello-through-traefik\n"
# A CGI script of busybox httpd: what the pod sees of the proxied request (request headers arrive as HTTP_*).
FORWARDED_CGI = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo "proto=$HTTP_X_FORWARDED_PROTO from=$REMOTE_ADDR"
"""


@dataclass(frozen=True)
class RoutedApp:
    namespace: str
    # The ingress test CA: what clients of the routed host trust.
    cafile: Path


def _get(scheme: str, path: str, cafile: Path) -> tuple[http.client.HTTPResponse, str]:
    """GET http(s)://HOST/path from Traefik at its loopback address (HOST resolves to it here, never through DNS);
    the response and its body."""
    port = ingress.HTTPS_PORT if scheme == "https" else ingress.HTTP_PORT
    sock = socket.create_connection((ingress.INGRESS_ADDRESS, port), timeout=10)
    if scheme == "https":
        # SNI and the certificate check both use HOST.
        sock = ssl.create_default_context(cafile=cafile).wrap_socket(sock, server_hostname=HOST)
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    connection.sock = sock
    connection.request("GET", path, headers={"Host": HOST})
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    return response, body


def _wait(what: str, check, timeout: int = READY_TIMEOUT):
    """check() until it returns something truthy; OSErrors count as not yet (Traefik picks up routes in seconds)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as error:
            last = error
        time.sleep(1)
    pytest.fail(f"{what} not within {timeout} s: {last}", pytrace=False)


@pytest.fixture(scope="module")
def routed_app(kube_cluster, kube_api) -> Iterator[RoutedApp]:
    """A busybox httpd pod behind a Service and an Ingress of class traefik, with a TLS Secret and two Middlewares,
    in a namespace of its own, deleted afterwards with everything in it."""
    namespace = f"test-ingress-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        yield _deploy(kube_cluster, kube_api, namespace)
    finally:
        core.delete_namespace(namespace)


def _deploy(kube_cluster, kube_api, namespace: str) -> RoutedApp:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="www"), data={"index.html": PAGE, "forwarded": FORWARDED_CGI}))
    container = client.V1Container(
        name="web", image=images.SANDBOX_IMAGE, command=["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"],
        ports=[client.V1ContainerPort(container_port=8080, name="http")],
        readiness_probe=client.V1Probe(http_get=client.V1HTTPGetAction(path="/", port="http"), period_seconds=2),
        security_context=client.V1SecurityContext(
            run_as_user=1001, run_as_non_root=True, read_only_root_filesystem=True,
            allow_privilege_escalation=False, capabilities=client.V1Capabilities(drop=["ALL"])),
        volume_mounts=[client.V1VolumeMount(name="www", mount_path="/www")],
    )
    www = client.V1ConfigMapVolumeSource(name="www", items=[
        client.V1KeyToPath(key="index.html", path="index.html"),
        client.V1KeyToPath(key="forwarded", path="cgi-bin/forwarded", mode=0o555),
    ])
    core.create_namespaced_pod(namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name="web", labels={"app": "web"}),
        spec=client.V1PodSpec(containers=[container], termination_grace_period_seconds=5,
                              volumes=[client.V1Volume(name="www", config_map=www)]),
    ))
    core.create_namespaced_service(namespace, client.V1Service(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1ServiceSpec(selector={"app": "web"},
                                  ports=[client.V1ServicePort(name="http", port=80, target_port="http")]),
    ))
    cafile = ingress.ensure_tls_secret(kube_cluster, namespace, "web-tls", [HOST])
    custom = client.CustomObjectsApi(kube_api)
    for name, spec in {"redirect": {"redirectScheme": {"scheme": "https", "permanent": True}},
                       "hsts": {"headers": {"stsSeconds": 31536000}}}.items():
        custom.create_namespaced_custom_object("traefik.io", "v1alpha1", namespace, "middlewares", {
            "apiVersion": "traefik.io/v1alpha1", "kind": "Middleware", "metadata": {"name": name}, "spec": spec})
    middlewares = f"{namespace}-redirect@kubernetescrd,{namespace}-hsts@kubernetescrd"
    backend = client.V1IngressBackend(service=client.V1IngressServiceBackend(
        name="web", port=client.V1ServiceBackendPort(name="http")))
    rule = client.V1IngressRule(host=HOST, http=client.V1HTTPIngressRuleValue(
        paths=[client.V1HTTPIngressPath(path="/", path_type="Prefix", backend=backend)]))
    client.NetworkingV1Api(kube_api).create_namespaced_ingress(namespace, client.V1Ingress(
        metadata=client.V1ObjectMeta(name="web",
                                     annotations={"traefik.ingress.kubernetes.io/router.middlewares": middlewares}),
        spec=client.V1IngressSpec(ingress_class_name=ingress.INGRESS_CLASS, rules=[rule],
                                  tls=[client.V1IngressTLS(hosts=[HOST], secret_name="web-tls")]),
    ))
    _wait("pod web Ready", lambda: any(c.type == "Ready" and c.status == "True"
                                       for c in core.read_namespaced_pod("web", namespace).status.conditions or []))
    _wait("the https route", lambda: _get("https", "/", cafile)[0].status == 200)
    return RoutedApp(namespace, cafile)


def test_https_serves_the_pod_with_a_certificate_of_the_test_ca_and_hsts(routed_app):
    response, body = _get("https", "/", routed_app.cafile)

    assert response.status == 200
    assert body == PAGE
    assert response.getheader("Strict-Transport-Security") == "max-age=31536000"


def test_the_pod_sees_https_forwarded_from_the_node_address(routed_app):
    response, body = _get("https", "/cgi-bin/forwarded", routed_app.cafile)

    assert response.status == 200
    # busybox httpd listens on an IPv6 socket: it shows the IPv4 peer as an IPv4-mapped address.
    assert body == f"proto=https from=[::ffff:{ingress.PROXY_SOURCE_ADDRESS}]\n"


def test_http_is_redirected_permanently_to_https(routed_app):
    response = _get("http", "/some/path?q=1", routed_app.cafile)[0]

    assert response.status in (301, 308)
    assert response.getheader("Location") == f"https://{HOST}/some/path?q=1"
    # HSTS is for https answers only.
    assert response.getheader("Strict-Transport-Security") is None


def test_the_certificate_is_not_trusted_without_the_test_ca(routed_app, kube_cluster):
    with pytest.raises(ssl.SSLCertVerificationError):
        _get("https", "/", kube_cluster.state_dir / "pki" / "ca.crt")


def test_the_ingress_status_shows_traefiks_address(routed_app, kube_api):
    networking = client.NetworkingV1Api(kube_api)

    def address():
        balancer = networking.read_namespaced_ingress("web", routed_app.namespace).status.load_balancer
        return [entry.ip for entry in balancer.ingress or []]

    assert _wait("the Ingress status", address, timeout=30) == [ingress.INGRESS_ADDRESS]


def test_traefik_is_the_default_ingress_class(kube_api):
    found = client.NetworkingV1Api(kube_api).read_ingress_class(ingress.INGRESS_CLASS)

    assert found.spec.controller == ingress.CONTROLLER
    assert found.metadata.annotations["ingressclass.kubernetes.io/is-default-class"] == "true"


@pytest.mark.parametrize(("verb", "group", "resource", "allowed"), [
    ("watch", "networking.k8s.io", "ingresses", True),
    ("list", "traefik.io", "middlewares", True),
    ("create", "", "pods", False),
    ("update", "", "secrets", False),
    ("create", "traefik.io", "middlewares", False),
])
def test_traefik_runs_with_its_own_cluster_role_only(kube_api, verb, group, resource, allowed):
    review = client.AuthorizationV1Api(kube_api).create_subject_access_review(client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{ingress.NAMESPACE}:{ingress.SERVICE_ACCOUNT}",
            groups=["system:serviceaccounts", f"system:serviceaccounts:{ingress.NAMESPACE}", "system:authenticated"],
            resource_attributes=client.V1ResourceAttributes(verb=verb, group=group, resource=resource))))

    assert review.status.allowed is allowed


def test_traefik_is_the_pinned_version(kube_cluster):
    output = subprocess.run([str(build.traefik_binary()), "version"], capture_output=True, text=True, timeout=30,
                            check=True).stdout

    assert f"Version:      {build.TRAEFIK_VERSION}" in output, output


def _probe(url: str, *options: str):
    """mlops.mlflow.http_probe through Traefik's address, as the doctor uses it before DNS points at the ingress."""
    return run_module("mlops.mlflow.http_probe", " ".join([f"url={url}", f"address={ingress.INGRESS_ADDRESS}",
                                                           *options]))


def test_http_probe_reads_the_ingress_through_its_address_with_host_and_sni(routed_app):
    answer = _probe(f"https://{HOST}/", f"ca_path={routed_app.cafile}")
    assert answer.returncode == 0, answer.output
    result = answer.module_result
    assert result["status"] == 200 and result["changed"] is False
    assert result["headers"]["strict-transport-security"] == "max-age=31536000"
    assert result["tls"]["version"].startswith("TLSv1.")
    assert result["tls"]["subject_alt_names"] == [HOST] and result["tls"]["days_left"] > 300
    redirect = _probe(f"http://{HOST}/x?y=1").module_result
    assert (redirect["status"], redirect["location"], redirect["tls"]) == (301, f"https://{HOST}/x?y=1", {})


@pytest.mark.parametrize("url, options, message", [
    (f"https://{HOST}/", [], f"TLS with {HOST} through 127.0.0.1 failed: unable to get local issuer certificate"),
    (f"https://{HOST}:1/", [], f"No answer from https://{HOST}:1/ through 127.0.0.1: [Errno 111] Connection refused"),
    ("ftp://example.test/", [], "url must be an http:// or https:// URL with a host, got 'ftp://example.test/'"),
], ids=["untrusted-certificate", "nothing-listening", "not-http"])
def test_http_probe_fails_in_one_line_when_no_answer_comes(routed_app, url, options, message):
    answer = _probe(url, *options)
    assert answer.returncode != 0
    assert answer.module_result["msg"] == message
    assert "Traceback" not in answer.output
