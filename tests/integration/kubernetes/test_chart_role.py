"""The chart role against the real test API server, with the local stack's PostgreSQL, MinIO and Keycloak.

The Community Charts chart cannot be downloaded here: the inventory installs the packaged chart beside the project
(MLOPS_MLFLOW_CHART), with the image the image role builds, on the test cluster's real node; the values are also
validated against the chart's JSON schema as Helm does.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import jsonschema
import psycopg2
import pytest
import yaml
from kubernetes import client

from tests.ansible_runner import REPO_ROOT, run_playbook
from tests.conftest import STATE_DIR
from tests.e2e.mlflow_web import WebLogin
from tests.gc_runs import bucket_client, delete_experiment, objects, record_runs, report, run_status

pytestmark = pytest.mark.kubernetes

INVENTORY = REPO_ROOT / "tests" / "inventories" / "kubernetes"
DEPLOY = "tests/integration/playbooks/chart_deploy.yml"
# The chart's own schema, provided beside the project (third-party data, not committed here).
SCHEMA = Path(
    os.environ.get(
        "MLOPS_MLFLOW_CHART_SCHEMA", "/work/shared/reference/community-charts-mlflow-1.11.5/values.schema.json"
    )
)
EXPECTED_SECRETS = {
    # The secret settings of the contract, the login the chart reads with its password, and the plugin's key. The
    # test inventory runs two replicas, which share the permission cache in the harness's Redis (CACHE_REDIS_URL).
    "mlflow-settings": {"PGUSER", "PGPASSWORD", "AWS_SECRET_ACCESS_KEY", "OIDC_CLIENT_SECRET", "CACHE_REDIS_URL",
                        "SECRET_KEY"},
    "mlflow-flask-server-secret-key": {"MLFLOW_FLASK_SERVER_SECRET_KEY"},
}


def merged(defaults: dict, overrides: dict) -> dict:
    """Helm's merge of user values over the chart's defaults (maps key by key, everything else replaced)."""
    result = dict(defaults)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def validate_like_helm(values: dict) -> None:
    """Validate as Helm does: the chart's values.yaml merged with ours, against values.schema.json."""
    if not SCHEMA.is_file():
        pytest.fail(f"the chart's values schema is missing at {SCHEMA} (set MLOPS_MLFLOW_CHART_SCHEMA)", pytrace=False)
    defaults = yaml.safe_load((SCHEMA.parent / "values.yaml").read_text())
    jsonschema.validate(merged(defaults, values), json.loads(SCHEMA.read_text()))


def deploy(namespace: str, *args: str):
    return run_playbook(DEPLOY, "-e", f"chart_namespace={namespace}", *args, inventory=INVENTORY)


def read_secrets(kube_api: client.ApiClient, namespace: str) -> dict[str, dict[str, str]]:
    core = client.CoreV1Api(kube_api)
    found = {}
    for name in EXPECTED_SECRETS:
        secret = core.read_namespaced_secret(name, namespace)
        found[name] = {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}
    return found


@pytest.fixture(scope="module")
def deployed(local_stack, kube_cluster, kube_api):
    """One release in a namespace of its own; the last test tears it down, the namespace goes at the end."""
    namespace = f"mlflow-{uuid.uuid4().hex[:8]}"
    first = deploy(namespace)
    assert first.returncode == 0, first.output[-4000:]
    yield namespace, first, read_secrets(kube_api, namespace)
    client.CoreV1Api(kube_api).delete_namespace(namespace)


