"""The values of the chart role on the REAL Community Charts chart 1.11.5, rendered with `helm template` (no cluster).

The role runs in render mode behind the real mlflow role (tests/integration/playbooks/chart_render.yml). The test
then renders the real chart with the values.yaml it wrote, as a GitOps tool would. It reads the mlflow container's
arguments and environment the way Kubernetes and `mlflow server` do.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from tests.ansible_runner import REPO_ROOT, run_playbook
from tests.kube import build

pytestmark = pytest.mark.kubernetes

# Third-party chart provided beside the project, never copied into it.
CHART = Path(
    os.environ.get(
        "MLOPS_MLFLOW_CHART",
        REPO_ROOT.parent / "shared/reference/community-charts-mlflow-1.11.5/mlflow-1.11.5.tgz",
    )
)
RENDER = "tests/integration/playbooks/chart_render.yml"
# The chart role alone, with a stand-in configuration: for the checks that fail before it is read.
CHART_ALONE = "tests/integration/playbooks/chart_errors.yml"
NAMESPACE = "mlflow"
WORKERS = 3
# Inputs of the mlflow role, and the argv MLflow must hand to uvicorn for them (log level first).
UVICORN_OPTIONS = "--timeout-worker-healthcheck 30 --forwarded-allow-ips '10.0.0.1,10.0.0.2'"
UVICORN_TOKENS = [
    "--log-level=warning", "--timeout-worker-healthcheck", "30", "--forwarded-allow-ips", "10.0.0.1,10.0.0.2",
]
# The secrets tests/integration/playbooks/chart_render.yml feeds the roles.
SECRET_VALUES = ["render-database-password", "render-s3-secret-key", "render-client-secret", "render-redis-password"]
REDIS_URL = "redis://:render-redis-password@redis.cache.svc:6379/0"


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--workers", "-w", envvar="MLFLOW_WORKERS", default=None)
@click.option("--uvicorn-opts", envvar="MLFLOW_UVICORN_OPTS", default=None)
@click.option("--expose-prometheus", envvar="MLFLOW_EXPOSE_PROMETHEUS", default=None)
def mlflow_server(workers, uvicorn_opts, expose_prometheus) -> dict:
    """The options of `mlflow server` (mlflow 3.17.2, mlflow/cli/__init__.py) this test checks, declared alike."""
    return {"workers": workers, "uvicorn_opts": uvicorn_opts, "expose_prometheus": expose_prometheus}


@dataclass
class Rendered:
    values: dict
    role_secrets: set[str]
    documents: list[dict]

    def kind(self, kind: str) -> list[dict]:
        return [doc for doc in self.documents if doc["kind"] == kind]

    def named(self, kind: str, name: str) -> dict:
        (found,) = [doc for doc in self.kind(kind) if doc["metadata"]["name"] == name]
        return found

    @property
    def pod(self) -> dict:
        (deployment,) = self.kind("Deployment")
        return deployment["spec"]["template"]["spec"]

    @property
    def pod_labels(self) -> dict:
        (deployment,) = self.kind("Deployment")
        return deployment["spec"]["template"]["metadata"]["labels"]

    @property
    def container(self) -> dict:
        return next(c for c in self.pod["containers"] if c["name"] == "mlflow")

    def environment(self) -> dict[str, str]:
        """The container's plain environment as the kubelet builds it: envFrom in order, then env over it."""
        by_name = {(doc["kind"], doc["metadata"]["name"]): doc for doc in self.documents}
        found: dict[str, str] = {}
        for source in self.container.get("envFrom", []):
            if "configMapRef" in source:
                found.update(by_name[("ConfigMap", source["configMapRef"]["name"])].get("data") or {})
            elif ("Secret", source["secretRef"]["name"]) in by_name:
                secret = by_name[("Secret", source["secretRef"]["name"])]
                found.update({k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()})
        found.update({env["name"]: env["value"] for env in self.container["env"] if "value" in env})
        return found

    def server_options(self) -> dict:
        """`mlflow server`'s options from the container's argv and environment, resolved by click as MLflow does."""
        assert self.container["command"] == ["mlflow"] and self.container["args"][0] == "server"
        environment = self.environment()
        env = {name: environment.get(name) for name in ("MLFLOW_WORKERS", "MLFLOW_UVICORN_OPTS",
                                                        "MLFLOW_EXPOSE_PROMETHEUS")}
        result = CliRunner(env=env).invoke(mlflow_server, self.container["args"][1:], standalone_mode=False)
        assert result.exception is None, result.output
        return result.return_value

    def mount_of(self, path: str) -> dict:
        """The container's volume mount that holds `path`, with its volume."""
        mounts = [m for m in self.container["volumeMounts"] if path == m["mountPath"]
                  or path.startswith(m["mountPath"].rstrip("/") + "/")]
        assert mounts, f"{path} is on the read-only root file system"
        mount = max(mounts, key=lambda m: len(m["mountPath"]))
        volume = next(v for v in self.pod["volumes"] if v["name"] == mount["name"])
        return {**mount, "volume": volume}


def all_tasks(tasks: list[dict]):
    """Every task of a task file, those inside blocks too."""
    for task in tasks:
        yield task
        yield from all_tasks(task.get("block", []) + task.get("rescue", []) + task.get("always", []))


