"""Start, check and stop the test cluster; also a CLI for Molecule and people.

    python -m tests.kube.control_plane build    # builds the binaries from Go sources (cached); starts nothing
    python -m tests.kube.control_plane up       # prints the kubeconfig path; reuses healthy running components
    python -m tests.kube.control_plane status   # exit code 0 when every component is healthy
    python -m tests.kube.control_plane down     # stops every container and component; no-op when nothing runs

The control plane (etcd, kube-apiserver, controller-manager, scheduler) listens on 127.0.0.1 only. Beside it run a
local image registry and podman's Docker API (tests/kube/images.py) and one real node: containerd, runc and a
kubelet on a CNI bridge (tests/kube/node.py), with Traefik as its ingress controller (tests/kube/ingress.py).
The processes run detached in their own session, so they outlive the call that started them; their pid files, logs,
certificates, kubeconfig and data live in the state directory.
"""

from __future__ import annotations

import argparse
import json
import shutil
import ssl
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests import stack_layout
from tests.kube import build, images, ingress, node, observability
from tests.kube import process as processes
from tests.kube.pki import Pki, ensure_pki, write_kubeconfig
from tests.kube.process import Component

STATE_DIR = stack_layout.STATE_DIR / "test-kube"
HOST = "127.0.0.1"
# Away from the local stack's ports (5000, 5433, 8080, 9000, 9001, 9100) and from a real cluster's defaults.
ETCD_CLIENT_PORT = 23790
ETCD_PEER_PORT = 23800
APISERVER_PORT = 16443
CONTROLLER_MANAGER_PORT = 16457
SCHEDULER_PORT = 16459
SERVER = f"https://{HOST}:{APISERVER_PORT}"
SERVICE_CIDR = "10.96.0.0/16"
# The first address of the service range: the in-cluster `kubernetes` Service, hence in the serving certificate.
SERVICE_IP = "10.96.0.1"
KUBERNETES_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet")
# A cold kubelet registers and gets its CNI ready in seconds; this stops a node that never does.
NODE_READY_TIMEOUT = 120


class ControlPlaneError(RuntimeError):
    """The test cluster could not be started or stopped."""


@dataclass(frozen=True)
class KubeCluster:
    """What tests and Molecule need to talk to the test cluster."""

    kubeconfig: Path
    server: str
    helm: Path
    bin_dir: Path
    # Where pods are and what they reach: the node's bridge address (relays to the local stack listen there).
    node_address: str
    # host:port of the registry the node pulls from, and podman's Docker API that builds images for it.
    registry: str
    docker_host: str
    # Redis as pods reach it (the URL holds its password) and Prometheus' HTTP API (tests/kube/observability.py).
    redis_url: str
    prometheus_url: str
    # pid files, logs, certificates and data of the components (tests/kube/ingress.py keeps its own there).
    state_dir: Path


def cluster() -> KubeCluster:
    return KubeCluster(
        kubeconfig=STATE_DIR / "kubeconfig", server=SERVER, helm=STATE_DIR / "bin" / "helm", bin_dir=STATE_DIR / "bin",
        node_address=node.NODE_ADDRESS, registry=images.REGISTRY, docker_host=images.Podman(STATE_DIR).docker_host,
        redis_url=observability.redis_url(STATE_DIR), prometheus_url=observability.PROMETHEUS_URL,
        state_dir=STATE_DIR,
    )


