#!/usr/bin/env python3
"""Start-up figures of the `flow` command and the cost of instantiating a 100,000-task graph.

Usage: python bench/startup.py [--runs 10] [--graph-runs 5] [--tasks 100000] [--pyc both|on|off]

Commands (each run as a user would, through the installed console script; median and min of RUNS):
  flow --help, flow --version, flow lint and flow list of the project's Flowfile, and a no-op
  `flow build top_artists_2012-06.tsv` in a temp copy of the project's Flowfile after building it once.
Each is timed twice when --pyc both (default): as this environment runs it (PYTHONDONTWRITEBYTECODE=1
here, so flow's own modules are compiled on every start) and with a bytecode cache
(PYTHONPYCACHEPREFIX in a temp dir, as a usual install has in __pycache__).

Graph (in a fresh Python process per run): load a generated Flowfile of TASKS tasks (the harness
workload via bench/workload_to_flowfile.py), resolve its `all` target, build_graph with nothing
complete; prints seconds per step (median of GRAPH_RUNS) and the process's peak RSS
(resource.getrusage, with the RSS after imports as the baseline), plus one tracemalloc run for the
Python heap that the graph itself holds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)
GEN = os.environ.get("GEN_WORKLOAD", "/work/shared/bench/gen_workload.py")
FLOW = os.environ.get("FLOW_BIN") or shutil.which("flow") or "flow"

GRAPH_CHILD = r'''
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[1])
trace = sys.argv[3] == "trace"
t0 = time.perf_counter()
from flow.compiler.graph import TaskFactory, build_graph
from flow.compiler.loader import load
from flow.compiler.resolve import resolve
import networkx  # noqa: F401  (imported inside build_graph; count it with the imports)
t1 = time.perf_counter()
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if trace:
    import tracemalloc
    tracemalloc.start()
checked = load(sys.argv[2])
t2 = time.perf_counter()
factory = TaskFactory(checked)
roots = resolve(factory, "all")
t3 = time.perf_counter()
graph = build_graph(factory, roots, lambda level: set())
t4 = time.perf_counter()
out = {"imports": t1 - t0, "load": t2 - t1, "resolve": t3 - t2, "build_graph": t4 - t3, "total": t4 - t1,
       "tasks": graph.graph.number_of_nodes(), "edges": graph.graph.number_of_edges(),
       "base_rss_kb": base_rss, "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
if trace:
    current, peak = tracemalloc.get_traced_memory()
    out.update(heap_current=current, heap_peak=peak)
print(json.dumps(out))
'''


def timed(cmd: list, cwd: str, env: dict, expect: int = 0) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != expect:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def environments(mode: str, cache_dir: str) -> list:
    plain = dict(os.environ)
    cached = dict(os.environ)
    cached.pop("PYTHONDONTWRITEBYTECODE", None)
    cached["PYTHONPYCACHEPREFIX"] = cache_dir
    label = "as is" + (" (PYTHONDONTWRITEBYTECODE=1)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "")
    envs = {"off": [(label, plain)], "on": [("with .pyc cache", cached)]}
    return envs.get(mode, envs["off"] + envs["on"])


def command_figures(runs: int, mode: str) -> list:
    work = tempfile.mkdtemp(prefix="flow-startup-")
    try:
        copy = os.path.join(work, "project")
        os.makedirs(copy)
        shutil.copy(os.path.join(PROJECT, "Flowfile"), copy)
        shutil.copytree(os.path.join(PROJECT, "examples"), os.path.join(copy, "examples"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        flowfile = os.path.join(PROJECT, "Flowfile")
        commands = [
            ("flow --help", [FLOW, "--help"], PROJECT),
            ("flow --version", [FLOW, "--version"], PROJECT),
            ("flow lint (root Flowfile)", [FLOW, "lint", "-f", flowfile], PROJECT),
            ("flow list (root Flowfile)", [FLOW, "list", "-f", flowfile], PROJECT),
            ("flow build top_artists_2012-06.tsv (no-op)", [FLOW, "build", "top_artists_2012-06.tsv"], copy),
        ]
        envs = environments(mode, os.path.join(work, "pycache"))
        # the first build makes the outputs; the no-op runs come after it
        timed(commands[-1][1], copy, envs[0][1])
        rows = []
        for name, cmd, cwd in commands:
            row = [name]
            for _, env in envs:
                timed(cmd, cwd, env)  # warm the file cache (and the bytecode cache)
                samples = [timed(cmd, cwd, env) for _ in range(runs)]
                row.append((statistics.median(samples), min(samples)))
            rows.append(row)
        return [label for label, _ in envs], rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def graph_figures(tasks: int, runs: int) -> tuple:
    work = tempfile.mkdtemp(prefix="flow-graph-")
    try:
        subprocess.run([sys.executable, GEN, "manifest", str(tasks), work], check=True, stdout=subprocess.DEVNULL)
        flowfile = os.path.join(work, "Flowfile")
        with open(flowfile, "w", encoding="utf-8") as out:
            subprocess.run([sys.executable, os.path.join(HERE, "workload_to_flowfile.py"),
                            os.path.join(work, "workload.json")], check=True, stdout=out)
        results = []
        for mode in ["plain"] * runs + ["trace"]:
            done = subprocess.run([sys.executable, "-c", GRAPH_CHILD, PROJECT, flowfile, mode],
                                  check=True, capture_output=True, text=True)
            results.append(json.loads(done.stdout))
        return results[:-1], results[-1]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--graph-runs", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--pyc", choices=("both", "on", "off"), default="both")
    parser.add_argument("--skip-commands", action="store_true")
    args = parser.parse_args()

    print(f"flow: {FLOW}  python {sys.version.split()[0]}  nproc {os.cpu_count()}  "
          f"load {os.getloadavg()[0]:.2f}  {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
    if not args.skip_commands:
        labels, rows = command_figures(args.runs, args.pyc)
        print(f"\n### Start-up (seconds, median / min of {args.runs} runs)\n")
        print("| command | " + " | ".join(labels) + " |")
        print("|---|" + "---:|" * len(labels))
        for row in rows:
            print(f"| `{row[0]}` | " + " | ".join(f"{med:.3f} / {low:.3f}" for med, low in row[1:]) + " |")

    plain, traced = graph_figures(args.tasks, args.graph_runs)
    med = {k: statistics.median(r[k] for r in plain) for k in plain[0]}
    print(f"\n### Graph instantiation in-process: {plain[0]['tasks']:,} tasks, {plain[0]['edges']:,} edges "
          f"(median of {args.graph_runs} fresh processes)\n")
    print("| step | seconds |")
    print("|---|---:|")
    for key in ("imports", "load", "resolve", "build_graph", "total"):
        label = {"total": "**load + resolve + build_graph**"}.get(key, key)
        print(f"| {label} | {med[key]:.3f} |")
    print(f"\npeak RSS {med['peak_rss_kb'] / 1024:.0f} MB (after imports {med['base_rss_kb'] / 1024:.0f} MB, "
          f"so the graph adds ~{(med['peak_rss_kb'] - med['base_rss_kb']) / 1024:.0f} MB, "
          f"~{(med['peak_rss_kb'] - med['base_rss_kb']) * 1024 / plain[0]['tasks']:.0f} bytes/task); "
          f"tracemalloc: Python heap held {traced['heap_current'] / 2**20:.0f} MB, "
          f"peak {traced['heap_peak'] / 2**20:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
