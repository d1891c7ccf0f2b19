"""Where the test cluster's images come from: a local registry, podman's Docker API, and two locally made bases.

No image can be pulled on these machines, so:
- the registry is Debian's docker-registry (the CNCF distribution registry) on loopback, anonymous, plain HTTP; the
  node's containerd pulls from it and the image role pushes to it;
- the Docker API the image role builds through is podman's (`podman system service`);
- the base of the MLflow image is a STAND-IN for burakince/mlflow: a minimal Debian trixie made with debootstrap with
  the same layout (non-root user `mlflow` uid 1001, virtualenv /mlflow/.venv holding the pinned MLflow). It is built
  once and cached under ~/.cache/mlops-mlflow/image-base/<suite>/ by MLflow version. It trusts this machine's CA
  certificates, because pip's downloads inside the build go through this machine's TLS-intercepting egress;
- the pod sandbox ("pause") image is Debian's busybox-static in an otherwise empty image.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from tests.kube import build
from tests.kube.process import Component, http_ok, unix_socket_answers

REPO_ROOT = Path(__file__).resolve().parents[2]
REGISTRY_HOST = "127.0.0.1"
REGISTRY_PORT = 15000
REGISTRY = f"{REGISTRY_HOST}:{REGISTRY_PORT}"
SANDBOX_IMAGE = f"{REGISTRY}/mlops-mlflow/sandbox:busybox-1"
SUITE = "trixie"
DEBIAN_MIRROR = os.environ.get("MLOPS_MLFLOW_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_CACHE_DIR = build.CACHE_DIR.parent / "image-base" / SUITE
STAND_IN_REPOSITORY = "localhost/mlops-mlflow-stand-in/mlflow"
PACKAGES = {"podman": "podman", "runc": "runc", "docker-registry": "docker-registry", "debootstrap": "debootstrap",
            "busybox": "busybox-static"}
BUILD_TIMEOUT = 1800


def mlflow_version() -> str:
    """The MLflow version of the shared configuration, which the stand-in base carries."""
    defaults = yaml.safe_load((REPO_ROOT / "roles" / "mlflow" / "defaults" / "main.yml").read_text())
    return defaults["mlflow_version"]


def image_tag() -> str:
    """The image role's default tag for the shared configuration's pins: <version>-oidc-<hash of the pins>."""
    defaults = yaml.safe_load((REPO_ROOT / "roles" / "mlflow" / "defaults" / "main.yml").read_text())
    version = defaults["mlflow_version"]
    pins = "\n".join(pin.replace("{{ mlflow_version }}", version) for pin in defaults["mlflow_python_requirements"])
    return f"{version}-oidc-{hashlib.sha256(pins.encode()).hexdigest()[:8]}"


def stand_in_base() -> str:
    return f"{STAND_IN_REPOSITORY}:{mlflow_version()}"


class Podman:
    """podman with storage, configuration and Docker API socket of its own under state_dir."""

    def __init__(self, state_dir: Path):
        self.directory = state_dir / "podman"
        self.socket = self.directory / "podman.sock"
        self.docker_host = f"unix://{self.socket}"
        self.env = {"CONTAINERS_CONF": str(self.directory / "containers.conf"),
                    "CONTAINERS_REGISTRIES_CONF": str(self.directory / "registries.conf")}
        # podman refuses a run root longer than 50 characters: a short one in /run, unique to this state directory.
        run_root = Path("/run") / f"mlops-podman-{hashlib.sha256(bytes(self.directory)).hexdigest()[:12]}"
        self.global_args = ["--root", str(self.directory / "storage"), "--runroot", str(run_root)]

    def configure(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # No systemd here: cgroupfs and a file events log. crun refuses this machine's hybrid cgroups; runc works.
        (self.directory / "containers.conf").write_text(
            '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
        # The test registry speaks plain HTTP, as a Docker daemon's `insecure-registries` would allow.
        (self.directory / "registries.conf").write_text(f'[[registry]]\nlocation = "{REGISTRY}"\ninsecure = true\n')

    def storage_args(self) -> list[str]:
        """overlay when the kernel and file system allow it here, else vfs (slow but works everywhere)."""
        driver_file = self.directory / "storage-driver"
        # On a fresh machine podman is not installed yet when is_healthy() describes the components: nothing to
        # probe then, and nothing is started with these arguments before ensure_tools() has installed it.
        if not driver_file.exists() and shutil.which("podman"):
            probe = subprocess.run(["podman", *self.global_args, "--storage-driver", "overlay", "info"],
                                   capture_output=True, text=True, timeout=60, env=self._env(), check=False)
            driver_file.write_text("overlay" if probe.returncode == 0 else "vfs")
        driver = driver_file.read_text() if driver_file.exists() else "overlay"
        return [*self.global_args, "--storage-driver", driver]

    def service(self) -> Component:
        return Component(
            "podman", Path(shutil.which("podman") or "/usr/bin/podman"),
            [*self.storage_args(), "system", "service", "--time=0", self.docker_host],
            self.directory, lambda: unix_socket_answers(self.socket), env=self.env,
        )

    def cli(self, *args: str, timeout: int = 600) -> str:
        return _run(["podman", *self.storage_args(), *args], timeout=timeout, env=self._env())

    def has_image(self, reference: str) -> bool:
        found = subprocess.run(["podman", *self.storage_args(), "image", "exists", reference],
                               capture_output=True, timeout=60, env=self._env(), check=False)
        return found.returncode == 0

    def _env(self) -> dict[str, str]:
        return dict(os.environ, **self.env)


def ensure_tools() -> None:
    """podman, runc, docker-registry, debootstrap and busybox from Debian, installed when missing (tests run as root)."""
    missing = [package for binary, package in PACKAGES.items() if not shutil.which(binary)]
    if missing:
        build.apt_install(*missing)


def registry(state_dir: Path) -> Component:
    directory = state_dir / "registry"
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.yml"
    config.write_text(yaml.safe_dump({
        "version": 0.1,
        "storage": {"filesystem": {"rootdirectory": str(directory / "data")}, "delete": {"enabled": True}},
        "http": {"addr": REGISTRY},
    }))
    return Component("registry", Path(shutil.which("docker-registry") or "/usr/bin/docker-registry"),
                     ["serve", str(config)], directory, lambda: http_ok(f"http://{REGISTRY}/v2/"),
                     address=(REGISTRY_HOST, REGISTRY_PORT))


def registry_has(reference: str) -> bool:
    repository, tag = reference.removeprefix(f"{REGISTRY}/").rsplit(":", 1)
    return http_ok(f"http://{REGISTRY}/v2/{repository}/manifests/{tag}")


def ensure_sandbox_image(podman: Podman) -> str:
    """The pod sandbox image in the registry: busybox alone, sleeping until it is told to stop."""
    if registry_has(SANDBOX_IMAGE):
        return SANDBOX_IMAGE
    with tempfile.TemporaryDirectory(prefix="mlops-mlflow-sandbox-") as scratch:
        root = Path(scratch) / "root"
        (root / "bin").mkdir(parents=True)
        shutil.copy(shutil.which("busybox") or "/bin/busybox", root / "bin" / "busybox")
        (root / "bin" / "sh").symlink_to("busybox")
        archive = Path(scratch) / "rootfs.tar"
        _run(["tar", "-C", str(root), "-cf", str(archive), "."], timeout=60)
        podman.cli("import", "--change", 'CMD ["/bin/sh", "-c", "trap \\"exit 0\\" TERM INT; '
                   'while :; do /bin/busybox sleep 1; done"]', str(archive), SANDBOX_IMAGE)
    podman.cli("push", "--tls-verify=false", SANDBOX_IMAGE)
    return SANDBOX_IMAGE


def ensure_stand_in_base(podman: Podman) -> str:
    """The stand-in for burakince/mlflow:<version> in podman's storage, built into the cache the first time."""
    name = stand_in_base()
    if podman.has_image(name):
        return name
    archive = BASE_CACHE_DIR / f"mlflow-{mlflow_version()}.tar"
    with build.file_lock(BASE_CACHE_DIR / ".lock"):
        if not archive.exists():
            _build_stand_in_rootfs(mlflow_version(), archive)
    podman.cli("import", "--change", "USER mlflow", "--change", "WORKDIR /mlflow",
               "--change", "ENV PATH=/mlflow/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "--change", "ENV PYTHONUNBUFFERED=1",
               "--change", 'CMD ["mlflow", "server", "--host=0.0.0.0", "--port=5000"]',
               str(archive), name)
    return name


