# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: gc_deleted
short_description: What C(mlflow gc) deleted, read from its output
version_added: 0.1.0
description:
  - Reads the lines C(mlflow gc) prints for each object it deletes for good (C(Run with ID <id> has been
    permanently deleted.), and the same for experiments and logged models) and returns their ids by kind.
  - Other lines (warnings, logs, the header of a dry run) are ignored.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
options:
  _input:
    description: The output of C(mlflow gc) (or of the roles' gc program, which prints the same lines).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Report what gc deleted
  ansible.builtin.debug:
    msg: "{{ (gc_result.stdout | mlops.mlflow.gc_deleted).runs | length }} runs deleted"
"""

RETURN = r"""
_value:
  description: The ids of the deleted objects, in the order they were deleted, and their total count.
  type: dict
  contains:
    runs:
      description: Ids of the deleted runs.
      type: list
      elements: str
    experiments:
      description: Ids of the deleted experiments.
      type: list
      elements: str
    logged_models:
      description: Ids of the deleted logged models.
      type: list
      elements: str
    count:
      description: How many objects were deleted in all.
      type: int
"""

import re

# mlflow/cli/__init__.py (mlflow 3.17): click.echo(f"<Kind> with ID {id} has been permanently deleted.")
_DELETED = re.compile(r"^(Run|Experiment|Logged model) with ID (\S+) has been permanently deleted\.\s*$", re.MULTILINE)
_KINDS = {"Run": "runs", "Experiment": "experiments", "Logged model": "logged_models"}


def gc_deleted(output):
    """The ids of what `mlflow gc` deleted, by kind, from its output."""
    deleted = {"runs": [], "experiments": [], "logged_models": []}
    for kind, object_id in _DELETED.findall(str(output)):
        deleted[_KINDS[kind]].append(object_id)
    deleted["count"] = sum(len(ids) for ids in deleted.values())
    return deleted


class FilterModule:
    def filters(self):
        return {"gc_deleted": gc_deleted}
