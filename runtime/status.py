"""`flow status` and `flow log`: the dependency tree with its marks, and the recent runs from history."""

from __future__ import annotations

import os
import sys
import time

from . import targets
from .session import EXIT_FAILED, EXIT_OK, Session, lenient_complete, render_error


def run_status(flowfile: str, names: list, today: str | None = None) -> int:
    """Print the dependency tree of the targets with complete / missing / failed-last-time marks."""
    from flow.compiler.errors import FlowError

    from .history import History, StateError

    try:
        session = Session(flowfile, today)
        roots = session.roots(names)
    except FlowError as exc:
        print(render_error(exc), file=sys.stderr)
        return exc.exit_code
    complete = lenient_complete(session)
    requirements = session.factory.requirements
    # 1. what the tree shows, level by level with one bulk check each (complete tasks are leaves)
    done: set = set()
    seen = set(roots)
    level = list(roots)
    while level and len(seen) < STATUS_MAX_TASKS:
        done |= complete(level)
        next_level = []
        for task in level:
            if task not in done and not task.info.node.external:
                for child in requirements(task):
                    if child not in seen:
                        seen.add(child)
                        next_level.append(child)
        level = next_level
    session.close()  # nothing below needs the database: an embedded server stops now
    # 2. failures of the last attempts, in one query
    last = {}
    if os.path.isdir(session.flow_dir):
        history = History(session.flow_dir)
        try:
            last = history.last_status([t.id for t in seen if t not in done])
        except StateError as exc:  # the tree is still worth showing without the failure marks
            print(f"warning: {exc}", file=sys.stderr)
        history.close()
    # 3. print depth first, each task's requirements once
    lines: list = []
    expanded: set = set()
    stack = [(root, "", True, 0) for root in reversed(roots)]
    while stack and len(lines) < STATUS_MAX_LINES:
        task, prefix, is_last, depth = stack.pop()
        lines.append(f"{prefix}{'' if depth == 0 else ('└── ' if is_last else '├── ')}{task.id}  "
                     f"[{_status_mark(task, done, last)}]  {targets.describe(task)}")
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
    if session.database_error:
        print(f"note: cannot check table outputs: {session.database_error}")
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
    from .history import hostname

    if run.get("host") == hostname() and run.get("pid") and not targets.process_alive(run["pid"]):
        return "died (killed or crashed before finishing)"
    return "running"


def run_log(flowfile: str, limit: int, keep: int | None = None) -> int:
    """Print recent runs, newest first, with their failed tasks; or keep only the newest `keep` runs."""
    from .history import History, StateError

    directory = os.path.dirname(os.path.abspath(flowfile))
    flow_dir = os.path.join(directory, ".flow")
    if not os.path.exists(os.path.join(flow_dir, "history.sqlite")):
        print("no runs recorded yet")
        return EXIT_OK
    history = History(flow_dir)
    try:
        if keep is not None:
            removed = history.prune(keep)
            print(f"deleted the history of {removed} run{'s' if removed != 1 else ''}, kept the newest {keep}")
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
