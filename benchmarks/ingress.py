"""What a request costs through the Traefik ingress, against the pod directly (Molecule scenario `kubernetes`).

Usage: `.venv/bin/python -m benchmarks.ingress` once `molecule converge -s kubernetes` has deployed MLflow on the
test cluster. Three targets, measured in turn within each round in a rotated order:
  - `traefik-keepalive`: https through Traefik, one persistent connection per client thread;
  - `traefik-new-tls`: https through Traefik, a new TCP + TLS connection per request (a client without a pool);
  - `pod-keepalive`: plain http straight to one pod, one persistent connection per client thread;
  - `pod-keepalive-quickack`: the same with TCP_QUICKACK re-armed before each response: the pods' uvicorn (more
    than one worker) leaves Nagle on, so each keep-alive response after the first waits ~40 ms for the client's
    delayed ACK (github.com/Kludex/uvicorn/issues/3149); this target is the server's own time, the proxy's baseline.
For each: the latency of `GET /health` (sequential), its throughput with several threads, and the latency of an
authenticated API call (HTTP Basic with an access key made for the run, deleted at the end). Writes
benchmarks/results/<date>-ingress.json and .md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import http.client
import json
import math
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests
import urllib3

from benchmarks import stats
from tests.e2e.mlflow_web import WebLogin
from tests.e2e.resolve import resolve
from tests.stack_layout import SECRETS_DIR, STATE_DIR

REPO_ROOT = Path(__file__).resolve().parent.parent
KUBE_DIR = STATE_DIR / "test-kube"
KUBECONFIG = KUBE_DIR / "kubeconfig"
CA_FILE = KUBE_DIR / "ingress-tls" / "ca.crt"
TRAEFIK_BINARY = KUBE_DIR / "bin" / "traefik"
# Nothing resolves the public name: connections go to Traefik's address, with the name as SNI and Host.
PUBLIC_HOST = "mlflow.kubernetes.test"
PUBLIC_URL = f"https://{PUBLIC_HOST}"
INGRESS_ADDRESS = "127.0.0.1"
INGRESS_PORT = 443
NAMESPACE = "mlflow-kubernetes-test"
SERVICE = "mlflow"
POD_PORT = 5000
USER = "demo-user"
HEALTH_PATH = "/health"
API_PATH = "/api/2.0/mlflow/experiments/search?max_results=1"
REQUEST_TIMEOUT = 10
# Untimed requests before each measurement: connections, worker caches, the permission cache.
WARMUP_REQUESTS = 5
# A sequential latency batch stops after this many seconds, whatever its count.
MAX_BATCH_SECONDS = 60
MAX_REQUESTS_PER_THREAD = 100_000
# A measurement with more failed requests than this share (or than MAX_ERRORS) fails.
MAX_ERROR_SHARE = 0.01
MAX_ERRORS = 50
TARGETS = ("traefik-keepalive", "traefik-new-tls", "pod-keepalive", "pod-keepalive-quickack")
BASELINES = ("pod-keepalive-quickack", "pod-keepalive")
# Linux's value where the socket module lacks the name.
TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", 12)
KINDS = ("health_latency", "health_throughput", "api_latency")


def parse_arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingress", description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds; every target is measured once per round")
    parser.add_argument("--health-requests", type=int, default=500,
                        help="sequential GET /health per target, spread over the rounds")
    parser.add_argument("--api-requests", type=int, default=200,
                        help="sequential authenticated API calls per target, spread over the rounds")
    parser.add_argument("--threads", type=int, default=8, help="client threads of the throughput measurement")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per throughput measurement")
    parser.add_argument("--pod-ip", help="the pod to reach directly (default: the first ready one of the Service)")
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    parser.add_argument("--max-minutes", type=float, default=5.0, help="time budget of the whole run")
    arguments = parser.parse_args(argv)
    if min(arguments.rounds, arguments.health_requests, arguments.api_requests, arguments.threads) < 1:
        parser.error("--rounds, --health-requests, --api-requests and --threads must be positive")
    return arguments


def rotated(items, round_index):
    """The targets in a different order each round, so no target always runs first (or last) on a busy machine."""
    shift = round_index % len(items)
    return items[shift:] + items[:shift]


def load_average():
    return [round(load, 2) for load in os.getloadavg()]


# --- connections --------------------------------------------------------------------------------------------------

class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """https to a fixed address, with the public name as SNI, certificate name and Host header."""

    def __init__(self, host, port, address, tls_context, timeout):
        super().__init__(host, port, timeout=timeout, context=tls_context)
        self.address = address
        self.tls_context = tls_context

    def connect(self):
        raw = socket.create_connection((self.address, self.port), self.timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = self.tls_context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


class Endpoint:
    """One target: where it connects and whether a client keeps its connection."""

    def __init__(self, name, label, url, connect, reuse, quickack=False):
        self.name = name
        self.label = label
        self.url = url
        self.connect = connect
        self.reuse = reuse
        self.quickack = quickack


def make_endpoints(pod_ip):
    tls_context = ssl.create_default_context(cafile=str(CA_FILE))
    # HTTP/1.1 as the Python clients speak it (requests, the MLflow client); no TLS session reuse between
    # connections, as a client without a pool has none.
    tls_context.set_alpn_protocols(["http/1.1"])

    def through_traefik():
        return PinnedHTTPSConnection(PUBLIC_HOST, INGRESS_PORT, INGRESS_ADDRESS, tls_context, REQUEST_TIMEOUT)

    def to_pod():
        return http.client.HTTPConnection(pod_ip, POD_PORT, timeout=REQUEST_TIMEOUT)

    return [
        Endpoint("traefik-keepalive", "https via Traefik, keep-alive", PUBLIC_URL, through_traefik, True),
        Endpoint("traefik-new-tls", "https via Traefik, new TLS connection per request", PUBLIC_URL,
                 through_traefik, False),
        Endpoint("pod-keepalive", "http to one pod, keep-alive", f"http://{pod_ip}:{POD_PORT}", to_pod, True),
        Endpoint("pod-keepalive-quickack", "http to one pod, keep-alive, client TCP_QUICKACK",
                 f"http://{pod_ip}:{POD_PORT}", to_pod, True, quickack=True),
    ]


class Client:
    """One client (one thread's): GETs over a kept connection, or over a new one each time."""

    def __init__(self, endpoint, headers):
        self.endpoint = endpoint
        self.headers = headers
        self.connection = None

    def get(self, path):
        """One GET, its body read; the seconds it took (connecting included when it connects). Raises unless 200."""
        started = time.perf_counter()
        try:
            if self.connection is None:
                self.connection = self.endpoint.connect()
            self.connection.request("GET", path, headers=self.headers)
            if self.endpoint.quickack:
                # Linux clears it again on its own: set before each response, so no ACK of it is delayed.
                self.connection.sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)
            response = self.connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if not self.endpoint.reuse or response.will_close:
            self.close()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {response.status} {body[:200]!r}")
        return elapsed

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


