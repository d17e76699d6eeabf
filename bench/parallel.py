#!/usr/bin/env python3
"""Does `flow build -j 2` use two cores for CPU-bound Python actions?

Usage: python bench/parallel.py [--tasks 8] [--seconds 1] [--reps 3] [--jobs 1 2]

Writes a Flowfile of TASKS independent tasks (`burn(date)` over days(...)), each spinning
SECONDS of CPU in pure Python with the GIL held (flow_actions.burn), and times a cold
`flow build -j J` through the real CLI for each J (median of REPS; outputs and .flow/ removed
before each run). Ideal: TASKS*SECONDS at -j1, half of that at -j2 on two idle cores.

The machine is shared (other test runs take a core now and then), so each repetition also runs the
same burns without flow, in a multiprocessing.Pool(J) (`control`): what the machine gave at that
moment. flow is doing its part when its speed-up matches the control's.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

FLOWFILE = '''\
# bench/parallel.py: {tasks} independent CPU-bound tasks
rule burn(date: date):
    """Spin FLOW_BURN_SECONDS of CPU in pure Python, then write a file."""
    output: "out/burn_{{date}}.txt"
    python: flow_actions.burn

range burn_days = days({first} .. {last})

target all: burn(d) for d in burn_days

default: all
'''


def _burn_one(seconds: float) -> None:
    sys.path.insert(0, HERE)
    import flow_actions

    with tempfile.NamedTemporaryFile("w") as out:
        os.environ["FLOW_BURN_SECONDS"] = str(seconds)
        flow_actions.burn(out.name)


def control(jobs: int, tasks: int, seconds: float) -> float:
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        pool.map(_burn_one, [seconds] * tasks, chunksize=1)
    return time.perf_counter() - started


def max_concurrent(out_dir: str) -> tuple:
    """(most tasks running at one moment, worker processes used), from the files flow_actions.burn wrote."""
    events, pids = [], set()
    for name in os.listdir(out_dir):
        with open(os.path.join(out_dir, name), encoding="utf-8") as handle:
            start, end, pid, _ = handle.read().split()
        events += [(float(start), 1), (float(end), -1)]
        pids.add(pid)
    running = most = 0
    for _, step in sorted(events):
        running += step
        most = max(most, running)
    return most, len(pids)


def flow_bin() -> str:
    candidate = os.path.join(sysconfig.get_path("scripts"), "flow")  # not a pyenv shim: see flow.sh
    return os.environ.get("FLOW_BIN") or (candidate if os.access(candidate, os.X_OK) else shutil.which("flow"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    flow = flow_bin()
    work = tempfile.mkdtemp(prefix="flow-parallel-")
    try:
        first = datetime.date(2020, 1, 1)
        last = first + datetime.timedelta(days=args.tasks - 1)
        with open(os.path.join(work, "Flowfile"), "w", encoding="utf-8") as out:
            out.write(FLOWFILE.format(tasks=args.tasks, first=first, last=last))
        shutil.copy(os.path.join(HERE, "flow_actions.py"), work)
        env = dict(os.environ, FLOW_BURN_SECONDS=str(args.seconds))
        print(f"{args.tasks} tasks x {args.seconds:g} s CPU each (pure Python, GIL held); {flow}; "
              f"nproc {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
        results, controls, overlap = {}, {}, {}
        for _ in range(args.reps):
            for jobs in args.jobs:  # interleaved, so that load changes hit every -j alike
                shutil.rmtree(os.path.join(work, "out"), ignore_errors=True)
                shutil.rmtree(os.path.join(work, ".flow"), ignore_errors=True)
                started = time.perf_counter()
                done = subprocess.run([flow, "build", "-q", "-j", str(jobs)], cwd=work, env=env,
                                      capture_output=True, text=True)
                elapsed = time.perf_counter() - started
                made = len(os.listdir(os.path.join(work, "out"))) if os.path.isdir(os.path.join(work, "out")) else 0
                if done.returncode != 0 or made != args.tasks:
                    print(f"-j{jobs} failed (exit {done.returncode}, {made} files): {done.stderr[-400:]}",
                          file=sys.stderr)
                    return 1
                results.setdefault(jobs, []).append(elapsed)
                overlap.setdefault(jobs, []).append(max_concurrent(os.path.join(work, "out")))
                controls.setdefault(jobs, []).append(control(jobs, args.tasks, args.seconds))
        base = statistics.median(results[args.jobs[0]])
        cbase = statistics.median(controls[args.jobs[0]])
        ideal = args.tasks * args.seconds
        print(f"\n| -j | flow wall s (median) | runs | flow speed-up vs -j{args.jobs[0]} "
              f"| at once / workers | control: Pool(j) s | control speed-up | ideal s |")
        print("|---:|---:|---|---:|---|---:|---:|---:|")
        for jobs in args.jobs:
            med = statistics.median(results[jobs])
            cmed = statistics.median(controls[jobs])
            runs = ", ".join(f"{x:.2f}" for x in results[jobs])
            most = max(m for m, _ in overlap[jobs])
            workers = max(w for _, w in overlap[jobs])
            print(f"| {jobs} | {med:.2f} | {runs} | {base / med:.2f}x | {most} / {workers} | {cmed:.2f} "
                  f"| {cbase / cmed:.2f}x | {ideal / min(jobs, os.cpu_count()):.1f} |")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
