#!/usr/bin/env python3
"""What priorities and resources cost: planning in-process at 100,000 tasks, and cold and no-op builds through the CLI.

Usage: python bench/priorities.py [--tasks 10000] [--plan-tasks 100000] [--runs 3] [--cold-runs 2] [--base DIR]

1. Plan (a fresh Python process per figure): the harness workload of PLAN_TASKS tasks is expanded
   once, then timed: Plan built and driven to the end as a -j1 build would (next_ready, finished),
   without priorities and with every task at priority 1 (effective_priorities plus the heap).
2. CLI (`python -m flow.runtime.cli build -j1 -q`, TASKS tasks): a cold build (outputs and .flow/
   removed first; the fastest of COLD_RUNS: it is dominated by creating files, which a loaded
   machine makes noisy) and a no-op build (median of RUNS),
   for the plain Flowfile, with `priority: 1` on the top rule, and with `resources: io=1` on the
   day rule under a limit of 1. Wall time and the CPU time of flow and its workers.
--base DIR: a directory holding another flow tree as DIR/flow (e.g. `git archive main` unpacked
into /tmp/base/flow); its plain figures are printed beside this tree's ("before").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.environ.get("GEN_WORKLOAD", "/work/shared/bench/gen_workload.py")

PLAN_CHILD = r'''
import json, sys, time
from flow.compiler.loader import load
from flow.compiler.graph import TaskFactory, build_graph
from flow.runtime.plan import Plan
prioritised = sys.argv[2] == "priority"
checked = load(sys.argv[1])
factory = TaskFactory(checked)
graph = build_graph(factory, factory.target("all"), lambda tasks: set())
g = graph.graph
to_run = list(g)
started = time.perf_counter()
if prioritised:
    from flow.runtime.priorities import effective_priorities
    for info in checked.rules.values():
        info.priority = 1
    priority = effective_priorities(to_run, g.succ.__getitem__, {})
    plan = Plan(to_run, g.succ.__getitem__, g.pred.__getitem__, priority=priority)
else:
    plan = Plan(to_run, g.succ.__getitem__, g.pred.__getitem__)
built = time.perf_counter()
count = 0
while True:
    task = plan.next_ready()
    if task is None:
        break
    plan.finished(task, True)
    count += 1
done = time.perf_counter()
assert count == len(to_run), (count, len(to_run))
print(json.dumps({"tasks": count, "plan_s": built - started, "drive_s": done - built}))
'''


def generate(tasks: int, directory: str) -> None:
    subprocess.run([sys.executable, GEN, "manifest", str(tasks), directory], check=True, capture_output=True)
    text = subprocess.run([sys.executable, os.path.join(HERE, "workload_to_flowfile.py"),
                           os.path.join(directory, "workload.json")], check=True, capture_output=True,
                          text=True).stdout
    with open(os.path.join(directory, "Flowfile"), "w") as handle:
        handle.write(text)
    shutil.copy(os.path.join(HERE, "flow_actions.py"), directory)


def variant(directory: str, name: str) -> str:
    """A copy of the generated project with the Flowfile changed for `name`."""
    target = f"{directory}-{name}"
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    for file in ("Flowfile", "flow_actions.py"):
        shutil.copy(os.path.join(directory, file), target)
    path = os.path.join(target, "Flowfile")
    text = open(path).read()
    if name == "priority":
        text = text.replace('    """The top 10 artists of an interval."""\n',
                            '    """The top 10 artists of an interval."""\n    priority: 1\n')
    elif name == "resources":
        text = "resources: io = 1\n" + text.replace('    """One day of streams."""\n',
                                                      '    """One day of streams."""\n    resources: io=1\n')
    open(path, "w").write(text)
    return target


def env_for(tree) -> dict:
    env = dict(os.environ)
    env.pop("FLOW_RESOURCES", None)
    if tree:
        env["PYTHONPATH"] = tree + os.pathsep + env.get("PYTHONPATH", "")
    return env


def timed(args, cwd, env) -> tuple:
    """(wall seconds, CPU seconds of the command and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def builds(directory: str, tree, runs: int, cold_runs: int) -> dict:
    build = [sys.executable, "-m", "flow.runtime.cli", "build", "-j1", "-q"]
    env = env_for(tree)
    colds = []
    for _ in range(cold_runs):
        for path in ("data", ".flow"):
            shutil.rmtree(os.path.join(directory, path), ignore_errors=True)
        colds.append(timed(build, directory, env))
    cold = min(colds)
    noops = [timed(build, directory, env) for _ in range(runs)]
    return {"cold_wall": cold[0], "cold_cpu": cold[1], "noop_wall": statistics.median(w for w, _ in noops),
            "noop_cpu": statistics.median(c for _, c in noops)}


def plan_figures(directory: str, tree, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PLAN_CHILD, os.path.join(directory, "Flowfile"), mode],
                         env=env_for(tree), check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--plan-tasks", type=int, default=100000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold-runs", type=int, default=2)
    parser.add_argument("--base", help="a directory holding another flow tree as DIR/flow")
    options = parser.parse_args()
    work = tempfile.mkdtemp(prefix="flow-priorities-")
    try:
        big = os.path.join(work, "plan")
        os.makedirs(big)
        generate(options.plan_tasks, big)
        print(f"plan and drive, {options.plan_tasks:,}-task workload (seconds)")
        rows = [("this tree", None, "plain"), ("this tree", None, "priority")]
        if options.base:
            rows.insert(0, ("base", options.base, "plain"))
        for label, tree, mode in rows:
            figures = plan_figures(big, tree, mode)
            print(f"  {label:10} {mode:9} plan {figures['plan_s']:.3f}  drive {figures['drive_s']:.3f}  "
                  f"({figures['tasks']:,} tasks)")
        small = os.path.join(work, "cli")
        os.makedirs(small)
        generate(options.tasks, small)
        print(f"flow build -j1, {options.tasks:,}-task workload: cold (fastest of {options.cold_runs}) and no-op "
              f"(median of {options.runs}), wall / CPU seconds")
        rows = [("this tree", None, "plain"), ("this tree", None, "priority"), ("this tree", None, "resources")]
        if options.base:
            rows.insert(0, ("base", options.base, "plain"))
        for label, tree, mode in rows:
            directory = small if mode == "plain" else variant(small, mode)
            figures = builds(directory, tree, options.runs, options.cold_runs)
            print(f"  {label:10} {mode:9} cold {figures['cold_wall']:6.2f} / {figures['cold_cpu']:6.2f}   "
                  f"no-op {figures['noop_wall']:.3f} / {figures['noop_cpu']:.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
