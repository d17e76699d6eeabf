"""Read the run history for the page: the `Reader` interface, and its reader over `.flow/history.sqlite`.

Every query the page makes goes through `Reader`: `HistoryReader` here reads the local SQLite
history without ever writing or creating it; `CoordinatorReader` (coordinated.py) reads every
host's runs from the coordinator's PostgreSQL. `open_reader` picks one as `flow build` picks its store.
The page's statuses are: pending, running, done, failed, skipped, upstream_failed, interrupted.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from typing import Optional

from flow.runtime.history import SCHEMA_VERSION

# history status -> the page's status
PAGE_STATUS = {"done": "done", "failed": "failed", "timeout": "failed", "skipped": "skipped",
               "interrupted": "interrupted", "blocked": "upstream_failed"}
STATUSES = ("pending", "running", "done", "failed", "skipped", "upstream_failed", "interrupted")
# The order a task list shows by default: what needs a look first.
ORDER = ("failed", "running", "upstream_failed", "interrupted", "skipped", "pending", "done")
# Durations averaged per rule for an estimate: the same window as the build's own.
RECENT = 50

_RUN_COLUMNS = "id, started, finished, command, targets, status, counts_json, host, pid, plan_json"
_STATUS_SQL = ("CASE status WHEN 'timeout' THEN 'failed' WHEN 'blocked' THEN 'upstream_failed' "
               "ELSE status END")
_ORD_SQL = f"CASE {_STATUS_SQL} " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(ORDER)) + " END"


def _listing(method):
    """Run the method on the listing connection, holding its lock (one connection serves every thread)."""
    import functools

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._listing_lock:
            return method(self, *args, **kwargs)

    return locked


class _RunTable:
    """A run's temporary task table: its name, the last attempts rowid read into it, its counts per rule."""

    __slots__ = ("name", "live", "rowid", "counts")

    def __init__(self, name: str, live: bool):
        self.name = name
        self.live = live  # built while the run was under way
        self.rowid = 0
        self.counts = None


class Reader:
    """The page's questions about runs, attempts and attempts under way; implementations are read-only and
    safe to share between threads. Runs and attempts are dicts shaped as `_run` and `attempts` make them."""

    where = "the local history"  # what the page names when the history cannot be read

    def runs(self, offset: int = 0, limit: int = 50) -> list:
        """Runs, newest first (`state` says whether each still runs; `host` and `pid` which process ran it)."""
        raise NotImplementedError

    def run_count(self) -> int:
        raise NotImplementedError

    def run(self, run_id: int) -> Optional[dict]:
        raise NotImplementedError

    def live_runs(self) -> list:
        """The runs still under way, newest first."""
        raise NotImplementedError

    def run_rule_counts(self, run: dict) -> dict:
        """rule -> {page status: tasks} for a run, pending (or not run, once it ended) from its plan."""
        raise NotImplementedError

    def run_tasks(self, run: dict, query: str = "", status: str = "", rule: str = "", offset: int = 0,
                  limit: int = 50, hide_done: bool = False) -> tuple:
        """(tasks matching, one page of them as dicts): failures first, then by id. Pending tasks are not listed."""
        raise NotImplementedError

    def run_task_ids(self, run: dict) -> set:
        """The ids of the tasks the run has a row for (attempted, under way, or given up on)."""
        raise NotImplementedError

    def rule_means(self, rules: list) -> dict:
        """rule -> mean seconds of its last successes in any run; rules never done are left out."""
        raise NotImplementedError

    def attempts(self, task_id: str, limit: int = 50) -> list:
        """The task's attempts in every run, newest first, as dicts (params decoded, `host` and `pid` of each)."""
        raise NotImplementedError

    def running_now(self) -> dict:
        """task_id -> (run id, attempt, started, host, pid) for every attempt under way in a live run."""
        raise NotImplementedError

    def last_status(self, task_ids: list) -> dict:
        """task_id -> (page status, error) of its latest attempt in any run; skipped attempts are ignored."""
        raise NotImplementedError

    def version(self) -> tuple:
        """Changes whenever a build commits to the history: a cache key for derived views."""
        raise NotImplementedError