@pytest.fixture(scope="module")
def helm() -> Path:
    if not CHART.is_file():
        pytest.fail(f"the Community Charts mlflow chart is missing at {CHART} (set MLOPS_MLFLOW_CHART)", pytrace=False)
    try:
        return build.ensure_helm()
    except build.BuildError as error:
        pytest.fail(f"Helm could not be built: {error}", pytrace=False)


def render_settings(helm: Path, directory: Path, release: str, service_monitor: bool, **more) -> dict:
    return {
        "chart_release_name": release, "chart_namespace": NAMESPACE, "chart_render_dir": str(directory),
        # Render mode reads no kubeconfig: this one does not exist, nor does the one of KUBECONFIG (run_render).
        "chart_kubeconfig": str(directory / "no-kubeconfig"),
        "chart_render_service_monitor": service_monitor, "chart_ref": str(CHART),
        "chart_helm_binary": str(helm), "chart_secret_backend": "external-secrets",
        "mlflow_workers": WORKERS, "mlflow_log_level": "WARNING", "mlflow_uvicorn_options": UVICORN_OPTIONS,
        **more,
    }


def run_render(settings: dict):
    """The render playbook with no kubeconfig anywhere, so nothing could reach a cluster."""
    return run_playbook(RENDER, "-e", json.dumps(settings), timeout=600, KUBECONFIG=settings["chart_kubeconfig"])


def failure_message(output: str) -> str:
    """The msg of the task that failed, from the yaml callback's result after `FAILED! =>`."""
    result = output.split("FAILED! =>", 1)[1].split("\n\n", 1)[0]
    return yaml.safe_load(result)["msg"]


@pytest.fixture(scope="module")
def render(helm: Path, tmp_path_factory):
    """Render once per (release name, ServiceMonitor, replicas): the role's render mode, then `helm template` of its
    values. Several replicas come with the shared cache."""
    cache: dict[tuple[str, bool, int], Rendered] = {}

    def rendered(release: str, service_monitor: bool, replicas: int = 1) -> Rendered:
        if (release, service_monitor, replicas) not in cache:
            directory = tmp_path_factory.mktemp(f"{release}-{service_monitor}-{replicas}")
            shared_cache = {"mlflow_cache_redis_url": REDIS_URL} if replicas > 1 else {}
            settings = render_settings(helm, directory, release, service_monitor, chart_replicas=replicas,
                                       **shared_cache)
            result = run_render(settings)
            assert result.returncode == 0, result.output[-4000:]
            values_file = directory / "values.yaml"
            external = yaml.safe_load_all((directory / "external-secrets.yaml").read_text())
            # The chart's ServiceMonitor renders only when the cluster serves its API.
            api_versions = ["--api-versions", "monitoring.coreos.com/v1"] if service_monitor else []
            manifests = subprocess.run(
                [str(helm), "template", release, str(CHART), "--namespace", NAMESPACE, "--values", str(values_file),
                 *api_versions],
                capture_output=True, text=True, timeout=120, check=True,
            ).stdout
            cache[(release, service_monitor, replicas)] = Rendered(
                values=yaml.safe_load(values_file.read_text()),
                role_secrets={doc["spec"]["target"]["name"] for doc in external if doc},
                documents=[doc for doc in yaml.safe_load_all(manifests) if doc],
            )
        return cache[(release, service_monitor, replicas)]

    return rendered


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
    assert rendered.role_secrets == {f"{release}-{suffix}" for suffix in
                                     ("database", "s3", "oidc", "flask-server-secret-key")}
    secret_key = next(env for env in rendered.container["env"] if env["name"] == "SECRET_KEY")
    assert secret_key["valueFrom"]["secretKeyRef"]["name"] == f"{release}-flask-server-secret-key"
    references = {env["valueFrom"]["secretKeyRef"]["name"] for env in rendered.container["env"]
                  if "secretKeyRef" in env.get("valueFrom", {})}
    assert references <= rendered.role_secrets
    # envFrom may also name the chart's own plain Secrets, never one of its hooks (the SECRET_KEY it makes when
    # none exists).
    chart_secrets = {doc["metadata"]["name"] for doc in rendered.kind("Secret")
                     if "helm.sh/hook" not in (doc["metadata"].get("annotations") or {})}
    from_secrets = {source["secretRef"]["name"] for source in rendered.container["envFrom"] if "secretRef" in source}
    assert from_secrets <= rendered.role_secrets | chart_secrets


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
    secret_refs = {env["name"]: env["valueFrom"]["secretKeyRef"] for env in container["env"] if "valueFrom" in env}
    assert secret_refs == {"PGUSER": {"name": "tracking-database", "key": "DATABASE_USERNAME"},
                           "PGPASSWORD": {"name": "tracking-database", "key": "DATABASE_PASSWORD"}}
    assert not [value for value in SECRET_VALUES if value in yaml.safe_dump(job)]
    # The Service must not send traffic to the Job's pod, and no pod migrates by itself (the chart's init container).
    (service,) = rendered.kind("Service")
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= labels.items()
    assert "mlflow-db-migration" not in [c["name"] for c in rendered.pod.get("initContainers") or []]


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
    assert rendered.environment()["CACHE_BACKEND"] == "redis"
    assert "tracking-cache" in rendered.role_secrets
    assert {"secretRef": {"name": "tracking-cache"}} in rendered.container["envFrom"]
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
    ],
    ids=["no-replica", "replicas-without-migration-job", "install-without-kubeconfig"],
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
