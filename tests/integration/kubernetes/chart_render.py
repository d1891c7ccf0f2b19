"""The chart role's render mode on the REAL Community Charts chart 1.11.5, rendered with `helm template` (no cluster).

The role runs in render mode behind the real mlflow role (tests/integration/playbooks/chart_render.yml), which also
writes the configuration and the content of the role's Secrets (fixed test strings) beside the values. The release is
then rendered with `helm template` of that values.yaml, as a GitOps tool would, and the mlflow container's arguments
and environment are read the way Kubernetes and `mlflow server` do. The fixtures `helm` and `render` are registered in
conftest.py.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from tests.ansible_runner import REPO_ROOT, run_playbook
from tests.kube import build

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
    documents: list[dict]
    # The mlflow role's settings, and name -> data of each Secret the chart role creates (render mode writes only
    # their ExternalSecrets; the test playbook writes their content).
    settings: list[dict]
    role_secret_data: dict[str, dict[str, str]]

    @property
    def role_secrets(self) -> set[str]:
        return set(self.role_secret_data)

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

    def secret_data(self, name: str) -> dict[str, str]:
        """A Secret's data: the chart's own from the manifests, the role's from what it creates."""
        if name in self.role_secret_data:
            return self.role_secret_data[name]
        secret = next(doc for doc in self.kind("Secret") if doc["metadata"]["name"] == name)
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}

    def environment(self) -> dict[str, str]:
        """The container's environment as the kubelet builds it: envFrom in order, then env over it."""
        found: dict[str, str] = {}
        for source in self.container.get("envFrom", []):
            if "configMapRef" in source:
                found.update(self.named("ConfigMap", source["configMapRef"]["name"]).get("data") or {})
            else:
                found.update(self.secret_data(source["secretRef"]["name"]))
        for env in self.container["env"]:
            if "value" in env:
                found[env["name"]] = env["value"]
            elif "secretKeyRef" in env.get("valueFrom", {}):
                reference = env["valueFrom"]["secretKeyRef"]
                found[env["name"]] = self.secret_data(reference["name"])[reference["key"]]
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
            contract = json.loads((directory / "contract.json").read_text())
            # The chart's ServiceMonitor renders only when the cluster serves its API.
            api_versions = ["--api-versions", "monitoring.coreos.com/v1"] if service_monitor else []
            manifests = subprocess.run(
                [str(helm), "template", release, str(CHART), "--namespace", NAMESPACE, "--values", str(values_file),
                 *api_versions],
                capture_output=True, text=True, timeout=120, check=True,
            ).stdout
            cache[(release, service_monitor, replicas)] = Rendered(
                values=yaml.safe_load(values_file.read_text()),
                documents=[doc for doc in yaml.safe_load_all(manifests) if doc],
                settings=contract["settings"],
                role_secret_data={secret["name"]: secret["data"] for secret in contract["secrets"]},
            )
        return cache[(release, service_monitor, replicas)]

    return rendered