def open_reader(flow_dir: str, coordinator: Optional[str] = None) -> Reader:
    """The reader of the project's history: the coordinator's when FLOW_COORDINATOR_URL or the Flowfile's
    `coordinator:` names one (as `flow build` picks its store), else `.flow/history.sqlite`.

    StateError when the setting names an unset variable; nothing is connected to here.
    """
    from flow.runtime.state.coordinator import coordinator_dsn

    dsn = coordinator_dsn(coordinator)
    if dsn is not None:
        from .coordinated import CoordinatorReader

        return CoordinatorReader(dsn)
    return HistoryReader(flow_dir)


class HistoryReader(Reader):
    """The reader of this host's SQLite history (`.flow/history.sqlite`)."""

    def __init__(self, flow_dir: str):
        self.path = os.path.join(flow_dir, "history.sqlite")
        # One connection for every thread (SQLite would serialise them anyway): the temporary
        # tables that hold each run's tasks live in it.
        self._lock = threading.RLock()
        self._connection: Optional[sqlite3.Connection] = None
        # A second one for everything else (runs, one task's attempts): the list of runs never
        # waits while a run of 100,000 tasks is read into its table (when the server starts).
        self._listing_lock = threading.RLock()
        self._listing_connection: Optional[sqlite3.Connection] = None
        self._tables: dict = {}  # run id -> _RunTable

    # ------------------------------------------------------------------ runs

    @_listing
    def runs(self, offset: int = 0, limit: int = 50) -> list:
        """Runs, newest first, as dicts (targets, counts and plan decoded; `state` says if it still runs)."""
        conn = self._listing_conn()
        if conn is None:
            return []
        rows = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ? OFFSET ?", (limit, offset))
        return [run_row(row) for row in rows]

    @_listing
    def run_count(self) -> int:
        conn = self._listing_conn()
        return conn.execute("SELECT count(*) FROM runs").fetchone()[0] if conn is not None else 0

    @_listing
    def run(self, run_id: int) -> Optional[dict]:
        conn = self._listing_conn()
        if conn is None:
            return None
        row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return run_row(row) if row is not None else None

    @_listing
    def live_runs(self) -> list:
        """The runs still under way (their process alive), newest first."""
        conn = self._listing_conn()
        if conn is None:
            return []
        rows = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE status = 'running' ORDER BY id DESC")
        return [run for run in map(run_row, rows) if run["state"] == "running"]

    # ------------------------------------------------------------------ one run's tasks

    def run_rule_counts(self, run: dict) -> dict:
        """rule -> {page status: tasks} for a run, pending (or not run, once it ended) from its plan."""
        with self._lock:
            table = self._run_table(run)
            if table.counts is None:
                counts: dict = {}
                for rule, ord_, n in self._conn().execute(  # through the (rule, ord, task_id) index
                        f"SELECT rule, ord, count(*) FROM {table.name} GROUP BY rule, ord"):
                    counts.setdefault(rule, {})[ORDER[ord_]] = n
                for rule, planned in (run["plan"].get("rules") or {}).items():
                    per_rule = counts.setdefault(rule, {})
                    seen = sum(per_rule.values())
                    if planned > seen:
                        per_rule["pending"] = planned - seen
                table.counts = counts
            return {rule: dict(per_rule) for rule, per_rule in table.counts.items()}

    def run_tasks(self, run: dict, query: str = "", status: str = "", rule: str = "", offset: int = 0,
                  limit: int = 50, hide_done: bool = False) -> tuple:
        """(tasks matching, one page of them as dicts): failures first, then by id. Pending tasks are not listed."""
        with self._lock:
            table = self._run_table(run)
            conn = self._conn()
            where, params = _filters(query, status, rule, hide_done)
            total = conn.execute(f"SELECT count(*) FROM {table.name} {where}", params).fetchone()[0]
            params.update(limit=limit, offset=offset)
            page = conn.execute(f"SELECT task_id, rule, status, attempt, started, duration, error FROM {table.name}"
                                f" {where} ORDER BY ord, task_id LIMIT :limit OFFSET :offset", params).fetchall()
            return total, [task_row(row) for row in page]

    def run_task_ids(self, run: dict) -> set:
        """The ids of the tasks the run has a row for (attempted, under way, or given up on)."""
        with self._lock:
            table = self._run_table(run)
            return {task_id for (task_id,) in self._conn().execute(f"SELECT task_id FROM {table.name}")}

    def _run_table(self, run: dict) -> "_RunTable":
        """The run's tasks, one row each (its latest attempt, or the attempt under way), in a temporary table.

        Built once per run with one scan of its attempts, then brought up to date with the attempts
        written since (by rowid) and the attempts under way, so paging, filters and counts of a run
        of 100,000 tasks are index lookups, also while it runs. Caller holds the lock.
        """
        conn = self._conn()
        live = run["state"] == "running"
        table = self._tables.get(run["id"])
        if table is not None and table.live and not live:
            conn.execute(f"DROP TABLE {table.name}")  # it ended: start afresh, so nothing stays 'running'
            table = None
        if table is None:
            table = _RunTable(f"temp.run_{run['id']}", live)
            conn.execute(f"CREATE TABLE {table.name} (task_id TEXT PRIMARY KEY, rule TEXT, status TEXT,"
                         " attempt INTEGER, started REAL, duration REAL, error TEXT, ord INTEGER)")
            conn.execute(f"CREATE INDEX {table.name}_ord ON run_{run['id']} (ord, task_id)")
            conn.execute(f"CREATE INDEX {table.name}_rule ON run_{run['id']} (rule, ord, task_id)")
            self._tables[run["id"]] = table
        elif not live:
            return table  # a finished run never changes
        with conn:
            cursor = conn.execute(
                f"INSERT INTO {table.name} SELECT task_id, rule, {_STATUS_SQL}, attempt, started, duration, error,"
                f" {_ORD_SQL} FROM attempts WHERE run_id = ? AND rowid > ? ORDER BY rowid"
                " ON CONFLICT (task_id) DO UPDATE SET rule = excluded.rule, status = excluded.status,"
                " attempt = excluded.attempt, started = excluded.started, duration = excluded.duration,"
                " error = excluded.error, ord = excluded.ord WHERE excluded.attempt >= attempt",
                (run["id"], table.rowid))
            if cursor.rowcount:
                table.rowid = conn.execute("SELECT max(rowid) FROM attempts WHERE run_id = ?",
                                           (run["id"],)).fetchone()[0]
                table.counts = None
            # attempts under way; in a run whose process died they were interrupted
            under_way = "running" if live else "interrupted"
            cursor = conn.execute(
                f"INSERT INTO {table.name} SELECT task_id, rule, '{under_way}', attempt, started, NULL, NULL,"
                f" {ORDER.index(under_way)} FROM running WHERE run_id = ? ON CONFLICT (task_id) DO UPDATE SET"
                " status = excluded.status, attempt = excluded.attempt, started = excluded.started,"
                " duration = NULL, error = NULL, ord = excluded.ord WHERE excluded.attempt > attempt",
                (run["id"],))
            if cursor.rowcount:
                table.counts = None
        return table

    @_listing
    def rule_means(self, rules: list) -> dict:
        """rule -> mean seconds of its last successes in any run; rules never done are left out."""
        conn = self._listing_conn()
        means = {}
        for rule in rules:
            mean, n = conn.execute(
                "SELECT avg(duration), count(*) FROM (SELECT duration FROM attempts WHERE rule = ?"
                " AND status = 'done' ORDER BY started DESC LIMIT ?)", (rule, RECENT)).fetchone()
            if n:
                means[rule] = mean
        return means

    # ------------------------------------------------------------------ tasks across runs

    @_listing
    def attempts(self, task_id: str, limit: int = 50) -> list:
        """The task's attempts in every run, newest first, as dicts (params decoded)."""
        conn = self._listing_conn()
        if conn is None:
            return []
        rows = conn.execute("SELECT a.run_id, a.task_id, a.rule, a.params_json, a.output, a.status, a.attempt,"
                            " a.started, a.duration, a.host, a.error, r.pid FROM attempts a"
                            " LEFT JOIN runs r ON r.id = a.run_id WHERE a.task_id = ?"
                            " ORDER BY a.started DESC, a.attempt DESC LIMIT ?", (task_id, limit))
        return [attempt_row(row) for row in rows]

    @_listing
    def running_now(self) -> dict:
        """task_id -> (run id, attempt, started) for every attempt under way in a run whose process lives."""
        live = [run["id"] for run in self.live_runs()]
        if not live:
            return {}
        conn = self._listing_conn()
        marks = ",".join("?" * len(live))
        return {task_id: (run_id, attempt, started, host, pid) for run_id, task_id, attempt, started, host, pid
                in conn.execute(f"SELECT g.run_id, g.task_id, g.attempt, g.started, r.host, r.pid FROM running g"
                                f" JOIN runs r ON r.id = g.run_id WHERE g.run_id IN ({marks})", live)}

    @_listing
    def last_status(self, task_ids: list) -> dict:
        """task_id -> (page status, error) of its latest attempt in any run; skipped attempts are ignored."""
        conn = self._listing_conn()
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

    @_listing
    def version(self) -> tuple:
        """Changes whenever another process commits to the history: a cache key for derived views."""
        conn = self._listing_conn()
        if conn is None:
            return (0,)
        return (conn.execute("PRAGMA data_version").fetchone()[0], os.stat(self.path).st_mtime_ns)

    # ------------------------------------------------------------------ internals

    def _conn(self) -> Optional[sqlite3.Connection]:
        """The read-only connection of the runs' task tables; None while no history exists (nothing is created)."""
        if self._connection is None:
            self._connection = self._open()
        return self._connection

    def _listing_conn(self) -> Optional[sqlite3.Connection]:
        """The read-only connection of the other questions; None while no history exists."""
        if self._listing_connection is None:
            self._listing_connection = self._open()
        return self._listing_connection

    def _open(self) -> Optional[sqlite3.Connection]:
        """A new read-only connection to the history; None while there is none (nothing is created)."""
        if not os.path.exists(self.path):
            return None
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0, check_same_thread=False)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:  # a build is creating the file right now: no history yet
            conn.close()
            return None
        conn.execute("PRAGMA temp_store = MEMORY")  # the runs' task tables: never a temporary file
        if version < SCHEMA_VERSION:
            # Written by an older flow (the next build upgrades it): without writing, give this
            # connection what version 2 adds, as temporary objects that shadow the file's names.
            conn.execute("CREATE TEMP VIEW runs AS SELECT *, NULL AS plan_json FROM main.runs")
            conn.execute("CREATE TEMP TABLE running (run_id INTEGER, task_id TEXT, rule TEXT, attempt INTEGER,"
                         " started REAL)")
        return conn


