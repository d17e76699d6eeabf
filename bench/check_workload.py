#!/usr/bin/env python3
"""Check that a generated Flowfile expands to exactly the tasks, outputs and deps of workload.json.

Usage: python bench/check_workload.py N [N...]           generate each size in a temp dir, then check
       python bench/check_workload.py --flowfile FLOWFILE WORKLOAD_JSON      check one pair

For each size: gen_workload.py manifest N DIR, workload_to_flowfile.py, then in-process
compiler.loader.load -> resolve the default target -> compiler.graph.build_graph with nothing
complete, and compare with the manifest: the set of outputs, each task's requirements (as
outputs), the target's tasks, every action (flow_actions.write_fixed) and the bytes it writes.
Exit 0 when every size matches; prints the first differences otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)
sys.path.insert(0, PROJECT)
sys.path.insert(0, HERE)

from flow.compiler.graph import TaskFactory, build_graph  # noqa: E402
from flow.compiler.loader import load  # noqa: E402
from flow.compiler.resolve import resolve  # noqa: E402

GEN = os.environ.get("GEN_WORKLOAD", "/work/shared/bench/gen_workload.py")


def compare(flowfile_path: str, workload_path: str) -> list:
    """Differences between the Flowfile's task graph and the manifest (empty when they match)."""
    with open(workload_path, encoding="utf-8") as handle:
        doc = json.load(handle)
    by_id = {task["id"]: task for task in doc["tasks"]}
    want_deps = {task["output"]: {by_id[d]["output"] for d in task["deps"]} for task in doc["tasks"]}
    want_roots = {by_id[d]["output"] for d in doc["target_deps"]}

    checked = load(flowfile_path)
    factory = TaskFactory(checked)
    target = checked.default
    roots = resolve(factory, target)
    graph = build_graph(factory, roots, lambda level: set())
    nx_graph = graph.graph
    got_deps = {task.output: {child.output for child in nx_graph.successors(task)} for task in nx_graph}

    problems = []
    if target != doc["target"]:
        problems.append(f"default target is {target!r}, the manifest's is {doc['target']!r}")
    if len(got_deps) != nx_graph.number_of_nodes():
        problems.append("two tasks share an output")
    if {r.output for r in roots} != want_roots or len(roots) != len(want_roots):
        problems.append(f"target {target!r}: {len(roots)} tasks, manifest {len(want_roots)}")
    extra = sorted(got_deps.keys() - want_deps.keys())
    missing = sorted(want_deps.keys() - got_deps.keys())
    if extra:
        problems.append(f"{len(extra)} outputs not in the manifest, e.g. {extra[:3]}")
    if missing:
        problems.append(f"{len(missing)} manifest outputs not made, e.g. {missing[:3]}")
    wrong = sorted(o for o in got_deps.keys() & want_deps.keys() if got_deps[o] != want_deps[o])
    if wrong:
        o = wrong[0]
        problems.append(f"{len(wrong)} tasks with other deps, e.g. {o}: flow {sorted(got_deps[o])[:3]}..., "
                        f"manifest {sorted(want_deps[o])[:3]}...")
    if graph.expanded != set(nx_graph):
        problems.append("not every task was expanded")
    actions = {(t.info.node.action.kind, t.info.node.action.target) for t in nx_graph if t.info.node.action}
    if actions != {("python", "flow_actions.write_fixed")} or any(t.info.node.action is None for t in nx_graph):
        problems.append(f"actions are {sorted(actions)}, expected only python flow_actions.write_fixed")
    else:
        import flow_actions

        with tempfile.NamedTemporaryFile("r", encoding="utf-8", newline="") as out:
            flow_actions.write_fixed(out.name)
            if out.read() != doc["content"]:
                problems.append("flow_actions.write_fixed writes other content than the manifest's")
    return problems


def check_size(n: int) -> bool:
    with tempfile.TemporaryDirectory(prefix=f"flow-check-{n}-") as work:
        subprocess.run([sys.executable, GEN, "manifest", str(n), work], check=True, stdout=subprocess.DEVNULL)
        workload = os.path.join(work, "workload.json")
        flowfile = os.path.join(work, "Flowfile")
        with open(flowfile, "w", encoding="utf-8") as out:
            subprocess.run([sys.executable, os.path.join(HERE, "workload_to_flowfile.py"), workload],
                           check=True, stdout=out)
        started = time.perf_counter()
        problems = compare(flowfile, workload)
        elapsed = time.perf_counter() - started
        with open(workload, encoding="utf-8") as handle:
            shape = json.load(handle)["shape"]
    status = "OK  " if not problems else "FAIL"
    print(f"{status} N={n}: {shape['tasks']:,} tasks, {shape['months']:,} months "
          f"({shape['first_month']} .. {shape['last_month']}), compared in {elapsed:.1f} s")
    for problem in problems:
        print(f"     {problem}")
    return not problems


def main(argv: list) -> int:
    if len(argv) == 4 and argv[1] == "--flowfile":
        problems = compare(argv[2], argv[3])
        print("OK" if not problems else "\n".join(problems))
        return 0 if not problems else 1
    sizes = [int(a) for a in argv[1:]] or [1000, 10000, 100000]
    ok = True
    for n in sizes:
        ok = check_size(n) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
