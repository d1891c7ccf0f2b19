"""The user's whole journey on the deployed MLflow, over plain HTTP and the MLflow client (no mocks).

Run by the Molecule scenarios local and kubernetes (extensions/molecule/shared/tasks/journey.yml) with an interpreter
of the MLflow server's virtualenv. The playbook creates the second user (in mlflow-users, never used MLflow)
and a test-only Keycloak client with direct access grants (another relying party of the realm), and deletes both
afterwards. With --resolve the public host name of --mlflow-url reaches an address no resolver knows (a pod on the
test cluster). MLflow's users are Keycloak user names (preferred_username). Checks, in order:
  1. the outsider's login is refused;
  2. the user logs in through Keycloak's form, creates an access key, and with HTTP Basic creates an experiment,
     logs params, metrics and an artifact, and registers a model version;
  3. a JWT of the second user issued for MLflow (the mlflow client's code flow) makes that user's account at its first
     request, before any login (bearer provisioning, for pipelines), without access to the user's experiment (403);
     the outsider's JWT issued for MLflow is refused (401): in no MLflow group, no account;
  4. the second user cannot read the user's experiment (403) until its owner grants READ, then can;
  5. the second user's JWT issued for MLflow works as MLFLOW_TRACKING_TOKEN with the MLflow client; one issued to the
     other client is refused (401): its audience is not MLflow;
  6. the admin sees every experiment;
  7. an anonymous API call gets 401, /health/ready is 200, /metrics counts the requests of every worker;
  8. a state-changing call with the public URL's Origin is served, from another origin refused (CORS origins).
Over https (an ingress), first: plain http is redirected to https, answers carry HSTS, MLflow's cookies are Secure.
With --metrics-url (the pods, as Prometheus scrapes them), /metrics is counted there and must be refused on the
public URL. With two --pod-url (replicas, reached by address), a session made through the public URL is accepted by
each pod, and a grant made through one pod is enforced by the other at the next request (shared permission cache).
Prints "ok: ..." per check, then one JSON line: where the artifact must be in the bucket and what it holds.
What it created in MLflow is deleted at the end; the artifact stays for the bucket check.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from mlflow import MlflowClient

from mlflow_web import (
    TIMEOUT,
    Api,
    WebLogin,
    check,
    code_flow_token,
    log,
    mlflow_credentials,
    read_secret,
    track_a_run,
    unique_name,
)
from resolve import host_and_address, resolve

# Longer than PERMISSION_CACHE_TTL_SECONDS (30): a worker may have cached the refusal.
PERMISSION_CHANGE_SECONDS = 45
METRIC = "mlflow_http_request_total"
METRIC_SAMPLE = re.compile(rf"^{METRIC}\{{[^}}]*\}} ([0-9.e+]+)$", re.MULTILINE)
# Enough calls that 4 workers share them: one worker's own count would fall short.
METRIC_CALLS = 24
# Calls that reach every worker of a pod (2 here) with near certainty: each caches the refusal it answered.
PINNED_CALLS = 8


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlflow-url", required=True)
    parser.add_argument("--issuer", required=True, help="Keycloak realm URL, the issuer MLflow accepts")
    parser.add_argument("--secrets-dir", required=True, type=Path, help="holds keycloak_user_<name>_password files")
    parser.add_argument("--user", default="demo-user")
    parser.add_argument("--admin", default="demo-admin")
    parser.add_argument("--outsider", default="demo-outsider")
    parser.add_argument("--second-user", required=True, help="a user in mlflow-users who never used MLflow")
    parser.add_argument("--second-password-file", required=True)
    parser.add_argument("--client-id", default="mlflow", help="MLflow's Keycloak client")
    parser.add_argument("--client-secret-file", required=True, help="holds the secret of MLflow's Keycloak client")
    parser.add_argument("--other-client-id", required=True,
                        help="another client of the realm, with direct access grants: its tokens are not for MLflow")
    parser.add_argument("--other-client-secret-file", required=True)
    parser.add_argument(
        "--resolve", type=host_and_address, action="append", default=[], metavar="HOST:ADDRESS",
        help="connect to ADDRESS for HOST, keeping HOST in URLs and Host headers (as curl --resolve)",
    )
    parser.add_argument("--ca-file", help="CA certificate(s) to trust for https (e.g. the ingress's test CA)")
    parser.add_argument("--metrics-url", action="append", default=[],
                        help="base URL of a pod whose /metrics counts (then the public /metrics must be refused)")
    parser.add_argument("--pod-url", action="append", default=[],
                        help="base URL of one replica by its address; two of them: check what the replicas share")
    return parser.parse_args()


def request_total(*mlflow_urls: str) -> float:
    """The requests MLflow counted, summed over the given servers (each one's workers already aggregated)."""
    total = 0.0
    for mlflow_url in mlflow_urls:
        answer = requests.get(f"{mlflow_url}/metrics", timeout=TIMEOUT)
        check(answer.status_code == 200, f"{mlflow_url}/metrics: HTTP {answer.status_code}")
        samples = METRIC_SAMPLE.findall(answer.text)
        check(bool(samples), f"{mlflow_url}/metrics has no {METRIC} samples")
        total += sum(float(sample) for sample in samples)
    return total


class Journey:
    """The checks in order; remembers what it created so that clean_up can delete it."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.url = args.mlflow_url.rstrip("/")
        self.name = unique_name("journey")
        self.second_password = read_secret(args.second_password_file)
        self.user_account = ""
        self.client = MlflowClient(tracking_uri=self.url)
        self.keys: list[tuple[WebLogin, int]] = []
        self.experiments: list[str] = []
        self.model = ""
        self.admin_api: Api | None = None
        self.user_login: WebLogin | None = None
        self.user_api: Api | None = None
        self.second_api: Api | None = None

    def login(self, username: str, password: str = "") -> WebLogin:
        """Keycloak's form with the password the identity role stored, unless given one."""
        password = password or read_secret(self.args.secrets_dir / f"keycloak_user_{username}_password")
        return WebLogin(self.url, username, password)

    def named_key(self, login: WebLogin) -> str:
        key = login.create_named_key(self.name)
        self.keys.append((login, key["id"]))
        check(key["token"].startswith("mlf_"), "the access key does not start with mlf_")
        return key["token"]

    def mlflow_jwt(self, username: str = "", password: str = "") -> str:
        """An access token issued for MLflow (the mlflow client's code flow, as MLflow does it), of the second user
        unless another is given."""
        return code_flow_token(
            self.args.issuer, self.args.client_id, read_secret(self.args.client_secret_file),
            f"{self.url}/callback", username or self.args.second_user, password or self.second_password,
        )

    def other_client_jwt(self) -> str:
        """An access token of the second user that the realm issued to another client (password grant)."""
        answer = requests.post(
            f"{self.args.issuer}/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": self.args.other_client_id,
                "client_secret": read_secret(self.args.other_client_secret_file),
                "username": self.args.second_user,
                "password": self.second_password,
                "scope": "openid email profile",
            },
            timeout=TIMEOUT,
        )
        check(answer.status_code == 200, f"Keycloak token: HTTP {answer.status_code} {answer.text[:200]}")
        return answer.json()["access_token"]

    def run(self) -> None:
        if self.url.startswith("https://"):
            self.http_is_redirected_and_https_has_hsts()
        self.outsider_is_refused()
        owner_api, tracked = self.user_tracks_a_run()
        experiment_query = {"experiment_id": tracked["experiment_id"]}
        self.jwt_makes_the_account_of_a_member_only(experiment_query)
        self.second_user_needs_a_grant(owner_api, experiment_query)
        self.jwt_works_after_login(tracked["experiment_id"])
        self.admin_sees_every_experiment()
        self.service_endpoints_answer(owner_api, experiment_query)
        self.cross_origin_writes_only_from_the_public_origin(owner_api)
        if len(self.args.pod_url) >= 2:
            self.replicas_share_sessions_and_grants()
        print(json.dumps({"artifact_key": tracked["artifact_key"], "artifact_content": tracked["content"]}))

    def http_is_redirected_and_https_has_hsts(self) -> None:
        plain = "http://" + self.url.removeprefix("https://")
        redirect = requests.get(f"{plain}/health", allow_redirects=False, timeout=TIMEOUT)
        check(redirect.status_code in (301, 308) and redirect.headers.get("Location") == f"{self.url}/health",
              f"http: HTTP {redirect.status_code} to {redirect.headers.get('Location')}, not a redirect to https")
        answer = requests.get(f"{self.url}/health", timeout=TIMEOUT)
        hsts = answer.headers.get("Strict-Transport-Security", "")
        check(answer.status_code == 200 and "max-age=" in hsts, f"https: HTTP {answer.status_code}, HSTS {hsts!r}")
        log(f"plain http is redirected to https ({redirect.status_code}); https answers carry HSTS ({hsts})")

    def outsider_is_refused(self) -> None:
        outsider = self.login(self.args.outsider)
        error = parse_qs(urlsplit(outsider.landing_url).query).get("error", [""])[0]
        check(outsider.landing_path == "/oidc/ui/auth", f"the outsider landed on {outsider.landing_url}")
        check("not allowed" in error, f"the outsider's login failed with {error!r}, not a refusal")
        check(not outsider.status().get("authenticated"), "the outsider holds an authenticated session")
        log(f"{self.args.outsider} is refused at login ({error})")

    def user_tracks_a_run(self) -> tuple[Api, dict]:
        user = self.login(self.args.user)
        check(user.landing_path == "/oidc/ui/user", f"{self.args.user} landed on {user.landing_url}")
        status = user.status()
        check(bool(status.get("authenticated")), f"/auth/status: {status}")
        self.user_account = status["username"]
        if self.url.startswith("https://"):
            cookies = user.mlflow_cookies()
            check(bool(cookies) and all(cookie.secure for cookie in cookies),
                  f"MLflow's cookies over https: {[(cookie.name, cookie.secure) for cookie in cookies]}")
            log("over https MLflow's session cookie is Secure, and the next requests carry it")
        self.user_login = user
        user_key = self.named_key(user)
        log(f"{self.args.user} logs in through Keycloak's form and creates an access key")

        admin = self.login(self.args.admin)
        self.admin_api = Api(self.url, basic=(admin.account, self.named_key(admin)))

        content = f"artifact of {self.name}"
        with mlflow_credentials(MLFLOW_TRACKING_USERNAME=self.user_account, MLFLOW_TRACKING_PASSWORD=user_key):
            tracked = track_a_run(self.client, self.name, content)
        self.experiments.append(tracked["experiment_id"])
        self.model = self.name
        log(f"{self.args.user} tracks a run with HTTP Basic: experiment, params, metrics, artifact, model version")
        self.user_api = Api(self.url, basic=(self.user_account, user_key))
        return self.user_api, {**tracked, "content": content}

    def jwt_makes_the_account_of_a_member_only(self, experiment_query: dict) -> None:
        # OIDC_PROVISION_ON_BEARER_AUTH: the first request with a token meant for MLflow makes the account, with the
        # same group gate as a login, so service accounts (which never log in) work.
        member = Api(self.url, bearer=self.mlflow_jwt())
        member.expect(200, "POST", "experiments/search", {"max_results": 1})
        member.expect(403, "GET", "experiments/get", params=experiment_query)
        log(f"a JWT of {self.args.second_user} issued for MLflow makes its account before any login; it cannot read "
            f"{self.name} (403)")
        outsider_password = read_secret(self.args.secrets_dir / f"keycloak_user_{self.args.outsider}_password")
        outsider = self.mlflow_jwt(self.args.outsider, outsider_password)
        Api(self.url, bearer=outsider).expect(401, "POST", "experiments/search", {"max_results": 1})
        log(f"a JWT of {self.args.outsider} issued for MLflow is refused (401): in no MLflow group, no account")

    def second_user_needs_a_grant(self, owner_api: Api, experiment_query: dict) -> None:
        second = self.login(self.args.second_user, self.second_password)
        check(second.landing_path == "/oidc/ui/user", f"{self.args.second_user} landed on {second.landing_url}")
        # A new account: keyed by the Keycloak user name, which users cannot change (not by their e-mail address).
        check(second.account == self.args.second_user, f"{self.args.second_user}'s account is {second.account}")
        second_api = Api(self.url, basic=(self.args.second_user, second.create_default_key()))
        self.second_api = second_api
        second_api.expect(403, "GET", "experiments/get", params=experiment_query)
        check(self.name not in second_api.experiment_names(f"{self.name}%"), f"the second user lists {self.name}")
        log(f"{self.args.second_user} cannot read {self.name} (403)")

        grant = f"permissions/users/{self.args.second_user}/experiments/{experiment_query['experiment_id']}"
        owner_api.expect((200, 201), "POST", grant, {"permission": "READ"})
        seen = second_api.expect_within(PERMISSION_CHANGE_SECONDS, 200, "GET", "experiments/get", experiment_query)
        check(seen["experiment"]["name"] == self.name, f"the second user reads {seen}")
        second_api.expect(403, "POST", "runs/create", experiment_query)
        log(f"once the owner grants READ, {self.args.second_user} reads {self.name} but cannot write to it")

    def jwt_works_after_login(self, experiment_id: str) -> None:
        with mlflow_credentials(MLFLOW_TRACKING_TOKEN=self.mlflow_jwt()):
            check(self.client.get_experiment(experiment_id).name == self.name, "the JWT cannot read the experiment")
            self.experiments.append(self.client.create_experiment(f"{self.name}-jwt"))
        log(f"a JWT issued for MLflow works as MLFLOW_TRACKING_TOKEN for {self.args.second_user} once logged in")
        # The realm's other clients get tokens for the same user; they are not MLflow's to accept (aud).
        Api(self.url, bearer=self.other_client_jwt()).expect(401, "GET", "experiments/get", {"experiment_id": experiment_id})
        log(f"a JWT of {self.args.second_user} issued to another client of the realm is refused (401): wrong audience")

    def admin_sees_every_experiment(self) -> None:
        expected = {self.name, f"{self.name}-jwt"}
        seen = self.admin_api.experiment_names(f"{self.name}%")
        check(seen == expected, f"{self.args.admin} sees {seen}, not {expected}")
        log(f"{self.args.admin} sees every experiment, including those shared with nobody")

    def service_endpoints_answer(self, owner_api: Api, experiment_query: dict) -> None:
        Api(self.url).expect(401, "POST", "experiments/search", {"max_results": 1})
        check(requests.get(f"{self.url}/health/ready", timeout=TIMEOUT).status_code == 200, "/health/ready")
        metrics_urls = self.args.metrics_url or [self.url]
        if self.args.metrics_url:
            public = requests.get(f"{self.url}/metrics", timeout=TIMEOUT).status_code
            check(public in (403, 404), f"the public {self.url}/metrics answers HTTP {public}")
            log(f"/metrics is refused on the public URL (HTTP {public})")
        before = request_total(*metrics_urls)
        statuses = {
            owner_api.call("GET", "experiments/get", params=experiment_query).status_code
            for call in range(METRIC_CALLS)
        }
        check(statuses == {200}, f"{METRIC_CALLS} reads of {self.name} got HTTP {statuses}")
        # Several workers (and pods) answered those calls: their /metrics together must count them all.
        counted = request_total(*metrics_urls) - before
        check(counted >= METRIC_CALLS, f"{METRIC} grew by {counted} after {METRIC_CALLS} calls")
        log(f"anonymous API call 401, /health/ready 200, /metrics of {len(metrics_urls)} server(s) counts {METRIC} "
            "across workers")

    def cross_origin_writes_only_from_the_public_origin(self, owner_api: Api) -> None:
        """What a browser sends for a page's POST: its Origin. MLflow allows the public URL's (its CORS origins)."""
        public_origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.url))
        statuses = {}
        for origin in (public_origin, "https://attacker.example"):
            answer = owner_api.session.post(f"{self.url}/api/2.0/mlflow/experiments/search", json={"max_results": 1},
                                            headers={"Origin": origin}, timeout=TIMEOUT)
            statuses[origin] = answer.status_code
        check(statuses == {public_origin: 200, "https://attacker.example": 403},
              f"cross-origin POSTs by Origin: {statuses}")
        log(f"a POST with Origin {public_origin} is served, one from another origin is refused (403)")

    def replicas_share_sessions_and_grants(self) -> None:
        """Requests pinned to one pod each: the pod is reached by its address (its Host header is allowed)."""
        first, second = self.args.pod_url[:2]
        for pod in (first, second):
            answer = requests.get(f"{pod}/auth/status", headers={"Cookie": self.user_login.cookie_header()},
                                  timeout=TIMEOUT)
            check(answer.status_code == 200 and answer.json().get("username") == self.user_account,
                  f"{pod} does not know the session made through {self.url}: HTTP {answer.status_code}")
        log(f"a session made through {self.url} is accepted by both pods, {first} and {second}")

        # /metrics needs no login, so MLflow's Host check alone answers (the API would ask for a login first).
        rebinding = requests.get(f"{first}/metrics", timeout=TIMEOUT,
                                 headers={"Host": f"{urlsplit(first).hostname}.attacker.example:5000"})
        check(rebinding.status_code == 403, f"a foreign Host header on {first}: HTTP {rebinding.status_code}")

        owner_on_first = Api(first, basic=self.user_api.session.auth)
        second_on_second = Api(second, basic=self.second_api.session.auth)
        created = owner_on_first.expect(200, "POST", "experiments/create", {"name": f"{self.name}-replicas"})
        self.experiments.append(created["experiment_id"])
        query = {"experiment_id": created["experiment_id"]}
        # Every worker of the second pod answers (and caches) a refusal first.
        refused = {second_on_second.call("GET", "experiments/get", params=query).status_code
                   for call in range(PINNED_CALLS)}
        check(refused == {403}, f"the second user read {self.name}-replicas before any grant: HTTP {refused}")
        grant = f"permissions/users/{self.args.second_user}/experiments/{created['experiment_id']}"
        owner_on_first.expect((200, 201), "POST", grant, {"permission": "READ"})
        allowed = [second_on_second.call("GET", "experiments/get", params=query).status_code
                   for call in range(PINNED_CALLS)]
        check(allowed == [200] * PINNED_CALLS, f"after a grant through {first}, {second} answered {allowed}")
        log(f"a grant made through {first} is enforced by {second} from the next request on ({PINNED_CALLS} of "
            f"{PINNED_CALLS}); a foreign Host header is refused (403)")

    def clean_up(self) -> None:
        """Delete what the journey made in MLflow, as the admin; the artifact stays for the bucket check."""
        if self.admin_api is not None:
            admin, key = self.admin_api.session.auth
            with mlflow_credentials(MLFLOW_TRACKING_USERNAME=admin, MLFLOW_TRACKING_PASSWORD=key):
                for experiment_id in self.experiments:
                    self.client.delete_experiment(experiment_id)
                if self.model:
                    self.client.delete_registered_model(self.model)
            answer = self.admin_api.session.delete(
                f"{self.url}/api/2.0/mlflow/users", json={"username": self.args.second_user}, timeout=TIMEOUT
            )
            check(answer.status_code in (200, 404),
                  f"deleting MLflow user {self.args.second_user}: {answer.status_code}")
        for login, key_id in self.keys:
            login.delete_key(key_id)


def main() -> None:
    args = parse_args()
    for host, address in args.resolve:
        resolve(host, address)
    if args.ca_file:
        # requests, and the MLflow client through it, verify https against this bundle.
        os.environ["REQUESTS_CA_BUNDLE"] = args.ca_file
    journey = Journey(args)
    try:
        journey.run()
    finally:
        journey.clean_up()


if __name__ == "__main__":
    main()
