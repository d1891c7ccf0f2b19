"""The roles' preflight checks (roles/*/tasks/preflight.yml): each assert holds one condition, so its message names
the one that failed and the variable that changes it."""

from __future__ import annotations

import pytest
import yaml

from tests.ansible_runner import REPO_ROOT

pytestmark = pytest.mark.unit

PREFLIGHTS = sorted(REPO_ROOT.glob("roles/*/tasks/preflight.yml"))


def asserts(tasks: list[dict]):
    """The assert tasks of a task file, those inside blocks too."""
    for task in tasks:
        if "ansible.builtin.assert" in task:
            yield task
        for section in ("block", "rescue", "always"):
            yield from asserts(task.get(section, []))


@pytest.mark.parametrize("preflight", PREFLIGHTS, ids=lambda path: path.parts[-3])
def test_every_assert_checks_one_condition(preflight):
    tasks = yaml.safe_load(preflight.read_text())
    several = [task["name"] for task in asserts(tasks)
               if isinstance(task["ansible.builtin.assert"]["that"], list) and len(task["ansible.builtin.assert"]["that"]) > 1]
    assert several == []
