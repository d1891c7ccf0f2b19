"""Redis and Prometheus beside the test cluster, as a real cluster's shared cache and monitoring would be.

    python -m tests.kube.observability redis-url      # the URL pods use (it holds the password: do not log it)
    python -m tests.kube.observability sync-monitors  # scrape what the ServiceMonitors describe, as the operator does

Both run as components of the test cluster (pid, log, configuration and data in its state directory), never as
system services. Redis is Debian's redis-server. Prometheus is built from the Go module proxy with only its Kubernetes
service discovery (build tags remove_all_sd,enable_kubernetes_sd) and cached by version: Debian's prometheus package
has no Kubernetes discovery at all (removed for client-go's dependencies). Redis listens on the node's bridge address, where pods reach it, and on
loopback, and requires a password generated once. Prometheus listens on loopback only: it reaches pods by their IPs
(there is no kube-proxy) and the API server with a least-privilege service account.

No Prometheus Operator runs: sync_service_monitors() turns every ServiceMonitor (monitoring.coreos.com/v1) into a
scrape job the way the operator does, then reloads Prometheus. Each endpoint of a ServiceMonitor becomes the job
`serviceMonitor/<namespace>/<name>/<index>`, discovered through the EndpointSlices of the namespaces its
namespaceSelector names (its own namespace by default), keeping the Services whose labels match selector.matchLabels
and the endpoint port named by `port` (the Service port's name) or `targetPort` (the container port's name or
number). Targets get the operator's labels: `instance` (pod IP:port), `namespace`, `service`, `pod`, `container`,
`endpoint` (the port or targetPort) and `job`: the Service's name, or the value of the Service label that `jobLabel`
names when the Service has it. Fields the operator supports and this does not (e.g. metricRelabelings,
matchExpressions) are refused rather than ignored.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from tests.kube import build, node
from tests.kube import process as processes
from tests.kube.pki import Pki
from tests.kube.process import Component

# Away from the local stack's ports (5000, 5433, 8080, 9000, 9001, 9100), the cluster's and the defaults (6379, 9090)
# of system services someone might run on the machine.
REDIS_PORT = 16379
PROMETHEUS_HOST = "127.0.0.1"
PROMETHEUS_PORT = 19090
PROMETHEUS_URL = f"http://{PROMETHEUS_HOST}:{PROMETHEUS_PORT}"
# Where Prometheus' ServiceAccount lives, and the names of its read-only RBAC objects.
PROMETHEUS_NAMESPACE = "kube-system"
PROMETHEUS_ACCOUNT = "prometheus"
PROMETHEUS_CLUSTER_ROLE = "mlops-test-prometheus"
# The token is renewed by every `up` and every sync; a week outlives any test run.
TOKEN_SECONDS = 7 * 24 * 3600
# Prometheus' defaults when a ServiceMonitor endpoint says nothing (the operator's too).
DEFAULT_INTERVAL = "30s"
DEFAULT_PATH = "/metrics"
RETENTION = "6h"
RELOAD_TIMEOUT = 30
# Prometheus 3.16.0: the module's v0.3xx.y versions are Prometheus 3.xx.y.
PROMETHEUS_MODULE_VERSION = "v0.316.0"
PROMETHEUS_VERSION = "3.16.0"
PROMETHEUS_CACHE_DIR = build.CACHE_DIR.parent / "prometheus"
SERVICE_MONITORS = "/apis/monitoring.coreos.com/v1/servicemonitors"
SERVICE_MONITOR_CRD = (Path(__file__).resolve().parents[1] / "fixtures" / "crds"
                       / "servicemonitors.monitoring.coreos.com.yaml")
SUPPORTED_SPEC = {"endpoints", "selector", "namespaceSelector", "jobLabel", "targetLabels"}
SUPPORTED_ENDPOINT = {"port", "targetPort", "path", "interval", "scrapeTimeout", "scheme", "fallbackScrapeProtocol"}


class ObservabilityError(RuntimeError):
    """Redis or Prometheus could not be set up, or a ServiceMonitor cannot be turned into a scrape job."""


def ensure_prometheus_binary() -> Path:
    """Prometheus with Kubernetes discovery, built once into the cache (about 4 minutes cold on 2 cores)."""
    target = prometheus_binary()
    with build.file_lock(PROMETHEUS_CACHE_DIR / f".prometheus-{PROMETHEUS_VERSION}.lock"):
        if not target.exists():
            build.go_install(
                "prometheus", f"github.com/prometheus/prometheus/cmd/prometheus@{PROMETHEUS_MODULE_VERSION}", target,
                "-tags", "remove_all_sd,enable_kubernetes_sd",
                "-ldflags", f"-X github.com/prometheus/common/version.Version={PROMETHEUS_VERSION}")
    return target


def prometheus_binary() -> Path:
    return PROMETHEUS_CACHE_DIR / PROMETHEUS_VERSION / "prometheus"


def _apt_install_without_starting(*packages: str) -> None:
    """apt-get install, without starting the packages' system services or adding their Recommends.

    redis-server's package scripts would start a system Redis on 6379. A policy-rc.d that refuses every start (the
    one Debian's container images ship) keeps it down while apt runs.
    """
    policy = Path("/usr/sbin/policy-rc.d")
    added_policy = not policy.exists()
    if added_policy:
        policy.write_text("#!/bin/sh\n# Added by the test cluster while apt installs its packages.\n"
                          "exit 101\n")
        policy.chmod(0o755)
    try:
        build.log(f"installing {' '.join(packages)} with apt")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for command in (["apt-get", "update", "-qq"],
                        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]):
            completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
            if completed.returncode != 0:
                raise ObservabilityError(f"{' '.join(command)} failed:\n{completed.stdout[-2000:]}"
                                         f"{completed.stderr[-2000:]}")
    finally:
        if added_policy:
            policy.unlink()


def components(state_dir: Path) -> list[Component]:
    return [redis(state_dir), prometheus(state_dir, prometheus_binary())]


def up(state_dir: Path, server: str) -> None:
    """Start Redis and Prometheus unless they run healthy; give Prometheus its access; scrape the ServiceMonitors.

    Needs the API server and the bridge (Redis binds to the node address).
    """
    if not shutil.which("redis-server"):
        _apt_install_without_starting("redis-server")
    binary = ensure_prometheus_binary()
    _write_redis_config(state_dir)
    processes.ensure(redis(state_dir))
    config = _prometheus_dir(state_dir) / "prometheus.yml"
    if not config.exists():
        # Enough to start; sync_service_monitors() writes the jobs right after.
        _write_prometheus_config(state_dir, [])
    processes.ensure(prometheus(state_dir, binary))
    _ensure_service_monitor_crd(state_dir, server)
    sync_service_monitors(state_dir, server)


def _ensure_service_monitor_crd(state_dir: Path, server: str) -> None:
    """The ServiceMonitor CRD, so the chart role renders its ServiceMonitor as on a cluster with the Prometheus
    Operator. A STAND-IN without schema (tests/fixtures/crds): the operator's own CRD cannot be downloaded here, and
    sync_service_monitors() plays the operator.

    Returns once ServiceMonitors can be listed: a CRD is Established before its API group is served, and a client
    that reads the API discovery in between (Traefik's setup, the kubernetes client) fails."""
    crd = yaml.safe_load(SERVICE_MONITOR_CRD.read_text())
    api = _AdminApi(state_dir, server)
    api.apply(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}", crd)
    deadline = time.monotonic() + 60
    while True:
        try:
            api.request("GET", f"/apis/{crd['spec']['group']}/v1")
            api.request("GET", SERVICE_MONITORS)
            return
        except urllib.error.URLError as error:
            if time.monotonic() > deadline:
                raise ObservabilityError(f"ServiceMonitors cannot be listed 60 s after their CRD: {error}") from error
            time.sleep(1)


# Redis ----------------------------------------------------------------------------------------------------------------

def redis(state_dir: Path) -> Component:
    directory = _redis_dir(state_dir)
    return Component("redis", Path(shutil.which("redis-server") or "/usr/bin/redis-server"),
                     [str(directory / "redis.conf")], state_dir, lambda: redis_answers(state_dir),
                     address=(node.NODE_ADDRESS, REDIS_PORT))


def redis_password(state_dir: Path) -> str:
    """The password Redis requires: generated once, kept 0600 in the state directory, reused."""
    path = _redis_dir(state_dir) / "password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(path, secrets.token_urlsafe(24))
    return path.read_text().strip()


def redis_url(state_dir: Path, host: str = node.NODE_ADDRESS) -> str:
    """The URL pods use (the node address by default); token_urlsafe passwords need no URL quoting."""
    return f"redis://:{redis_password(state_dir)}@{host}:{REDIS_PORT}/0"


def redis_answers(state_dir: Path, host: str = "127.0.0.1") -> bool:
    """AUTH with the password, then PING, gets +PONG."""
    try:
        with socket.create_connection((host, REDIS_PORT), timeout=2) as connection:
            connection.sendall(f"AUTH {redis_password(state_dir)}\r\nPING\r\nQUIT\r\n".encode())
            replies = b""
            while chunk := connection.recv(1024):
                replies += chunk
    except OSError:
        return False
    return replies == b"+OK\r\n+PONG\r\n+OK\r\n"


def _write_redis_config(state_dir: Path) -> None:
    directory = _redis_dir(state_dir)
    _write_private(directory / "redis.conf", "\n".join([
        f"bind {node.NODE_ADDRESS} 127.0.0.1",
        f"port {REDIS_PORT}",
        "protected-mode yes",
        # In the file, not on the command line, where `ps` would show it.
        f"requirepass {redis_password(state_dir)}",
        # A cache: nothing to keep across restarts.
        'save ""',
        "appendonly no",
        f"dir {directory}",
        "daemonize no",
        'logfile ""',
        # Redis rewrites its argv to a title by default; the pid check needs the binary's path there.
        "set-proc-title no",
        "",
    ]))


def _redis_dir(state_dir: Path) -> Path:
    return state_dir / "redis"


# Prometheus -----------------------------------------------------------------------------------------------------------

def prometheus(state_dir: Path, binary: Path) -> Component:
    directory = _prometheus_dir(state_dir)
    return Component("prometheus", binary, [
        f"--config.file={directory / 'prometheus.yml'}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address={PROMETHEUS_HOST}:{PROMETHEUS_PORT}",
        # POST /-/reload: sync_service_monitors() applies a new configuration without a restart.
        "--web.enable-lifecycle",
    ], state_dir, lambda: processes.http_ok(f"{PROMETHEUS_URL}/-/ready"), address=(PROMETHEUS_HOST, PROMETHEUS_PORT))


def _ensure_prometheus_access(state_dir: Path, server: str) -> None:
    """ServiceAccount kube-system/prometheus, allowed to read only what service discovery needs, and a fresh token.

    The API server signs service-account tokens (--service-account-signing-key-file); a TokenRequest gets one bound
    to the account, written 0600 where Prometheus reads it on every request.
    """
    api = _AdminApi(state_dir, server)
    api.apply(f"/api/v1/namespaces/{PROMETHEUS_NAMESPACE}/serviceaccounts/{PROMETHEUS_ACCOUNT}", {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": PROMETHEUS_ACCOUNT, "namespace": PROMETHEUS_NAMESPACE},
    })
    api.apply(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{PROMETHEUS_CLUSTER_ROLE}", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": PROMETHEUS_CLUSTER_ROLE},
        "rules": [
            {"apiGroups": [""], "resources": ["services", "endpoints", "pods", "namespaces"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
        ],
    })
    api.apply(f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{PROMETHEUS_CLUSTER_ROLE}", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": PROMETHEUS_CLUSTER_ROLE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": PROMETHEUS_CLUSTER_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": PROMETHEUS_ACCOUNT, "namespace": PROMETHEUS_NAMESPACE}],
    })
    granted = api.request("POST", f"/api/v1/namespaces/{PROMETHEUS_NAMESPACE}/serviceaccounts/{PROMETHEUS_ACCOUNT}"
                                  "/token",
                          {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                           "spec": {"expirationSeconds": TOKEN_SECONDS}})
    _write_private(_prometheus_dir(state_dir) / "token", granted["status"]["token"])


