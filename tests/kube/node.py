"""The test cluster's one real node: a kubelet, containerd with runc, and a CNI bridge, all started by the tests.

The pods live in network namespaces on the bridge BRIDGE (POD_SUBNET). They have no default route: they reach the
host's bridge address NODE_ADDRESS and each other, nothing else. The local stack (PostgreSQL, Keycloak, MinIO)
listens on loopback only, so socat relays on NODE_ADDRESS forward the ports pods need to it; for MLflow in a pod
those services are at NODE_ADDRESS, as an external database or identity provider would be at some address on a real
cluster. There is no kube-proxy: Service cluster IPs do not route, tests reach pods by their IPs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.kube import build
from tests.kube.pki import Pki
from tests.kube.process import Component, http_ok, port_answers, unix_socket_answers

NODE_NAME = "mlops-node"
BRIDGE = "mlopsbr0"
POD_SUBNET = "10.88.0.0/24"
# The bridge's own address: the kubelet's node IP (a loopback node IP is refused) and where the relays listen.
NODE_ADDRESS = "10.88.0.1"
KUBELET_PORT = 16250
KUBELET_HEALTHZ_PORT = 16248
# The local stack's ports (roles/local_services defaults): PostgreSQL, Keycloak, MinIO.
RELAYED_PORTS = {"postgresql": 5433, "keycloak": 8080, "minio": 9000}
PACKAGES = {"containerd": "containerd", "runc": "runc", "socat": "socat", "ip": "iproute2"}
CNI_BIN_DIR = Path("/usr/lib/cni")
CNI_PACKAGE = "containernetworking-plugins"
RUNC_WRAPPER = Path(__file__).with_name("runc_wrapper.py")


def ensure_tools() -> None:
    missing = [package for binary, package in PACKAGES.items() if not shutil.which(binary)]
    if not (CNI_BIN_DIR / "bridge").exists():
        missing.append(CNI_PACKAGE)
    if missing:
        build.apt_install(*missing)


def ensure_bridge() -> None:
    """The bridge with the node address, before the kubelet and the relays bind to that address."""
    if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True, check=False).returncode != 0:
        _ip("link", "add", BRIDGE, "type", "bridge")
    addresses = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE], capture_output=True, text=True,
                               check=True).stdout
    if f" {NODE_ADDRESS}/" not in addresses:
        _ip("addr", "add", f"{NODE_ADDRESS}/{POD_SUBNET.split('/')[1]}", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")


def remove_bridge() -> None:
    if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True, check=False).returncode == 0:
        _ip("link", "delete", BRIDGE)


def relays(state_dir: Path) -> list[Component]:
    socat = Path(shutil.which("socat") or "/usr/bin/socat")
    return [
        Component(f"relay-{name}", socat,
                  [f"TCP-LISTEN:{port},bind={NODE_ADDRESS},fork,reuseaddr", f"TCP:127.0.0.1:{port}"],
                  state_dir, lambda port=port: port_answers(NODE_ADDRESS, port), address=(NODE_ADDRESS, port))
        for name, port in RELAYED_PORTS.items()
    ]


def containerd(state_dir: Path, sandbox_image: str, registry: str) -> Component:
    directory = state_dir / "containerd"
    socket = directory / "containerd.sock"
    cni_conf_dir = directory / "cni"
    cni_conf_dir.mkdir(parents=True, exist_ok=True)
    (cni_conf_dir / "10-mlops.conflist").write_text(json.dumps({
        "cniVersion": "0.4.0",
        "name": "mlops",
        "plugins": [{
            "type": "bridge",
            "bridge": BRIDGE,
            "isGateway": True,
            "ipMasq": False,
            "hairpinMode": True,
            # No routes: the pods reach the bridge's subnet only.
            "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_ADDRESS}]],
                     "dataDir": str(ipam_dir(state_dir))},
        }],
    }, indent=2))
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    config = directory / "config.toml"
    config.write_text("\n".join([
        "version = 2",
        f'root = "{directory / "root"}"',
        f'state = "{directory / "state"}"',
        "[grpc]",
        f'  address = "{socket}"',
        f"[{cri}]",
        f'  sandbox_image = "{sandbox_image}"',
        "  disable_apparmor = true",
        f"[{cri}.containerd]",
        '  default_runtime_name = "runc"',
        f"[{cri}.containerd.runtimes.runc]",
        '  runtime_type = "io.containerd.runc.v2"',
        f"[{cri}.containerd.runtimes.runc.options]",
        f'  BinaryName = "{RUNC_WRAPPER}"',
        f"[{cri}.cni]",
        f'  bin_dir = "{CNI_BIN_DIR}"',
        f'  conf_dir = "{cni_conf_dir}"',
        # The test registry speaks plain HTTP.
        f'[{cri}.registry.mirrors."{registry}"]',
        f'  endpoint = ["http://{registry}"]',
        "",
    ]))
    return Component("containerd", Path(shutil.which("containerd") or "/usr/bin/containerd"),
                     ["--config", str(config)], state_dir, lambda: unix_socket_answers(socket),
                     env={"MLOPS_MLFLOW_RUNC": shutil.which("runc") or "/usr/sbin/runc"})


def ipam_dir(state_dir: Path) -> Path:
    return state_dir / "containerd" / "ipam"


def containerd_socket(state_dir: Path) -> Path:
    return state_dir / "containerd" / "containerd.sock"


def kubelet(state_dir: Path, binary: Path, pki: Pki, kubeconfig: Path) -> Component:
    directory = state_dir / "kubelet"
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_ADDRESS,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": KUBELET_HEALTHZ_PORT,
        "containerRuntimeEndpoint": f"unix://{containerd_socket(state_dir)}",
        # This VM: cgroup v1 without systemd, no QoS cgroup hierarchy, swap tolerated.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "failSwapOn": False,
        # The API server authenticates with the admin certificate of the test CA (logs, exec, port-forward).
        "authentication": {"x509": {"clientCAFile": str(pki.ca_crt)}, "anonymous": {"enabled": False},
                           "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        # No DNS for pods: they only talk to addresses.
        "resolvConf": "",
        "podLogsDir": str(directory / "pod-logs"),
        # A shared test machine: never evict the tests' pods for a mostly full disk.
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "serializeImagePulls": False,
    }))
    return Component("kubelet", binary, [
        f"--config={config}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={directory / 'root'}",
        f"--cert-dir={directory / 'pki'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={NODE_ADDRESS}",
    ], state_dir, lambda: http_ok(f"http://127.0.0.1:{KUBELET_HEALTHZ_PORT}/healthz"),
        address=(NODE_ADDRESS, KUBELET_PORT))


def kill_containers(state_dir: Path) -> None:
    """Stop every container of the node (they outlive the kubelet and containerd in their shims)."""
    socket = containerd_socket(state_dir)
    if not unix_socket_answers(socket):
        return
    ctr = ["ctr", "--address", str(socket), "--namespace", "k8s.io"]
    tasks = subprocess.run([*ctr, "tasks", "list", "--quiet"], capture_output=True, text=True, timeout=60,
                           check=False).stdout.split()
    for task in tasks:
        subprocess.run([*ctr, "tasks", "kill", "--signal", "SIGKILL", task], capture_output=True, timeout=60,
                       check=False)
    for task in tasks:
        subprocess.run([*ctr, "tasks", "delete", "--force", task], capture_output=True, timeout=60, check=False)
    containers = subprocess.run([*ctr, "containers", "list", "--quiet"], capture_output=True, text=True, timeout=60,
                                check=False).stdout.split()
    if containers:
        subprocess.run([*ctr, "containers", "delete", *containers], capture_output=True, timeout=120, check=False)


def forget_pod_networks(state_dir: Path) -> None:
    """After kill_containers: the pods' network namespaces and address leases (no CNI DEL ran for them)."""
    for netns in Path("/run/netns").glob("cni-*"):
        subprocess.run(["ip", "netns", "delete", netns.name], capture_output=True, timeout=30, check=False)
    shutil.rmtree(ipam_dir(state_dir), ignore_errors=True)


def unmount_below(directory: Path) -> None:
    """Unmount what pods left under directory (secret tmpfs, sandbox shm, rootfs overlays), deepest first."""
    prefix = str(directory.resolve()) + "/"
    mount_points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount_point in sorted((m for m in mount_points if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", mount_point], capture_output=True, timeout=60, check=False)


def _ip(*args: str) -> None:
    completed = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if completed.returncode != 0:
        raise build.BuildError(f"ip {' '.join(args)} failed: {completed.stderr.strip()}")
