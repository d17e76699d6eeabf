"""A year of hourly partitions through the `flow` command: 8,760 tasks per rule, planned, built, no-op.

    python bench/hourly.py [--workdir DIR] [--jobs 2]

The Flowfile has an hourly rule writing `logs/{hour:year=%Y/month=%m/day=%d/hour=%H}/part.tsv`
and a daily rule reading the 24 hours of its day (8,760 + 365 tasks), with bench/flow_actions.py's
fixed-content action. Rows: the dry run (planning only), the cold build, the no-op build, and the
in-process graph expansion; each is one run, with the machine's load printed beside it.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

FLOWFILE = """
rule logs(hour: hour):
    output: "logs/{hour:year=%Y/month=%m/day=%d/hour=%H}/part.tsv"
    python: flow_actions.write_fixed

rule daily(date: date):
    requires: logs(h) for h in hours(date)
    output: "daily/{date}.tsv"
    python: flow_actions.write_fixed

target hours_2013: logs(h) for h in hours(2013)
target days_2013: daily(d) for d in days(2013-01-01 .. 2013-12-31)
"""


def _flow_bin() -> str:
    return os.path.join(os.path.dirname(sys.executable), "flow")


def _timed(args: list, cwd: str) -> tuple:
    """(wall seconds, CPU seconds of flow and its workers, 1-minute load before) of one command, which must succeed.

    On a shared machine the wall time mostly measures the queue for a core; CPU time is flow's own.
    """
    load = _load()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, load


def _load() -> str:
    with open("/proc/loadavg") as handle:
        return handle.read().split()[0]


def expand_in_process(path: str) -> tuple:
    """Seconds to load the Flowfile and instantiate every task of days_2013 with its requirements."""
    from flow.compiler.graph import TaskFactory, build_graph
    from flow.compiler.loader import load

    started, cpu = time.perf_counter(), time.process_time()
    factory = TaskFactory(load(path))
    roots = factory.target("days_2013")
    graph = build_graph(factory, roots, complete=lambda level: set())
    return time.perf_counter() - started, time.process_time() - cpu, len(graph)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="where to build (default: a fresh temporary directory)")
    parser.add_argument("--jobs", type=int, default=2)
    options = parser.parse_args()
    work = options.workdir or tempfile.mkdtemp(prefix="flow-hourly-")
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "Flowfile"), "w", encoding="utf-8") as handle:
        handle.write(FLOWFILE)
    shutil.copy(os.path.join(REPO, "bench", "flow_actions.py"), work)
    flow = _flow_bin()
    rows = []
    seconds, cpu, tasks = expand_in_process(os.path.join(work, "Flowfile"))
    rows.append(("expand days_2013 in-process (load + tasks + graph)", f"{tasks:,} tasks", (seconds, cpu, _load())))
    rows.append(("flow --dry-run days_2013 (plan, nothing built)", "9,125 to run",
                 _timed([flow, "--dry-run", "days_2013"], work)))
    rows.append((f"flow build -j{options.jobs} -q days_2013 (cold)", "9,125 ran",
                 _timed([flow, "build", "-j", str(options.jobs), "-q", "days_2013"], work)))
    count = sum(len(files) for _, _, files in os.walk(os.path.join(work, "logs")))
    if count != 8760:
        raise SystemExit(f"expected 8,760 hourly outputs, found {count}")
    rows.append(("flow build days_2013 (no-op: 365 outputs exist)", "0 ran",
                 _timed([flow, "build", "days_2013"], work)))
    rows.append(("flow build hours_2013 (no-op: 8,760 outputs exist)", "0 ran",
                 _timed([flow, "build", "hours_2013"], work)))
    print("| step | tasks | wall s | CPU s | load |\n|---|---|---:|---:|---:|")
    for step, what, (seconds, cpu, load) in rows:
        print(f"| {step} | {what} | {seconds:.2f} | {cpu:.2f} | {load} |")
    if not options.workdir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
