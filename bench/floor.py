"""The floor of a cold build: one Python process writing the workload's files atomically, nothing else.

Usage: python bench/floor.py WORKLOAD_JSON [ROOT]

Reads the shared harness's workload.json and writes every task's output under ROOT (default: the
manifest's directory) with the fixed content, each to a temporary beside it renamed into place, in
the manifest's order (requirements before dependents), exactly as flow's actions and publishing
do it. No graph, no plan, no locks, no history, no workers: what no orchestrator can go below.
Prints the seconds (wall and CPU) it took to write the files: reading the manifest (110 MB of JSON
at a million tasks) is not counted, it is no work a build tool does.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from flow_actions import CONTENT  # noqa: E402


def outputs_in_order(manifest: dict) -> list:
    """Every task's output in the manifest's order, checked to list requirements before dependents."""
    written, order = set(), []
    for task in manifest["tasks"]:
        missing = [dep for dep in task["deps"] if dep not in written]
        if missing:
            raise SystemExit(f"floor.py: {task['id']} is listed before its requirement {missing[0]}")
        written.add(task["id"])
        order.append(task["output"])
    return order


def write_all(outputs: list, root: str) -> tuple:
    """Write each output atomically (temporary + rename); return the (wall, CPU) seconds taken."""
    started, cpu = time.perf_counter(), time.process_time()
    made = set()
    pid = os.getpid()
    for number, output in enumerate(outputs):
        path = os.path.join(root, output)
        head, name = os.path.split(path)
        if head not in made:
            os.makedirs(head, exist_ok=True)
            made.add(head)
        temp = os.path.join(head, f".{name}.tmp-{pid}-{number}")
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(CONTENT)
        os.replace(temp, path)
    return time.perf_counter() - started, time.process_time() - cpu


def main(argv: list) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        manifest = json.load(handle)
    root = argv[2] if len(argv) == 3 else os.path.dirname(os.path.abspath(argv[1]))
    outputs = outputs_in_order(manifest)
    seconds, cpu = write_all(outputs, root)
    print(f"{len(outputs)} files in {seconds:.3f} s ({cpu:.3f} s CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
