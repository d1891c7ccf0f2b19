"""The values of the chart role on the REAL Community Charts chart 1.11.5, rendered with `helm template` (no cluster):
see chart_render.py for how, and conftest.py for the fixtures `helm` and `render`."""

from __future__ import annotations

import fnmatch
import json
import shlex

import pytest
import yaml

from tests.ansible_runner import REPO_ROOT, run_playbook
from tests.integration.kubernetes.chart_render import (
    CHART_ALONE, REDIS_URL, SECRET_VALUES, UVICORN_TOKENS, WORKERS, render_settings, run_render,
)

pytestmark = pytest.mark.kubernetes


def all_tasks(tasks: list[dict]):
    """Every task of a task file, those inside blocks too."""
    for task in tasks:
        yield task
        yield from all_tasks(task.get("block", []) + task.get("rescue", []) + task.get("always", []))


def failure_message(output: str) -> str:
    """The msg of the task that failed, from the yaml callback's result after `FAILED! =>`."""
    result = output.split("FAILED! =>", 1)[1].split("\n\n", 1)[0]
    return yaml.safe_load(result)["msg"]


@pytest.mark.parametrize("service_monitor", [False, True], ids=["service-monitor-off", "service-monitor-on"])
def test_uvicorn_gets_the_log_level_and_options_as_separate_tokens(render, service_monitor):
    options = render("tracking", service_monitor).server_options()
    # mlflow.server._build_uvicorn_command: shlex.split(uvicorn_opts) goes into uvicorn's argv as it is.
    assert shlex.split(options["uvicorn_opts"]) == UVICORN_TOKENS


def test_workers_and_mlflow_logging_come_from_the_environment(render):
    rendered = render("tracking", False)
    assert rendered.server_options()["workers"] == str(WORKERS)
    assert not [arg for arg in rendered.container["args"] if arg.startswith(("--workers", "--uvicorn-opts"))]
    environment = rendered.environment()
    assert environment["MLFLOW_CONFIGURE_LOGGING"] == "true"
    assert environment["MLFLOW_LOGGING_LEVEL"] == "WARNING"
    assert environment["LOG_LEVEL"] == "WARNING"


def test_bearer_provisioning_gets_the_public_issuer_and_mlflows_audience(render):
    # mlflow-oidc-auth provisions an account from a Bearer token (service accounts never log in) only when both are
    # pinned; the token's iss is Keycloak's public URL, the one browsers and pipelines reach.
    environment = render("tracking", False).environment()
    assert environment["OIDC_PROVISION_ON_BEARER_AUTH"] == "true"
    assert environment["OIDC_TRUST_BEARER_GROUP_CLAIMS"] == "true"
    assert environment["OIDC_ISSUER"] == "https://keycloak.render.test/realms/mlflow"
    assert environment["OIDC_AUDIENCE"] == "mlflow"


@pytest.mark.parametrize("service_monitor", [False, True], ids=["service-monitor-off", "service-monitor-on"])
def test_prometheus_directory_is_one_writable_emptydir(render, service_monitor):
    rendered = render("tracking", service_monitor)
    flags = [arg for arg in rendered.container["args"] if arg.startswith("--expose-prometheus")]
    assert len(flags) <= 1, flags
    directory = rendered.server_options()["expose_prometheus"]
    assert directory
    # One directory: a flag and the environment, when both are there, name the same.
    assert all(flag == f"--expose-prometheus={directory}" for flag in flags)
    assert rendered.environment().get("MLFLOW_EXPOSE_PROMETHEUS", directory) == directory
    mount = rendered.mount_of(directory)
    assert "emptyDir" in mount["volume"] and not mount.get("readOnly", False)
    assert bool(rendered.kind("ServiceMonitor")) == service_monitor