def helm_values(kube_cluster, namespace: str) -> dict:
    completed = subprocess.run(
        [str(kube_cluster.helm), "get", "values", "mlflow", "-n", namespace, "-o", "json",
         "--kubeconfig", str(kube_cluster.kubeconfig)],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(completed.stdout)


def test_secrets_hold_the_expected_keys(deployed):
    _namespace, _result, secrets = deployed
    assert {name: set(data) for name, data in secrets.items()} == EXPECTED_SECRETS
    assert secrets["mlflow-settings"]["PGUSER"] == "mlflow"
    key = secrets["mlflow-flask-server-secret-key"]["MLFLOW_FLASK_SERVER_SECRET_KEY"]
    assert len(key) == 64 and secrets["mlflow-settings"]["SECRET_KEY"] == key


def test_release_values_validate_against_the_chart_schema(deployed, kube_cluster):
    namespace, _result, secrets = deployed
    values = helm_values(kube_cluster, namespace)
    validate_like_helm(values)
    # The chart reads SECRET_KEY from the role's Secret: Helm's release history never holds it.
    assert "flaskServerSecretKey" not in values
    key = secrets["mlflow-flask-server-secret-key"]["MLFLOW_FLASK_SERVER_SECRET_KEY"]
    assert key not in json.dumps(values)
    environment = values["extraEnvVars"]
    assert values["extraArgs"] == {"appName": "oidc-auth"} and "oidcAuth" not in values
    assert environment["OIDC_REDIRECT_URI"] == "https://mlflow.kubernetes.test/callback"
    assert "groups" in environment["OIDC_SCOPE"].split()
    assert environment["OIDC_GROUP_NAME"] == "/mlflow-admins,/mlflow-users"
    assert environment["OIDC_ADMIN_GROUP_NAME"] == "/mlflow-admins"
    # Tokens must be issued to the cluster's own Keycloak client (the test inventory's identity_client_id).
    assert environment["OIDC_AUDIENCE"] == "mlflow-kubernetes"
    assert environment["OIDC_USERNAME_FIELD"] == "preferred_username"
    assert values["extraSecretNamesForEnvFrom"] == ["mlflow-settings"]
    assert values["backendStore"]["existingDatabaseSecret"]["name"] == "mlflow-settings"
    assert values["artifactRoot"]["proxiedArtifactStorage"] is True
    assert values["artifactRoot"]["defaultArtifactsDestination"] == environment["MLFLOW_ARTIFACTS_DESTINATION"]
    # The pod reaches MinIO through the harness's relay on the node's address.
    assert environment["MLFLOW_S3_ENDPOINT_URL"].startswith("http://10.88.0.1:")
    assert environment["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",") == [
        "mlflow.kubernetes.test", "mlflow", f"mlflow.{namespace}", f"mlflow.{namespace}.svc",
        f"mlflow.{namespace}.svc.cluster.local", "10.88.0.*[0-9]:5000",
    ]
    assert values["replicaCount"] == 2 and environment["CACHE_BACKEND"] == "redis"
    assert values["log"]["enabled"] is False
    assert int(environment["MLFLOW_WORKERS"]) > 1
    assert environment["MLFLOW_EXPOSE_PROMETHEUS"]
    assert values["ingress"]["className"] == "traefik"
    assert values["ingress"]["tls"][0]["hosts"] == ["mlflow.kubernetes.test"]


def test_second_run_changes_nothing_and_keeps_the_secret_key(deployed, kube_api):
    namespace, _result, secrets = deployed
    again = deploy(namespace)
    assert again.returncode == 0, again.output[-4000:]
    assert again.recap()["changed"] == 0, again.output[-4000:]
    assert read_secrets(kube_api, namespace) == secrets


def test_render_mode_writes_values_and_manifests_without_secrets(deployed, tmp_path: Path):
    namespace, _result, secrets = deployed
    rendered = deploy(
        namespace, "-e", "chart_mode=render", "-e", f"chart_render_dir={tmp_path}",
        "-e", "chart_secret_backend=external-secrets",
    )
    assert rendered.returncode == 0, rendered.output[-4000:]
    assert {path.name for path in tmp_path.iterdir()} == {
        "values.yaml", "manifests.yaml", "external-secrets.yaml"
    }
    values = yaml.safe_load((tmp_path / "values.yaml").read_text())
    validate_like_helm(values)
    assert "flaskServerSecretKey" not in values
    manifests = [doc for doc in yaml.safe_load_all((tmp_path / "manifests.yaml").read_text()) if doc]
    assert manifests and all(doc["kind"] != "Secret" for doc in manifests)
    external = [doc for doc in yaml.safe_load_all((tmp_path / "external-secrets.yaml").read_text()) if doc]
    assert {doc["metadata"]["name"] for doc in external} == set(EXPECTED_SECRETS)
    everything = "".join(path.read_text() for path in tmp_path.iterdir())
    for data in secrets.values():
        for key, value in data.items():
            # The login name sits in the Secret beside its password, but is no secret.
            if key != "PGUSER":
                assert value not in everything, f"the secret {key} is written in clear"


def gc_on_the_cluster(namespace: str, secrets: dict, *args: str):
    result = run_playbook("playbooks/gc.yml", "-e", f"chart_namespace={namespace}", "-e", "older_than=0s", *args,
                          inventory=INVENTORY, timeout=900)
    assert result.returncode == 0, result.output[-4000:]
    for key, value in secrets["mlflow-settings"].items():
        assert key == "PGUSER" or value not in result.output, f"the secret {key} is in gc.yml's output"
    return result


# The release shares the tracking database and the bucket with the local server (the test inventory links to the
# local one's), so a user records runs there and the release's gc Job, in a pod of the real node with the built image
# and the release's Secret, must delete the deleted run's objects through the node's relay to MinIO.
def test_gc_playbook_runs_the_cronjobs_job_once_on_the_node(deployed, deployed_mlflow, kube_api, minio_admin):
    namespace, _result, secrets = deployed
    batch = client.BatchV1Api(kube_api)
    assert batch.read_namespaced_cron_job("mlflow-gc", namespace).spec.suspend is False
    password = (STATE_DIR / "secrets" / "keycloak_user_demo-user_password").read_text().strip()
    login = WebLogin(deployed_mlflow, "demo-user", password)
    key = login.create_named_key(f"gc-{uuid.uuid4().hex[:8]}")
    try:
        recorded = record_runs(deployed_mlflow, "demo-user", key["token"])
        bucket = bucket_client(minio_admin.url, minio_admin.user, minio_admin.password)
        live = objects(bucket, recorded["live_prefix"])
        assert len(live) == 2 and len(objects(bucket, recorded["deleted_prefix"])) == 2

        checked = gc_on_the_cluster(namespace, secrets, "--check")
        assert checked.recap()["changed"] == 1
        assert recorded["deleted_run"] in report(checked.output)["would_delete"]["runs"]
        assert len(objects(bucket, recorded["deleted_prefix"])) == 2

        collected = gc_on_the_cluster(namespace, secrets)
        assert collected.recap()["changed"] == 1
        assert recorded["deleted_run"] in report(collected.output)["deleted"]["runs"]
        assert objects(bucket, recorded["deleted_prefix"]) == {}
        assert run_status(deployed_mlflow, "demo-user", key["token"], recorded["deleted_run"]) == 404
        assert objects(bucket, recorded["live_prefix"]) == live

        again = gc_on_the_cluster(namespace, secrets)
        assert again.recap()["changed"] == 0 and report(again.output)["deleted"]["count"] == 0
        # Each one-off Job is deleted once its log is read.
        assert [job.metadata.name for job in batch.list_namespaced_job(namespace).items
                if job.metadata.name.startswith("mlflow-gc-")] == []
        delete_experiment(deployed_mlflow, "demo-user", key["token"], recorded["experiment_id"])
    finally:
        login.delete_key(key["id"])


# Runs after the tests above (file order): it removes their release.
def test_teardown_removes_release_and_secrets_and_keeps_the_databases(deployed, kube_api, postgresql_admin):
    namespace, _result, _secrets = deployed
    first = run_playbook("playbooks/teardown.yml", "--tags", "chart", "-e", f"chart_namespace={namespace}",
                         inventory=INVENTORY)
    assert first.returncode == 0, first.output[-4000:]
    core = client.CoreV1Api(kube_api)
    names = {secret.metadata.name for secret in core.list_namespaced_secret(namespace).items}
    assert not names & set(EXPECTED_SECRETS)
    assert not any(name.startswith("sh.helm.release.v1.mlflow.") for name in names)
    again = run_playbook("playbooks/teardown.yml", "--tags", "chart", "-e", f"chart_namespace={namespace}",
                         inventory=INVENTORY)
    assert again.returncode == 0 and again.recap()["changed"] == 0, again.output[-4000:]
    with psycopg2.connect(host=postgresql_admin.host, port=postgresql_admin.port, user=postgresql_admin.user,
                          password=postgresql_admin.password, dbname="postgres") as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database WHERE datname IN ('mlflow', 'mlflow_auth')")
            assert sorted(row[0] for row in cursor.fetchall()) == ["mlflow", "mlflow_auth"]


# A kubeconfig that does not exist is refused without a cluster (test_chart_render.py).
def test_an_unreachable_api_server_is_named(local_stack, kube_cluster, tmp_path: Path):
    kubeconfig = tmp_path / "kubeconfig"
    config = yaml.safe_load(kube_cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    kubeconfig.write_text(yaml.safe_dump(config))
    result = run_playbook("tests/integration/playbooks/chart_errors.yml", "-e", f"chart_kubeconfig={kubeconfig}",
                          inventory=INVENTORY)
    assert result.returncode != 0
    assert "Cannot reach the Kubernetes API server with kubeconfig" in result.output, result.output[-3000:]
    assert "Connection refused" in result.output
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def optional_crds(kube_api):
    """The External Secrets CRD (a schema-less stand-in: no operator runs here) beside the cluster's real Traefik and
    Prometheus Operator CRDs; stand-ins only for CRDs the cluster lacks, removed after the module (once: a CRD being
    deleted cannot be created again at once)."""
    extensions = client.ApiextensionsV1Api(kube_api)
    present = {crd.metadata.name for crd in extensions.list_custom_resource_definition().items}
    names = []
    for path in sorted((REPO_ROOT / "tests" / "fixtures" / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if crd["metadata"]["name"] not in present:
            extensions.create_custom_resource_definition(crd)
            names.append(crd["metadata"]["name"])
    deadline = time.monotonic() + 60
    while not all(
        any(c.type == "Established" and c.status == "True"
            for c in extensions.read_custom_resource_definition(name).status.conditions or [])
        for name in names
    ):
        assert time.monotonic() < deadline, "the CRDs did not become established within 60 s"
        time.sleep(1)
    yield
    for name in names:
        extensions.delete_custom_resource_definition(name)


def _operator_made_secrets(kube_api, namespace: str) -> dict[str, dict[str, str]]:
    """The Secrets an External Secrets Operator would create from the role's ExternalSecrets (no operator runs here)."""
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    made = {name: {key: uuid.uuid4().hex for key in keys} for name, keys in EXPECTED_SECRETS.items()}
    for name, data in made.items():
        core.create_namespaced_secret(namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name),
                                                                 string_data=data))
    return made


def test_external_secrets_not_created_by_the_operator_stop_the_release(local_stack, kube_cluster, kube_api,
                                                                       optional_crds):
    namespace = f"mlflow-{uuid.uuid4().hex[:8]}"
    try:
        result = deploy(namespace, "-e", "chart_secret_backend=external-secrets",
                        "-e", "chart_external_secret_wait_timeout=5")
        assert result.returncode != 0
        assert (f"The External Secrets Operator did not create the Secrets mlflow-settings, "
                f"mlflow-flask-server-secret-key in namespace {namespace} within 5 s") in " ".join(result.output.split())
        names = {s.metadata.name for s in client.CoreV1Api(kube_api).list_namespaced_secret(namespace).items}
        assert not any(name.startswith("sh.helm.release.") for name in names)
        assert "mlflow-flask-server-secret-key" not in names
    finally:
        client.CoreV1Api(kube_api).delete_namespace(namespace)


def test_optional_crds_bring_middleware_service_monitor_and_external_secrets(
    local_stack, kube_cluster, kube_api, optional_crds
):
    namespace = f"mlflow-{uuid.uuid4().hex[:8]}"
    custom = client.CustomObjectsApi(kube_api)
    try:
        made = _operator_made_secrets(kube_api, namespace)
        # The operator's Secrets hold made-up values, so neither the pod nor the migration Job (a hook Helm always
        # waits for) can reach the database: Helm must not wait for them.
        result = deploy(namespace, "-e", "chart_secret_backend=external-secrets", "-e", "chart_wait=false",
                        "-e", "chart_migrate_schema=false", "-e", "chart_replicas=1")
        assert result.returncode == 0, result.output[-4000:]
        external = custom.list_namespaced_custom_object("external-secrets.io", "v1", namespace, "externalsecrets")
        by_name = {item["metadata"]["name"]: item["spec"] for item in external["items"]}
        assert set(by_name) == set(EXPECTED_SECRETS)
        for name, keys in EXPECTED_SECRETS.items():
            assert by_name[name]["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "vault-backend"}
            assert {entry["secretKey"] for entry in by_name[name]["data"]} == keys
        middlewares = custom.list_namespaced_custom_object("traefik.io", "v1alpha1", namespace, "middlewares")
        assert {item["metadata"]["name"] for item in middlewares["items"]} == {
            "mlflow-redirect-https", "mlflow-security-headers", "mlflow-retry", "mlflow-deny-all"}
        values = helm_values(kube_cluster, namespace)
        validate_like_helm(values)
        assert values["serviceMonitor"]["enabled"] is True
        assert values["ingress"]["annotations"]["traefik.ingress.kubernetes.io/router.middlewares"] == (
            f"{namespace}-mlflow-redirect-https@kubernetescrd,{namespace}-mlflow-security-headers@kubernetescrd,"
            f"{namespace}-mlflow-retry@kubernetescrd"
        )
        # The operator fills the Secrets: neither the role nor the chart writes them, no key reaches the values.
        assert "flaskServerSecretKey" not in values
        assert read_secrets(kube_api, namespace) == made

        removed = run_playbook("playbooks/teardown.yml", "--tags", "chart", "-e", f"chart_namespace={namespace}",
                               inventory=INVENTORY)
        assert removed.returncode == 0, removed.output[-4000:]
        for group, version, plural in [("external-secrets.io", "v1", "externalsecrets"),
                                       ("traefik.io", "v1alpha1", "middlewares")]:
            assert not custom.list_namespaced_custom_object(group, version, namespace, plural)["items"], plural
    finally:
        client.CoreV1Api(kube_api).delete_namespace(namespace)


def test_a_pod_that_never_becomes_ready_fails_the_play_with_its_state_and_logs(local_stack, kube_cluster, kube_api):
    """uvicorn refuses an unknown option: the pod crash-loops, the role says why, then uninstalls the release."""
    namespace = f"mlflow-{uuid.uuid4().hex[:8]}"
    try:
        result = deploy(namespace, "-e", "mlflow_uvicorn_options=--no-such-uvicorn-option", "-e", "chart_timeout=60s")
        assert result.returncode != 0
        output = result.output
        assert f"Helm could not install or upgrade the release mlflow in namespace {namespace}" in output, output[-4000:]
        assert "Uninstalled: no revision had deployed." in output
        assert "container mlflow: ready false" in output
        assert "CrashLoopBackOff" in output or "exit code" in output
        # uvicorn's own refusal, from the crashed container's log (click words it either way).
        assert re.search(r"No such option:? '?--no-such-uvicorn-option", output), output[-4000:]
        assert "Traceback" not in output
        # Neither Helm's message nor the pods' logs leak what the role's Secrets hold.
        for name, data in read_secrets(kube_api, namespace).items():
            for key, value in data.items():
                if key != "PGUSER":
                    assert value not in output, f"{name}/{key} is in the output"
        releases = [s.metadata.name for s in client.CoreV1Api(kube_api).list_namespaced_secret(namespace).items
                    if s.metadata.name.startswith("sh.helm.release.")]
        assert releases == []
    finally:
        client.CoreV1Api(kube_api).delete_namespace(namespace)
