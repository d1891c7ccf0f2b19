"""The benchmarks' pure statistics and report code (benchmarks/stats.py)."""

from __future__ import annotations

import pytest

from benchmarks import stats

pytestmark = pytest.mark.unit

PLAYBOOK_OUTPUT = """\
PLAY [Run the MLflow server] ***************************************************

TASK [mlops.mlflow.server : Start the MLflow server] ***************************
ok: [localhost]

PLAY RECAP *********************************************************************
localhost                  : ok=84   changed=0    unreachable=0    failed=0    skipped=15   rescued=0    ignored=0
otherhost                  : ok=2    changed=1    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0


TASKS RECAP ********************************************************************
Saturday 28 November 2026  20:33:04 +0000 (0:00:00.200)       0:02:13.829 *****
===============================================================================
mlops.mlflow.identity : Ensure the users ------------------------------- 10.96s
mlops.mlflow.server : Install MLflow and its pinned packages into the server's virtualenv --- 4.85s
Say where MLflow is and how to log in ----------------------------------- 0.20s
mlops.mlflow.identity : Ensure the users ------------------------------- 1.04s
"""


def test_median_of_odd_and_even_counts():
    assert stats.median([3, 1, 2]) == 2.0
    assert stats.median([4, 1, 3, 2]) == 2.5


def test_median_refuses_no_values():
    with pytest.raises(ValueError):
        stats.median([])


@pytest.mark.parametrize(("fraction", "expected"), [(0.0, 1.0), (0.5, 5.0), (0.95, 10.0), (1.0, 10.0)])
def test_percentile_nearest_rank(fraction, expected):
    assert stats.percentile(range(1, 11), fraction) == expected


def test_percentile_refuses_bad_input():
    with pytest.raises(ValueError):
        stats.percentile([], 0.5)
    with pytest.raises(ValueError):
        stats.percentile([1.0], 1.5)


def test_paired_ratios_pair_runs_in_order():
    assert stats.paired_ratios([8, 9, 3], [10, 10, 4]) == [0.8, 0.9, 0.75]


@pytest.mark.parametrize(("numerators", "denominators"), [([1, 2], [1]), ([1], [0])])
def test_paired_ratios_refuse_unpaired_or_zero(numerators, denominators):
    with pytest.raises(ValueError):
        stats.paired_ratios(numerators, denominators)


def test_summarize():
    assert stats.summarize([3, 1, 2]) == {"median": 2.0, "min": 1.0, "max": 3.0, "runs": 3, "samples": [3.0, 1.0, 2.0]}


def test_parse_recap_sums_the_hosts_of_the_last_recap():
    recap = stats.parse_recap(PLAYBOOK_OUTPUT)
    assert recap["ok"] == 86
    assert recap["changed"] == 1
    assert recap["failed"] == 0
    assert recap["skipped"] == 15


def test_parse_recap_without_recap_fails():
    with pytest.raises(ValueError):
        stats.parse_recap("ERROR! the playbook could not be found")


def test_parse_profile_tasks_reads_names_and_seconds():
    durations = stats.parse_profile_tasks(PLAYBOOK_OUTPUT)
    assert durations == {
        "mlops.mlflow.identity : Ensure the users": pytest.approx(12.0),
        "mlops.mlflow.server : Install MLflow and its pinned packages into the server's virtualenv": 4.85,
        "Say where MLflow is and how to log in": 0.2,
    }


def test_parse_profile_tasks_needs_the_callback():
    with pytest.raises(ValueError):
        stats.parse_profile_tasks("PLAY RECAP ****\nlocalhost : ok=1 changed=0\n")


def test_slowest_tasks_rank_by_median_over_runs():
    profiles = [{"a": 1.0, "b": 5.0, "c": 2.0}, {"a": 9.0, "b": 4.0}, {"a": 1.0, "b": 6.0, "c": 3.0}]
    assert stats.slowest_tasks(profiles, limit=2) == [
        {"task": "b", "median_seconds": 5.0},
        {"task": "c", "median_seconds": 2.0},
    ]


def test_goal_status():
    status = stats.goal_status({
        "site_noop_rerun_seconds": 31.0,
        "tracking_throughput_ratio_vs_bare": 0.8,
        "artifact_upload_ratio_vs_direct": None,
        "login_to_token_seconds": 2.0,
    })
    assert status["site_noop_rerun_seconds"] == {"value": 31.0, "goal": "<= 30", "met": False}
    assert status["tracking_throughput_ratio_vs_bare"]["met"] is True
    assert status["artifact_upload_ratio_vs_direct"]["met"] is None
    assert "login_to_token_seconds" not in status


def test_render_markdown_lists_figures_rows_tasks_and_problems():
    results = {
        "date": "2026-11-28",
        "quick": False,
        "runs": 3,
        "host": {"cpus": 2, "load_before": [1.0, 1.0, 1.0], "load_after": [2.0, 2.0, 2.0]},
        "figures": {"site_noop_rerun_seconds": 42.5, "tracking_throughput_ratio_vs_bare": 0.91,
                    "artifact_upload_ratio_vs_direct": 0.4, "login_to_token_seconds": None},
        "rows": [{"name": "tracking: bare", "unit": "req/s", "median": 50.0, "samples": [49.0, 50.0, 51.0]}],
        "details": {"site_noop_rerun": {"slowest_tasks": [{"task": "identity : Ensure the users",
                                                           "median_seconds": 10.96}]}},
        "problems": ["run 2 changed 1 task"],
    }
    report = stats.render_markdown(results)
    assert "| `site_noop_rerun_seconds` | 42.5 | <= 30 | MISSED |" in report
    assert "| `tracking_throughput_ratio_vs_bare` | 0.91 | >= 0.8 | met |" in report
    assert "| `login_to_token_seconds` | not measured | - | - |" in report
    assert "| tracking: bare | 50.0 req/s | 49.0, 50.0, 51.0 |" in report
    assert "1. identity : Ensure the users: 10.96 s" in report
    assert "- run 2 changed 1 task" in report


def test_render_markdown_names_the_inventories_of_the_noop_run():
    results = {
        "date": "2026-12-02", "runs": 3, "figures": {},
        "host": {"cpus": 2, "load_before": [1.0, 1.0, 1.0], "load_after": [1.0, 1.0, 1.0]},
        "details": {"site_noop_rerun": {
            "options": ["--inventory", "inventories/local", "--inventory", "benchmarks/inventories/users"],
            "slowest_tasks": [{"task": "identity : Ensure the users", "median_seconds": 1.5}]}},
    }
    report = stats.render_markdown(results)
    assert ("Slowest tasks of the no-op re-run (--inventory inventories/local --inventory benchmarks/inventories/users)"
            " (median seconds):") in report
