"""The walk of the module file_checksums: every regular file below a directory, by its relative path."""

from __future__ import annotations

import os

import pytest

from ansible_collections.mlops.mlflow.plugins.modules.file_checksums import walk

pytestmark = pytest.mark.unit


def test_walk_lists_regular_files_by_relative_path_without_links_or_excluded_files(tmp_path):
    (tmp_path / "objects" / "a b").mkdir(parents=True)
    (tmp_path / "objects" / "a b" / "note.txt").write_text("x")
    (tmp_path / "mlflow.pgc").write_bytes(b"PGDMP")
    (tmp_path / "manifest.json").write_text("{}")
    os.symlink(tmp_path / "mlflow.pgc", tmp_path / "link.pgc")
    assert walk(str(tmp_path), {"manifest.json"}) == {
        "mlflow.pgc": str(tmp_path / "mlflow.pgc"),
        "objects/a b/note.txt": str(tmp_path / "objects" / "a b" / "note.txt"),
    }
