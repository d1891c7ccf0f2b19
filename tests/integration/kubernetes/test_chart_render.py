"""The values of the chart role on the REAL Community Charts chart 1.11.5, rendered with `helm template` (no cluster).

The role runs in render mode behind the real mlflow role (tests/integration/playbooks/chart_render.yml). The test
then renders the real chart with the values.yaml it wrote, as a GitOps tool would. It reads the mlflow container's
arguments and environment the way Kubernetes and `mlflow server` do.
"""

from __future__ import annotations

import base64
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
NAMESPACE = "mlflow"
WORKERS = 3
# Inputs of the mlflow role, and the argv MLflow must hand to uvicorn for them (log level first).
UVICORN_OPTIONS = "--timeout-worker-healthcheck 30 --forwarded-allow-ips '10.0.0.1,10.0.0.2'"
UVICORN_TOKENS = [
    "--log-level=warning", "--timeout-worker-healthcheck", "30", "--forwarded-allow-ips", "10.0.0.1,10.0.0.2",
]
# The secrets tests/integration/playbooks/chart_render.yml feeds the roles.
SECRET_VALUES = ["render-database-password", "render-s3-secret-key", "render-client-secret"]


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

    @property
    def pod(self) -> dict:
        (deployment,) = self.kind("Deployment")
        return deployment["spec"]["template"]["spec"]

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


@pytest.fixture(scope="module")
def render(helm: Path, tmp_path_factory):
    """Render once per (release name, ServiceMonitor): the role's render mode, then `helm template` of its values."""
    cache: dict[tuple[str, bool], Rendered] = {}

    def rendered(release: str, service_monitor: bool) -> Rendered:
        if (release, service_monitor) not in cache:
            directory = tmp_path_factory.mktemp(f"{release}-{service_monitor}")
            settings = {
                "chart_release_name": release, "chart_namespace": NAMESPACE, "chart_render_dir": str(directory),
                "chart_render_service_monitor": service_monitor, "chart_ref": str(CHART),
                "chart_helm_binary": str(helm), "chart_secret_backend": "external-secrets",
                "mlflow_workers": WORKERS, "mlflow_log_level": "WARNING", "mlflow_uvicorn_options": UVICORN_OPTIONS,
            }
            result = run_playbook(RENDER, "-e", json.dumps(settings), timeout=600)
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
            cache[(release, service_monitor)] = Rendered(
                values=yaml.safe_load(values_file.read_text()),
                role_secrets={doc["spec"]["target"]["name"] for doc in external if doc},
                documents=[doc for doc in yaml.safe_load_all(manifests) if doc],
            )
        return cache[(release, service_monitor)]

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