@pytest.mark.parametrize("release", ["tracking", "mlflow"])
def test_every_secret_the_container_reads_is_one_the_role_creates(render, release):
    rendered = render(release, False)
    assert rendered.role_secrets == {f"{release}-settings", f"{release}-flask-server-secret-key"}
    # The secret settings, the login the chart reads with its password, and mlflow-oidc-auth's session key.
    secret_settings = {setting["name"] for setting in rendered.settings if setting["secret"]}
    assert set(rendered.role_secret_data[f"{release}-settings"]) == secret_settings | {"PGUSER", "SECRET_KEY"}
    references = {env["valueFrom"]["secretKeyRef"]["name"] for env in rendered.container["env"]
                  if "secretKeyRef" in env.get("valueFrom", {})}
    assert references <= rendered.role_secrets
    # envFrom may also name the chart's own plain Secrets, never one of its hooks (the SECRET_KEY it makes when
    # none exists).
    chart_secrets = {doc["metadata"]["name"] for doc in rendered.kind("Secret")
                     if "helm.sh/hook" not in (doc["metadata"].get("annotations") or {})}
    from_secrets = {source["secretRef"]["name"] for source in rendered.container["envFrom"] if "secretRef" in source}
    assert from_secrets <= rendered.role_secrets | chart_secrets
    assert f"{release}-settings" in from_secrets


def test_values_hold_no_secret_and_install_mode_passes_the_same_values(render):
    rendered = render("tracking", False)
    assert "flaskServerSecretKey" not in rendered.values
    text = yaml.safe_dump(rendered.values)
    assert not [value for value in SECRET_VALUES if value in text]
    tasks = yaml.safe_load((REPO_ROOT / "roles/chart/tasks/release.yml").read_text())
    (install,) = [task["kubernetes.core.helm"] for task in all_tasks(tasks) if "kubernetes.core.helm" in task]
    assert install["release_values"] == "{{ _chart_values }}"