def control_plane_components(binaries: dict[str, Path]) -> list[Component]:
    """etcd, kube-apiserver, controller-manager and scheduler, in start order."""
    pki = Pki.under(STATE_DIR / "pki")
    kubeconfig = STATE_DIR / "kubeconfig"
    etcd_url = f"http://{HOST}:{ETCD_CLIENT_PORT}"
    peer_url = f"http://{HOST}:{ETCD_PEER_PORT}"
    return [
        Component("etcd", binaries["etcd"], [
            "--name=test-kube",
            f"--data-dir={STATE_DIR / 'etcd-data'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=test-kube={peer_url}",
        ], STATE_DIR, lambda: processes.etcd_healthy(etcd_url), address=(HOST, ETCD_CLIENT_PORT)),
        Component("kube-apiserver", binaries["kube-apiserver"], [
            f"--etcd-servers={etcd_url}",
            f"--bind-address={HOST}",
            f"--advertise-address={HOST}",
            f"--secure-port={APISERVER_PORT}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--tls-cert-file={pki.apiserver_crt}",
            f"--tls-private-key-file={pki.apiserver_key}",
            f"--client-ca-file={pki.ca_crt}",
            f"--cert-dir={STATE_DIR / 'kube-apiserver'}",
            "--anonymous-auth=false",
            # The `kubernetes` Service cannot have a loopback endpoint; no Pod here needs to reach the API server.
            "--endpoint-reconciler-type=none",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            # logs, exec and port-forward: the node's name does not resolve, its address does; the kubelet trusts
            # client certificates of the test CA.
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={pki.admin_crt}",
            f"--kubelet-client-key={pki.admin_key}",
        ], STATE_DIR, lambda: processes.https_ok(f"{SERVER}/readyz", _admin_tls(pki)), address=(HOST, APISERVER_PORT)),
        Component("kube-controller-manager", binaries["kube-controller-manager"], [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--bind-address={HOST}",
            f"--secure-port={CONTROLLER_MANAGER_PORT}",
            f"--cert-dir={STATE_DIR / 'kube-controller-manager'}",
            f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_crt}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--leader-elect=false",
        ], STATE_DIR, lambda: processes.https_ok(f"https://{HOST}:{CONTROLLER_MANAGER_PORT}/healthz"),
            address=(HOST, CONTROLLER_MANAGER_PORT)),
        Component("kube-scheduler", binaries["kube-scheduler"], [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--bind-address={HOST}",
            f"--secure-port={SCHEDULER_PORT}",
            "--leader-elect=false",
        ], STATE_DIR, lambda: processes.https_ok(f"https://{HOST}:{SCHEDULER_PORT}/healthz"),
            address=(HOST, SCHEDULER_PORT)),
    ]


def image_components() -> list[Component]:
    podman = images.Podman(STATE_DIR)
    podman.configure()
    return [images.registry(STATE_DIR), podman.service()]


def node_components(binaries: dict[str, Path]) -> list[Component]:
    """The relays, containerd and the kubelet, in start order (the bridge must exist: they bind to its address)."""
    pki = Pki.under(STATE_DIR / "pki")
    return [
        *node.relays(STATE_DIR),
        node.containerd(STATE_DIR, images.SANDBOX_IMAGE, images.REGISTRY),
        node.kubelet(STATE_DIR, binaries["kubelet"], pki, STATE_DIR / "kubeconfig"),
    ]


def components(binaries: dict[str, Path] | None = None) -> list[Component]:
    """Every process of the test cluster, in start order; binaries maps names to paths (default: the cache's)."""
    binaries = binaries or _cached_binaries()
    return [*control_plane_components(binaries), *image_components(), *observability.components(STATE_DIR),
            *node_components(binaries),
            ingress.traefik(STATE_DIR, binaries["traefik"])]


def is_healthy() -> bool:
    return all(component.is_up() for component in components())


def build_binaries() -> None:
    """Build the binaries that come from Go sources (about 25 minutes cold on 2 cores), nothing from apt, start nothing.

    `make test` runs this in the background at the lowest CPU priority while the local stack's tests run; `up` waits
    for each build on its file lock and builds whatever is still missing itself. Helm first: the chart's render tests
    need it before anything else.
    """
    build.ensure_helm()
    build.ensure_kubernetes_binaries(*KUBERNETES_COMPONENTS)
    build.ensure_traefik()
    observability.ensure_prometheus_binary()


