"""Builds the control plane's binaries once and caches them outside the checkout, keyed by version.

kube-apiserver and the other Kubernetes commands are not `go install`-able as published: k8s.io/kubernetes requires its
staging modules (k8s.io/api, k8s.io/apiserver, ...) at v0.0.0 and replaces them with paths inside its own tree. A small
wrapper module replaces each of them with the published v0.<minor>.<patch> release instead and builds from there.
Traefik (the test cluster's ingress controller, as k3s bundles it) is built the same way: its go.mod's replace and
exclude directives only apply when it is the main module, so a wrapper module copies them.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

KUBERNETES_VERSION = "v1.36.3"
KUBERNETES_STAGING_VERSION = "v0.36.3"
HELM_VERSION = "v3.22.0"
# v3.7.x does not build from the module proxy reachable here (transitive module versions refused); v3.6.12 does.
TRAEFIK_VERSION = "v3.6.12"
TRAEFIK_MODULE = "github.com/traefik/traefik/v3"
CACHE_DIR = Path.home() / ".cache" / "mlops-mlflow" / "kubernetes"
TRAEFIK_CACHE_DIR = Path.home() / ".cache" / "mlops-mlflow" / "traefik"
# A cold kube-apiserver build takes 10-20 minutes on 2 cores; this only stops a hung build.
BUILD_TIMEOUT = 3600
# Helm's kubeVersion checks and kubernetes.core read these stamps; without them the binaries report v0.0.0.
KUBERNETES_LDFLAGS = (
    f"-X k8s.io/component-base/version.gitVersion={KUBERNETES_VERSION}"
    " -X k8s.io/component-base/version.gitMajor=1"
    f" -X k8s.io/component-base/version.gitMinor={KUBERNETES_VERSION.split('.')[1]}"
)
HELM_LDFLAGS = f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}"
# Without the stamp `traefik version` prints "dev".
TRAEFIK_LDFLAGS = f"-X {TRAEFIK_MODULE}/pkg/version.Version={TRAEFIK_VERSION}"
STAGING_REQUIREMENT = re.compile(r"^\s+(k8s\.io/[a-z0-9-]+) v0\.0\.0$", re.MULTILINE)


class BuildError(RuntimeError):
    """A binary could not be built or installed."""


def log(message: str) -> None:
    """Progress for people watching a cold build; stdout stays free for the CLI's result."""
    print(f"[kube] {message}", file=sys.stderr, flush=True)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on path while the block runs (concurrent pytest and Molecule runs wait their turn)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def cached_binary(component: str, version: str) -> Path:
    return CACHE_DIR / component / version / "bin" / component


def ensure_kubernetes_binaries(*components: str) -> dict[str, Path]:
    """Paths of the Kubernetes commands (e.g. kube-apiserver), building the missing ones in one wrapper module."""
    targets = {component: cached_binary(component, KUBERNETES_VERSION) for component in components}
    with file_lock(CACHE_DIR / f".kubernetes-{KUBERNETES_VERSION}.lock"):
        missing = [component for component, target in targets.items() if not target.exists()]
        if missing:
            _build_kubernetes(missing, targets)
    return targets


def ensure_helm() -> Path:
    target = cached_binary("helm", HELM_VERSION)
    with file_lock(CACHE_DIR / f".helm-{HELM_VERSION}.lock"):
        if not target.exists():
            go_install("helm", f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}", target, "-ldflags", HELM_LDFLAGS)
    return target


def traefik_binary() -> Path:
    return TRAEFIK_CACHE_DIR / TRAEFIK_VERSION / "traefik"


def ensure_traefik() -> Path:
    """Traefik's binary, built once from the Go module proxy (about 5 minutes cold on 2 cores)."""
    target = traefik_binary()
    with file_lock(TRAEFIK_CACHE_DIR / f".traefik-{TRAEFIK_VERSION}.lock"):
        if not target.exists():
            _build_traefik(target)
    return target


def traefik_source() -> Path:
    """Traefik's module source in the module cache (downloaded when missing): its CRDs and RBAC manifests."""
    with tempfile.TemporaryDirectory(prefix="mlops-mlflow-traefik-src-") as work:
        return Path(_go_mod_download(f"{TRAEFIK_MODULE}@{TRAEFIK_VERSION}", Path(work))["Dir"])


def ensure_etcd() -> Path:
    """Debian's etcd; installed with apt when missing. Only its binary is used (the tests run their own etcd)."""
    etcd = shutil.which("etcd") or "/usr/bin/etcd"
    if not Path(etcd).exists():
        apt_install("etcd-server")
    return Path(etcd)


def apt_install(*packages: str) -> None:
    """Install Debian packages (the tests run as root on a machine that reaches Debian's archive)."""
    log(f"installing {' '.join(packages)} with apt")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run(["apt-get", "update", "-qq"], cwd=Path("/"), env=env, timeout=600)
    _run(["apt-get", "install", "-y", "-qq", *packages], cwd=Path("/"), env=env, timeout=900)


