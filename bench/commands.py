#!/usr/bin/env python3
"""What does a task cost when its action is a program? flow's command:/shell: beside python: and make.

Usage: python bench/commands.py [--tasks 500] [--reps 3] [--jobs 1 2]

Writes one Flowfile of TASKS independent tasks per action kind, each writing a one-line file:
`python:` (a function, in a forked worker), `command: ["cp", SRC, "{output}"]` (no shell) and
`shell: "echo x > {output}"` (/bin/sh -c), plus a Makefile whose recipes are the same shell line.
Times a cold `flow build -j J` (and `make -j J`) through the real CLI: median of REPS, outputs and
.flow/ removed before each run. What is left per task after subtracting an empty build is the
orchestration plus one process start, which make pays too.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

ACTIONS = {
    "python": "python: acts.write",
    "command": 'command: ["cp", "src.txt", "{output}"]',
    "shell": 'shell: "echo x > {output}"',
}

FLOWFILE = '''\
rule task(date: date):
    output: "out/{{date}}.txt"
    {action}

range bench_days = days({first} .. {last})

target all: task(d) for d in bench_days
'''

ACTS = '''\
def write(output):
    with open(output, "w") as handle:
        handle.write("x\\n")
'''


def _flow_bin() -> str:
    return os.path.join(sysconfig.get_path("scripts"), "flow")


def _days(tasks: int):
    first = datetime.date(2000, 1, 1)
    return first, first + datetime.timedelta(days=tasks - 1)


def _project(root: str, kind: str, tasks: int) -> str:
    directory = os.path.join(root, kind)
    os.makedirs(directory)
    first, last = _days(tasks)
    with open(os.path.join(directory, "Flowfile"), "w") as handle:
        handle.write(FLOWFILE.format(action=ACTIONS[kind], first=first, last=last))
    with open(os.path.join(directory, "acts.py"), "w") as handle:
        handle.write(ACTS)
    with open(os.path.join(directory, "src.txt"), "w") as handle:
        handle.write("x\n")
    return directory


def _make_project(root: str, tasks: int) -> str:
    directory = os.path.join(root, "make")
    os.makedirs(directory)
    first, _ = _days(tasks)
    names = [f"out/{first + datetime.timedelta(days=i)}.txt" for i in range(tasks)]
    with open(os.path.join(directory, "Makefile"), "w") as handle:
        handle.write("all: " + " ".join(names) + "\n\nout/%.txt:\n\t@mkdir -p out && echo x > $@\n")
    return directory


def _clean(directory: str) -> None:
    for name in ("out", ".flow"):
        shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def _time(argv, directory: str) -> float:
    _clean(directory)
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed in {directory}:\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    options = parser.parse_args()
    root = tempfile.mkdtemp(prefix="flow-bench-commands-")
    flow = _flow_bin()
    projects = {kind: _project(root, kind, options.tasks) for kind in ACTIONS}
    make_dir = _make_project(root, options.tasks)
    print(f"{options.tasks} tasks, median of {options.reps}, load {os.getloadavg()[0]:.1f}")
    print(f"{'runner':<10} {'-j':>3} {'seconds':>8} {'ms/task':>8}")
    for jobs in options.jobs:
        rows = [(kind, [flow, "build", "-q", "-j", str(jobs), "all"], directory)
                for kind, directory in projects.items()]
        if shutil.which("make"):
            rows.append(("make", ["make", "-s", f"-j{jobs}"], make_dir))
        for name, argv, directory in rows:
            seconds = statistics.median(_time(argv, directory) for _ in range(options.reps))
            print(f"{name:<10} {jobs:>3} {seconds:>8.2f} {1000 * seconds / options.tasks:>8.2f}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
