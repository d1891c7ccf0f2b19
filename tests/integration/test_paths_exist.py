"""The paths_exist module against the local file system (a temporary directory): several stat checks in one run."""

from __future__ import annotations

import json

import pytest

from tests.ansible_runner import run_module

pytestmark = pytest.mark.harness


def test_reports_each_path_as_given_in_check_mode_too(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    paths = [str(tmp_path / "file"), str(tmp_path), str(tmp_path / "missing"), str(tmp_path / "dangling")]
    for options in ((), ("--check",)):
        result = run_module("mlops.mlflow.paths_exist", json.dumps({"paths": paths}), *options)
        assert result.returncode == 0, result.output
        assert result.module_result["changed"] is False
        # A dangling link exists, as for ansible.builtin.stat (which does not follow links by default).
        assert result.module_result["exists"] == dict(zip(paths, [True, True, False, True]))
