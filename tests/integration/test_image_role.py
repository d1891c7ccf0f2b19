"""The image role (tests/integration/playbooks/image_build.yml) with a real registry and a real Docker API.

There is no Docker engine and no pullable image here, so:
- the registry is Debian's docker-registry (the CNCF distribution registry), on loopback, storage in tmp;
- the Docker API is podman's Docker-compatible service (`podman system service`), storage in tmp;
- the base image is a STAND-IN for burakince/mlflow: a minimal Debian trixie (Python 3.13) made with debootstrap,
  with the same layout (non-root user `mlflow` uid 1001, virtualenv /mlflow/.venv holding the pinned MLflow). It is
  built once and cached under ~/.cache/mlops-mlflow/image-base/<suite>/ by MLflow version. It trusts this machine's
  CA certificates, because pip's downloads inside the build go through this machine's TLS-intercepting egress.
The collection's real image/Dockerfile is built on top of it with the real pins, and pushed.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.ansible_runner import REPO_ROOT, run_playbook

pytestmark = pytest.mark.kubernetes

PLAYBOOK = Path(__file__).parent / "playbooks" / "image_build.yml"
SUITE = "trixie"
DEBIAN_MIRROR = os.environ.get("MLOPS_MLFLOW_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlops-mlflow" / "image-base" / SUITE
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
PACKAGES = {"podman": "podman", "runc": "runc", "docker-registry": "docker-registry", "debootstrap": "debootstrap"}


def _shared_pins():
    """MLflow version and pins of the shared configuration, as the playbook reads them."""
    defaults = yaml.safe_load((REPO_ROOT / "roles" / "mlflow" / "defaults" / "main.yml").read_text())
    return defaults["mlflow_version"]


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


def _stop(process, timeout=15):
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def _wait_until(check, what, log, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    pytest.fail("%s not ready after %d s; log tail:\n%s" % (what, timeout, log.read_text()[-3000:]), pytrace=False)


@pytest.fixture(scope="module")
def tools():
    """podman, runc, docker-registry and debootstrap from Debian, installed when missing (the tests run as root)."""
    missing = [package for binary, package in PACKAGES.items() if not shutil.which(binary)]
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        _run(["apt-get", "update", "-qq"], timeout=300, env=env)
        _run(["apt-get", "install", "-y", "-qq", *missing], timeout=900, env=env)


class Registry:
    """Debian's docker-registry on a free loopback port, anonymous, plain HTTP."""

    def __init__(self, workdir: Path):
        self.port = _free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.log = workdir / "registry.log"
        config = workdir / "registry.yml"
        config.write_text(yaml.safe_dump({
            "version": 0.1,
            "storage": {"filesystem": {"rootdirectory": str(workdir / "registry-data")}},
            "http": {"addr": self.address},
        }))
        with self.log.open("w") as log:
            self.process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        _wait_until(lambda: self.get("/v2/")[0] == 200, "docker-registry", self.log, timeout=30)

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


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.socket_path)


class Podman:
    """podman's Docker-compatible API on a unix socket, with storage, config and socket of its own in workdir."""

    def __init__(self, workdir: Path, registry: Registry):
        self.socket = workdir / "podman.sock"
        self.docker_host = "unix://%s" % self.socket
        self.log = workdir / "podman.log"
        # No systemd here: cgroupfs and a file events log. crun refuses this machine's hybrid cgroup layout; runc works.
        (workdir / "containers.conf").write_text(
            '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
        # The test registry speaks plain HTTP, as a Docker daemon's `insecure-registries` would allow.
        (workdir / "registries.conf").write_text('[[registry]]\nlocation = "%s"\ninsecure = true\n' % registry.address)
        self.env = dict(os.environ, CONTAINERS_CONF=str(workdir / "containers.conf"),
                        CONTAINERS_REGISTRIES_CONF=str(workdir / "registries.conf"))
        self.global_args = ["--root", str(workdir / "storage"), "--runroot", str(workdir / "run")]
        self.global_args += ["--storage-driver", self._storage_driver()]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                ["podman", *self.global_args, "system", "service", "--time=0", self.docker_host],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env, start_new_session=True)
        _wait_until(self._answers, "podman system service", self.log, timeout=30)

    def _storage_driver(self):
        """overlay when the kernel and file system allow it here, else vfs (slow but works everywhere)."""
        probe = subprocess.run(["podman", *self.global_args, "--storage-driver", "overlay", "info"],
                               capture_output=True, text=True, timeout=60, env=self.env, check=False)
        return "overlay" if probe.returncode == 0 else "vfs"

    def _answers(self):
        connection = _UnixConnection(str(self.socket))
        try:
            connection.request("GET", "/_ping")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def cli(self, *args, timeout=600):
        return _run(["podman", *self.global_args, *args], timeout=timeout, env=self.env)

    def image_id(self, reference):
        """The local image ID of a reference, or None."""
        found = subprocess.run(["podman", *self.global_args, "image", "inspect", "--format", "{{.Id}}", reference],
                               capture_output=True, text=True, timeout=60, env=self.env, check=False)
        return found.stdout.strip() if found.returncode == 0 else None

    def close(self):
        _stop(self.process)
        subprocess.run(["podman", *self.global_args, "system", "reset", "--force"], capture_output=True,
                       timeout=300, env=self.env, check=False)


