"""The image role (tests/integration/playbooks/image_build.yml) with a real registry and a real Docker API.

There is no Docker engine and no pullable image here. The test cluster (tests/kube/images.py) provides Debian's
docker-registry on loopback, podman's Docker-compatible API, and a STAND-IN for the base image burakince/mlflow (a
minimal Debian with the same layout, built once and cached). The collection's real image/Dockerfile is built on top
of it with the real pins, and pushed.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

import pytest
import yaml

from tests.ansible_runner import REPO_ROOT, run_playbook
from tests.kube import control_plane, images

pytestmark = pytest.mark.kubernetes

PLAYBOOK = REPO_ROOT / "tests" / "integration" / "playbooks" / "image_build.yml"
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(command, timeout, **kwargs):
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr)[-4000:]
        pytest.fail("%s failed (%s):\n%s" % (" ".join(map(str, command)), completed.returncode, output), pytrace=False)
    return completed.stdout


class Registry:
    """Reads the test cluster's registry over its HTTP API."""

    address = images.REGISTRY

    def get(self, path, accept=None):
        request = urllib.request.Request("http://%s%s" % (self.address, path), headers={"Accept": accept or "*/*"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return -1, b""

    def tags(self, repository):
        status, body = self.get("/v2/%s/tags/list" % repository)
        return (json.loads(body).get("tags") or []) if status == 200 else []

    def image_config(self, repository, tag):
        """The image configuration (labels, user, env) of a pushed tag, read back from the registry."""
        status, body = self.get("/v2/%s/manifests/%s" % (repository, tag), accept=MANIFEST_TYPES)
        assert status == 200, body
        digest = json.loads(body)["config"]["digest"]
        status, body = self.get("/v2/%s/blobs/%s" % (repository, digest))
        assert status == 200, body
        return json.loads(body)["config"]


class Podman(images.Podman):
    """The test cluster's podman, with the lookups these tests need."""

    def image_id(self, reference):
        """The local image ID of a reference, or None."""
        found = subprocess.run(["podman", *self.storage_args(), "image", "inspect", "--format", "{{.Id}}", reference],
                               capture_output=True, text=True, timeout=60, env=self._env(), check=False)
        return found.stdout.strip() if found.returncode == 0 else None


@pytest.fixture(scope="module")
def registry(kube_cluster):
    return Registry()


@pytest.fixture(scope="module")
def podman(kube_cluster):
    return Podman(control_plane.STATE_DIR)


@pytest.fixture(scope="module")
def stand_in_base(kube_cluster):
    """The stand-in for burakince/mlflow:<version>, which the test cluster keeps in its podman."""
    return images.stand_in_base()


@dataclass
class ImageRun:
    registry: Registry
    podman: Podman
    base: str
    repository: str

    @property
    def tag(self):
        return images.image_tag()

    @property
    def reference(self):
        return "%s/%s:%s" % (self.registry.address, self.repository, self.tag)

    def role(self, *args, **overrides):
        values = dict(image_registry=self.registry.address, image_registry_scheme="http",
                      image_repository=self.repository, image_base=self.base, image_docker_host=self.podman.docker_host)
        values.update(overrides)
        return run_playbook(PLAYBOOK, "-e", json.dumps(values), *args, timeout=1800)


def _new_image_run(registry, podman, stand_in_base):
    return ImageRun(registry, podman, stand_in_base, "mlt-image-%s" % uuid.uuid4().hex[:10])


@pytest.fixture(scope="module")
def converged(registry, podman, stand_in_base):
    """Check mode, then a real run, then a second run of the same image, with what each left behind."""
    image = _new_image_run(registry, podman, stand_in_base)
    runs = {"image": image}
    runs["check"] = image.role("--check")
    runs["after_check"] = (registry.tags(image.repository), podman.image_id(image.reference))
    runs["first"] = image.role()
    runs["after_first"] = podman.image_id(image.reference)
    runs["second"] = image.role()
    runs["after_second"] = podman.image_id(image.reference)
    return runs


def test_check_mode_reports_the_build_and_builds_nothing(converged):
    check = converged["check"]
    assert check.returncode == 0, check.output
    # The YAML callback may fold the message: compare with whitespace collapsed.
    assert "Would build %s from %s and push it." % (converged["image"].reference, converged["image"].base) \
        in " ".join(check.output.split())
    assert check.recap()["changed"] == 1
    assert converged["after_check"] == ([], None)


def test_first_run_builds_the_dockerfile_and_pushes_the_tag(converged, registry):
    image = converged["image"]
    first = converged["first"]
    assert first.returncode == 0, first.output
    assert "image_reference=%s" % image.reference in first.output
    assert first.recap()["changed"] >= 2  # build, push (and the temporary build context)
    assert converged["after_first"] is not None
    assert registry.tags(image.repository) == [image.tag]

    config = registry.image_config(image.repository, image.tag)
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == f"{images.mlflow_version()}-oidc"
    assert labels["org.opencontainers.image.base.name"] == image.base
    assert config["User"] == "mlflow"  # the base's non-root user is kept
    assert not config.get("Entrypoint")  # the chart's command starts the server


def test_image_holds_the_pinned_packages(converged, podman):
    """The built image's own Python imports the plugin and has every pin at its version.

    Containers cannot start on this machine (runc may not set the rlimits podman asks for without CAP_SYS_RESOURCE),
    so the image's file system is mounted and its Python run with chroot.
    """
    pins = yaml.safe_load((REPO_ROOT / "roles" / "mlflow" / "defaults" / "main.yml").read_text())
    # A distribution's name without its extras (mlflow-oidc-auth[cache]) is what importlib.metadata knows.
    expected = dict(re.sub(r"\[.*\]", "", spec).split("==") for spec in pins["mlflow_python_requirements"])
    expected["mlflow"] = images.mlflow_version()
    script = ("import json, importlib.metadata as m, mlflow_oidc_auth; "
              "print(json.dumps({n: m.version(n) for n in %r}))" % sorted(expected))
    reference = converged["image"].reference
    root = podman.cli("image", "mount", reference).strip()
    try:
        output = _run(["chroot", root, "/usr/bin/env", "-i", "PATH=/mlflow/.venv/bin:/usr/bin:/bin", "python", "-c",
                       script], timeout=120)
    finally:
        podman.cli("image", "unmount", reference)
    assert json.loads(output.strip().splitlines()[-1]) == expected


def test_second_run_skips_the_build(converged):
    second = converged["second"]
    assert second.returncode == 0, second.output
    assert second.recap()["changed"] == 0
    assert "Build the image" not in second.output
    assert converged["after_second"] == converged["after_first"]


def test_without_push_the_docker_host_decides(registry, podman, stand_in_base):
    image = _new_image_run(registry, podman, stand_in_base)
    first = image.role("-e", json.dumps({"image_push": False}))
    assert first.returncode == 0, first.output
    assert podman.image_id(image.reference) is not None
    assert registry.tags(image.repository) == []

    second = image.role("-e", json.dumps({"image_push": False}))
    assert second.returncode == 0, second.output
    assert second.recap()["changed"] == 0


def test_an_unreachable_registry_is_named(registry, podman, stand_in_base):
    closed = "127.0.0.1:%d" % _free_port()
    result = _new_image_run(registry, podman, stand_in_base).role("-e", "image_registry=%s" % closed)
    assert result.returncode != 0
    assert "Cannot look up %s/" % closed in result.output
    assert "in the registry at http://%s: the registry does not answer" % closed in result.output


def test_an_unreachable_docker_host_is_named(registry, podman, stand_in_base):
    closed = "tcp://127.0.0.1:%d" % _free_port()
    image = _new_image_run(registry, podman, stand_in_base)
    result = image.role("-e", "image_docker_host=%s" % closed)
    assert result.returncode != 0
    assert "Cannot build %s: the Docker API at %s does not answer" % (image.reference, closed) in result.output


def test_an_unpinned_requirement_is_refused_before_any_call():
    result = run_playbook(PLAYBOOK, "-e", json.dumps({
        "image_registry": "127.0.0.1:1", "image_python_requirements": ["mlflow-oidc-auth==11.0.2", "boto3"],
    }), timeout=120)
    assert result.returncode != 0
    assert "must list pinned pip requirements" in result.output
    assert "not pinned: ['boto3']" in result.output
