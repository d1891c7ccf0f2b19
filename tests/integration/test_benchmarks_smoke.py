"""The benchmark's quick smoke mode runs on the deployed local stack and writes the four figures as numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from benchmarks import stats

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def deployed_server(local_stack):
    """The MLflow server of site.yml; the benchmark measures it and does not deploy it."""
    try:
        ready = requests.get("http://127.0.0.1:5000/health/ready", timeout=10).status_code == 200
    except requests.RequestException:
        ready = False
    if not ready:
        pytest.fail("the MLflow server of playbooks/site.yml does not answer on 127.0.0.1:5000; deploy it first")
    return local_stack


def test_quick_benchmark_writes_the_four_figures(deployed_server, tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--output-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:]
    [results_file] = tmp_path.glob("*-quick.json")
    results = json.loads(results_file.read_text(encoding="utf-8"))
    for name in stats.FIGURES:
        value = results["figures"][name]
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (name, value)
        assert value > 0, (name, value)
    assert results["quick"] is True
    assert results["details"]["site_noop_rerun"]["runs"][0]["recap"]["changed"] == 0
    assert (tmp_path / results_file.name.replace(".json", ".md")).read_text(encoding="utf-8").startswith("# Benchmarks")
    # Everything the benchmark started is gone: its ports are free again.
    for port in (5055, 5056):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
