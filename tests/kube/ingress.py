"""The test cluster's ingress controller: Traefik v3 on the host, configured like the Traefik k3s bundles.

    python -m tests.kube.ingress tls-secret --namespace mlflow --name mlflow-tls --host mlflow.kubernetes.test
        # makes the Secret (as cert-manager would) and prints the CA file clients must trust

Traefik runs as a host process beside the kubelet (there is no kube-proxy and no LoadBalancer to put a pod behind).
Like k3s's: entrypoints `web` (INGRESS_ADDRESS:HTTP_PORT) and `websecure` (INGRESS_ADDRESS:HTTPS_PORT, TLS on every
router), the Kubernetes Ingress provider for the default IngressClass `traefik` and the Kubernetes CRD provider
(traefik.io Middleware, IngressRoute ...). It reaches the API server as the ServiceAccount kube-system/traefik with
Traefik's own ClusterRole, through a TokenRequest token, and forwards to pod IPs (EndpointSlices) over the node's
bridge: pods see its connections come from PROXY_SOURCE_ADDRESS.
"""

from __future__ import annotations

import argparse
import base64
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from kubernetes import client, config, dynamic

from tests.kube import build, node
from tests.kube import process as processes
from tests.kube.pki import Pki, create_private, ensure_ca, signed_cert
from tests.kube.process import Component

if TYPE_CHECKING:
    from tests.kube.control_plane import KubeCluster

INGRESS_ADDRESS = "127.0.0.1"
HTTP_PORT = 80
HTTPS_PORT = 443
# Traefik's internal entrypoint: the ping health endpoint only, on loopback.
PING_PORT = 19000
# Traefik runs on the host, so its connections to pods leave through the bridge from the node's address: the one
# address an application behind the ingress should trust for X-Forwarded-* (e.g. MLflow's trusted proxies).
PROXY_SOURCE_ADDRESS = node.NODE_ADDRESS
INGRESS_CLASS = "traefik"
CONTROLLER = "traefik.io/ingress-controller"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "traefik"
# Traefik reads its token once, at start; a new one is requested at every start.
TOKEN_SECONDS = 30 * 24 * 3600
FIELD_MANAGER = "mlops-mlflow-tests"
# In Traefik's module source: its CRDs and the ClusterRole its Kubernetes providers need.
CRD_MANIFEST = "docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml"
RBAC_MANIFEST = "docs/content/reference/dynamic-configuration/kubernetes-crd-rbac.yml"
# The host names a test certificate is for (they also name its files).
HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")


def traefik(state_dir: Path, binary: Path) -> Component:
    return Component("traefik", binary, [f"--configFile={_config_file(state_dir)}"], state_dir,
                     lambda: processes.http_ok(f"http://{INGRESS_ADDRESS}:{PING_PORT}/ping"),
                     address=(INGRESS_ADDRESS, HTTPS_PORT))


def ensure(kube: KubeCluster, binary: Path) -> None:
    """Traefik's CRDs, RBAC and IngressClass in the cluster, then Traefik running (started with a fresh token)."""
    api = _client(kube)
    source = build.traefik_source()
    objects = [
        *_manifests(source / CRD_MANIFEST),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE}},
        *_rbac(source / RBAC_MANIFEST),
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
         "metadata": {"name": INGRESS_CLASS, "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
         "spec": {"controller": CONTROLLER}},
    ]
    for manifest in objects:
        _apply(api, manifest)
    component = traefik(kube.state_dir, binary)
    if _write_config(kube) or not component.is_up():
        processes.stop(component)
        _write_token(api.client, kube.state_dir)
        processes.start(component)


def ensure_tls_secret(kube: KubeCluster, namespace: str, name: str, hosts: list[str]) -> Path:
    """A kubernetes.io/tls Secret for hosts, signed by the ingress test CA; returns the CA file clients must trust.

    The CA and one certificate per set of hosts are made once and kept in the state directory; the Secret has the
    keys cert-manager writes (tls.crt, tls.key, ca.crt).
    """
    names = sorted(set(hosts))
    if not names or not all(HOST_NAME.fullmatch(host) for host in names):
        raise ValueError(f"host names expected (lower case, digits, '-' and '.'): {hosts}")
    directory = kube.state_dir / "ingress-tls"
    # Molecule and pytest may ask at the same time: a key must never be paired with another run's certificate.
    with build.file_lock(directory / ".lock"):
        # A CA of its own, as an issuer of cert-manager's would be, apart from the cluster CA.
        pki = ensure_ca(directory, "mlops-mlflow-test-ingress-ca")
        key = pki.directory / f"{','.join(names)}.key"
        crt = key.with_suffix(".crt")
        if not crt.exists():
            signed_cert(pki, key, crt, f"/CN={names[0]}", "serverAuth",
                        "subjectAltName=" + ",".join(f"DNS:{host}" for host in names))
    files = {"tls.crt": crt, "tls.key": key, "ca.crt": pki.ca_crt}
    _apply(_client(kube), {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace},
        "data": {field: base64.b64encode(file.read_bytes()).decode() for field, file in files.items()},
    })
    return pki.ca_crt