def _build_stand_in_rootfs(mlflow_version, archive):
    """Debian trixie + a non-root `mlflow` user + /mlflow/.venv with mlflow==<version>, as a tar of the root fs."""
    work = archive.parent / (".build-%d" % os.getpid())
    rootfs = work / "rootfs"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        _run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates", SUITE,
              str(rootfs), DEBIAN_MIRROR], timeout=1800)
        for certificate in Path("/usr/local/share/ca-certificates").glob("*.crt"):
            shutil.copy(certificate, rootfs / "usr/local/share/ca-certificates" / certificate.name)
        shutil.copy("/etc/resolv.conf", rootfs / "etc/resolv.conf")
        script = " && ".join([
            "update-ca-certificates",
            "groupadd -r -g 1001 mlflow",
            "useradd -r -u 1001 -g mlflow -m -d /home/mlflow mlflow",
            "python3 -m venv /mlflow/.venv",
            "/mlflow/.venv/bin/pip install --no-cache-dir --no-input mlflow==%s" % mlflow_version,
            "chown -R mlflow:mlflow /mlflow",
            "apt-get clean",
        ])
        _run(["chroot", str(rootfs), "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
              "/bin/sh", "-c", script], timeout=1800)
        (rootfs / "etc/resolv.conf").unlink()
        partial = work / archive.name
        _run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], timeout=600)
        partial.rename(archive)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def registry(tools, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("registry")
    server = Registry(workdir)
    yield server
    _stop(server.process)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def podman(tools, registry, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("podman")
    service = Podman(workdir, registry)
    yield service
    service.close()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def stand_in_base(podman):
    """The stand-in for burakince/mlflow:<version>, imported into the test's podman under a local name."""
    mlflow_version = _shared_pins()
    archive = CACHE_DIR / ("mlflow-%s.tar" % mlflow_version)
    if not archive.exists():
        _build_stand_in_rootfs(mlflow_version, archive)
    name = "localhost/mlops-mlflow-stand-in/mlflow:%s" % mlflow_version
    podman.cli("import", "--change", "USER mlflow", "--change", "WORKDIR /mlflow",
               "--change", "ENV PATH=/mlflow/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "--change", "ENV PYTHONUNBUFFERED=1",
               "--change", 'CMD ["mlflow", "server", "--host=0.0.0.0", "--port=5000"]',
               str(archive), name)
    return name


@dataclass
class ImageRun:
    registry: Registry
    podman: Podman
    base: str
    repository: str

    @property
    def tag(self):
        return "%s-oidc" % _shared_pins()

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
    assert labels["org.opencontainers.image.version"] == image.tag
    assert labels["org.opencontainers.image.base.name"] == image.base
    assert config["User"] == "mlflow"  # the base's non-root user is kept
    assert not config.get("Entrypoint")  # the chart's command starts the server


def test_image_holds_the_pinned_packages(converged, podman):
    """The built image's own Python imports the plugin and has every pin at its version.

    Containers cannot start on this machine (runc may not set the rlimits podman asks for without CAP_SYS_RESOURCE),
    so the image's file system is mounted and its Python run with chroot.
    """
    pins = yaml.safe_load((REPO_ROOT / "roles" / "mlflow" / "defaults" / "main.yml").read_text())
    expected = dict(spec.split("==") for spec in pins["mlflow_python_requirements"])
    expected["mlflow"] = _shared_pins()
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
