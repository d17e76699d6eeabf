#!/usr/bin/env python3
"""What history retention costs at the end of a build, on a history of 100,000 attempts.

Usage: python bench/retention_bench.py [--attempts 100000] [--runs 3] [--dir DIR] [--cases steady,nothing,backlog]

Writes `.flow/history.sqlite` through flow's own History (schema, indexes, WAL) and fills it with
rows straight away, then times `LocalState.retain` (the call `flow build` makes after each run,
task logs included: one log file per failed attempt, a tenth of them) in three situations:
  steady   1,001 runs of 100 attempts, keep 1,000 runs: the oldest run goes (what every build pays)
  nothing  1,000 runs of 100 attempts, keep 1,000 runs: nothing to delete
  backlog  10 runs of 10,000 attempts, keep 1 run: the first build after turning retention on
Median and min of RUNS, each on a fresh copy of the file. DIR should be on the disk builds use.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flow.runtime.history import History  # noqa: E402
from flow.runtime.state.local import LocalState  # noqa: E402
from flow.runtime.tasklog import log_file  # noqa: E402


def make_history(flow_dir: str, runs: int, per_run: int) -> None:
    """runs x per_run attempts of distinct tasks (a daily build's new partitions), a tenth failed with a log."""
    history = History(flow_dir)
    conn = history._db()
    now = time.time()
    log_dir = os.path.join(flow_dir, "logs")
    os.makedirs(os.path.join(log_dir, "streams"), exist_ok=True)
    conn.execute("BEGIN")
    for run in range(1, runs + 1):
        started = now - (runs - run) * 3600
        conn.execute("INSERT INTO runs (id, started, finished, command, targets, status, counts_json, host, pid)"
                     " VALUES (?, ?, ?, 'flow build', '[]', 'success', '{}', 'bench', 1)", (run, started, started + 60))
        rows = []
        for i in range(per_run):
            task_id = f"streams(r{run}-{i})"
            failed = i % 10 == 0
            rows.append((run, task_id, "streams", json.dumps({"date": f"r{run}-{i}"}), f"data/{task_id}.tsv",
                         "failed" if failed else "done", 1, started + i * 0.01, 0.5, "bench",
                         "ValueError: boom" if failed else None))
            if failed:
                with open(log_file(log_dir, "streams", task_id), "w") as log:
                    log.write("Traceback ...\nValueError: boom\n")
        conn.executemany("INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    history.close()


def timed_retain(template: str, work: str, keep_runs: int, repeats: int) -> tuple:
    samples, removed = [], None
    for _ in range(repeats):
        copy = os.path.join(work, "copy")
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(template, copy)
        flow_dir = os.path.join(copy, ".flow")
        state = LocalState(flow_dir)
        state.history._db()  # the build has its connection open already
        started = time.perf_counter()
        removed = state.retain(keep_runs, 90, os.path.join(flow_dir, "logs"))
        samples.append(time.perf_counter() - started)
        state.close()
    return statistics.median(samples), min(samples), removed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attempts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir")
    parser.add_argument("--cases", default="steady,nothing,backlog")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="flow-retention-", dir=args.dir)
    try:
        per = max(args.attempts // 1000, 1)
        cases = [("steady", 1001, per, 1000), ("nothing", 1000, per, 1000), ("backlog", 10, args.attempts // 10, 1)]
        print("| case | runs x attempts | runs deleted | median s | min s |")
        print("|---|---|---:|---:|---:|")
        for name, runs, per_run, keep in cases:
            if name not in args.cases.split(","):
                continue
            template = os.path.join(base, name)
            make_history(os.path.join(template, ".flow"), runs, per_run)
            median, low, removed = timed_retain(template, os.path.join(base, "work"), keep, args.runs)
            print(f"| {name} | {runs:,} x {per_run:,} | {removed:,} | {median:.4f} | {low:.4f} |", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