def test_migration_job_runs_once_before_the_pods_with_no_secret_in_its_spec(render):
    rendered = render("tracking", False)
    job = rendered.named("Job", "tracking-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][:2] == ["python", "-c"]
    compile(container["command"][2], "migrate", "exec")
    assert container["image"] == rendered.container["image"]
    assert container["securityContext"]["readOnlyRootFilesystem"] and container["securityContext"]["runAsNonRoot"]
    # The server's database settings, the login from the role's Secret, and no other secret.
    assert "envFrom" not in container
    secret_refs = {env["name"]: env["valueFrom"]["secretKeyRef"] for env in container["env"] if "valueFrom" in env}
    assert secret_refs == {"PGUSER": {"name": "tracking-settings", "key": "PGUSER"},
                           "PGPASSWORD": {"name": "tracking-settings", "key": "PGPASSWORD"}}
    plain = {env["name"]: env["value"] for env in container["env"] if "value" in env}
    assert plain["MLFLOW_BACKEND_STORE_URI"] == "postgresql+psycopg2://" and plain["PGDATABASE"] == "mlflow"
    assert plain["OIDC_USERS_DB_URI"] == "postgresql+psycopg2:///mlflow_auth"
    assert not [value for value in SECRET_VALUES if value in yaml.safe_dump(job)]
    # The Service must not send traffic to the Job's pod, and no pod migrates by itself (the chart's init container).
    (service,) = rendered.kind("Service")
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= labels.items()
    assert "mlflow-db-migration" not in [c["name"] for c in rendered.pod.get("initContainers") or []]


def gc_container_environment(rendered, container: dict) -> dict[str, str]:
    """A container's env as the kubelet builds it (this one has no envFrom)."""
    assert "envFrom" not in container
    return {env["name"]: env["value"] if "value" in env else
            rendered.secret_data(env["valueFrom"]["secretKeyRef"]["name"])[env["valueFrom"]["secretKeyRef"]["key"]]
            for env in container["env"]}


def test_gc_cronjob_runs_the_gc_program_with_the_servers_image_settings_and_s3_login(render):
    rendered = render("tracking", False)
    cronjob = rendered.named("CronJob", "tracking-gc")
    assert cronjob["spec"]["schedule"] == "30 3 * * *" and cronjob["spec"]["timeZone"] == "Etc/UTC"
    assert cronjob["spec"]["suspend"] is False and cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    job = cronjob["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    # The mlflow role's gc program, as it is in the collection; the age as the schedule's argument.
    assert container["command"][:2] == ["python", "-c"]
    assert container["command"][2] == (REPO_ROOT / "roles/mlflow/files/gc.py").read_text().rstrip("\n")
    compile(container["command"][2], "gc", "exec")
    assert container["args"] == ["--older-than", "30d"]
    assert container["image"] == rendered.container["image"]
    assert container["securityContext"]["readOnlyRootFilesystem"] and container["securityContext"]["runAsNonRoot"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    # From the role's Secret only the database login and the S3 key; every other setting is the server's own.
    secret_refs = {env["name"]: env["valueFrom"]["secretKeyRef"] for env in container["env"] if "valueFrom" in env}
    assert secret_refs == {name: {"name": "tracking-settings", "key": name}
                           for name in ("PGUSER", "PGPASSWORD", "AWS_SECRET_ACCESS_KEY")}
    server, gc = rendered.environment(), gc_container_environment(rendered, container)
    for name in ("MLFLOW_BACKEND_STORE_URI", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD",
                 "MLFLOW_ARTIFACTS_DESTINATION", "MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert gc[name] == server[name], name
    assert {name: value for name, value in gc.items() if name not in secret_refs} == rendered.values["extraEnvVars"]
    assert not {"OIDC_CLIENT_SECRET", "SECRET_KEY", "CACHE_REDIS_URL"} & set(gc)
    assert not [value for value in SECRET_VALUES if value in yaml.safe_dump(cronjob)]
    # The Service must not send traffic to gc's pod.
    (service,) = rendered.kind("Service")
    assert not service["spec"]["selector"].items() <= job["template"]["metadata"]["labels"].items()


def test_gc_schedule_age_and_suspension_come_from_the_role_variables(helm, tmp_path):
    settings = render_settings(helm, tmp_path, "tracking", False, chart_gc_enabled=False, chart_gc_schedule="@daily",
                               chart_gc_older_than="7d12h")
    result = run_render(settings)
    assert result.returncode == 0, result.output[-4000:]
    values = yaml.safe_load((tmp_path / "values.yaml").read_text())
    (cronjob,) = [doc for doc in values["extraDeploy"] if doc["kind"] == "CronJob"]
    assert cronjob["spec"]["suspend"] is True and cronjob["spec"]["schedule"] == "@daily"
    assert cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "--older-than", "7d12h"]


def test_in_cluster_callers_and_the_public_origin_are_allowed_never_a_bare_wildcard(render):
    environment = render("tracking", False).environment()
    hosts = environment["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert {"mlflow.render.test", "tracking", "tracking.mlflow", "tracking.mlflow.svc",
            "tracking.mlflow.svc.cluster.local"} <= set(hosts)
    # The pods' addresses of the default pod network (k3s's 10.42.0.0/16) with the container port, as Prometheus
    # sends them; MLflow matches an entry with a '*' by fnmatch.
    patterns = [host for host in hosts if "*" in host]
    assert patterns == ["10.42.*[0-9]:5000"]
    assert fnmatch.fnmatch("10.42.3.17:5000", patterns[0])
    assert not [name for name in ("10.42.0.7.evil.example:5000", "10.42.evil.example:5000", "10.42.0.7:80")
                if fnmatch.fnmatch(name, patterns[0])]
    assert environment["MLFLOW_SERVER_CORS_ALLOWED_ORIGINS"] == "https://mlflow.render.test"


def test_replicas_share_the_permission_cache_through_a_secret(render):
    rendered = render("tracking", False, replicas=2)
    assert rendered.values["replicaCount"] == 2
    environment = rendered.environment()
    assert environment["CACHE_BACKEND"] == "redis" and environment["CACHE_REDIS_URL"] == REDIS_URL
    assert rendered.role_secret_data["tracking-settings"]["CACHE_REDIS_URL"] == REDIS_URL
    assert "CACHE_REDIS_URL" not in [env["name"] for env in rendered.container["env"]]
    assert REDIS_URL not in yaml.safe_dump(rendered.values)
    budget = rendered.named("PodDisruptionBudget", "tracking")
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= rendered.pod_labels.items()


def test_render_mode_needs_neither_a_kubeconfig_nor_a_cluster(render):
    # Every render of this module runs with chart_kubeconfig and KUBECONFIG naming a file that does not exist.
    rendered = render("tracking", False)
    assert rendered.kind("Deployment") and rendered.values["replicaCount"] == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"chart_replicas": 0}, "chart_replicas is 0: set it to 1 or more."),
        (
            {"chart_replicas": 2, "chart_migrate_schema": False},
            "chart_replicas is 2 but chart_migrate_schema is false: each new pod would migrate the database schema at "
            "its start, and several at once would race. Set chart_migrate_schema to true, or keep chart_replicas at 1.",
        ),
        # Install mode reads the kubeconfig: one that does not exist is refused before any cluster is asked.
        (
            {"chart_mode": "install", "chart_kubeconfig": "/nonexistent/kubeconfig"},
            "chart_kubeconfig (/nonexistent/kubeconfig) is not a file: set it to the kubeconfig of the cluster, or "
            "leave it empty for the Kubernetes client's default (KUBECONFIG or ~/.kube/config).",
        ),
        (
            {"chart_gc_schedule": "daily"},
            "chart_gc_schedule is 'daily': give a CronJob schedule, cron's five fields (minute hour day-of-month month "
            "day-of-week, e.g. '30 3 * * *') or a macro such as @daily.",
        ),
    ],
    ids=["no-replica", "replicas-without-migration-job", "install-without-kubeconfig", "gc-schedule"],
)
def test_a_bad_input_is_refused_naming_only_its_own_condition(settings, message):
    result = run_playbook(CHART_ALONE, "-e", json.dumps({"chart_mode": "render", **settings}), timeout=120)
    assert result.returncode != 0
    assert failure_message(result.output) == message, result.output[-3000:]
    assert "Traceback" not in result.output