def sync_service_monitors(state_dir: Path, server: str) -> list[str]:
    """Scrape what the cluster's ServiceMonitors describe: write the configuration, reload, check it is loaded.

    Returns the job names. Without the ServiceMonitor CRD there is nothing to scrape.
    """
    api = _AdminApi(state_dir, server)
    _ensure_prometheus_access(state_dir, server)
    try:
        monitors = api.request("GET", SERVICE_MONITORS)["items"]
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise
        monitors = []
    jobs = [job for monitor in sorted(monitors, key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"]))
            for job in _scrape_jobs(monitor, server, state_dir)]
    _write_prometheus_config(state_dir, jobs)
    names = [job["job_name"] for job in jobs]
    _reload(names)
    return names


def _scrape_jobs(monitor: dict, server: str, state_dir: Path) -> list[dict]:
    """One Prometheus scrape job per endpoint of the ServiceMonitor, with the operator's relabelings."""
    namespace, name = monitor["metadata"]["namespace"], monitor["metadata"]["name"]
    spec = monitor.get("spec", {})
    _refuse_unsupported(f"ServiceMonitor {namespace}/{name}", spec, SUPPORTED_SPEC)
    selector = spec.get("selector", {})
    _refuse_unsupported(f"ServiceMonitor {namespace}/{name} selector", selector, {"matchLabels"})
    namespace_selector = spec.get("namespaceSelector", {})
    _refuse_unsupported(f"ServiceMonitor {namespace}/{name} namespaceSelector", namespace_selector,
                        {"matchNames", "any"})
    # No namespaces: every namespace (namespaceSelector.any).
    namespaces = None if namespace_selector.get("any", False) else namespace_selector.get("matchNames", [namespace])
    service_filter = [
        {"action": "keep",
         "source_labels": [f"__meta_kubernetes_service_label_{_label_name(key)}",
                           f"__meta_kubernetes_service_labelpresent_{_label_name(key)}"],
         "regex": f"({value});true"}
        for key, value in sorted(selector.get("matchLabels", {}).items())
    ]
    jobs = []
    for index, endpoint in enumerate(spec.get("endpoints", [])):
        _refuse_unsupported(f"ServiceMonitor {namespace}/{name} endpoint {index}", endpoint, SUPPORTED_ENDPOINT)
        jobs.append({
            "job_name": f"serviceMonitor/{namespace}/{name}/{index}",
            "honor_labels": False,
            "kubernetes_sd_configs": [_discovery(state_dir, server, namespaces)],
            "scrape_interval": endpoint.get("interval", DEFAULT_INTERVAL),
            **({"scrape_timeout": endpoint["scrapeTimeout"]} if "scrapeTimeout" in endpoint else {}),
            # Prometheus 3 refuses a response without a metrics Content-Type unless told which format to assume.
            **({"fallback_scrape_protocol": endpoint["fallbackScrapeProtocol"]}
               if "fallbackScrapeProtocol" in endpoint else {}),
            "metrics_path": endpoint.get("path", DEFAULT_PATH),
            "scheme": endpoint.get("scheme", "http"),
            "relabel_configs": [
                *service_filter,
                _port_filter(endpoint, f"ServiceMonitor {namespace}/{name} endpoint {index}"),
                *_target_labels(spec, endpoint),
            ],
        })
    return jobs


def query(promql: str) -> list[dict]:
    """The result of an instant query: [{"metric": {labels}, "value": [time, "value"]}, ...]."""
    url = f"{PROMETHEUS_URL}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.load(response)
    if answer.get("status") != "success":
        raise ObservabilityError(f"query {promql!r} failed: {answer}")
    return answer["data"]["result"]


def _discovery(state_dir: Path, server: str, namespaces: list[str] | None) -> dict:
    """EndpointSlices (with their Services and Pods) read as Prometheus' ServiceAccount; one dict per job (yaml would
    write a shared one as an anchor and aliases)."""
    discovery = {
        "role": "endpointslice",
        "api_server": server,
        "authorization": {"credentials_file": str(_prometheus_dir(state_dir) / "token")},
        "tls_config": {"ca_file": str(Pki.under(state_dir / "pki").ca_crt)},
    }
    if namespaces is not None:
        discovery["namespaces"] = {"names": namespaces}
    return discovery


def _port_filter(endpoint: dict, what: str) -> dict:
    """Keep the endpoint port the ServiceMonitor names: a Service port name, or a container port name or number."""
    if "port" in endpoint:
        return {"action": "keep", "source_labels": ["__meta_kubernetes_endpointslice_port_name"],
                "regex": endpoint["port"]}
    if "targetPort" in endpoint:
        target = endpoint["targetPort"]
        source = "__meta_kubernetes_pod_container_port_number" if isinstance(target, int) else (
            "__meta_kubernetes_pod_container_port_name")
        return {"action": "keep", "source_labels": [source], "regex": str(target)}
    raise ObservabilityError(f"{what} names neither port nor targetPort")


def _target_labels(spec: dict, endpoint: dict) -> list[dict]:
    """The labels the operator puts on every target, in its order (jobLabel overrides the Service's name)."""
    relabelings = [
        {"source_labels": ["__meta_kubernetes_endpointslice_address_target_kind",
                           "__meta_kubernetes_endpointslice_address_target_name"],
         "separator": ";", "regex": "Node;(.*)", "target_label": "node", "replacement": "${1}"},
        {"source_labels": ["__meta_kubernetes_endpointslice_address_target_kind",
                           "__meta_kubernetes_endpointslice_address_target_name"],
         "separator": ";", "regex": "Pod;(.*)", "target_label": "pod", "replacement": "${1}"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        # Pods that finished keep their EndpointSlice entries for a while; nothing answers there.
        {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"},
        *({"source_labels": [f"__meta_kubernetes_service_label_{_label_name(label)}"], "target_label": label,
           "regex": "(.+)", "replacement": "${1}"} for label in spec.get("targetLabels", [])),
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job", "replacement": "${1}"},
    ]
    if "jobLabel" in spec:
        relabelings.append({"source_labels": [f"__meta_kubernetes_service_label_{_label_name(spec['jobLabel'])}"],
                            "target_label": "job", "regex": "(.+)", "replacement": "${1}"})
    relabelings.append({"target_label": "endpoint", "replacement": str(endpoint.get("port", endpoint.get("targetPort")))})
    return relabelings


def _refuse_unsupported(what: str, fields: dict, supported: set[str]) -> None:
    unsupported = sorted(set(fields) - supported)
    if unsupported:
        raise ObservabilityError(f"{what} uses {', '.join(unsupported)}, which the test cluster's ServiceMonitor "
                                 f"translation does not support (only {', '.join(sorted(supported))})")


def _label_name(label: str) -> str:
    """A Kubernetes label as Prometheus' service discovery names it (`app.kubernetes.io/name` -> app_kubernetes_io_name)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def _write_prometheus_config(state_dir: Path, jobs: list[dict]) -> None:
    _write_private(_prometheus_dir(state_dir) / "prometheus.yml", yaml.safe_dump({
        "global": {"scrape_interval": DEFAULT_INTERVAL, "evaluation_interval": DEFAULT_INTERVAL},
        "scrape_configs": jobs,
    }, sort_keys=False))


def _reload(job_names: list[str]) -> None:
    """POST /-/reload answers once the configuration is applied (500 with the reason when it is refused)."""
    request = urllib.request.Request(f"{PROMETHEUS_URL}/-/reload", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=RELOAD_TIMEOUT):
            pass
    except urllib.error.HTTPError as error:
        raise ObservabilityError(f"Prometheus refused its new configuration: {error.read().decode(errors='replace')}"
                                 ) from error
    with urllib.request.urlopen(f"{PROMETHEUS_URL}/api/v1/status/config", timeout=10) as response:
        loaded = yaml.safe_load(json.load(response)["data"]["yaml"])
    loaded_names = [job["job_name"] for job in loaded.get("scrape_configs") or []]
    if loaded_names != job_names:
        raise ObservabilityError(f"Prometheus runs the jobs {loaded_names} after the reload, not {job_names}")


def _prometheus_dir(state_dir: Path) -> Path:
    return state_dir / "prometheus"


def _write_private(path: Path, text: str) -> None:
    """Replace path with text in one rename (Prometheus never reads half a file), mode 0600 from the start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.new")
    scratch.unlink(missing_ok=True)
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    scratch.replace(path)


class _AdminApi:
    """The API server as the test cluster's admin (client certificate of the test CA)."""

    def __init__(self, state_dir: Path, server: str):
        pki = Pki.under(state_dir / "pki")
        self.server = server
        self.context = ssl.create_default_context(cafile=pki.ca_crt)
        self.context.load_cert_chain(pki.admin_crt, pki.admin_key)

    def request(self, method: str, path: str, body: dict | None = None,
                content_type: str = "application/json") -> dict:
        request = urllib.request.Request(f"{self.server}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Content-Type": content_type, "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=30, context=self.context) as response:
            return json.load(response)

    def apply(self, path: str, manifest: dict) -> dict:
        """Server-side apply: creates or converges the object, so every `up` can run it."""
        return self.request("PATCH", f"{path}?fieldManager=mlops-test-cluster&force=true", manifest,
                            content_type="application/apply-patch+yaml")


def main(argv: list[str] | None = None) -> int:
    # control_plane imports this module for its components: importing it at the top would be circular.
    from tests.kube import control_plane  # pylint: disable=import-outside-toplevel

    parser = argparse.ArgumentParser(prog="python -m tests.kube.observability", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("redis-url", "sync-monitors"))
    action = parser.parse_args(argv).action
    try:
        if action == "redis-url":
            print(redis_url(control_plane.STATE_DIR))
        else:
            for job in sync_service_monitors(control_plane.STATE_DIR, control_plane.SERVER):
                print(job)
    except (ObservabilityError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
