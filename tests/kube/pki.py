"""Certificates (made with openssl) and the admin kubeconfig of the test control plane."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

DAYS = "3650"
CLUSTER_NAME = "mlops-mlflow-test"


@dataclass(frozen=True)
class Pki:
    """The control plane's keys and certificates (file names as kubeadm's)."""

    directory: Path
    ca_key: Path
    ca_crt: Path
    apiserver_key: Path
    apiserver_crt: Path
    admin_key: Path
    admin_crt: Path
    sa_key: Path
    sa_pub: Path

    @classmethod
    def under(cls, directory: Path) -> Pki:
        return cls(
            directory=directory,
            ca_key=directory / "ca.key",
            ca_crt=directory / "ca.crt",
            apiserver_key=directory / "apiserver.key",
            apiserver_crt=directory / "apiserver.crt",
            admin_key=directory / "admin.key",
            admin_crt=directory / "admin.crt",
            sa_key=directory / "sa.key",
            sa_pub=directory / "sa.pub",
        )


def ensure_ca(directory: Path, common_name: str) -> Pki:
    """A CA in directory (0700), made once; the certificates of an earlier CA there are removed with it."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    pki = Pki.under(directory)
    if not pki.ca_crt.exists():
        # A new CA invalidates every certificate it signed.
        for stale in directory.glob("*.crt"):
            stale.unlink()
        _private_key(pki.ca_key)
        _openssl("req", "-x509", "-new", "-key", pki.ca_key, "-sha256", "-days", DAYS,
                 "-subj", f"/CN={common_name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-out", pki.ca_crt)
    return pki


def ensure_pki(directory: Path, service_ip: str) -> Pki:
    """Create what is missing: a CA, the API server's serving cert, the service-account key pair, an admin cert."""
    pki = ensure_ca(directory, f"{CLUSTER_NAME}-ca")
    if not pki.apiserver_crt.exists():
        alt_names = ["IP:127.0.0.1", f"IP:{service_ip}", "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
                     "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local"]
        signed_cert(pki, pki.apiserver_key, pki.apiserver_crt, "/CN=kube-apiserver", "serverAuth",
                    "subjectAltName=" + ",".join(alt_names))
    if not pki.admin_crt.exists():
        # O=system:masters is bound to cluster-admin by the API server's bootstrap RBAC policy.
        signed_cert(pki, pki.admin_key, pki.admin_crt, "/O=system:masters/CN=mlops-mlflow-test-admin", "clientAuth")
    if not pki.sa_pub.exists():
        _private_key(pki.sa_key)
        _openssl("pkey", "-in", pki.sa_key, "-pubout", "-out", pki.sa_pub)
    return pki


def write_kubeconfig(path: Path, pki: Pki, server: str) -> Path:
    """A self-contained admin kubeconfig (certificates embedded), mode 0600."""

    def embedded(file: Path) -> str:
        return base64.b64encode(file.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER_NAME,
                      "cluster": {"server": server, "certificate-authority-data": embedded(pki.ca_crt)}}],
        "users": [{"name": "admin", "user": {"client-certificate-data": embedded(pki.admin_crt),
                                             "client-key-data": embedded(pki.admin_key)}}],
        "contexts": [{"name": CLUSTER_NAME, "context": {"cluster": CLUSTER_NAME, "user": "admin"}}],
        "current-context": CLUSTER_NAME,
        "preferences": {},
    }
    # Written beside and renamed: a test reading the kubeconfig while `up` runs again never sees a partial file.
    scratch = path.with_name(f".{path.name}.new")
    create_private(scratch)
    scratch.write_text(yaml.safe_dump(config, sort_keys=False))
    scratch.replace(path)
    return path


def signed_cert(pki: Pki, key: Path, crt: Path, subject: str, usage: str, *extensions: str) -> None:
    _private_key(key)
    lines = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment",
             f"extendedKeyUsage={usage}", *extensions]
    with tempfile.TemporaryDirectory(dir=pki.directory) as scratch:
        csr, extfile = Path(scratch) / "request.csr", Path(scratch) / "extensions.cnf"
        extfile.write_text("\n".join(lines) + "\n")
        _openssl("req", "-new", "-key", key, "-subj", subject, "-out", csr)
        _openssl("x509", "-req", "-in", csr, "-CA", pki.ca_crt, "-CAkey", pki.ca_key, "-set_serial",
                 f"0x{secrets.token_hex(16)}", "-sha256", "-days", DAYS, "-extfile", extfile, "-out", crt)


def _private_key(path: Path) -> None:
    create_private(path)
    _openssl("genpkey", "-quiet", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)


def create_private(path: Path) -> None:
    """Create (or truncate) path with mode 0600 before anything secret is written to it."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
    path.chmod(0o600)


def _openssl(*args: str | Path) -> None:
    command = ["openssl", *map(str, args)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-2000:]}")
