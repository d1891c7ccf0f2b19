"""Runs a command at each minute a cron schedule matches, in UTC: the local target's schedule of MLflow's gc.

Usage: python gc_schedule.py '<minute> <hour> <day of month> <month> <day of week>' COMMAND [ARGUMENT...]

supervisord runs it (program mlflow-gc) with the server's interpreter. The schedule is read by huey's crontab (huey
is a dependency of MLflow): numbers, *, */n, m-n[/n] and lists; day of week 0-7, Sunday 0 or 7. A run that fails is
logged and the next matching minute comes as usual; minutes that pass while a run goes on are skipped, so two runs
never overlap. A restart loses no run: the schedule is a time of day, not an interval that would start over.
"""

import datetime
import subprocess
import sys
import time

from huey import crontab


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def main():
    schedule, command = sys.argv[1], sys.argv[2:]
    minute, hour, day, month, day_of_week = schedule.split()
    matches = crontab(minute=minute, hour=hour, day=day, month=month, day_of_week=day_of_week, strict=True)
    print("gc schedule '%s' (UTC): %s" % (schedule, " ".join(command)), flush=True)
    current = utc_now().replace(second=0, microsecond=0)
    while True:
        current += datetime.timedelta(minutes=1)
        while (remaining := (current - utc_now()).total_seconds()) > 0:
            time.sleep(remaining)
        if matches(current):
            print("%s: gc starts" % current.isoformat(), flush=True)
            returncode = subprocess.run(command, check=False).returncode
            print("%s: gc ended with exit code %d" % (utc_now().isoformat(timespec="seconds"), returncode), flush=True)
            current = utc_now().replace(second=0, microsecond=0)


if __name__ == "__main__":
    main()
