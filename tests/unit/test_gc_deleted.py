"""The gc_deleted filter (plugins/filter/gc_deleted.py), pure logic, on output as mlflow gc 3.17 prints it."""

from __future__ import annotations

import pytest

from ansible_collections.mlops.mlflow.plugins.filter.gc_deleted import gc_deleted

pytestmark = pytest.mark.unit

OUTPUT = """\
Dry run: nothing is deleted; the lines below say what gc would delete.
2026/12/02 15:11:17 INFO mlflow.store.db.utils: Updating database tables
Run with ID 3920fe9d33c74e3c8a06fc6c94f9900e has been permanently deleted.
Run with ID 8a9dfbac841c47dbbf431572c576c787 has been permanently deleted.
An exception InvalidUrlException() was raised during the deletion of a model artifact
Logged model with ID m-0123456789abcdef has been permanently deleted.
Experiment with ID 7 has been permanently deleted.
"""


def test_ids_by_kind_in_order_and_their_count():
    assert gc_deleted(OUTPUT) == {
        "runs": ["3920fe9d33c74e3c8a06fc6c94f9900e", "8a9dfbac841c47dbbf431572c576c787"],
        "experiments": ["7"],
        "logged_models": ["m-0123456789abcdef"],
        "count": 4,
    }


@pytest.mark.parametrize("output", ["", "Run with ID 1 was not deleted.", "xRun with ID 1 has been permanently deleted."])
def test_nothing_deleted(output):
    assert gc_deleted(output) == {"runs": [], "experiments": [], "logged_models": [], "count": 0}
