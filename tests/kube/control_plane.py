"""Start, check and stop the test control plane; also a CLI for Molecule and people.

    python -m tests.kube.control_plane up       # prints the kubeconfig path; reuses a healthy running control plane
    python -m tests.kube.control_plane status   # exit code 0 when every component is healthy
    python -m tests.kube.control_plane down     # no-op when nothing runs

Everything listens on 127.0.0.1 only. The processes run detached in their own session, so they outlive the call that
started them; their pid files, logs, certificates, kubeconfig and etcd data live in the state directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.kube import build
from tests.kube.pki import Pki, ensure_pki, write_kubeconfig

STATE_DIR = (
    Path(os.environ.get("MLOPS_MLFLOW_STATE_DIR", Path.home() / ".local" / "state" / "mlops-mlflow")) / "test-kube"
)
HOST = "127.0.0.1"
# Away from the local stack's ports (5000, 5433, 8080, 9000, 9001, 9100) and from a real cluster's defaults.
ETCD_CLIENT_PORT = 23790
ETCD_PEER_PORT = 23800
APISERVER_PORT = 16443
CONTROLLER_MANAGER_PORT = 16457
SCHEDULER_PORT = 16459
KWOK_PORT = 16447
# kwok plays the kubelet of this one fake node: pods scheduled there are reported Running and Ready.
FAKE_NODE = "kwok-node-0"
SERVER = f"https://{HOST}:{APISERVER_PORT}"
SERVICE_CIDR = "10.96.0.0/16"
# The first address of the service range: the in-cluster `kubernetes` Service, hence in the serving certificate.
SERVICE_IP = "10.96.0.1"
KUBERNETES_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
START_TIMEOUT = 90
STOP_TIMEOUT = 30
START_MARKER = "==== starting"


class ControlPlaneError(RuntimeError):
    """The control plane could not be started or stopped."""


@dataclass(frozen=True)
class KubeCluster:
    """What tests and Molecule need to talk to the control plane."""

    kubeconfig: Path
    server: str
    helm: Path
    bin_dir: Path


@dataclass(frozen=True)
class Component:
    """One process of the control plane, in start order."""

    name: str
    binary: Path
    args: list[str]
    port: int
    healthy: Callable[[], bool]

    @property
    def pid_file(self) -> Path:
        return STATE_DIR / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return STATE_DIR / "logs" / f"{self.name}.log"

    def running_pid(self) -> int | None:
        """The pid from the pid file if that process is alive and still runs our binary (pids get reused)."""
        try:
            pid = int(self.pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ValueError):
            return None
        if not _alive(pid) or not cmdline.startswith(os.fsencode(self.binary) + b"\0"):
            return None
        return pid

    def log_tail(self, lines: int = 30) -> str:
        """The end of the log of the last start."""
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.rpartition(START_MARKER)[2].splitlines()[-lines:])


def cluster() -> KubeCluster:
    return KubeCluster(
        kubeconfig=STATE_DIR / "kubeconfig", server=SERVER, helm=STATE_DIR / "bin" / "helm", bin_dir=STATE_DIR / "bin"
    )


def components(binaries: dict[str, Path] | None = None) -> list[Component]:
    """The control plane's processes; binaries maps names to paths (default: where the cache keeps them)."""
    binaries = binaries or _cached_binaries()
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
        ], ETCD_CLIENT_PORT, lambda: _etcd_healthy(etcd_url)),
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
        ], APISERVER_PORT, lambda: _https_ok(f"{SERVER}/readyz", _admin_tls(pki))),
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
        ], CONTROLLER_MANAGER_PORT, lambda: _https_ok(f"https://{HOST}:{CONTROLLER_MANAGER_PORT}/healthz")),
        Component("kube-scheduler", binaries["kube-scheduler"], [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--bind-address={HOST}",
            f"--secure-port={SCHEDULER_PORT}",
            "--leader-elect=false",
        ], SCHEDULER_PORT, lambda: _https_ok(f"https://{HOST}:{SCHEDULER_PORT}/healthz")),
        Component("kwok", binaries["kwok"], [
            f"--kubeconfig={kubeconfig}",
            f"--config={build.kwok_stages()}",
            "--manage-all-nodes=true",
            "--node-lease-duration-seconds=40",
            f"--node-ip={HOST}",
            f"--server-address={HOST}:{KWOK_PORT}",
        ], KWOK_PORT, lambda: _http_ok(f"http://{HOST}:{KWOK_PORT}/healthz")),
    ]


def is_healthy() -> bool:
    return all(component.running_pid() and component.healthy() for component in components())