def _config_file(state_dir: Path) -> Path:
    return state_dir / "traefik" / "traefik.yml"


def _token_file(state_dir: Path) -> Path:
    return state_dir / "traefik" / "token"


def _write_config(kube: KubeCluster) -> bool:
    """Traefik's static configuration (no secret in it: the token is in its own file); True when it changed."""
    kubernetes = {
        "endpoint": kube.server,
        "token": str(_token_file(kube.state_dir)),
        "certAuthFilePath": str(Pki.under(kube.state_dir / "pki").ca_crt),
    }
    text = yaml.safe_dump({
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {
            "web": {"address": f"{INGRESS_ADDRESS}:{HTTP_PORT}"},
            # As k3s's: every router is also served with TLS here (certificates from the Ingresses' spec.tls).
            "websecure": {"address": f"{INGRESS_ADDRESS}:{HTTPS_PORT}", "http": {"tls": {}}},
            "traefik": {"address": f"{INGRESS_ADDRESS}:{PING_PORT}"},
        },
        "ping": {"entryPoint": "traefik"},
        "providers": {
            # Ingress status shows the address clients reach Traefik at (k3s publishes its LoadBalancer Service's).
            "kubernetesIngress": {**kubernetes, "ingressClass": INGRESS_CLASS,
                                  "ingressEndpoint": {"ip": INGRESS_ADDRESS}},
            "kubernetesCRD": {**kubernetes, "allowCrossNamespace": False},
        },
        # stdout, i.e. the component's log.
        "log": {"level": "INFO", "noColor": True},
        "accessLog": {},
    }, sort_keys=False)
    path = _config_file(kube.state_dir)
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True


def _write_token(api: client.ApiClient, state_dir: Path) -> None:
    """A token of the ServiceAccount from the TokenRequest API, mode 0600 (Traefik reads a token file path too)."""
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
        audiences=[], expiration_seconds=TOKEN_SECONDS))
    token = client.CoreV1Api(api).create_namespaced_service_account_token(SERVICE_ACCOUNT, NAMESPACE, request)
    path = _token_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.new")
    create_private(scratch)
    scratch.write_text(token.status.token)
    scratch.replace(path)


def _rbac(path: Path) -> list[dict]:
    """Traefik's ClusterRole as published, bound to our ServiceAccount instead of its example's."""
    manifests = _manifests(path)
    for manifest in manifests:
        if manifest["kind"] == "ClusterRoleBinding":
            manifest["subjects"] = [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}]
    return manifests


def _manifests(path: Path) -> list[dict]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def _client(kube: KubeCluster) -> dynamic.DynamicClient:
    return dynamic.DynamicClient(config.new_client_from_config(config_file=str(kube.kubeconfig)))


def _apply(api: dynamic.DynamicClient, manifest: dict) -> None:
    """Server-side apply: creates or updates, and changes nothing when the object already matches."""
    resource = api.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
    api.server_side_apply(resource, body=manifest, field_manager=FIELD_MANAGER, force_conflicts=True)


def main(argv: list[str] | None = None) -> int:
    # Imported here: control_plane imports this module to start Traefik.
    from tests.kube import control_plane

    parser = argparse.ArgumentParser(prog="python -m tests.kube.ingress", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    tls = commands.add_parser("tls-secret", help="create or update a TLS Secret; print the CA file to trust")
    tls.add_argument("--namespace", required=True)
    tls.add_argument("--name", required=True)
    tls.add_argument("--host", action="append", required=True, help="a host name of the certificate (repeatable)")
    arguments = parser.parse_args(argv)
    try:
        print(ensure_tls_secret(control_plane.cluster(), arguments.namespace, arguments.name, arguments.host))
    except ValueError as error:
        parser.error(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
