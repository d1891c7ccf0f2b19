"""The measured workloads: MLflow tracking calls from several client threads, and one large artifact upload."""

from __future__ import annotations

import random
import threading
import time
import uuid

import requests

from benchmarks.stats import percentile

API = "/api/2.0/mlflow"
REQUEST_TIMEOUT = 30
# Every few operations a client searches runs, as dashboards and sweep drivers do between log calls.
SEARCH_EVERY = 5
# A training job logs this many batches into one run before it finishes and starts the next.
BATCHES_PER_RUN = 50
METRICS_PER_BATCH = 10
PARAMS_PER_BATCH = 2
# A few failed calls are reported, not fatal (a worker the uvicorn supervisor kills drops its connections);
# more than this share of all calls fails the measurement.
MAX_ERROR_SHARE = 0.01
# The clients give up after this many failed calls (a dead server).
MAX_ERRORS = 50


class TrackingClient:
    """The REST calls of an MLflow client (the ones `mlflow.log_metrics`/`log_params`/`search_runs` make)."""

    def __init__(self, base_url, auth=None):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.auth = auth

    def call(self, method, endpoint, payload):
        response = self.session.request(
            method, f"{self.base_url}{API}/{endpoint}", json=payload, timeout=REQUEST_TIMEOUT
        )
        if response.status_code != 200:
            raise RuntimeError(f"{method} {endpoint}: {response.status_code} {response.text[:300]}")
        return response.json()

    def create_experiment(self, name):
        return self.call("POST", "experiments/create", {"name": name})["experiment_id"]

    def delete_experiment(self, experiment_id):
        self.call("POST", "experiments/delete", {"experiment_id": experiment_id})

    def create_run(self, experiment_id):
        payload = {"experiment_id": experiment_id, "start_time": int(time.time() * 1000), "run_name": "bench"}
        return self.call("POST", "runs/create", payload)["run"]["info"]["run_id"]

    def finish_run(self, run_id):
        self.call("POST", "runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000)})

    def log_batch(self, run_id, step):
        now = int(time.time() * 1000)
        metrics = [
            {"key": f"metric_{index}", "value": random.random(), "timestamp": now, "step": step}
            for index in range(METRICS_PER_BATCH)
        ]
        params = [{"key": f"param_{step}_{index}", "value": str(step)} for index in range(PARAMS_PER_BATCH)]
        self.call("POST", "runs/log-batch", {"run_id": run_id, "metrics": metrics, "params": params})

    def search_runs(self, experiment_id):
        payload = {"experiment_ids": [experiment_id], "max_results": 20, "order_by": ["attributes.start_time DESC"]}
        self.call("POST", "runs/search", payload)


class _Tally:
    """Requests, errors and latencies of all client threads of one measurement."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = []
        self.errors = []

    def record(self, seconds, error=None):
        with self.lock:
            if error is None:
                self.latencies.append(seconds)
            else:
                self.errors.append(error)


def _client_loop(client, experiment_id, deadline, max_requests, tally):
    run_id, step, sent = None, 0, 0
    while time.monotonic() < deadline and sent < max_requests and len(tally.errors) < MAX_ERRORS:
        started = time.monotonic()
        try:
            if run_id is None or step % BATCHES_PER_RUN == BATCHES_PER_RUN - 1:
                if run_id is not None:
                    client.finish_run(run_id)
                    sent += 1
                    tally.record(time.monotonic() - started)
                    started = time.monotonic()
                run_id = client.create_run(experiment_id)
            elif step % SEARCH_EVERY == SEARCH_EVERY - 1:
                client.search_runs(experiment_id)
            else:
                client.log_batch(run_id, step)
            tally.record(time.monotonic() - started)
        except (requests.RequestException, RuntimeError, ValueError) as error:
            tally.record(time.monotonic() - started, error=str(error))
        step += 1
        sent += 1


def run_tracking(base_url, auth, experiment_id, threads, seconds, max_requests):
    """Run the tracking workload for `seconds` (or until `max_requests` per thread); requests/s and latencies."""
    clients = [TrackingClient(base_url, auth) for _thread in range(threads)]
    tally = _Tally()
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    workers = [
        threading.Thread(target=_client_loop, args=(client, experiment_id, deadline, max_requests, tally), daemon=True)
        for client in clients
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=seconds + 2 * REQUEST_TIMEOUT)
    elapsed = time.monotonic() - started
    if any(worker.is_alive() for worker in workers):
        raise RuntimeError(f"{base_url}: client threads still running {elapsed:.0f} s after the start")
    if len(tally.errors) > max(5, MAX_ERROR_SHARE * len(tally.latencies)):
        raise RuntimeError(f"{base_url}: {len(tally.errors)} failed requests, first: {tally.errors[0]}")
    return {
        "requests": len(tally.latencies),
        "failed_requests": len(tally.errors),
        "first_error": tally.errors[0] if tally.errors else None,
        "seconds": round(elapsed, 3),
        "requests_per_second": len(tally.latencies) / elapsed,
        "latency_p50_ms": round(1000 * percentile(tally.latencies, 0.5), 1),
        "latency_p95_ms": round(1000 * percentile(tally.latencies, 0.95), 1),
    }


def make_blob(path, size):
    """A file of `size` random bytes (random, so no layer can compress it away)."""
    chunk = 1 << 20
    with open(path, "wb") as blob:
        written = 0
        while written < size:
            blob.write(random.randbytes(min(chunk, size - written)))
            written += min(chunk, size - written)


def upload_proxied(base_url, auth, artifact_path, blob_path, timeout):
    """PUT the file to MLflow's proxied artifact endpoint, as `mlflow.log_artifact` does; the seconds it took."""
    started = time.monotonic()
    with open(blob_path, "rb") as blob:
        response = requests.put(
            f"{base_url}/api/2.0/mlflow-artifacts/artifacts/{artifact_path}", data=blob, auth=auth, timeout=timeout
        )
    if response.status_code != 200:
        raise RuntimeError(f"proxied upload to {base_url}: {response.status_code} {response.text[:300]}")
    return time.monotonic() - started


def upload_direct(minio_client, bucket, key, blob_path, part_size, parallel_uploads):
    """Upload the file straight to MinIO with the SDK; the seconds it took."""
    started = time.monotonic()
    minio_client.fput_object(bucket, key, str(blob_path), part_size=part_size, num_parallel_uploads=parallel_uploads)
    return time.monotonic() - started


def unique_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
