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
    # 2. failures of the last attempts, in one query; with a coordinator, which host made what
    last, hosts = {}, {}
    try:
        state = project.state(reading=True)
        if state.shared or os.path.isdir(project.flow_dir):
            last = state.last_status([t.id for t in seen if t not in done])
            if state.shared:
                hosts = state.built_by([t.id for t in seen if t in done])
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
                     f"[{_status_mark(task, done, last, hosts)}]  {describe(task)}")
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


def _status_mark(task, done: set, last: dict, hosts: dict) -> str:
    if task in done:
        host = hosts.get(task.id)
        return f"complete, ran on {host}" if host else "complete"
    state = last.get(task.id)
    if state and state[0] in ("failed", "timeout"):
        return f"FAILED last time: {state[2] or state[0]}"
    return "MISSING (external)" if task.info.node.external else "missing"


def _run_state(run: dict) -> str:
    """A run's status; one that never finished is 'running' only while its process lives (holds its lease)."""
    if run["status"] not in (None, "", "running"):
        return run["status"]
    if "live" in run:  # from a coordinator: the process renews its lease while it runs
        return "running" if run["live"] else "died (its lease on the coordinator ran out)"
    from ..history import hostname
    from ..targets.local import process_alive

    if run.get("host") == hostname() and run.get("pid") and not process_alive(run["pid"]):
        return "died (killed or crashed before finishing)"
    return "running"


def _coordinator_setting(flowfile: str):
    """The Flowfile's `coordinator:`, when FLOW_COORDINATOR_URL does not say it already; None if it cannot be read.

    `flow log` works without a Flowfile (or with a broken one): it then reads this host's history.
    """
    from flow.compiler.errors import FlowError

    from ..state.coordinator import COORDINATOR_ENV

    if os.environ.get(COORDINATOR_ENV) or not os.path.exists(flowfile):
        return None
    from flow.compiler.loader import load

    try:
        return load(flowfile).coordinator
    except FlowError:
        return None


def run_log(flowfile: str, limit: int, keep: int | None = None, fmt: str = "text") -> int:
    """Print recent runs, newest first, with their failed tasks (or as JSON); or keep only the newest `keep` runs."""
    from ..history import StateError
    from ..state import open_state

    directory = os.path.dirname(os.path.abspath(flowfile))
    flow_dir = os.path.join(directory, ".flow")
    as_json = fmt == "json"
    try:
        history = open_state(flow_dir, _coordinator_setting(flowfile), reading=True)
        if not history.exists():
            history.close()
            if as_json:
                from .jsonout import head, write

                write({**head("log"), "runs": []} if keep is None else {**head("log-prune"), "deleted": 0,
                                                                        "kept": keep})
            else:
                print("no runs recorded yet")
            return EXIT_OK
    except StateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
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
        running: dict = {}  # run id -> its attempts under way (a coordinator knows every host's)
        for attempt in history.running_now():
            running.setdefault(attempt["run_id"], []).append(attempt)
        for run in history.recent_runs(limit):
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["started"]))
            counts = run.get("counts") or {}
            summary = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v)
            where = f"  on {run['host']} (pid {run['pid']})" if history.shared else ""
            print(f"#{run['id']}  {started}  {_run_state(run)}  {run['command']}{where}  {summary}")
            for attempt in running.get(run["id"], [])[:10]:
                print(f"    running on {attempt['host']}: {attempt['task_id']}")
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
