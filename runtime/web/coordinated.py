"""Read every host's runs for the page from the coordinator's PostgreSQL, read-only (see docs/coordinator.md).

The tables are the ones `PostgresState` writes (flow_runs, flow_attempts, flow_running, flow_owners).
Every query runs in a read-only transaction on a connection of the page's own: a page never
creates a table, a claim or a lease, and a coordinator without tables yet is an empty history.
A coordinator that cannot be reached is a StateError, in one redacted line, which the page shows;
the next request connects again. psycopg2 is imported on first use.
"""

from __future__ import annotations

import collections
import threading
from typing import Optional

from flow.runtime import conninfo
from flow.runtime.history import StateError

from .store import ORDER, RECENT, Reader, attempt_row, run_row, task_row

CONNECT_TIMEOUT = 10
# The task rows of this many finished runs are kept in memory (about 25 MB for a run of 100,000 tasks).
FINISHED_RUNS_KEPT = 4
# A run is live while the owner it registered holds its lease (as `flow log` tells it).
_LIVE = "EXISTS (SELECT 1 FROM flow_owners o WHERE o.owner = r.owner AND o.expires > now())"
# An owner is registered at a run's first claim: until then (owner NULL) the page cannot tell from the lease.
_RUN_SELECT = ("SELECT r.id, r.started, r.finished, r.command, r.targets, r.status, r.counts_json, r.host, r.pid,"
               f" r.plan_json, CASE WHEN r.owner IS NULL THEN NULL ELSE {_LIVE} END FROM flow_runs r")
_STATUS_SQL = ("CASE status WHEN 'timeout' THEN 'failed' WHEN 'blocked' THEN 'upstream_failed' "
               "ELSE status END")
_ORD_SQL = f"CASE {_STATUS_SQL} " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(ORDER)) + " END"


def _run_tasks_sql(under_way: str) -> str:
    """One row per task of a run: its latest ended attempt, or the attempt under way when that is later.

    `under_way` is the status an attempt still under way shows: running, or interrupted once its run died.
    """
    return (
        # byte order ("C"), as the local history's SQLite orders task ids, whatever the database's collation
        'SELECT DISTINCT ON (task_id COLLATE "C") task_id, rule, status, attempt, started, duration, error, ord FROM ('
        f" SELECT task_id, rule, {_STATUS_SQL} AS status, attempt, started, duration, error, {_ORD_SQL} AS ord,"
        " 0 AS latest_first FROM flow_attempts WHERE run_id = %(run)s"
        f" UNION ALL SELECT task_id, rule, '{under_way}', attempt, started, NULL, NULL, {ORDER.index(under_way)},"
        " 1 FROM flow_running WHERE run_id = %(run)s) AS rows"
        # an ended attempt wins over a running row of the same attempt (it is deleted a moment later)
        ' ORDER BY task_id COLLATE "C", attempt DESC, latest_first, started DESC')


