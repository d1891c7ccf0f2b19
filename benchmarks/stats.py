"""Pure statistics and report code of the benchmarks: no network, no processes (unit-tested)."""

from __future__ import annotations

import re
import statistics

# Figure name -> (comparison, goal). login_to_token_seconds has no goal: it is reported only.
GOALS = {
    "site_noop_rerun_seconds": ("<=", 30.0),
    "tracking_throughput_ratio_vs_bare": (">=", 0.8),
    "artifact_upload_ratio_vs_direct": (">=", 0.5),
}
FIGURES = (
    "site_noop_rerun_seconds",
    "tracking_throughput_ratio_vs_bare",
    "artifact_upload_ratio_vs_direct",
    "login_to_token_seconds",
)

_RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>ok=.*)$", re.MULTILINE)
# profile_tasks lines: "<role> : <task name> ----- 1.23s" (the dashes pad the name to a fixed width).
_PROFILE_LINE = re.compile(r"^(?P<task>\S.*?) -+ (?P<seconds>\d+(?:\.\d+)?)s$")


def median(values):
    """Median of a non-empty sequence of numbers."""
    values = list(values)
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def percentile(values, fraction):
    """Nearest-rank percentile (fraction in [0, 1]) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within [0, 1], got {fraction}")
    rank = max(1, int(-(-fraction * len(ordered) // 1)))
    return float(ordered[rank - 1])


def paired_ratios(numerators, denominators):
    """Ratio of each side-by-side pair (run i of one target over run i of the other)."""
    numerators, denominators = list(numerators), list(denominators)
    if len(numerators) != len(denominators):
        raise ValueError(f"unpaired runs: {len(numerators)} and {len(denominators)}")
    if any(value <= 0 for value in denominators):
        raise ValueError("a denominator is not positive")
    return [numerator / denominator for numerator, denominator in zip(numerators, denominators)]


def summarize(samples):
    """Median, extremes and the samples themselves, for the results file."""
    samples = [float(value) for value in samples]
    return {
        "median": median(samples),
        "min": min(samples),
        "max": max(samples),
        "runs": len(samples),
        "samples": samples,
    }


def parse_recap(output):
    """Counts (ok, changed, failed ...) of the last PLAY RECAP of an ansible-playbook output, summed over hosts."""
    recap_start = output.rfind("PLAY RECAP")
    if recap_start < 0:
        raise ValueError("no PLAY RECAP in the output")
    totals = {}
    for match in _RECAP_LINE.finditer(output, recap_start):
        for key, value in re.findall(r"(\w+)=(\d+)", match.group("counts")):
            totals[key] = totals.get(key, 0) + int(value)
    if not totals:
        raise ValueError("an empty PLAY RECAP")
    return totals


def parse_profile_tasks(output):
    """Task name -> seconds from the TASKS RECAP that ansible.posix.profile_tasks prints at the end of a run."""
    recap_start = output.rfind("TASKS RECAP")
    if recap_start < 0:
        raise ValueError("no TASKS RECAP in the output (is ansible.posix.profile_tasks enabled?)")
    durations = {}
    for line in output[recap_start:].splitlines():
        match = _PROFILE_LINE.match(line.strip())
        if match:
            # The same name twice (a task included twice) adds up: the time is spent either way.
            task = match.group("task").strip()
            durations[task] = durations.get(task, 0.0) + float(match.group("seconds"))
    return durations


def slowest_tasks(profiles, limit=10):
    """The `limit` tasks with the highest median time over several profiled runs (a task absent from a run is 0 s)."""
    names = set()
    for profile in profiles:
        names.update(profile)
    medians = {name: median(profile.get(name, 0.0) for profile in profiles) for name in names}
    ranked = sorted(medians.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [{"task": name, "median_seconds": round(seconds, 2)} for name, seconds in ranked]


def goal_status(figures):
    """For each figure with a goal: its value, the goal and whether it is met (None when not measured)."""
    status = {}
    for name, (comparison, goal) in GOALS.items():
        value = figures.get(name)
        if value is None:
            met = None
        elif comparison == "<=":
            met = value <= goal
        else:
            met = value >= goal
        status[name] = {"value": value, "goal": f"{comparison} {goal:g}", "met": met}
    return status


def _format_number(value):
    if value is None:
        return "not measured"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def _met_label(met):
    return {True: "met", False: "MISSED", None: "-"}[met]


def render_markdown(results):
    """Short markdown report: the four figures with their goals, then the detail rows."""
    goals = goal_status(results["figures"])
    lines = [
        f"# Benchmarks of {results['date']}" + (" (quick smoke run: not comparable)" if results.get("quick") else ""),
        "",
        f"Machine: {results['host']['cpus']} CPUs, load average {results['host']['load_before']} before and "
        f"{results['host']['load_after']} after (other work shares it). Each figure is the median of "
        f"{results['runs']} side-by-side run(s).",
        "",
        "| figure | value | goal | status |",
        "| --- | --- | --- | --- |",
    ]
    for name in FIGURES:
        goal = goals.get(name, {"goal": "-", "met": None})
        value = _format_number(results["figures"].get(name))
        lines.append(f"| `{name}` | {value} | {goal['goal']} | {_met_label(goal['met'])} |")
    rows = results.get("rows", [])
    if rows:
        lines += ["", "| measurement | median | runs (samples) |", "| --- | --- | --- |"]
        for row in rows:
            samples = ", ".join(_format_number(value) for value in row["samples"])
            lines.append(f"| {row['name']} | {_format_number(row['median'])} {row['unit']} | {samples} |")
    site = results.get("details", {}).get("site_noop_rerun", {})
    slowest = site.get("slowest_tasks", [])
    if slowest:
        options = " ".join(site.get("options", []))
        lines += ["", f"Slowest tasks of the no-op re-run{f' ({options})' if options else ''} (median seconds):", ""]
        lines += [f"1. {task['task']}: {task['median_seconds']:.2f} s" for task in slowest]
    problems = results.get("problems", [])
    if problems:
        lines += ["", "Problems:", ""] + [f"- {problem}" for problem in problems]
    return "\n".join(lines) + "\n"