def up() -> KubeCluster:
    """Build what is missing, then start every component that is not already running and healthy."""
    with build.file_lock(STATE_DIR / ".lock"):
        images.ensure_tools()
        node.ensure_tools()
        binaries = {
            "etcd": build.ensure_etcd(),
            **build.ensure_kubernetes_binaries(*KUBERNETES_COMPONENTS),
            "helm": build.ensure_helm(),
            "traefik": build.ensure_traefik(),
        }
        _link_binaries(binaries)
        pki = ensure_pki(STATE_DIR / "pki", SERVICE_IP)
        write_kubeconfig(STATE_DIR / "kubeconfig", pki, SERVER)
        for component in [*control_plane_components(binaries), *image_components()]:
            processes.ensure(component)
        podman = images.Podman(STATE_DIR)
        images.ensure_sandbox_image(podman)
        images.ensure_stand_in_base(podman)
        node.ensure_bridge()
        for component in node_components(binaries):
            processes.ensure(component)
        _wait_for_node_ready(pki)
        observability.up(STATE_DIR, SERVER)
        ingress.ensure(cluster(), binaries["traefik"])
    return cluster()


def down() -> None:
    """Stop every container, then every component (last started first), and check that each process is gone."""
    with build.file_lock(STATE_DIR / ".lock"):
        everything = components()
        # What runs on top of the node (Traefik ...) first.
        on_top = [c.name for c in everything].index("kubelet") + 1
        for component in reversed(everything[on_top:]):
            processes.stop(component)
        everything = everything[:on_top]
        kubelet, containerd = everything[-1], everything[-2]
        processes.stop(kubelet)
        node.kill_containers(STATE_DIR)
        processes.stop(containerd)
        node.forget_pod_networks(STATE_DIR)
        for component in reversed(everything[:-2]):
            processes.stop(component)
        node.unmount_below(STATE_DIR)
        node.remove_bridge()


def status() -> dict[str, str]:
    return processes.status(components())


def _cached_binaries() -> dict[str, Path]:
    return {
        "etcd": Path(shutil.which("etcd") or "/usr/bin/etcd"),
        **{name: build.cached_binary(name, build.KUBERNETES_VERSION) for name in KUBERNETES_COMPONENTS},
        "traefik": build.traefik_binary(),
    }


def _wait_for_node_ready(pki: Pki) -> None:
    """The kubelet registers the node; it turns Ready once containerd's CNI network is up."""
    context = _admin_tls(pki)
    deadline = time.monotonic() + NODE_READY_TIMEOUT
    conditions: dict[str, str] = {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{SERVER}/api/v1/nodes/{node.NODE_NAME}", timeout=5,
                                        context=context) as response:
                found = json.load(response)
            conditions = {c["type"]: c.get("message", c["status"]) for c in found["status"].get("conditions", [])}
            if any(c["type"] == "Ready" and c["status"] == "True" for c in found["status"].get("conditions", [])):
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(1)
    raise ControlPlaneError(f"node {node.NODE_NAME} was not Ready after {NODE_READY_TIMEOUT} s: {conditions}; "
                            f"see {STATE_DIR / 'logs' / 'kubelet.log'} and containerd.log")


def _link_binaries(binaries: dict[str, Path]) -> None:
    """One directory with every binary (for PATH), pointing into the version-keyed cache."""
    bin_dir = STATE_DIR / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, binary in binaries.items():
        link = bin_dir / name
        if link.is_symlink() and link.readlink() == binary:
            continue
        scratch = bin_dir / f".{name}.new"
        scratch.unlink(missing_ok=True)
        scratch.symlink_to(binary)
        scratch.replace(link)


def _admin_tls(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.ca_crt)
    context.load_cert_chain(pki.admin_crt, pki.admin_key)
    return context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.kube.control_plane", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("build", "up", "down", "status"))
    action = parser.parse_args(argv).action
    try:
        if action == "build":
            started = time.monotonic()
            build_binaries()
            build.log(f"every binary of the test cluster is built ({time.monotonic() - started:.1f} s)")
        elif action == "up":
            started = time.monotonic()
            kube = up()
            build.log(f"test cluster ready at {kube.server} in {time.monotonic() - started:.1f} s")
            print(kube.kubeconfig)
        elif action == "down":
            down()
        else:
            report = status()
            for name, state in report.items():
                print(f"{name}: {state}")
            return 0 if all(state.startswith("healthy") for state in report.values()) else 1
    except (ControlPlaneError, processes.ProcessError, build.BuildError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
