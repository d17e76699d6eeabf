"""A year of daily partitions backfilled through the `flow` command: `batch: 31` beside one action run per day.

    python bench/batched.py [--workdir DIR] [--jobs 2] [--work-ms 0]

Both Flowfiles have one daily rule over 2013 (365 tasks) whose action writes its day's file; the
batched one adds `batch: 31`, so flow makes 12 runs of up to 31 days. `--work-ms` adds a fixed
cost per action call (a job's start-up: a Spark job, a database round trip), which batching pays
once per run instead of once per day. Rows: wall and CPU seconds of the cold backfill, action calls.
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

ACTIONS = '''
import os, time

def _called():
    with open(os.path.join(os.environ["BENCH_DIR"], "calls.log"), "a") as log:
        log.write("1\\n")
    time.sleep(float(os.environ.get("BENCH_WORK_MS", "0")) / 1000)

def one_day(date, output):
    _called()
    with open(output, "w") as handle:
        handle.write(f"{date}\\n")

def many_days(partitions, outputs):
    _called()
    for date, output in zip(partitions, outputs):
        with open(output, "w") as handle:
            handle.write(f"{date}\\n")
'''

FLOWFILE = """
rule daily(date: date):
    output: "daily/{{date}}.tsv"
    python: bench_actions.{function}
{batch}
target year: daily(d) for d in days(2013-01-01 .. 2013-12-31)
"""


def _load() -> str:
    with open("/proc/loadavg") as handle:
        return handle.read().split()[0]


def backfill(work: str, batched: bool, jobs: int, work_ms: int) -> tuple:
    """(wall seconds, CPU seconds, action calls, load) of one cold `flow build year`."""
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    with open(os.path.join(work, "Flowfile"), "w", encoding="utf-8") as handle:
        handle.write(FLOWFILE.format(function="many_days" if batched else "one_day",
                                     batch="    batch: 31\n" if batched else ""))
    with open(os.path.join(work, "bench_actions.py"), "w", encoding="utf-8") as handle:
        handle.write(ACTIONS)
    env = dict(os.environ, BENCH_DIR=work, BENCH_WORK_MS=str(work_ms))
    flow = os.path.join(os.path.dirname(sys.executable), "flow")
    load = _load()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run([flow, "build", "-q", "-j", str(jobs), "year"], cwd=work, env=env,
                            capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"flow build failed ({result.returncode}):\n{result.stderr[-2000:]}")
    outputs = len(os.listdir(os.path.join(work, "daily")))
    if outputs != 365:
        raise SystemExit(f"expected 365 daily outputs, found {outputs}")
    with open(os.path.join(work, "calls.log")) as handle:
        calls = len(handle.readlines())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, calls, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="where to build (default: a fresh temporary directory)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--work-ms", type=int, nargs="*", default=[0, 200],
                        help="fixed cost per action call, in milliseconds (several: one pair of rows each)")
    options = parser.parse_args()
    base = options.workdir or tempfile.mkdtemp(prefix="flow-batched-")
    print("| backfill of 365 days | cost per call | action calls | wall s | CPU s | load |")
    print("|---|---:|---:|---:|---:|---:|")
    for work_ms in options.work_ms:
        for batched in (False, True):
            wall, cpu, calls, load = backfill(os.path.join(base, "batched" if batched else "daily"), batched,
                                              options.jobs, work_ms)
            name = "batch: 31" if batched else "one run per day"
            print(f"| {name} | {work_ms} ms | {calls} | {wall:.2f} | {cpu:.2f} | {load} |")
    if not options.workdir:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