def _build_stand_in_rootfs(version: str, archive: Path) -> None:
    """Debian trixie + a non-root `mlflow` user + /mlflow/.venv with mlflow==<version>, as a tar of the root fs."""
    build.log(f"building the stand-in base image (debootstrap {SUITE}, mlflow {version})")
    work = archive.parent / f".build-{os.getpid()}"
    rootfs = work / "rootfs"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        _run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates", SUITE,
              str(rootfs), DEBIAN_MIRROR], timeout=BUILD_TIMEOUT)
        for certificate in Path("/usr/local/share/ca-certificates").glob("*.crt"):
            shutil.copy(certificate, rootfs / "usr/local/share/ca-certificates" / certificate.name)
        shutil.copy("/etc/resolv.conf", rootfs / "etc/resolv.conf")
        script = " && ".join([
            "update-ca-certificates",
            "groupadd -r -g 1001 mlflow",
            "useradd -r -u 1001 -g mlflow -m -d /home/mlflow mlflow",
            "python3 -m venv /mlflow/.venv",
            f"/mlflow/.venv/bin/pip install --no-cache-dir --no-input mlflow=={version}",
            "chown -R mlflow:mlflow /mlflow",
            "apt-get clean",
        ])
        _run(["chroot", str(rootfs), "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
              "/bin/sh", "-c", script], timeout=BUILD_TIMEOUT)
        (rootfs / "etc/resolv.conf").unlink()
        partial = work / archive.name
        _run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], timeout=600)
        partial.rename(archive)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(command: list[str], timeout: int, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr)[-4000:]
        raise build.BuildError(f"{' '.join(command)} failed with exit code {completed.returncode}:\n{output}")
    return completed.stdout