REQUEST_ERRORS = (OSError, http.client.HTTPException, RuntimeError)


def _check_errors(endpoint, latencies, errors):
    if len(errors) > max(5, MAX_ERROR_SHARE * len(latencies)) or not latencies:
        first = errors[0] if errors else "no request answered"
        raise RuntimeError(f"{endpoint.name}: {len(errors)} failed requests, first: {first}")


def measure_latency(endpoint, headers, path, count):
    """`count` sequential GETs (bounded by MAX_BATCH_SECONDS) after an untimed warm-up: latencies in seconds."""
    client = Client(endpoint, headers)
    try:
        for _request in range(WARMUP_REQUESTS):
            client.get(path)
        latencies, errors = [], []
        deadline = time.monotonic() + MAX_BATCH_SECONDS
        while len(latencies) + len(errors) < count and time.monotonic() < deadline and len(errors) < MAX_ERRORS:
            try:
                latencies.append(client.get(path))
            except REQUEST_ERRORS as error:
                errors.append(f"{type(error).__name__}: {error}")
    finally:
        client.close()
    _check_errors(endpoint, latencies, errors)
    return {"latencies": latencies, "failed_requests": len(errors), "first_error": errors[0] if errors else None}


def measure_throughput(endpoint, headers, path, threads, seconds):
    """`threads` clients sending GETs back to back for `seconds`: requests/s and their latencies."""
    clients = [Client(endpoint, headers) for _thread in range(threads)]
    lock = threading.Lock()
    latencies, errors = [], []

    def loop(client, deadline):
        sent = 0
        while time.monotonic() < deadline and sent < MAX_REQUESTS_PER_THREAD and len(errors) < MAX_ERRORS:
            try:
                elapsed = client.get(path)
                with lock:
                    latencies.append(elapsed)
            except REQUEST_ERRORS as error:
                with lock:
                    errors.append(f"{type(error).__name__}: {error}")
            sent += 1

    try:
        for client in clients:
            client.get(path)
        started = time.monotonic()
        workers = [threading.Thread(target=loop, args=(client, started + seconds), daemon=True) for client in clients]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=seconds + 2 * REQUEST_TIMEOUT)
        elapsed = time.monotonic() - started
        if any(worker.is_alive() for worker in workers):
            raise RuntimeError(f"{endpoint.name}: client threads still running {elapsed:.0f} s after the start")
    finally:
        for client in clients:
            client.close()
    _check_errors(endpoint, latencies, errors)
    return {
        "requests": len(latencies),
        "failed_requests": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": round(elapsed, 3),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "latency_p50_ms": round(1000 * stats.percentile(latencies, 0.5), 2),
        "latency_p95_ms": round(1000 * stats.percentile(latencies, 0.95), 2),
    }