def _build_kubernetes(components: list[str], targets: dict[str, Path]) -> None:
    go = _go()
    started = time.monotonic()
    log(f"building {', '.join(components)} {KUBERNETES_VERSION} from the Go module proxy (10-20 min cold on 2 cores)")
    with tempfile.TemporaryDirectory(prefix="mlops-mlflow-kbuild-") as work:
        workdir = Path(work)
        _run([go, "mod", "init", "local/kbuild"], cwd=workdir)
        download = _go_mod_download(f"k8s.io/kubernetes@{KUBERNETES_VERSION}", workdir)
        staging = sorted(set(STAGING_REQUIREMENT.findall(Path(download["GoMod"]).read_text())))
        if not staging:
            raise BuildError(f"no v0.0.0 k8s.io requirements in {download['GoMod']}: the wrapper recipe no longer fits")
        _run([go, "mod", "edit", *(f"-replace={m}={m}@{KUBERNETES_STAGING_VERSION}" for m in staging)], workdir)
        for component in components:
            _run([go, "get", f"k8s.io/kubernetes/cmd/{component}@{KUBERNETES_VERSION}"], workdir)
        for component in components:
            with _atomic_target(targets[component]) as output:
                _run([go, "build", "-ldflags", KUBERNETES_LDFLAGS, "-o", str(output),
                      f"k8s.io/kubernetes/cmd/{component}"], workdir)
    log(f"built {', '.join(components)} in {time.monotonic() - started:.0f} s")


def _build_traefik(target: Path) -> None:
    go = _go()
    started = time.monotonic()
    log(f"building traefik {TRAEFIK_VERSION} from the Go module proxy (about 5 min cold on 2 cores)")
    with tempfile.TemporaryDirectory(prefix="mlops-mlflow-traefik-build-") as work:
        workdir = Path(work)
        _run([go, "mod", "init", "local/traefikbuild"], cwd=workdir)
        download = _go_mod_download(f"{TRAEFIK_MODULE}@{TRAEFIK_VERSION}", workdir)
        own = json.loads(_run([go, "mod", "edit", "-json", download["GoMod"]], workdir))
        edits = [f"-exclude={e['Path']}@{e['Version']}" for e in own.get("Exclude") or []]
        for replace in own.get("Replace") or []:
            old, new = replace["Old"], replace["New"]
            if "Version" in new:
                replacement = f"{new['Path']}@{new['Version']}"
            else:
                # A local path is relative to Traefik's own tree: its extracted copy in the module cache.
                replacement = str(Path(download["Dir"]) / new["Path"])
            edits.append(f"-replace={old['Path']}{'@' + old['Version'] if 'Version' in old else ''}={replacement}")
        if edits:
            _run([go, "mod", "edit", *edits], workdir)
        _run([go, "get", f"{TRAEFIK_MODULE}/cmd/traefik@{TRAEFIK_VERSION}"], workdir)
        log(f"resolved traefik's modules in {time.monotonic() - started:.0f} s; compiling")
        with _atomic_target(target) as output:
            _run([go, "build", "-ldflags", TRAEFIK_LDFLAGS, "-o", str(output), f"{TRAEFIK_MODULE}/cmd/traefik"],
                 workdir)
    log(f"built traefik {TRAEFIK_VERSION} in {time.monotonic() - started:.0f} s")


def go_install(component: str, package: str, target: Path, *flags: str) -> None:
    """go install PACKAGE into TARGET atomically (a private GOBIN beside it), logging progress and time."""
    started = time.monotonic()
    log(f"building {package} with go install")
    with _atomic_target(target) as output:
        # go install writes <GOBIN>/<command>; a private GOBIN next to the target keeps the rename atomic.
        env = dict(os.environ, GOBIN=str(output.parent))
        _run([_go(), "install", *flags, package], cwd=output.parent, env=env)
        (output.parent / component).rename(output)
    log(f"built {component} in {time.monotonic() - started:.0f} s")


def _go_mod_download(module: str, cwd: Path) -> dict:
    """Download module@version into the module cache; go reports where (GoMod, Dir ...)."""
    return json.loads(_run([_go(), "mod", "download", "-json", module], cwd))


@contextmanager
def _atomic_target(target: Path) -> Iterator[Path]:
    """Yield a scratch path beside target; move it into place only when the block succeeds (never a half binary)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as scratch:
        output = Path(scratch) / f"{target.name}.new"
        yield output
        if not output.is_file():
            raise BuildError(f"the build did not produce {output}")
        os.replace(output, target)


def _go() -> str:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        raise BuildError("the Go toolchain (go 1.26 or newer) is needed to build the test control plane's binaries")
    return go


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = BUILD_TIMEOUT) -> str:
    completed = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr)[-4000:]
        raise BuildError(f"{' '.join(command)} failed with exit code {completed.returncode}:\n{output}")
    return completed.stdout
