"""`flow status` and `flow log`: the dependency tree with its marks, and the recent runs from history."""

from __future__ import annotations

import os
import sys
import time

from ..targets import describe
from . import EXIT_FAILED, EXIT_OK, on_project


def run_status(flowfile: str, names: list, today: str | None = None, fmt: str = "text") -> int:
    """Print the dependency tree of the targets with complete / missing / failed-last-time marks (or it as JSON)."""
    return on_project(flowfile, names, today, lambda project, roots: _status(project, roots, fmt))


def _status(project, roots: list, fmt: str = "text") -> int:
    from flow.compiler.graph import walk

    from ..history import StateError

    requirements = project.factory.requirements
    # 1. what the tree shows, level by level with one bulk check each (complete tasks are leaves)
    done: set = set()
    seen = set(roots)
    order: list = []  # the tasks level by level, for the JSON document
    truncated = False
    for level, finished, _, edges in walk(project.factory, roots, project.lenient_complete):
        done |= finished
        order.extend(level)
        seen.update(child for _, child in edges)
        if len(seen) >= STATUS_MAX_TASKS:
            truncated = True
            break
    project.database.close()  # nothing below needs the database: an embedded server stops now
    # 2. failures of the last attempts, in one query
    last = {}
    if os.path.isdir(project.flow_dir):
        try:
            last = project.state().last_status([t.id for t in seen if t not in done])
        except StateError as exc:  # the tree is still worth showing without the failure marks
            print(f"warning: {exc}", file=sys.stderr)
    if fmt == "json":
        from .jsonout import status, write

        write(status(project, roots, order, done, last, truncated))
        return EXIT_OK
    # 3. print depth first, each task's requirements once
    lines: list = []
    expanded: set = set()
    stack = [(root, "", True, 0) for root in reversed(roots)]
    while stack and len(lines) < STATUS_MAX_LINES:
        task, prefix, is_last, depth = stack.pop()
        lines.append(f"{prefix}{'' if depth == 0 else ('└── ' if is_last else '├── ')}{task.id}  "
                     f"[{_status_mark(task, done, last)}]  {describe(task)}")
        if task in done or task in expanded or task.info.node.external:
            continue
        expanded.add(task)
        children = requirements(task)
        child_prefix = prefix if depth == 0 else prefix + ("    " if is_last else "│   ")
        for index in range(len(children) - 1, -1, -1):
            stack.append((children[index], child_prefix, index == len(children) - 1, depth + 1))
    if stack:
        lines.append(f"... (stopped after {STATUS_MAX_LINES} lines)")
    print("\n".join(lines))
    for note in project.notes():
        print(note)
    return EXIT_OK


STATUS_MAX_LINES = 2000
STATUS_MAX_TASKS = 200_000


def _status_mark(task, done: set, last: dict) -> str:
    if task in done:
        return "complete"
    state = last.get(task.id)
    if state and state[0] in ("failed", "timeout"):
        return f"FAILED last time: {state[2] or state[0]}"
    return "MISSING (external)" if task.info.node.external else "missing"


def _run_state(run: dict) -> str:
    """A run's status; one that never finished is 'running' only while its process lives."""
    if run["status"] not in (None, "", "running"):
        return run["status"]
    from ..history import hostname
    from ..targets.local import process_alive

    if run.get("host") == hostname() and run.get("pid") and not process_alive(run["pid"]):
        return "died (killed or crashed before finishing)"
    return "running"


def run_log(flowfile: str, limit: int, keep: int | None = None, fmt: str = "text") -> int:
    """Print recent runs, newest first, with their failed tasks (or as JSON); or keep only the newest `keep` runs."""
    from ..history import StateError
    from ..state import open_state

    directory = os.path.dirname(os.path.abspath(flowfile))
    flow_dir = os.path.join(directory, ".flow")
    history = open_state(flow_dir)
    as_json = fmt == "json"
    if not history.exists():
        if as_json:
            from .jsonout import head, write

            write({**head("log"), "runs": []} if keep is None else {**head("log-prune"), "deleted": 0, "kept": keep})
        else:
            print("no runs recorded yet")
        return EXIT_OK
    try:
        if keep is not None:
            removed = history.prune(keep)
            if as_json:
                from .jsonout import head, write

                write({**head("log-prune"), "deleted": removed, "kept": keep})
            else:
                print(f"deleted the history of {removed} run{'s' if removed != 1 else ''}, kept the newest {keep}")
            return EXIT_OK
        if as_json:
            from .jsonout import runs, write

            write(runs(history.recent_runs(limit), history.failed_attempts, _run_state))
            return EXIT_OK
        for run in history.recent_runs(limit):
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["started"]))
            counts = run.get("counts") or {}
            summary = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v)
            print(f"#{run['id']}  {started}  {_run_state(run)}  {run['command']}  {summary}")
            for attempt in history.failed_attempts(run["id"])[:10]:
                print(f"    {attempt['status']}: {attempt['task_id']}: {attempt['error']}")
    except StateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        try:
            history.close()
        except StateError:
            pass  # only prune writes, and it has already said what went wrong
    return EXIT_OK