# --- the cluster and the login ------------------------------------------------------------------------------------

def cluster_setup(pod_ip=None):
    """The Service's ready pods (from its EndpointSlices), the pod measured directly, the ingress's middlewares."""
    # Imported here: only this benchmark needs the client, and its import is slow.
    from kubernetes import client as kube, config  # pylint: disable=import-outside-toplevel

    try:
        api_client = config.new_client_from_config(config_file=str(KUBECONFIG))
        return _read_cluster(kube, api_client, pod_ip)
    except (kube.ApiException, config.ConfigException, urllib3.exceptions.HTTPError) as error:
        raise RuntimeError(f"reading the test cluster ({KUBECONFIG}): {error}") from error


def _read_cluster(kube, api_client, pod_ip):
    slices = kube.DiscoveryV1Api(api_client).list_namespaced_endpoint_slice(
        NAMESPACE, label_selector=f"kubernetes.io/service-name={SERVICE}", _request_timeout=REQUEST_TIMEOUT)
    pods = []
    for endpoint_slice in slices.items:
        for endpoint in endpoint_slice.endpoints or []:
            if endpoint.conditions and endpoint.conditions.ready:
                pods += [{"ip": address, "name": endpoint.target_ref.name if endpoint.target_ref else None,
                          "node": endpoint.node_name} for address in endpoint.addresses]
    pods.sort(key=lambda pod: tuple(int(part) for part in pod["ip"].split(".")))
    if not pods:
        raise RuntimeError(f"Service {NAMESPACE}/{SERVICE} has no ready endpoint")
    chosen = next((pod for pod in pods if pod["ip"] == pod_ip), None) if pod_ip else pods[0]
    if chosen is None:
        raise RuntimeError(f"{pod_ip} is not a ready endpoint of {NAMESPACE}/{SERVICE}: {pods}")
    workers = None
    if chosen["name"]:
        pod = kube.CoreV1Api(api_client).read_namespaced_pod(chosen["name"], NAMESPACE,
                                                             _request_timeout=REQUEST_TIMEOUT)
        environment = {variable.name: variable.value for variable in pod.spec.containers[0].env or []}
        workers = environment.get("MLFLOW_WORKERS")
    middlewares = None
    for ingress in kube.NetworkingV1Api(api_client).list_namespaced_ingress(
            NAMESPACE, _request_timeout=REQUEST_TIMEOUT).items:
        if ingress.metadata.name == SERVICE:
            middlewares = (ingress.metadata.annotations or {}).get("traefik.ingress.kubernetes.io/router.middlewares")
    return {"pods": pods, "pod": chosen, "pod_workers": workers, "ingress_middlewares": middlewares}