def test_several_replicas_without_the_shared_cache_are_refused(helm, tmp_path):
    settings = render_settings(helm, tmp_path, "tracking", False, chart_replicas=2)
    result = run_render(settings)
    assert result.returncode != 0
    assert "chart_replicas is 2, but mlflow_cache_redis_url (role mlops.mlflow.mlflow) is empty" in result.output
    assert not (tmp_path / "values.yaml").exists()


def test_traefik_redirects_to_https_adds_hsts_and_keeps_metrics_private(render):
    rendered = render("tracking", True)
    (ingress,) = [doc for doc in rendered.kind("Ingress") if doc["metadata"]["name"] == "tracking"]
    assert ingress["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.middlewares"] == (
        "mlflow-tracking-redirect-https@kubernetescrd,mlflow-tracking-security-headers@kubernetescrd,"
        "mlflow-tracking-retry@kubernetescrd")
    middlewares = {doc["metadata"]["name"]: doc["spec"] for doc in rendered.kind("Middleware")}
    assert middlewares["tracking-redirect-https"] == {"redirectScheme": {"scheme": "https", "permanent": True}}
    assert middlewares["tracking-security-headers"]["headers"]["stsSeconds"] == 31536000
    assert middlewares["tracking-retry"]["retry"]["attempts"] > 1
    # Traefik v3 has no sslRedirect, and forcing X-Forwarded-Proto would lie on plain http.
    assert "sslRedirect" not in yaml.safe_dump(middlewares) and "customRequestHeaders" not in yaml.safe_dump(middlewares)
    metrics = rendered.named("Ingress", "tracking-metrics")
    assert metrics["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.middlewares"] == (
        "mlflow-tracking-deny-all@kubernetescrd")
    assert metrics["spec"]["rules"][0]["host"] == ingress["spec"]["rules"][0]["host"]
    assert metrics["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/metrics"
    assert middlewares["tracking-deny-all"] == {"ipAllowList": {"sourceRange": ["0.0.0.0/32"]}}
    # Prometheus finds the pods by the Service's port name: the chart's default names a container port that is not.
    (monitor,) = rendered.kind("ServiceMonitor")
    (service,) = rendered.kind("Service")
    assert monitor["spec"]["endpoints"][0]["port"] in [port["name"] for port in service["spec"]["ports"]]
