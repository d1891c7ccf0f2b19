"""The checkout is a usable collection: it builds clean and documents every module."""

from __future__ import annotations

import subprocess
import tarfile

import pytest

from tests.ansible_runner import BIN_DIR, REPO_ROOT

pytestmark = pytest.mark.harness

MODULES = sorted(path.stem for path in (REPO_ROOT / "plugins" / "modules").glob("*.py"))


def test_build_produces_a_clean_artifact(tmp_path):
    subprocess.run(
        [BIN_DIR / "ansible-galaxy", "collection", "build", "--output-path", tmp_path, REPO_ROOT],
        check=True,
        capture_output=True,
    )
    (artifact,) = tmp_path.glob("mlops-mlflow-*.tar.gz")
    with tarfile.open(artifact) as tar:
        names = tar.getnames()
    assert "galaxy.yml" not in names and "MANIFEST.json" in names
    assert "roles/local_services/tasks/main.yml" in names
    unwanted = {".venv", ".collections", ".ansible", ".pytest_cache", "__pycache__", ".git"}
    leaked = [name for name in names if unwanted & set(name.split("/")) or name.startswith("tests/output")]
    assert leaked == []


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_every_module(module):
    result = subprocess.run(
        [BIN_DIR / "ansible-doc", f"mlops.mlflow.{module}"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "EXAMPLES:" in result.stdout and "RETURN VALUES:" in result.stdout