def traefik_version():
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        completed = subprocess.run([str(TRAEFIK_BINARY), "version"], capture_output=True, text=True, timeout=20,
                                   check=True)
        match = re.search(r"^Version:\s+(\S+)", completed.stdout, re.MULTILINE)
        if match:
            return match.group(1)
    return None


def tls_parameters(endpoint):
    """Protocol and cipher Traefik negotiates with this client."""
    connection = endpoint.connect()
    try:
        connection.connect()
        return {"version": connection.sock.version(), "cipher": connection.sock.cipher()[0]}
    finally:
        connection.close()


class AccessKey:
    """demo-user's login through Keycloak's form on the public URL (WebLogin, as the e2e tests log in), and a named
    access key for HTTP Basic.

    A named key of its own: the user's default key (PATCH users/access-token) may be in use elsewhere."""

    def __init__(self):
        self.login = None
        self.username = None
        self.key = None
        self.key_id = None

    def create(self):
        session = requests.Session()
        # The environment's CA bundle would override `verify`; the name resolves nowhere else either.
        session.trust_env = False
        session.verify = str(CA_FILE)
        password = (SECRETS_DIR / f"keycloak_user_{USER}_password").read_text(encoding="utf-8").strip()
        self.login = WebLogin(PUBLIC_URL, USER, password, session=session)
        self.username = self.login.account
        key = self.login.create_named_key(f"bench-ingress-{uuid.uuid4().hex[:10]}")
        self.key, self.key_id = key["token"], key["id"]

    def delete(self):
        if self.key_id is None:
            return
        self.login.delete_key(self.key_id)
        self.key_id = None

    @property
    def basic_header(self):
        credentials = base64.b64encode(f"{self.username}:{self.key}".encode()).decode("ascii")
        return {"Authorization": f"Basic {credentials}"}


# --- the run ------------------------------------------------------------------------------------------------------

def _latency_summary(runs):
    """Percentiles (ms) over every request of the rounds, and each round's median."""
    latencies = [value for run in runs for value in run["latencies"]]
    return {
        "requests": len(latencies),
        "failed_requests": sum(run["failed_requests"] for run in runs),
        "p50_ms": round(1000 * stats.percentile(latencies, 0.5), 2),
        "p95_ms": round(1000 * stats.percentile(latencies, 0.95), 2),
        "p99_ms": round(1000 * stats.percentile(latencies, 0.99), 2),
        "round_p50_ms": [round(1000 * stats.percentile(run["latencies"], 0.5), 2) for run in runs],
    }


def _measure(arguments, kind, endpoint, headers):
    if kind == "health_throughput":
        return measure_throughput(endpoint, {}, HEALTH_PATH, arguments.threads, arguments.seconds)
    if kind == "health_latency":
        return measure_latency(endpoint, {}, HEALTH_PATH, math.ceil(arguments.health_requests / arguments.rounds))
    return measure_latency(endpoint, headers, API_PATH, math.ceil(arguments.api_requests / arguments.rounds))


def run_rounds(arguments, endpoints, headers, deadline, results):
    """Each round: for each kind of measurement, every target in turn (rotated). Returns the raw runs."""
    runs = {kind: {endpoint.name: [] for endpoint in endpoints} for kind in KINDS}
    for round_index in range(arguments.rounds):
        for kind in KINDS:
            for endpoint in rotated(endpoints, round_index):
                needed = arguments.seconds + 2 * REQUEST_TIMEOUT if kind == "health_throughput" else 20
                if time.monotonic() + needed > deadline:
                    results["problems"].append(f"time budget spent: round {round_index + 1} {kind} "
                                               f"{endpoint.name} not measured")
                    continue
                try:
                    runs[kind][endpoint.name].append(_measure(arguments, kind, endpoint, headers))
                except REQUEST_ERRORS as error:
                    results["problems"].append(f"round {round_index + 1} {kind} {endpoint.name}: {error}")
                    print(f"benchmark: round {round_index + 1} {kind} {endpoint.name} failed: {error}",
                          file=sys.stderr)
        results["host"]["load_per_round"].append(load_average())
        print(f"round {round_index + 1}/{arguments.rounds} done, load average {load_average()}", file=sys.stderr)
    return runs


