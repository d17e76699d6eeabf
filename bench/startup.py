#!/usr/bin/env python3
"""Start-up figures of the `flow` command and the cost of instantiating a 100,000-task graph.

Usage: python bench/startup.py [--runs 10] [--graph-runs 5] [--tasks 100000] [--pyc both|on|off]
                               [--python LABEL=PYTHON ...] [--noop-dir DIR]

Commands (each run as a user would; median and min of RUNS, wall seconds and CPU seconds):
  flow --help, flow --version, flow lint and flow list of the project's Flowfile, and a no-op
  `flow build top_artists_2012-06.tsv` in a temp copy of the project's Flowfile after building it once;
  with --noop-dir, also `flow build -j1` there (a built workload of bench/scale.py, such as the
  1,000,028-task one: FLOW_TODAY=9999-12-31 and FLOW_MAX_TASKS=0 are set for it).
Each is timed twice when --pyc both (default): as this environment runs it (PYTHONDONTWRITEBYTECODE=1
here, so flow's own modules are compiled on every start) and with a bytecode cache
(PYTHONPYCACHEPREFIX in a temp dir, as a usual install has in __pycache__).
By default the command is the installed console script (FLOW_BIN, else `flow` on PATH). With
--python LABEL=PYTHON (repeatable), it is `PYTHON -m flow.runtime.cli` for each, the runs of the
trees interleaved (one run of each in turn), so that the load of a shared machine hits all alike;
CPU seconds (user + system, from getrusage of the children) do not count the wait for a core.

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
import resource
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


def timed(cmd: list, cwd: str, env: dict, expect: int = 0) -> tuple:
    """(wall seconds, CPU seconds of the command and its children) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != expect:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def environments(mode: str, cache_dir: str) -> list:
    plain = dict(os.environ)
    cached = dict(os.environ)
    cached.pop("PYTHONDONTWRITEBYTECODE", None)
    cached["PYTHONPYCACHEPREFIX"] = cache_dir
    label = "as is" + (" (PYTHONDONTWRITEBYTECODE=1)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "")
    envs = {"off": [(label, plain)], "on": [("with .pyc cache", cached)]}
    return envs.get(mode, envs["off"] + envs["on"])


def variants(pythons: list, mode: str, cache_dir: str) -> list:
    """(label, command prefix, environment) per tree and bytecode setting, in the order they alternate."""
    trees = [(label, [python, "-m", "flow.runtime.cli"]) for label, python in pythons] or [("", [FLOW])]
    found = []
    for env_label, env in environments(mode, cache_dir):
        for index, (tree, prefix) in enumerate(trees):
            if tree:  # one bytecode cache per tree: a tree must not read another's .pyc files
                env = {**env, "PYTHONPYCACHEPREFIX": f"{cache_dir}-{index}"} if "PYTHONPYCACHEPREFIX" in env else env
            found.append((f"{tree}, {env_label}" if tree else env_label, prefix, env))
    return found


def command_figures(runs: int, mode: str, pythons: list, noop_dir: "str | None") -> tuple:
    work = tempfile.mkdtemp(prefix="flow-startup-")
    try:
        copy = os.path.join(work, "project")
        os.makedirs(copy)
        shutil.copy(os.path.join(PROJECT, "Flowfile"), copy)
        shutil.copytree(os.path.join(PROJECT, "examples"), os.path.join(copy, "examples"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        flowfile = os.path.join(PROJECT, "Flowfile")
        commands = [
            ("flow --help", ["--help"], PROJECT, {}),
            ("flow --version", ["--version"], PROJECT, {}),
            ("flow lint (root Flowfile)", ["lint", "-f", flowfile], PROJECT, {}),
            ("flow list (root Flowfile)", ["list", "-f", flowfile], PROJECT, {}),
            ("flow build top_artists_2012-06.tsv (no-op)", ["build", "top_artists_2012-06.tsv"], copy, {}),
        ]
        if noop_dir:
            commands.append((f"flow build -j1 (no-op, {os.path.basename(noop_dir.rstrip('/'))})", ["build", "-j1"],
                             noop_dir, {"FLOW_TODAY": "9999-12-31", "FLOW_MAX_TASKS": "0"}))
        ways = variants(pythons, mode, os.path.join(work, "pycache"))
        # the first build makes the outputs; the no-op runs come after it
        timed(ways[0][1] + commands[4][1], copy, ways[0][2])
        rows = []
        for name, args, cwd, extra in commands:
            samples: dict = {label: [] for label, _, _ in ways}
            for round_ in range(runs + 1):  # round 0 warms the file cache (and the bytecode caches)
                for label, prefix, env in ways:
                    wall, cpu = timed(prefix + args, cwd, {**env, **extra})
                    if round_:
                        samples[label].append((wall, cpu))
            row = [name]
            for label, _, _ in ways:
                walls = [wall for wall, _ in samples[label]]
                cpus = [cpu for _, cpu in samples[label]]
                row.append((statistics.median(walls), min(walls), statistics.median(cpus), min(cpus)))
            rows.append(row)
        return [label for label, _, _ in ways], rows
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
    parser.add_argument("--skip-graph", action="store_true")
    parser.add_argument("--python", action="append", default=[], metavar="LABEL=PYTHON",
                        help="run PYTHON -m flow.runtime.cli (repeatable: trees interleaved)")
    parser.add_argument("--noop-dir", help="also time `flow build -j1` in this built workload (bench/scale.py --keep)")
    args = parser.parse_args()
    pythons = [tuple(spec.split("=", 1)) if "=" in spec else (spec, spec) for spec in args.python]

    flow = ", ".join(f"{label}={python}" for label, python in pythons) or FLOW
    print(f"flow: {flow}  python {sys.version.split()[0]}  nproc {os.cpu_count()}  "
          f"load {os.getloadavg()[0]:.2f}  {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
    if not args.skip_commands:
        labels, rows = command_figures(args.runs, args.pyc, pythons, args.noop_dir)
        print(f"\n### Start-up (seconds, median / min of {args.runs} runs: wall, then CPU)\n")
        print("| command | " + " | ".join(labels) + " |")
        print("|---|" + "---:|" * len(labels))
        for row in rows:
            print(f"| `{row[0]}` | " + " | ".join(f"{wall:.3f} / {low:.3f}, CPU {cpu:.3f} / {cpu_low:.3f}"
                                               for wall, low, cpu, cpu_low in row[1:]) + " |")
        print(f"\nload at the end {os.getloadavg()[0]:.2f}")
    if args.skip_graph:
        return 0

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