class CoordinatorReader(Reader):
    """The page's reader of the coordinator's history: runs and attempts of every host."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self.where = "the coordinator " + (conninfo.redact(dsn) if dsn else "(libpq PG* variables)")
        self._lock = threading.Lock()  # the cache below
        # Two connections, as the local reader has: the list of runs and the task pages never wait
        # behind the read of a large run's tasks.
        self._listing = _Lane()
        self._run_lane = _Lane()
        self._tables = False  # the coordinator's tables exist (once they do, they stay)
        # (run id, finished) -> the task rows of a run that ended (it never changes), ordered as the page lists them:
        # paging and filters of a large finished run are then list work, not a query over its attempts
        self._finished: collections.OrderedDict = collections.OrderedDict()

    # ------------------------------------------------------------------ runs

    def runs(self, offset: int = 0, limit: int = 50) -> list:
        rows = self._query(_RUN_SELECT + " ORDER BY r.id DESC LIMIT %s OFFSET %s", (limit, offset))
        return [run_row(row[:-1], row[-1]) for row in rows]

    def run_count(self) -> int:
        rows = self._query("SELECT count(*) FROM flow_runs")
        return rows[0][0] if rows else 0

    def run(self, run_id: int) -> Optional[dict]:
        rows = self._query(_RUN_SELECT + " WHERE r.id = %s", (run_id,))
        return run_row(rows[0][:-1], rows[0][-1]) if rows else None

    def live_runs(self) -> list:
        rows = self._query(_RUN_SELECT + " WHERE r.status = 'running' ORDER BY r.id DESC")
        return [run for run in (run_row(row[:-1], row[-1]) for row in rows) if run["state"] == "running"]

    # ------------------------------------------------------------------ one run's tasks

    def run_rule_counts(self, run: dict) -> dict:
        counts: dict = {}
        if run["state"] == "running":
            for rule, ord_, n in self._query(
                    f"SELECT rule, ord, count(*) FROM ({_run_tasks_sql('running')}) AS t GROUP BY rule, ord",
                    {"run": run["id"]}, self._run_lane):
                counts.setdefault(rule, {})[ORDER[ord_]] = n
        else:
            counts = {rule: dict(per_rule) for rule, per_rule in self._finished_run(run)[1].items()}
        for rule, planned in (run["plan"].get("rules") or {}).items():
            per_rule = counts.setdefault(rule, {})
            seen = sum(per_rule.values())
            if planned > seen:
                per_rule["pending"] = planned - seen
        return counts

    def run_tasks(self, run: dict, query: str = "", status: str = "", rule: str = "", offset: int = 0,
                  limit: int = 50, hide_done: bool = False) -> tuple:
        if run["state"] != "running":
            rows = self._finished_run(run)[0]
            if query or status or rule or hide_done:
                query = query.lower()  # as the local history's search (SQLite's LIKE) ignores case
                rows = [row for row in rows if (not query or query in row[0].lower())
                        and (not status or row[2] == status) and (not rule or row[1] == rule)
                        and not (hide_done and row[2] == "done")]
            return len(rows), [task_row(row[:7]) for row in rows[offset:offset + limit]]
        clauses, params = [], {"run": run["id"], "limit": limit, "offset": offset}
        if hide_done:
            clauses.append("status <> 'done'")
        if query:  # as the local history's search: a substring, case ignored
            clauses.append("task_id ILIKE %(query)s")
            params["query"] = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        if status:
            clauses.append("ord = %(ord)s")
            params["ord"] = ORDER.index(status)
        if rule:
            clauses.append("rule = %(rule)s")
            params["rule"] = rule
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self._query(
            f"SELECT task_id, rule, status, attempt, started, duration, error, count(*) OVER () FROM"
            f" ({_run_tasks_sql('running')}) AS t {where} ORDER BY ord, task_id COLLATE \"C\""
            " LIMIT %(limit)s OFFSET %(offset)s", params, self._run_lane)
        if not rows and offset:  # past the end: the total still counts
            total = self._query(f"SELECT count(*) FROM ({_run_tasks_sql('running')}) AS t {where}", params,
                                self._run_lane)[0][0]
        else:
            total = rows[0][-1] if rows else 0
        return total, [task_row(row[:-1]) for row in rows]

    def _finished_run(self, run: dict) -> tuple:
        """(task rows, rule -> {status: tasks}) of a run that ended, read once (attempts still 'under way'
        in it were interrupted)."""
        # keyed by its end too: a run taken for dead (its lease ran out) may register again and end later
        key = (run["id"], run["finished"])
        with self._lock:
            found = self._finished.get(key)
            if found is not None:
                self._finished.move_to_end(key)
                return found
        rows = self._query(f"SELECT task_id, rule, status, attempt, started, duration, error FROM"
                           f" ({_run_tasks_sql('interrupted')}) AS t ORDER BY ord, task_id COLLATE \"C\"",
                           {"run": run["id"]}, self._run_lane)
        counts: dict = {}
        for row in rows:
            per_rule = counts.setdefault(row[1], {})
            per_rule[row[2]] = per_rule.get(row[2], 0) + 1
        with self._lock:
            self._finished[key] = (rows, counts)
            while len(self._finished) > FINISHED_RUNS_KEPT:
                self._finished.popitem(last=False)
        return rows, counts

    def run_task_ids(self, run: dict) -> set:
        return {task_id for (task_id,) in self._query(
            "SELECT task_id FROM flow_attempts WHERE run_id = %(run)s"
            " UNION SELECT task_id FROM flow_running WHERE run_id = %(run)s", {"run": run["id"]}, self._run_lane)}

    def rule_means(self, rules: list) -> dict:
        names = list(dict.fromkeys(rules))
        if not names:
            return {}
        return dict(self._query(
            "SELECT rule, avg(duration) FROM (SELECT rule, duration, row_number() OVER"
            " (PARTITION BY rule ORDER BY started DESC) AS n FROM flow_attempts"
            " WHERE rule = ANY(%s) AND status = 'done') AS recent WHERE n <= %s GROUP BY rule", (names, RECENT)))

    # ------------------------------------------------------------------ tasks across runs

    def attempts(self, task_id: str, limit: int = 50) -> list:
        rows = self._query("SELECT a.run_id, a.task_id, a.rule, a.params_json, a.output, a.status, a.attempt,"
                           " a.started, a.duration, a.host, a.error, r.pid FROM flow_attempts a"
                           " LEFT JOIN flow_runs r ON r.id = a.run_id WHERE a.task_id = %s"
                           " ORDER BY a.started DESC, a.attempt DESC LIMIT %s", (task_id, limit))
        return [attempt_row(row) for row in rows]

    def running_now(self) -> dict:
        rows = self._query(
            "SELECT g.task_id, g.run_id, g.attempt, g.started, g.host, r.pid FROM flow_running g"
            f" JOIN flow_runs r ON r.id = g.run_id WHERE r.status = 'running' AND {_LIVE} ORDER BY g.started")
        return {task_id: (run_id, attempt, started, host, pid) for task_id, run_id, attempt, started, host, pid
                in rows}

    def last_status(self, task_ids: list) -> dict:
        from .store import PAGE_STATUS

        ids = list(dict.fromkeys(task_ids))
        if not ids:
            return {}
        rows = self._query("SELECT DISTINCT ON (task_id) task_id, status, error FROM flow_attempts"
                           " WHERE task_id = ANY(%s) AND status <> 'skipped' ORDER BY task_id, started DESC", (ids,))
        return {task_id: (PAGE_STATUS.get(status, status), error) for task_id, status, error in rows}

    def version(self) -> tuple:
        # Every build writes runs and running rows (small tables) as its attempts start and end; their
        # fingerprint changes with them, without scanning the attempts. Views also expire by time.
        rows = self._query("SELECT (SELECT max(id) FROM flow_runs), (SELECT count(*) FROM flow_runs WHERE"
                           " finished IS NOT NULL), (SELECT count(*) FROM flow_running),"
                           " (SELECT sum(started) FROM flow_running)")
        return tuple(rows[0]) if rows else (0,)

    # ------------------------------------------------------------------ internals

    def _query(self, sql: str, params=None, lane: Optional["_Lane"] = None) -> list:
        """The rows of one query in a read-only transaction; [] while the coordinator has no tables yet.

        StateError, in one redacted line, when the coordinator cannot be reached or refuses.
        """
        import psycopg2

        lane = lane or self._listing
        with lane.lock:
            while True:
                reused = lane.conn is not None and not lane.conn.closed
                try:
                    conn = lane.connect(self)
                    try:
                        with conn.cursor() as cursor:
                            if not self._tables:
                                cursor.execute("SELECT to_regclass('flow_owners') IS NOT NULL"
                                               " AND to_regclass('flow_resources') IS NOT NULL")
                                if not cursor.fetchone()[0]:  # no build has used it yet: nothing to show
                                    return []
                                self._tables = True
                            cursor.execute(sql, params)
                            return cursor.fetchall()
                    finally:
                        if not conn.closed:
                            conn.rollback()  # read-only: nothing to commit; ends the snapshot
                except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                    lane.drop()  # the next request connects again: the coordinator may be back
                    if reused:  # an idle connection the database dropped (a restart): once more, on a new one
                        continue
                    raise StateError(f"{self.where} cannot be reached: {_one_line(exc, self.dsn)}") from None
                except psycopg2.Error as exc:
                    raise StateError(f"{self.where} refused: {_one_line(exc, self.dsn)}") from None


class _Lane:
    """One read-only connection to the coordinator and the lock that gives it to one query at a time."""

    def __init__(self):
        self.lock = threading.Lock()
        self.conn = None

    def connect(self, reader: CoordinatorReader):
        """The open connection, or a new one; caller holds the lock."""
        import psycopg2

        if self.conn is not None and not self.conn.closed:
            return self.conn
        problem = conninfo.misread(reader.dsn) if reader.dsn else None
        if problem:
            raise StateError(f"cannot connect to {reader.where}: {problem}")
        conn = psycopg2.connect(reader.dsn or "", connect_timeout=CONNECT_TIMEOUT, application_name="flow serve")
        conn.set_session(readonly=True)  # every transaction of the page is read-only: it never writes there
        self.conn = conn
        return conn

    def drop(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None and not conn.closed:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is gone either way
                pass


def _one_line(exc, dsn: str) -> str:
    from flow.runtime.db import one_line

    return one_line(str(exc), dsn)

