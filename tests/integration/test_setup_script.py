"""scripts/setup.sh refuses clearly when no Python 3.12+ exists, and a re-run with nothing to do is quick."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from tests.ansible_runner import REPO_ROOT

pytestmark = pytest.mark.harness


def test_setup_names_the_missing_interpreter(tmp_path):
    system_python = ["/usr/bin/python3", "-c", "import sys; sys.exit(sys.version_info >= (3, 12))"]
    if subprocess.run(system_python, check=False).returncode:
        pytest.skip("/usr/bin/python3 is already 3.12 or newer on this machine")
    # A checkout without .venv, on a PATH and pyenv root where only the system Python (< 3.12) exists.
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO_ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    result = subprocess.run(
        ["/bin/bash", tmp_path / "scripts" / "setup.sh"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "pyenv")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "no Python 3.12 or newer found" in result.stderr
    assert "MLOPS_MLFLOW_PYTHON" in result.stderr
    assert not (tmp_path / ".venv").exists()


def test_setup_rerun_with_nothing_to_do_takes_seconds():
    started = time.monotonic()
    subprocess.run([REPO_ROOT / "scripts" / "setup.sh"], check=True, capture_output=True, timeout=120)
    assert time.monotonic() - started < 20
    assert sys.version_info >= (3, 12)
