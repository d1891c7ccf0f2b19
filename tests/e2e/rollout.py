"""A logged-in user keeps working while the release rolls out new pods (Molecule scenario kubernetes).

Run with the MLflow server's interpreter. The user logs in through the public URL; then, while COMMAND runs (a
`helm upgrade` that replaces every pod), a browser-like session polls /auth/status and an API client with an access
key reads an experiment, each every POLL_SECONDS, all through the ingress. After the command, the same session must
still be logged in. Prints what was seen: requests, failures by kind, the longest run of failures. Fails when more
than --max-failure-share of a client's requests failed, or more than --max-failure-run in a row (an outage): a few
single 502s remain where Traefik reuses a kept connection that the stopping pod closes under it (the request was
sent, so it is not retried) and the chart has no preStop delay to prevent that.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import threading
import time
from collections import Counter

import requests

from mlflow_web import TIMEOUT, Api, WebLogin, check, log, read_secret, unique_name
from resolve import host_and_address, resolve

POLL_SECONDS = 0.25
# Requests after the rollout that may meet a stopping pod: attempts, one second apart, and the answers waited out.
GATEWAY_ATTEMPTS = 5
GATEWAY_STATUSES = (502, 503, 504)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlflow-url", required=True)
    parser.add_argument("--secrets-dir", required=True, help="holds keycloak_user_<name>_password files")
    parser.add_argument("--user", default="demo-user")
    parser.add_argument("--resolve", type=host_and_address, action="append", default=[], metavar="HOST:ADDRESS")
    parser.add_argument("--ca-file")
    parser.add_argument("--timeout", type=float, default=600, help="seconds COMMAND may take")
    parser.add_argument("--max-failure-share", type=float, default=0.03, help="of each client's requests")
    parser.add_argument("--max-failure-run", type=int, default=2, help="failed requests in a row, per client")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the rollout, after --")
    return parser.parse_args()


class Poller(threading.Thread):
    """Calls `probe` every POLL_SECONDS until stopped; counts answers by kind."""

    def __init__(self, name: str, probe):
        super().__init__(name=name, daemon=True)
        self.probe = probe
        self.outcomes: Counter = Counter()
        self.failed_in_a_row = 0
        self.longest_failure_run = 0
        # (seconds since the poller started, outcome) of each failure, for the report.
        self.failure_times: list[tuple[float, str]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.stopping.is_set():
            try:
                outcome = self.probe()
            except requests.RequestException as error:
                outcome = type(error).__name__
            self.outcomes[outcome] += 1
            if outcome != "ok":
                self.failure_times.append((round(time.monotonic() - started, 1), outcome))
            self.failed_in_a_row = 0 if outcome == "ok" else self.failed_in_a_row + 1
            self.longest_failure_run = max(self.longest_failure_run, self.failed_in_a_row)
            self.stopping.wait(POLL_SECONDS)

    @property
    def failures(self) -> int:
        return sum(count for outcome, count in self.outcomes.items() if outcome != "ok")


def through_settling_gateway(call) -> requests.Response:
    """The answer of call() once the gateway answers. Right after `helm --wait` the old pods are still stopping, and a
    request Traefik sends on its kept connection to one of them can still get a 502 (the race the pollers tolerate;
    the pod closed the connection without reading the request, so sending it again is safe): a few such answers are
    waited out, a second apart. Any other answer is returned as it is."""
    answer, attempts = call(), 1
    while answer.status_code in GATEWAY_STATUSES and attempts < GATEWAY_ATTEMPTS:
        time.sleep(1)
        answer, attempts = call(), attempts + 1
    return answer


def main() -> None:
    args = parse_args()
    for host, address in args.resolve:
        resolve(host, address)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    check(bool(command), "no rollout command given after --")
    if args.ca_file:
        os.environ["REQUESTS_CA_BUNDLE"] = args.ca_file
    url = args.mlflow_url.rstrip("/")

    user = WebLogin(url, args.user, read_secret(f"{args.secrets_dir}/keycloak_user_{args.user}_password"))
    key = user.create_named_key(unique_name("rollout"))
    api = Api(url, basic=(user.account, key["token"]))
    experiment = api.expect(200, "POST", "experiments/create", {"name": unique_name("rollout")})["experiment_id"]

    def session_probe() -> str:
        answer = user.session.get(f"{url}/auth/status", timeout=TIMEOUT)
        return "ok" if answer.status_code == 200 and answer.json().get("authenticated") else f"HTTP {answer.status_code}"

    def api_probe() -> str:
        answer = api.call("GET", "experiments/get", params={"experiment_id": experiment})
        return "ok" if answer.status_code == 200 else f"HTTP {answer.status_code}"

    pollers = [Poller("browser session", session_probe), Poller("API client", api_probe)]
    try:
        for poller in pollers:
            poller.start()
        started = time.monotonic()
        subprocess.run(command, check=True, timeout=args.timeout)
        took = time.monotonic() - started
    finally:
        for poller in pollers:
            poller.stopping.set()
            poller.join()
        # Cleanup right after the rollout, while the old pods may still be stopping.
        deleted = through_settling_gateway(
            lambda: api.call("POST", "experiments/delete", {"experiment_id": experiment}))
        check(deleted.status_code == 200, f"deleting the experiment: HTTP {deleted.status_code} {deleted.text[:200]}")
        deleted = through_settling_gateway(lambda: user.session.delete(
            f"{url}/api/2.0/mlflow/users/current/tokens/{key['id']}", timeout=TIMEOUT))
        check(deleted.status_code == 200, f"deleting the access key: HTTP {deleted.status_code} {deleted.text[:200]}")

    for poller in pollers:
        log(f"{poller.name}: {sum(poller.outcomes.values())} requests during the {took:.0f} s rollout, "
            f"{dict(poller.outcomes)}, longest run of failures {poller.longest_failure_run}, "
            f"failures at (second, outcome) {poller.failure_times}")
    status = through_settling_gateway(lambda: user.session.get(f"{url}/auth/status", timeout=TIMEOUT))
    check(status.status_code == 200 and status.json().get("authenticated"),
          f"the session made before the rollout is gone: HTTP {status.status_code} {status.text[:200]}")
    log("the session made before the rollout is still logged in after it")
    for poller in pollers:
        total = sum(poller.outcomes.values())
        check(poller.failures <= args.max_failure_share * total and poller.longest_failure_run <= args.max_failure_run,
              f"{poller.name}: {poller.failures} of {total} requests failed during the rollout, "
              f"{poller.longest_failure_run} in a row")


if __name__ == "__main__":
    main()
