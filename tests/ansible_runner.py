"""Runs ansible-playbook and ansible from the checkout, the way a platform engineer does."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = Path(sys.executable).parent
LOCAL_INVENTORY = REPO_ROOT / "inventories" / "local"


@dataclass
class AnsibleResult:
    returncode: int
    output: str

    @property
    def module_result(self) -> dict:
        """The module's result, for a run_module() call (printed by the json callback)."""
        return json.loads(self.output)["plays"][0]["tasks"][0]["hosts"]["localhost"]

    def recap(self) -> dict[str, int]:
        """Counts of the last PLAY RECAP line (ok, changed, failed ...) for the first host."""
        lines = re.findall(r"^\S+\s+:\s+(ok=.*)$", self.output, flags=re.MULTILINE)
        if not lines:
            raise AssertionError("no PLAY RECAP in output:\n" + self.output[-3000:])
        return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", lines[-1])}


def _run(command: list[str], timeout: int, **extra_env: str) -> AnsibleResult:
    env = dict(
        os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", PATH=f"{BIN_DIR}:{os.environ['PATH']}", **extra_env
    )
    completed = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    return AnsibleResult(completed.returncode, completed.stdout)


def run_playbook(
    playbook: str | Path, *args: str, inventory: Path = LOCAL_INVENTORY, timeout: int = 1800, **extra_env: str
) -> AnsibleResult:
    """Run a playbook (path relative to the repo root or absolute) and return its result; extra_env is added to the
    environment."""
    return _run([str(BIN_DIR / "ansible-playbook"), "-i", str(inventory), str(playbook), *args], timeout, **extra_env)


def run_module(module: str, module_args: str, *args: str, timeout: int = 600) -> AnsibleResult:
    """Run one module against localhost (ad hoc); its result is in .module_result."""
    return _run(
        [str(BIN_DIR / "ansible"), "-i", str(LOCAL_INVENTORY), "localhost", "-m", module, "-a", module_args, *args],
        timeout,
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
    )