def summarize_runs(runs, endpoints, results):
    for endpoint in endpoints:
        target = results["targets"][endpoint.name]
        for kind in ("health_latency", "api_latency"):
            if runs[kind][endpoint.name]:
                target[kind] = _latency_summary(runs[kind][endpoint.name])
        throughput_runs = runs["health_throughput"][endpoint.name]
        if throughput_runs:
            target["health_throughput"] = {
                "requests_per_second": stats.summarize(run["requests_per_second"] for run in throughput_runs),
                "runs": throughput_runs,
            }
    # Paired per round, as benchmarks.run does: load from other work hits both sides of a ratio alike.
    results["vs_pod"] = {baseline: _comparison(runs, results["targets"], baseline) for baseline in BASELINES}


def _comparison(runs, targets, baseline):
    """Each Traefik target against a pod target: added latency (ms) and the paired throughput ratio."""
    baseline_rates = [run["requests_per_second"] for run in runs["health_throughput"][baseline]]
    comparison = {}
    for name in ("traefik-keepalive", "traefik-new-tls"):
        rates = [run["requests_per_second"] for run in runs["health_throughput"][name]]
        entry = {}
        if rates and len(rates) == len(baseline_rates):
            entry["health_throughput_ratio"] = round(stats.median(stats.paired_ratios(rates, baseline_rates)), 3)
        for kind in ("health_latency", "api_latency"):
            mine, theirs = targets[name].get(kind), targets[baseline].get(kind)
            if mine and theirs:
                entry[f"{kind}_p50_added_ms"] = round(mine["p50_ms"] - theirs["p50_ms"], 2)
                entry[f"{kind}_p99_added_ms"] = round(mine["p99_ms"] - theirs["p99_ms"], 2)
        comparison[name] = entry
    return comparison


