"""The directories module against the local file system (a temporary directory): several directories in one run."""

from __future__ import annotations

import json
import pwd

import pytest

from tests.ansible_runner import run_module

pytestmark = pytest.mark.harness


def directories(tmp_path, *options, entries):
    return run_module("mlops.mlflow.directories", json.dumps({"directories": entries}), *options)


def mode(path) -> str:
    return oct(path.stat().st_mode & 0o7777)


def test_creates_converges_and_then_changes_nothing(tmp_path):
    nested, plain = tmp_path / "state" / "minio", tmp_path / "logs"
    entries = [
        {"path": str(nested), "owner": "nobody", "group": "nogroup", "mode": "0700"},
        {"path": str(plain), "mode": "u=rwx,go=rx"},
    ]
    checked = directories(tmp_path, "--check", "--diff", entries=entries)
    assert checked.returncode == 0, checked.output
    assert checked.module_result["changed_paths"] == [str(nested), str(plain)]
    assert checked.module_result["diff"]["after"][str(plain)]["state"] == "directory"
    assert not nested.exists() and not plain.exists(), "check mode must not create anything"

    created = directories(tmp_path, "--diff", entries=entries)
    assert created.returncode == 0, created.output
    assert created.module_result["changed_paths"] == [str(nested), str(plain)]
    assert pwd.getpwuid(nested.stat().st_uid).pw_name == "nobody" and mode(nested) == "0o700"
    assert mode(plain) == "0o755"

    again = directories(tmp_path, entries=entries)
    assert again.returncode == 0 and again.module_result["changed"] is False

    plain.chmod(0o777)
    drift = directories(tmp_path, "--diff", entries=entries)
    assert drift.module_result["changed_paths"] == [str(plain)]
    assert drift.module_result["diff"] == {
        "before": {str(plain): {"path": str(plain), "mode": "0777"}},
        "after": {str(plain): {"path": str(plain), "mode": "0755"}},
    }
    assert mode(plain) == "0o755"


def test_a_file_in_the_way_is_refused_before_anything_changes(tmp_path):
    (tmp_path / "taken").write_text("not a directory")
    result = directories(tmp_path, entries=[{"path": str(tmp_path / "first")}, {"path": str(tmp_path / "taken")}])
    assert result.returncode != 0
    assert result.module_result["msg"] == f"Not a directory, refusing to replace: {tmp_path / 'taken'}"
    assert not (tmp_path / "first").exists()
