"""What machine-readable output costs: the JSON dry run beside the text one, and the --events log per task.

    python bench/machine_output.py [--days N] [--reps R]

1. `flow --dry-run` and `flow --dry-run --format json` of N daily tasks under their months
   (default 100,000 days), through the CLI: best wall and user CPU of R runs, peak RSS, bytes out.
2. `events.EventLog` in-process: a start and an end line per task for N tasks (no executor).
3. A build of 1,000 trivial tasks at -j 2 with and without `--events`: best wall and user CPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACTIONS = "def day(date, output):\n    open(output, 'w').write(str(date))\n"


def flowfile(first: dt.date, days: int) -> str:
    last = first + dt.timedelta(days=days - 1)
    return (f'rule day(date: date):\n    output: "out/{{date}}.txt"\n    python: acts.day\n\n'
            f'rule month(interval: interval):\n    requires: day(d) for d in interval\n'
            f'    output: "out/m_{{interval}}.txt"\n    python: acts.day\n\n'
            f'target days: day(d) for d in days({first} .. {last})\n'
            f'target months: month(m) for m in months({first:%Y-%m} .. {last:%Y-%m})\n')


def run(directory: str, *args) -> tuple:
    """(wall seconds, user CPU seconds, peak RSS in MB, stdout bytes) of one flow command (its own rusage: wait4)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "flow.runtime.cli", *args], cwd=directory, env=env,
                                   stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        if process.returncode not in (0, 3):
            err.seek(0)
            raise SystemExit(f"flow {' '.join(args)} failed: {err.read().decode()[-2000:]}")
        return wall, usage.ru_utime, usage.ru_maxrss / 1024, out.tell()


def best(directory: str, reps: int, *args) -> str:
    runs = [run(directory, *args) for _ in range(reps)]
    return (f"wall {min(r[0] for r in runs):.2f} s, user {min(r[1] for r in runs):.2f} s,"
            f" peak RSS {max(r[2] for r in runs):.0f} MB, {runs[-1][3] / 1e6:.1f} MB out")


def event_log_cost(directory: str, count: int) -> str:
    from flow.compiler.graph import TaskFactory
    from flow.compiler.loader import load
    from flow.runtime.clock import build_clock
    from flow.runtime.events import EventLog, TaskEvent

    checked = load(os.path.join(directory, "Flowfile"))
    factory = TaskFactory(checked, build_clock("UTC", "2000-01-01"))
    tasks = factory.target("days")[:count]
    path = os.path.join(directory, "events.jsonl")
    log = EventLog(path, "flow build", directory)
    start = time.perf_counter()
    for task in tasks:
        log.task_started(TaskEvent("started", task, 1, 1.0))
        log.task_finished(TaskEvent("done", task, 1, 1.0, 0.01))
    log.close(0, "success")
    elapsed = time.perf_counter() - start
    return (f"{elapsed / len(tasks) * 1e6:.1f} us per task (a start and an end line), "
            f"{os.path.getsize(path) / len(tasks):.0f} bytes per task")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flow-machine-output-") as directory:
        with open(os.path.join(directory, "acts.py"), "w") as handle:
            handle.write(ACTIONS)
        with open(os.path.join(directory, "Flowfile"), "w") as handle:
            handle.write(flowfile(dt.date(1700, 1, 1), options.days))
        print(f"dry run of {options.days:,} days and their months:")
        print("  text:", best(directory, options.reps, "--dry-run", "days", "months"))
        print("  json:", best(directory, options.reps, "--dry-run", "--format", "json", "days", "months"))
        print("event log in-process:", event_log_cost(directory, min(options.days, 100_000)))
    with tempfile.TemporaryDirectory(prefix="flow-machine-output-") as directory:
        with open(os.path.join(directory, "acts.py"), "w") as handle:
            handle.write(ACTIONS)
        with open(os.path.join(directory, "Flowfile"), "w") as handle:
            handle.write(flowfile(dt.date(2000, 1, 1), 1000))
        for label, extra in (("without --events", ()), ("with --events", ("--events", "events.jsonl"))):
            runs = []
            for _ in range(options.reps):
                subprocess.run(["rm", "-rf", "out", ".flow"], cwd=directory, check=True)
                runs.append(run(directory, "build", "-q", "-j", "2", *extra, "days"))
            print(f"build of 1,000 tasks at -j 2 {label}: wall {min(r[0] for r in runs):.2f} s,"
                  f" user {min(r[1] for r in runs):.2f} s")


if __name__ == "__main__":
    main()