def benchmark(arguments):
    deadline = time.monotonic() + 60 * arguments.max_minutes
    for required in (KUBECONFIG, CA_FILE):
        if not required.is_file():
            raise RuntimeError(f"{required} is missing: is the test cluster up?")
    setup = cluster_setup(arguments.pod_ip)
    endpoints = make_endpoints(setup["pod"]["ip"])
    setup.update(traefik_version=traefik_version(), public_url=PUBLIC_URL,
                 ingress_address=f"{INGRESS_ADDRESS}:{INGRESS_PORT}", tls=tls_parameters(endpoints[0]))
    results = {
        "date": datetime.date.today().isoformat(),
        "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": {"cpus": os.cpu_count(), "load_before": load_average(), "load_per_round": []},
        "setup": setup,
        "settings": {
            "rounds": arguments.rounds,
            "health_requests_per_target": arguments.health_requests,
            "api_requests_per_target": arguments.api_requests,
            "api_call": f"GET {API_PATH} (HTTP Basic, {USER}'s access key)",
            "throughput_threads": arguments.threads,
            "throughput_seconds": arguments.seconds,
            "request_timeout_seconds": REQUEST_TIMEOUT,
            "warmup_requests": WARMUP_REQUESTS,
        },
        "targets": {endpoint.name: {"label": endpoint.label, "url": endpoint.url} for endpoint in endpoints},
        "problems": [],
    }
    # The login and the key's deletion go through the public name, which nothing resolves (curl's --resolve).
    resolve(PUBLIC_HOST, INGRESS_ADDRESS)
    with contextlib.ExitStack() as exits:
        key = AccessKey()
        exits.callback(_best_effort, key.delete)
        key.create()
        runs = run_rounds(arguments, endpoints, key.basic_header, deadline, results)
    summarize_runs(runs, endpoints, results)
    results["host"]["load_after"] = load_average()
    results["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return results


def _best_effort(cleanup, *args):
    try:
        cleanup(*args)
    except Exception as error:  # pylint: disable=broad-exception-caught  # reported, the run's own error wins
        print(f"benchmark: cleanup {getattr(cleanup, '__name__', cleanup)} failed: {error}", file=sys.stderr)


# --- report -------------------------------------------------------------------------------------------------------

def _cell(summary, key, digits=1):
    return "-" if not summary else f"{summary[key]:.{digits}f}"


def render_markdown(results):
    setup, targets = results["setup"], results["targets"]
    settings = results["settings"]
    pod = setup["pod"]
    lines = [
        f"# Ingress benchmark of {results['date']}",
        "",
        f"Machine: {results['host']['cpus']} CPUs, load average {results['host']['load_before']} before and "
        f"{results['host'].get('load_after')} after (other work shares it; the cluster, Traefik and the client run "
        f"on it too). Traefik {setup['traefik_version']} on {setup['ingress_address']} ({setup['tls']['version']}, "
        f"{setup['tls']['cipher']}; middlewares {setup['ingress_middlewares']}); the direct target is pod "
        f"{pod['name']} ({pod['ip']}, {setup['pod_workers']} uvicorn workers) of {len(setup['pods'])}, while Traefik "
        f"balances over all of them. {settings['rounds']} rounds, targets in rotated order; latencies are sequential "
        f"requests pooled over the rounds ({settings['health_requests_per_target']} `GET /health`, "
        f"{settings['api_requests_per_target']} `{settings['api_call']}` per target), throughput is the median of "
        f"the rounds' {settings['throughput_threads']} threads x {settings['throughput_seconds']:g} s.",
        "",
        "| target | /health p50 ms | p95 | p99 | /health req/s | API p50 ms | p95 | p99 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in TARGETS:
        target = targets[name]
        health, api = target.get("health_latency"), target.get("api_latency")
        throughput = target.get("health_throughput", {}).get("requests_per_second")
        lines.append(
            f"| {target['label']} | {_cell(health, 'p50_ms', 2)} | {_cell(health, 'p95_ms', 2)} | "
            f"{_cell(health, 'p99_ms', 2)} | {_cell(throughput, 'median')} | {_cell(api, 'p50_ms', 2)} | "
            f"{_cell(api, 'p95_ms', 2)} | {_cell(api, 'p99_ms', 2)} |"
        )
    lines += ["", "Against the pod directly (latency: added ms; throughput: median of the rounds' paired ratios):", "",
              "| target | baseline | /health p50 + ms | p99 + ms | /health throughput ratio | API p50 + ms | p99 + ms |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for baseline, comparison in results.get("vs_pod", {}).items():
        for name, entry in comparison.items():
            cells = [entry.get(key) for key in ("health_latency_p50_added_ms", "health_latency_p99_added_ms",
                                                "health_throughput_ratio", "api_latency_p50_added_ms",
                                                "api_latency_p99_added_ms")]
            lines.append(f"| {targets[name]['label']} | `{baseline}` | "
                         + " | ".join("-" if cell is None else f"{cell:g}" for cell in cells) + " |")
    lines += ["", "Per round (/health p50 ms; /health req/s; API p50 ms):", ""]
    for name in TARGETS:
        target = targets[name]
        rates = target.get("health_throughput", {}).get("requests_per_second", {}).get("samples", [])
        lines.append(f"- {target['label']}: {target.get('health_latency', {}).get('round_p50_ms', [])}; "
                     f"{rates}; {target.get('api_latency', {}).get('round_p50_ms', [])}")
    if results["problems"]:
        lines += ["", "Problems:", ""] + [f"- {problem}" for problem in results["problems"]]
    return "\n".join(lines) + "\n"


def write_results(results, output_dir):
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, text in ((".json", json.dumps(results, indent=2) + "\n"), (".md", render_markdown(results))):
        path = output_dir / f"{results['date']}-ingress{suffix}"
        partial = path.with_name(path.name + ".tmp")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
        written.append(path)
    return written


def _raise_system_exit(signum, _frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    arguments = parse_arguments(argv)
    signal.signal(signal.SIGTERM, _raise_system_exit)
    try:
        results = benchmark(arguments)
    except (OSError, RuntimeError, requests.RequestException) as error:
        print(f"benchmark: {error}\nDeploy MLflow on the test cluster first: molecule converge -s kubernetes",
              file=sys.stderr)
        return 2
    for path in write_results(results, arguments.output_dir):
        print(f"wrote {path}")
    print(render_markdown(results))
    return 1 if results["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