def _filters(query: str, status: str, rule: str, hide_done: bool) -> tuple:
    clauses, params = [], {}
    if hide_done:
        clauses.append("status != 'done'")
    if query:
        clauses.append("task_id LIKE :query ESCAPE '\\'")
        params["query"] = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if status:
        clauses.append("ord = :ord")  # the same as status = :status, through the index
        params["ord"] = ORDER.index(status)
    if rule:
        clauses.append("rule = :rule")
        params["rule"] = rule
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def task_row(row) -> dict:
    from flow.runtime.db import redact_text

    task_id, rule, status, attempt, started, duration, error = row
    if error:
        error = redact_text(error)
    if status == "upstream_failed":  # never attempted: its row only records when the build gave up on it
        attempt = duration = None
    return {"id": task_id, "rule": rule, "status": status, "attempt": attempt, "started": started,
            "duration": duration, "error": error}


def attempt_row(row) -> dict:
    """An attempt as the page shows it, from (run_id, task_id, rule, params_json, output, status, attempt, started,
    duration, host, error, pid of its run)."""
    attempt = dict(zip(("run_id", "task_id", "rule", "params", "output", "status", "attempt", "started",
                        "duration", "host", "error", "pid"), row))
    attempt["params"] = json.loads(attempt["params"] or "{}")
    attempt["page_status"] = PAGE_STATUS.get(attempt["status"], attempt["status"])
    return attempt


def run_row(row, live: Optional[bool] = None) -> dict:
    """A run as the page shows it, from a row of _RUN_COLUMNS; `live`: whether its process holds its lease
    on the coordinator (None: not known, as in the local history)."""
    run = dict(zip(("id", "started", "finished", "command", "targets", "status", "counts", "host", "pid", "plan"),
                   row))
    run["targets"] = json.loads(run["targets"] or "[]")
    run["counts"] = json.loads(run["counts"] or "{}")
    run["plan"] = json.loads(run["plan"] or "{}")
    run["state"] = run_state(run, live)
    end = run["finished"] if run["finished"] is not None else (time.time() if run["state"] == "running" else None)
    run["duration"] = end - run["started"] if end is not None and run["started"] is not None else None
    return run


def run_state(run: dict, live: Optional[bool] = None) -> str:
    """A run's status; one that never finished is 'running' only while its process lives (or, on a
    coordinator, holds its lease), else 'died'."""
    if run["status"] not in (None, "", "running"):
        return run["status"]
    if live is not None:
        return "running" if live else "died"
    from flow.runtime.history import hostname
    from flow.runtime.targets.local import process_alive

    if run.get("host") == hostname() and run.get("pid") and not process_alive(run["pid"]):
        return "died"
    return "running"
