"""Read the run history for the page: a read-only reader over `.flow/history.sqlite` that never writes or creates it.

Every query the page makes lives here, so moving the history behind another store is one class.
The page's statuses are: pending, running, done, failed, skipped, upstream_failed, interrupted.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from typing import Optional

from flow.runtime.history import SCHEMA_VERSION, History

# history status -> the page's status
PAGE_STATUS = {"done": "done", "failed": "failed", "timeout": "failed", "skipped": "skipped",
               "interrupted": "interrupted", "blocked": "upstream_failed"}
STATUSES = ("pending", "running", "done", "failed", "skipped", "upstream_failed", "interrupted")
# The order a task list shows by default: what needs a look first.
ORDER = ("failed", "running", "upstream_failed", "interrupted", "skipped", "pending", "done")
# Durations averaged per rule for an estimate: the same window as the build's own.
RECENT = 50

_RUN_COLUMNS = "id, started, finished, command, targets, status, counts_json, host, pid, plan_json"
# The latest attempt of each task of a run, tasks under way left out (the running table shows them).
_LATEST = """
SELECT task_id, rule, status, max(attempt) AS attempt, started, duration, error FROM attempts
WHERE run_id = :run AND task_id NOT IN (SELECT task_id FROM running WHERE run_id = :run)
GROUP BY task_id
"""
_STATUS_SQL = ("CASE status WHEN 'timeout' THEN 'failed' WHEN 'blocked' THEN 'upstream_failed' "
               "ELSE status END")
_ORDER_SQL = "CASE page_status " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(ORDER)) + " END"


class HistoryReader:
    """Answers the page's questions about runs, attempts and attempts under way; safe to share between threads."""

    def __init__(self, flow_dir: str):
        self.path = os.path.join(flow_dir, "history.sqlite")
        self._local = threading.local()
        self._finished_counts: dict = {}  # run id -> counts of a finished run, which never change

    # ------------------------------------------------------------------ runs

    def runs(self, offset: int = 0, limit: int = 50) -> list:
        """Runs, newest first, as dicts (targets, counts and plan decoded; `state` says if it still runs)."""
        conn = self._conn()
        if conn is None:
            return []
        rows = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ? OFFSET ?", (limit, offset))
        return [_run(row) for row in rows]

    def run_count(self) -> int:
        conn = self._conn()
        return conn.execute("SELECT count(*) FROM runs").fetchone()[0] if conn is not None else 0

    def run(self, run_id: int) -> Optional[dict]:
        conn = self._conn()
        if conn is None:
            return None
        row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _run(row) if row is not None else None

    def live_runs(self) -> list:
        """The runs still under way (their process alive), newest first."""
        conn = self._conn()
        if conn is None:
            return []
        rows = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE status = 'running' ORDER BY id DESC")
        return [run for run in map(_run, rows) if run["state"] == "running"]

    # ------------------------------------------------------------------ one run's tasks

    def run_rule_counts(self, run: dict) -> dict:
        """rule -> {page status: tasks} for a run, pending (or not run, once it ended) from its plan."""
        key = run["id"]
        if run["state"] != "running" and key in self._finished_counts:
            return self._finished_counts[key]
        conn = self._conn()
        counts: dict = {}
        for rule, status, n in conn.execute(
                f"SELECT rule, {_STATUS_SQL}, count(*) FROM ({_LATEST}) GROUP BY rule, status", {"run": key}):
            per_rule = counts.setdefault(rule, {})
            per_rule[status] = per_rule.get(status, 0) + n
        # attempts under way; in a run whose process died they were interrupted
        under_way = "running" if run["state"] == "running" else "interrupted"
        for rule, n in conn.execute("SELECT rule, count(*) FROM running WHERE run_id = ? GROUP BY rule", (key,)):
            per_rule = counts.setdefault(rule, {})
            per_rule[under_way] = per_rule.get(under_way, 0) + n
        for rule, planned in (run["plan"].get("rules") or {}).items():
            per_rule = counts.setdefault(rule, {})
            # a skipped task may run again in the same build (another process held it): count it once
            seen = sum(n for status, n in per_rule.items() if status != "pending")
            if planned > seen:
                per_rule["pending"] = planned - seen
        if run["state"] != "running":
            self._finished_counts[key] = counts
        return counts

    def run_tasks(self, run: dict, query: str = "", status: str = "", rule: str = "", offset: int = 0,
                  limit: int = 50, hide_done: bool = False) -> tuple:
        """(tasks matching, one page of them as dicts): failures first, then by id. Pending tasks are not listed."""
        conn = self._conn()
        under_way = "running" if run["state"] == "running" else "interrupted"
        union = (f"SELECT task_id, rule, {_STATUS_SQL} AS page_status, attempt, started, duration, error"
                 f" FROM ({_LATEST}) UNION ALL SELECT task_id, rule, '{under_way}' AS page_status, attempt, started,"
                 " NULL AS duration, NULL AS error FROM running WHERE run_id = :run")
        where, params = _filters(query, status, rule, hide_done)
        params["run"] = run["id"]
        total = conn.execute(f"SELECT count(*) FROM ({union}) {where}", params).fetchone()[0]
        params.update(limit=limit, offset=offset)
        page = conn.execute(f"SELECT * FROM ({union}) {where} ORDER BY {_ORDER_SQL}, task_id"
                            " LIMIT :limit OFFSET :offset", params).fetchall()
        return total, [_task_row(row) for row in page]

    def rule_means(self, rules: list) -> dict:
        """rule -> mean seconds of its last successes in any run; rules never done are left out."""
        conn = self._conn()
        means = {}
        for rule in rules:
            mean, n = conn.execute(
                "SELECT avg(duration), count(*) FROM (SELECT duration FROM attempts WHERE rule = ?"
                " AND status = 'done' ORDER BY started DESC LIMIT ?)", (rule, RECENT)).fetchone()
            if n:
                means[rule] = mean
        return means

    # ------------------------------------------------------------------ tasks across runs

    def attempts(self, task_id: str, limit: int = 50) -> list:
        """The task's attempts in every run, newest first, as dicts (params decoded)."""
        conn = self._conn()
        if conn is None:
            return []
        rows = conn.execute("SELECT run_id, task_id, rule, params_json, output, status, attempt, started, duration,"
                            " host, error FROM attempts WHERE task_id = ? ORDER BY started DESC, attempt DESC"
                            " LIMIT ?", (task_id, limit))
        out = []
        for row in rows:
            attempt = dict(zip(("run_id", "task_id", "rule", "params", "output", "status", "attempt", "started",
                                "duration", "host", "error"), row))
            attempt["params"] = json.loads(attempt["params"] or "{}")
            attempt["page_status"] = PAGE_STATUS.get(attempt["status"], attempt["status"])
            out.append(attempt)
        return out

    def running_now(self) -> dict:
        """task_id -> (run id, attempt, started) for every attempt under way in a run whose process lives."""
        live = [run["id"] for run in self.live_runs()]
        if not live:
            return {}
        conn = self._conn()
        marks = ",".join("?" * len(live))
        return {task_id: (run_id, attempt, started) for run_id, task_id, attempt, started in conn.execute(
            f"SELECT run_id, task_id, attempt, started FROM running WHERE run_id IN ({marks})", live)}

    def last_status(self, task_ids: list) -> dict:
        """task_id -> (page status, error) of its latest attempt in any run; skipped attempts are ignored."""
        conn = self._conn()
        if conn is None:
            return {}
        result = {}
        ids = list(dict.fromkeys(task_ids))
        for i in range(0, len(ids), 900):  # below SQLite's old limit of 999 bound parameters
            chunk = ids[i:i + 900]
            marks = ",".join("?" * len(chunk))
            for task_id, status, _, error in conn.execute(
                    f"SELECT task_id, status, max(started), error FROM attempts"
                    f" WHERE task_id IN ({marks}) AND status != 'skipped' GROUP BY task_id", chunk):
                result[task_id] = (PAGE_STATUS.get(status, status), error)
        return result

    def version(self) -> tuple:
        """Changes whenever another process commits to the history: a cache key for derived views."""
        conn = self._conn()
        if conn is None:
            return (0,)
        return (conn.execute("PRAGMA data_version").fetchone()[0], os.stat(self.path).st_mtime_ns)

    # ------------------------------------------------------------------ internals

    def _conn(self) -> Optional[sqlite3.Connection]:
        """This thread's read-only connection; None while no history exists (nothing is created)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if not os.path.exists(self.path):
                return None
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0, check_same_thread=False)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:  # a build is creating the file right now: no history yet
                conn.close()
                return None
            if version < SCHEMA_VERSION:
                # written by an older flow: the history upgrades its schema (adds a column and a
                # table), as the next build would anyway
                conn.close()
                with History(os.path.dirname(self.path)) as history:
                    history.recent_runs(1)  # any read opens the file, which upgrades it
                return self._conn()
            self._local.conn = conn
        return conn


def _filters(query: str, status: str, rule: str, hide_done: bool) -> tuple:
    clauses, params = [], {}
    if hide_done:
        clauses.append("page_status != 'done'")
    if query:
        clauses.append("task_id LIKE :query ESCAPE '\\'")
        params["query"] = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if status:
        clauses.append("page_status = :status")
        params["status"] = status
    if rule:
        clauses.append("rule = :rule")
        params["rule"] = rule
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _task_row(row) -> dict:
    from flow.runtime.db import redact_text

    task_id, rule, status, attempt, started, duration, error = row
    if error:
        error = redact_text(error)
    if status == "upstream_failed":  # never attempted: its row only records when the build gave up on it
        attempt = duration = None
    return {"id": task_id, "rule": rule, "status": status, "attempt": attempt, "started": started,
            "duration": duration, "error": error}


def _run(row) -> dict:
    run = dict(zip(("id", "started", "finished", "command", "targets", "status", "counts", "host", "pid", "plan"),
                   row))
    run["targets"] = json.loads(run["targets"] or "[]")
    run["counts"] = json.loads(run["counts"] or "{}")
    run["plan"] = json.loads(run["plan"] or "{}")
    run["state"] = run_state(run)
    end = run["finished"] if run["finished"] is not None else (time.time() if run["state"] == "running" else None)
    run["duration"] = end - run["started"] if end is not None and run["started"] is not None else None
    return run


def run_state(run: dict) -> str:
    """A run's status; one that never finished is 'running' only while its process lives, else 'died'."""
    if run["status"] not in (None, "", "running"):
        return run["status"]
    from flow.runtime.history import hostname
    from flow.runtime.targets import process_alive

    if run.get("host") == hostname() and run.get("pid") and not process_alive(run["pid"]):
        return "died"
    return "running"