def up() -> KubeCluster:
    """Build what is missing, then start every component that is not already running and healthy."""
    with build.file_lock(STATE_DIR / ".lock"):
        binaries = {
            "etcd": build.ensure_etcd(),
            **build.ensure_kubernetes_binaries(*KUBERNETES_COMPONENTS),
            "kwok": build.ensure_kwok(),
            "helm": build.ensure_helm(),
        }
        _link_binaries(binaries)
        for directory in ("run", "logs"):
            (STATE_DIR / directory).mkdir(parents=True, exist_ok=True)
        pki = ensure_pki(STATE_DIR / "pki", SERVICE_IP)
        write_kubeconfig(STATE_DIR / "kubeconfig", pki, SERVER)
        for component in components(binaries):
            if component.running_pid() and component.healthy():
                continue
            _stop(component)
            _start(component)
        _ensure_fake_node(pki)
    return cluster()


def down() -> None:
    """Stop every component (last started first) and check that each process is gone."""
    with build.file_lock(STATE_DIR / ".lock"):
        for component in reversed(components()):
            _stop(component)


def status() -> dict[str, str]:
    report = {}
    for component in components():
        pid = component.running_pid()
        if pid is None:
            report[component.name] = "stopped"
        else:
            report[component.name] = f"{'healthy' if component.healthy() else 'unhealthy'} (pid {pid})"
    return report


def _cached_binaries() -> dict[str, Path]:
    return {
        "etcd": Path(shutil.which("etcd") or "/usr/bin/etcd"),
        **{name: build.cached_binary(name, build.KUBERNETES_VERSION) for name in KUBERNETES_COMPONENTS},
        "kwok": build.cached_binary("kwok", build.KWOK_VERSION),
    }


def _ensure_fake_node(pki: Pki) -> None:
    """Register the node kwok manages (once; kwok then keeps it Ready)."""
    context = _admin_tls(pki)
    if _https_ok(f"{SERVER}/api/v1/nodes/{FAKE_NODE}", context):
        return
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": FAKE_NODE,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": FAKE_NODE, "kubernetes.io/os": "linux", "type": "kwok"},
        },
    }
    request = urllib.request.Request(f"{SERVER}/api/v1/nodes", data=json.dumps(node).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10, context=context):
        pass


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


def _start(component: Component) -> None:
    if _port_answers(component.port):
        raise ControlPlaneError(
            f"cannot start {component.name}: {HOST}:{component.port} is already in use by another process "
            f"(see `ss -ltnp 'sport = :{component.port}'`)"
        )
    with component.log_file.open("a") as log:
        log.write(f"\n{START_MARKER} {component.name} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    # The shell starts the component in the background and exits at once: the component is adopted by init (no
    # zombie in the caller) and keeps the new session, so it outlives the caller.
    launcher = subprocess.run(
        ["sh", "-c", 'exec "$@" </dev/null >>"$LOG" 2>&1 & echo $!', "sh", str(component.binary), *component.args],
        env=dict(os.environ, LOG=str(component.log_file)),
        cwd=STATE_DIR,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        start_new_session=True,
    )
    pid = int(launcher.stdout)
    component.pid_file.write_text(str(pid))
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        # Not running_pid(): for a moment the process is still the shell that is about to exec the binary.
        if not _alive(pid):
            raise ControlPlaneError(f"{component.name} exited during start-up; end of {component.log_file}:\n"
                                    + component.log_tail())
        if component.healthy():
            return
        time.sleep(0.5)
    tail = component.log_tail()
    _stop(component)
    raise ControlPlaneError(f"{component.name} was not healthy after {START_TIMEOUT} s (stopped it); "
                            f"end of {component.log_file}:\n{tail}")


def _stop(component: Component) -> None:
    pid = component.running_pid()
    for sig, timeout in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 10)):
        if pid is None:
            break
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while component.running_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        pid = component.running_pid()
    if pid is not None:
        raise ControlPlaneError(f"{component.name} (pid {pid}) is still running after SIGKILL")
    component.pid_file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _port_answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((HOST, port)) == 0


def _admin_tls(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.ca_crt)
    context.load_cert_chain(pki.admin_crt, pki.admin_key)
    return context


def _etcd_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return json.load(response).get("health") == "true"
    except (OSError, ValueError):
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _https_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    """True when url answers 200. Without a context, the certificate is not checked (self-signed health ports)."""
    if context is None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.kube.control_plane", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("up", "down", "status"))
    action = parser.parse_args(argv).action
    try:
        if action == "up":
            started = time.monotonic()
            kube = up()
            build.log(f"control plane ready at {kube.server} in {time.monotonic() - started:.1f} s")
            print(kube.kubeconfig)
        elif action == "down":
            down()
        else:
            report = status()
            for name, state in report.items():
                print(f"{name}: {state}")
            return 0 if all(state.startswith("healthy") for state in report.values()) else 1
    except (ControlPlaneError, build.BuildError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
