"""execution-environment.yml and meta/execution-environment.yml: ansible-builder makes a build context that installs
the collection, the collections it depends on, and every package their modules need, at the pinned versions."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.ansible_runner import BIN_DIR, REPO_ROOT

pytestmark = pytest.mark.harness

# Top-level names the collection's modules and module_utils import (outside the standard library and Ansible), and
# the distribution on PyPI that provides each. A new import fails the test until it is mapped here and declared.
IMPORT_DISTRIBUTIONS = {
    "minio": "minio",
    "urllib3": "urllib3",
}
# What the modules of each collection in galaxy.yml's dependencies need, where the roles run them.
COLLECTION_DISTRIBUTIONS = {
    "community.docker": {"requests"},  # its Docker API modules (image role)
    "community.general": set(),  # dict_kv, random_string: pure Python; supervisorctl: on the local target only
    "community.postgresql": {"psycopg2-binary"},
    "kubernetes.core": {"kubernetes"},
}
# Modules the roles and playbooks use that run a program, and the system package (bindep name) that provides it.
MODULE_PACKAGES = {
    "kubernetes.core.helm": "helm",
    "kubernetes.core.helm_info": "helm",
    "kubernetes.core.helm_template": "helm",
    # pg_dump, pg_restore and psql, for the database role's backup and restore.
    "mlops.mlflow.postgresql_dump": "postgresql",
    "mlops.mlflow.postgresql_restore": "postgresql",
}


def _galaxy() -> dict:
    return yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def _module_imports() -> set[str]:
    names = set()
    for path in sorted((REPO_ROOT / "plugins").glob("module*/*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"__future__", "ansible", "ansible_collections"}


def _used_modules() -> set[str]:
    text = "\n".join(
        path.read_text() for folder in ("roles", "playbooks") for path in (REPO_ROOT / folder).rglob("*.yml")
    )
    return set(re.findall(r"\b[a-z_]+\.[a-z_]+\.[a-z_0-9]+\b", text))


def _requirements(path: Path) -> dict[str, str]:
    """name -> version of a pip requirements file whose every line is an exact pin."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"not an exact pin: {line}"
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def _bundled_version(collection: str) -> str:
    """The version of a collection the pinned `ansible` package installed into this virtualenv."""
    (location,) = importlib.util.find_spec(f"ansible_collections.{collection}").submodule_search_locations
    return json.loads((Path(location) / "MANIFEST.json").read_text())["collection_info"]["version"]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    """The collection tarball, as `ansible-galaxy collection build` writes it for the EE build."""
    output = tmp_path_factory.mktemp("artifact")
    subprocess.run(
        [BIN_DIR / "ansible-galaxy", "collection", "build", "--output-path", output, REPO_ROOT],
        check=True,
        capture_output=True,
    )
    (tarball,) = output.glob("mlops-mlflow-*.tar.gz")
    return tarball


def test_introspection_of_the_built_collection_lists_what_its_modules_need(artifact, tmp_path):
    unmapped = _module_imports() - IMPORT_DISTRIBUTIONS.keys()
    assert not unmapped, f"map these imports to their PyPI distribution and declare them: {unmapped}"
    expected_python = {canonicalize_name(IMPORT_DISTRIBUTIONS[name]) for name in _module_imports()}
    for collection in _galaxy()["dependencies"]:
        expected_python |= {canonicalize_name(name) for name in COLLECTION_DISTRIBUTIONS[collection]}
    expected_system = {package for module, package in MODULE_PACKAGES.items() if module in _used_modules()}
    # The installed collection, as the EE build's galaxy stage lays it out.
    installed = tmp_path / "collections" / "ansible_collections" / "mlops" / "mlflow"
    with tarfile.open(artifact) as tar:
        tar.extractall(installed, filter="data")

    pip, bindep = tmp_path / "pip.txt", tmp_path / "bindep.txt"
    introspect = [BIN_DIR / "ansible-builder", "introspect", tmp_path / "collections"]

    subprocess.run([*introspect, "--write-pip", pip, "--write-bindep", bindep], check=True, capture_output=True)

    pins = _requirements(pip)
    assert set(pins) == expected_python
    constraints = _constraints()
    assert {name: constraints[name] for name in pins} == pins
    assert {line.split()[0] for line in bindep.read_text().splitlines()} == expected_system


def test_create_writes_a_context_that_installs_the_collection_and_its_pinned_dependencies(artifact, tmp_path):
    # ansible-builder looks for the tarball beside the definition, as in a checkout after `collection build`.
    shutil.copy(REPO_ROOT / "execution-environment.yml", tmp_path)
    shutil.copy(artifact, tmp_path)
    context = tmp_path / "context"

    subprocess.run(
        [BIN_DIR / "ansible-builder", "create", "--file", tmp_path / "execution-environment.yml", "--context", context],
        check=True,
        capture_output=True,
    )

    assert (context / "_build" / "collections" / artifact.name).is_file()
    galaxy_requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    pinned = {entry["name"]: entry.get("version") for entry in galaxy_requirements}
    assert pinned.pop(f"/build/collections/{artifact.name}") is None
    assert pinned == {collection: _bundled_version(collection) for collection in _galaxy()["dependencies"]}
    containerfile = (context / "Containerfile").read_text()
    assert f'ARG ANSIBLE_INSTALL_REFS="ansible-core=={_constraints()["ansible-core"]} ansible-runner==' in containerfile
    # The galaxy stage finds the tarball at /build; the builder stage installs what the collections declare.
    assert "COPY _build /build" in containerfile
    assert "RUN $PYCMD /output/scripts/introspect.py introspect --write-bindep" in containerfile
