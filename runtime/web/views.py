"""What each page and JSON endpoint shows, as plain data: runs, a run, a target, a task, the rule graph.

The HTML pages render these dicts and the JSON endpoints return them, so both always agree.
"""

from __future__ import annotations

import time
from typing import Optional

from .project import Project
from .store import STATUSES

PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Never draw more than this many boxes: past it the rule graph becomes a table.
MAX_DRAWN = 300
# A task's neighbourhood shows this many requirements and dependents, then "N more".
NEIGHBOURS_SHOWN = 24
# How long a task's page waits for its dependents before it is shown without them (it then
# refreshes itself until they are known); the JSON endpoint waits project.DEPENDENTS_WAIT.
PAGE_DEPENDENTS_WAIT = 0.3


class NotFound(Exception):
    """The run, target or task asked for does not exist; the message says which."""


def runs(project: Project, offset: int = 0, limit: int = PAGE_SIZE) -> dict:
    reader = project.reader
    rows = reader.runs(offset, limit)
    for run in rows:
        if run["state"] == "running":
            rules = reader.run_rule_counts(run)
            run["progress"] = _progress(run, _sum(rules), rules, reader)
    return {"runs": rows, "total": reader.run_count(), "offset": offset, "limit": limit}


def run(project: Project, run_id: int, query: str = "", status: str = "", rule: str = "", hide_done: bool = False,
        offset: int = 0, limit: int = PAGE_SIZE, with_tasks: bool = True) -> dict:
    reader = project.reader
    row = reader.run(run_id)
    if row is None:
        raise NotFound(f"no run #{run_id} in the history")
    rules = reader.run_rule_counts(row)
    counts = _sum(rules)
    view = {"run": row, "counts": counts, "rules": rules, "progress": _progress(row, counts, rules, reader),
            "live": row["state"] == "running"}
    if with_tasks:
        if status == "pending":  # planned, not started: from its targets' graph, as the build planned it
            total, page = project.run_pending(row, query, rule, offset, limit)
        else:
            total, page = reader.run_tasks(row, query, status, rule, offset, limit, hide_done)
        view["tasks"] = {"total": total, "offset": offset, "limit": limit, "rows": page,
                         "query": query, "status": status, "rule": rule, "hide_done": hide_done}
    return view


def target(project: Project, name: str, query: str = "", status: str = "", rule: str = "", hide_done: bool = False,
           offset: int = 0, limit: int = PAGE_SIZE, with_tasks: bool = True) -> dict:
    state = project.target_state(name)
    rules = state.rule_counts()
    counts = _sum(rules)
    finished = sum(n for s, n in counts.items() if s not in ("pending", "running"))
    live = project.reader.live_runs()
    view = {"target": {"name": name, "roots": [t.id for t in state.roots]}, "counts": counts, "rules": rules,
            "progress": {"finished": finished, "total": sum(counts.values()), "eta": None},
            "live": bool(live), "live_runs": [r["id"] for r in live]}
    if with_tasks:
        total, page = state.tasks(query, status, rule, hide_done, offset, limit)
        view["tasks"] = {"total": total, "offset": offset, "limit": limit, "rows": page,
                         "query": query, "status": status, "rule": rule, "hide_done": hide_done}
    return view


def task(project: Project, task_id: str, dependents_wait: Optional[float] = None) -> dict:
    from flow.compiler.types import format_value
    from flow.runtime import targets
    from flow.runtime.db import redact_text

    attempts = project.reader.attempts(task_id)
    found = project.task(task_id)
    if found is None and not attempts:
        raise NotFound(f"no task '{task_id}' in the Flowfile or the history")
    for attempt in attempts:
        if attempt["error"]:
            attempt["error"] = redact_text(attempt["error"])
    latest = attempts[0] if attempts else None
    if found is not None:
        rule = found.name
        params = {name: format_value(value) for name, value in found.params.items()}
        output = targets.describe(found)
        exists = project.output_exists(found)
        requirements, dependents, computing = project.neighbourhood(
            found, *(() if dependents_wait is None else (dependents_wait,)))
    else:  # known only from the history: the Flowfile no longer makes it
        rule, params, output, exists = latest["rule"], latest["params"], latest["output"], None
        requirements, dependents, computing = [], [], False
    under_way = project.reader.running_now()
    running = under_way.get(task_id)
    neighbours = requirements + (dependents or [])
    last = project.reader.last_status(neighbours)
    failure = next((a for a in attempts if a["page_status"] == "failed"), None)
    return {
        "id": task_id, "rule": rule, "params": params, "output": output, "exists": exists,
        "in_flowfile": found is not None,
        "status": "running" if running else (latest["page_status"] if latest else ("done" if exists else "pending")),
        "running": {"run_id": running[0], "attempt": running[1], "started": running[2], "host": running[3],
                    "pid": running[4]} if running else None,
        "attempts": attempts,
        "error": failure["error"] if failure else None,
        "log_tail": project.log_tail(rule, task_id),
        "requires": requirements,
        "required_by": dependents,
        "required_by_computing": computing,  # required_by is None until they are known
        # the latest attempt's status of each neighbour (running while under way); never attempted: left out
        "neighbour_status": {n: "running" if n in under_way else last[n][0] for n in neighbours
                             if n in under_way or n in last},
    }


def graph(project: Project, rules: Optional[dict] = None, hide_done: bool = False) -> dict:
    """The rule graph: every rule of the Flowfile, or only those in `rules` (rule -> counts) with their counts."""
    names, edges, docs = project.rule_graph()
    if rules is not None:
        names = [n for n in names if n in rules] + sorted(n for n in rules if n not in names)
        if hide_done:
            names = [n for n in names if set(rules[n]) - {"done"}]
    shown = set(names)
    return {"nodes": [{"id": n, "doc": docs.get(n, ""), "counts": (rules or {}).get(n, {})} for n in names],
            "edges": [[a, b] for a, b in edges if a in shown and b in shown],
            "drawn": len(names) <= MAX_DRAWN}


def _sum(rules: dict) -> dict:
    counts = dict.fromkeys(STATUSES, 0)
    for per_rule in rules.values():
        for status, n in per_rule.items():
            counts[status] = counts.get(status, 0) + n
    return counts


def _progress(run: dict, counts: dict, rules: dict, reader) -> dict:
    """Tasks finished of the run's total, and while it runs the estimated seconds left.

    The estimate is each rule's mean duration (its last successes in the history) times its tasks
    still to finish, over the jobs; rules never done yet take the run's own pace.
    """
    total = run["plan"].get("tasks") or sum(counts.values())
    left = counts.get("pending", 0) + counts.get("running", 0)
    finished = max(total - left, 0)
    eta = None
    if run["state"] == "running" and left:
        remaining = {rule: c.get("pending", 0) + c.get("running", 0) for rule, c in rules.items()}
        means = reader.rule_means([rule for rule, n in remaining.items() if n])
        work = sum(n * means[rule] for rule, n in remaining.items() if rule in means)
        unknown = sum(n for rule, n in remaining.items() if rule not in means)
        elapsed = time.time() - run["started"]
        if unknown and finished:
            work += elapsed / finished * unknown * max(run["plan"].get("jobs") or 1, 1)
        if not unknown or finished:
            eta = work / min(max(run["plan"].get("jobs") or 1, 1), left)
    return {"finished": finished, "total": total, "eta": eta}
