"""Record every run and task attempt in `.flow/history.sqlite`, in batches, and answer questions about them.

The file is an SQLite database in WAL mode (`synchronous=NORMAL`): a commit appends to the
write-ahead log without a disk sync, so thousands of rows cost one cheap transaction. Two flow
processes may write at once; each waits up to 5 s for the other's transaction (`busy_timeout`).

Schema (version 2, in `PRAGMA user_version`)::

    runs(id        INTEGER PRIMARY KEY,   -- the run id returned by start_run
         started   REAL,                  -- Unix time, seconds
         finished  REAL,                  -- NULL while running (or when the process died)
         command   TEXT,                  -- "flow build -j 8 toplists_2012"
         targets   TEXT,                  -- JSON list of the targets as the user wrote them
         status    TEXT,                  -- "running", then what finish_run was given
         counts_json TEXT,                -- JSON object: {"ran": 31, "failed": 1, ...}
         host      TEXT,
         pid       INTEGER,
         plan_json TEXT)                  -- JSON: {"tasks": 40, "complete": 3, "jobs": 2, "rules": {"top": 12}}

    attempts(run_id   INTEGER,            -- runs.id
             task_id  TEXT,               -- "top_artists(2012-06)"
             rule     TEXT,               -- "top_artists"
             params_json TEXT,            -- JSON object of every parameter's text form
             output   TEXT,               -- path, or "schema.table"
             status   TEXT,               -- done | failed | timeout | skipped | interrupted
             attempt  INTEGER,            -- 1 for the first try, 2 for the first retry, ...
             started  REAL,               -- Unix time, seconds
             duration REAL,               -- seconds
             host     TEXT,
             error    TEXT)               -- NULL, or the error's last 8,000 characters

    running(run_id, task_id, rule, attempt, started)   -- attempts under way; a row goes when its attempt ends

    indexes: attempts(task_id, started), attempts(rule, started), attempts(run_id)

`skipped` means another flow process was running the task, so nothing ran here; `blocked` rows
(attempt 0) are written when a build ends, one per task that did not run because a requirement
failed or is missing. A start and its end that fall into the same batch cancel out, so quick
tasks never touch the `running` table. Version 1 files gain plan_json and `running` on first use.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from typing import Callable, Optional

from flow.compiler.types import format_value

SCHEMA_VERSION = 2
FILE_NAME = "history.sqlite"
STATUSES = ("done", "failed", "timeout", "skipped", "interrupted", "blocked")

# A batch is written when its oldest row is this old or it holds this many rows.
MAX_AGE = 1.0
MAX_ROWS = 5_000
# SQLite's default limit on bound parameters was 999 before 3.32; stay below it.
CHUNK = 900
# Durations averaged per rule for the ETA: recent runs say more about the machine than old ones.
RECENT = 50
MAX_ERROR = 8_000
# How long a writer waits for another process's transaction before giving up.
BUSY_SECONDS = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, started REAL, finished REAL, command TEXT, targets TEXT,
    status TEXT, counts_json TEXT, host TEXT, pid INTEGER, plan_json TEXT);
CREATE TABLE IF NOT EXISTS attempts (
    run_id INTEGER, task_id TEXT, rule TEXT, params_json TEXT, output TEXT, status TEXT,
    attempt INTEGER, started REAL, duration REAL, host TEXT, error TEXT);
CREATE INDEX IF NOT EXISTS attempts_task ON attempts (task_id, started);
CREATE INDEX IF NOT EXISTS attempts_rule ON attempts (rule, started);
CREATE INDEX IF NOT EXISTS attempts_run ON attempts (run_id);
CREATE TABLE IF NOT EXISTS running (
    run_id INTEGER, task_id TEXT, rule TEXT, attempt INTEGER, started REAL,
    PRIMARY KEY (run_id, task_id, attempt)) WITHOUT ROWID;
"""

_INSERT = "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_RUNNING = "INSERT OR REPLACE INTO running VALUES (?, ?, ?, ?, ?)"
_DELETE_RUNNING = "DELETE FROM running WHERE run_id = ? AND task_id = ? AND attempt = ?"
_RUN_COLUMNS = ("id", "started", "finished", "command", "targets", "status", "counts", "host", "pid")
_ATTEMPT_COLUMNS = ("run_id", "task_id", "rule", "params_json", "output", "status", "attempt", "started",
                    "duration", "host", "error")


class StateError(Exception):
    """The history cannot be written or read; the message is one line naming the file and why."""


class History:
    """The run history of one project: buffered writes, a few reads; safe to share between threads.

    Nothing touches the disk until the first write (or a read of an existing file), so
    `flow --help` and dry runs never create `.flow/`.
    """

    def __init__(self, flow_dir: str, max_rows: int = MAX_ROWS, max_age: float = MAX_AGE,
                 clock: Callable[[], float] = time.monotonic):
        self.flow_dir = flow_dir
        self.path = os.path.join(flow_dir, FILE_NAME)
        self.max_rows = max_rows
        self.max_age = max_age
        self._clock = clock
        self._conn: Optional[sqlite3.Connection] = None
        self._read_conn: Optional[sqlite3.Connection] = None  # read-only, for a process that only reads
        self._pid = 0
        self._host = hostname()
        self._rows: list = []
        self._starts: dict = {}  # (run_id, task_id, attempt) -> running row not written yet
        self._ended: list = []  # keys of running rows on disk whose attempt has ended
        self._on_disk: set = set()  # keys of running rows written and not yet ended
        self._first_at = 0.0  # clock() when the oldest buffered row arrived
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ writing

    def start_run(self, command: str, targets: list, plan: Optional[dict] = None) -> int:
        """Insert a run (status "running") at once and return its id; StateError if the history cannot be written.

        `plan` says what the build intends (tasks to run, already complete, jobs, tasks per rule),
        so a reader can show progress and an estimate while it runs.
        """
        with self._lock:
            try:
                conn = self._db()
                with _transaction(conn):
                    cursor = conn.execute(
                        "INSERT INTO runs (started, command, targets, status, host, pid, plan_json)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (time.time(), command, json.dumps(list(targets)), "running", self._host, os.getpid(),
                         json.dumps(plan, sort_keys=True) if plan is not None else None))
            except (sqlite3.Error, OSError) as exc:
                raise StateError(f"cannot write {self._shown_path()}: {_reason(exc)}") from None
            return cursor.lastrowid

    def record_start(self, run_id: int, task, attempt: int, started: float) -> None:
        """Buffer the start of an attempt; `record` of its end removes it again (from the buffer if still there)."""
        now = self._clock()
        with self._lock:
            if not self._rows and not self._starts and not self._ended:
                self._first_at = now
            self._starts[(run_id, task.id, attempt)] = (run_id, task.id, task.name, attempt, started)
            if now - self._first_at >= self.max_age:
                self._flush_soon(now)

    def record_starts(self, run_id: int, starts: list) -> None:
        """`record_start` of several attempts, (task, attempt, started) each, under one lock."""
        now = self._clock()
        with self._lock:
            if not self._rows and not self._starts and not self._ended:
                self._first_at = now
            pending = self._starts
            for task, attempt, started in starts:
                task_id = task.id
                pending[(run_id, task_id, attempt)] = (run_id, task_id, task.info.name, attempt, started)
            if now - self._first_at >= self.max_age:
                self._flush_soon(now)

    def record_many(self, run_id: int, attempts: list) -> None:
        """`record` of several ended attempts, (task, status, attempt, started, duration, error) each, in one pass."""
        host = self._host
        rows = []
        keys = []
        for task, status, attempt, started, duration, error in attempts:
            if error is not None and len(error) > MAX_ERROR:
                error = "..." + error[-MAX_ERROR:]
            task_id = task.id
            rows.append((run_id, task_id, task.info.name, params_json(task), task.output, status, attempt, started,
                         duration, host, error))
            keys.append((run_id, task_id, attempt))
        now = self._clock()
        with self._lock:
            if not self._rows and not self._starts and not self._ended:
                self._first_at = now
            self._rows.extend(rows)
            pop = self._starts.pop
            on_disk = self._on_disk
            for key in keys:
                if pop(key, None) is None and key in on_disk:
                    on_disk.discard(key)
                    self._ended.append(key)
            if len(self._rows) >= self.max_rows or now - self._first_at >= self.max_age:
                self._flush_soon(now)

    def record_blocked(self, run_id: int, blocked: dict) -> None:
        """Buffer one `blocked` row per task that did not run: task -> the failed or missing task it needed."""
        started = time.time()
        with self._lock:
            if not self._rows and not self._starts and not self._ended:
                self._first_at = self._clock()
            for task, cause in blocked.items():
                params = json.dumps({name: format_value(v)
                                     for name, v in zip(task.info.param_names, task.values, strict=True)})
                self._rows.append((run_id, task.id, task.name, params, task.output, "blocked", 0, started, 0.0,
                                   self._host, f"requires {cause.id}, which did not complete"))

    def record(self, run_id: int, task, status: str, attempt: int, started: float, duration: float,
               error: Optional[str] = None) -> None:
        """Buffer one attempt of `task`; write the buffer when it is older than max_age or holds max_rows."""
        params = params_json(task)
        if error is not None and len(error) > MAX_ERROR:
            error = "..." + error[-MAX_ERROR:]
        row = (run_id, task.id, task.name, params, task.output, status, attempt, started, duration, self._host, error)
        now = self._clock()
        key = (run_id, task.id, attempt)
        with self._lock:
            rows = self._rows
            if not rows and not self._starts and not self._ended:
                self._first_at = now
            rows.append(row)
            if self._starts.pop(key, None) is None and key in self._on_disk:
                self._on_disk.discard(key)
                self._ended.append(key)
            if len(rows) >= self.max_rows or now - self._first_at >= self.max_age:
                self._flush_soon(now)

    def due_at(self) -> Optional[float]:
        """When (on the history's clock) the buffer must be written, or None when it is empty.

        The executor wakes up then even if no task ends, so a long task shows as running within a second.
        """
        with self._lock:
            if self._rows or self._starts or self._ended:
                return self._first_at + self.max_age
            return None

    def flush_if_due(self) -> None:
        """Write the buffer if it is older than max_age: for a loop that may go a while without `record`."""
        now = self._clock()
        with self._lock:
            if (self._rows or self._starts or self._ended) and now - self._first_at >= self.max_age:
                self._flush_soon(now)

    def flush(self) -> None:
        """Write every buffered row in one transaction."""
        with self._lock:
            self._flush()

    def finish_run(self, run_id: int, status: str, counts: dict) -> None:
        """Write the buffer, then the run's end: its status and its counts per outcome.

        When the buffer cannot be written (a full disk), its rows are given up and the run's end is
        still tried, after a checkpoint that may free room in the write-ahead log, so `flow log`
        does not show a finished build as died. StateError says what was lost.
        """
        with self._lock:
            lost = None
            try:
                self._flush()
            except (sqlite3.Error, OSError) as exc:
                lost = f"{len(self._rows):,} task attempts of this run were not recorded ({_reason(exc)})"
                self._rows, self._starts, self._ended = [], {}, []
            values = (time.time(), status, json.dumps(counts, sort_keys=True), run_id)
            try:
                self._update_run(values)
            except (sqlite3.Error, OSError):
                try:
                    self._db().execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    self._update_run(values)
                except (sqlite3.Error, OSError) as exc:
                    raise StateError(f"cannot write {self._shown_path()}: {_reason(exc)}; `flow log` will show"
                                     f" this run as died") from None
            self._on_disk = {key for key in self._on_disk if key[0] != run_id}
            if lost:
                raise StateError(f"cannot write {self._shown_path()}: {lost}")

    def _update_run(self, values: tuple) -> None:
        conn = self._db()
        with _transaction(conn):
            conn.execute("UPDATE runs SET finished = ?, status = ?, counts_json = ? WHERE id = ?", values)
            conn.execute("DELETE FROM running WHERE run_id = ?", (values[3],))  # its attempts are over

    def prune(self, keep_runs: int) -> int:
        """Delete all but the newest `keep_runs` runs with their attempts; return how many runs went."""
        try:
            return self._prune(keep_runs)
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"cannot prune the run history {self._shown_path()}: {_reason(exc)}") from None

    def _prune(self, keep_runs: int) -> int:
        with self._lock:
            self._flush()
            conn = self._db()
            with _transaction(conn):
                row = conn.execute("SELECT id FROM runs ORDER BY id DESC LIMIT 1 OFFSET ?",
                                   (max(keep_runs, 0),)).fetchone()
                if row is None:
                    return 0
                removed = _delete_runs_through(conn, row[0])
            conn.execute("VACUUM")  # give the space back: a backfill's history is tens of MB
            return removed

    def retain(self, keep_runs: int, keep_days: float) -> tuple:
        """Delete the runs beyond the newest `keep_runs` or older than `keep_days` (0: no such limit).

        Returns (runs deleted, [(rule, task_id)] whose every attempt went with them: their logs
        are stale). Meant for the end of every build, so it is cheap: two lookups on the runs
        table, then one DELETE per table through its run_id index, and no VACUUM (SQLite reuses
        the freed pages for the next runs).
        """
        try:
            with self._lock:
                self._flush()
                conn = self._db()
                through = None
                if keep_runs:
                    row = conn.execute("SELECT id FROM runs ORDER BY id DESC LIMIT 1 OFFSET ?", (keep_runs,)).fetchone()
                    through = row[0] if row else None
                if keep_days:
                    row = conn.execute("SELECT max(id) FROM runs WHERE started < ?",
                                       (time.time() - keep_days * 86400,)).fetchone()
                    if row[0] is not None:
                        through = max(through or 0, row[0])
                if through is None:
                    return 0, []
                with _transaction(conn):
                    # Every attempt of a kept run started after the oldest kept run did: bounding `started`
                    # lets the (task_id, started) index find a task's recent attempts without reading its old
                    # ones. INDEXED BY: without statistics SQLite would scan the whole rule index for DISTINCT.
                    gone = conn.execute(
                        "SELECT DISTINCT rule, task_id FROM attempts AS old INDEXED BY attempts_run"
                        " WHERE run_id <= ?1 AND NOT EXISTS"
                        " (SELECT 1 FROM attempts WHERE task_id = old.task_id AND run_id > ?1"
                        "  AND started >= (SELECT min(started) FROM runs WHERE id > ?1))",
                        (through,)).fetchall()
                    removed = _delete_runs_through(conn, through)
                return removed, gone
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"cannot prune the run history {self._shown_path()}: {_reason(exc)}") from None

    def close(self) -> None:
        """Write the buffer and close the database; the object may be used again afterwards.

        StateError if the buffer could not be written (the connection is closed all the same).
        """
        with self._lock:
            try:
                self._flush()
            except (sqlite3.Error, OSError) as exc:
                lost = len(self._rows)
                self._rows, self._starts, self._ended = [], {}, []
                raise StateError(f"cannot write {self._shown_path()}: {lost:,} task attempts were not recorded"
                                 f" ({_reason(exc)})") from None
            finally:
                for conn in (self._conn, self._read_conn):
                    if conn is not None:
                        try:
                            conn.close()
                        except sqlite3.Error:
                            pass
                self._conn = self._read_conn = None

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ reading

    def mean_durations(self, rules: list) -> dict:
        """rule -> mean duration in seconds of its last 50 successful attempts; rules never run are left out."""
        conn = self._reader()
        if conn is None:
            return {}
        means = {}
        for rule in dict.fromkeys(rules):
            row = conn.execute(
                "SELECT avg(duration), count(*) FROM (SELECT duration FROM attempts"
                " WHERE rule = ? AND status = 'done' ORDER BY started DESC LIMIT ?)", (rule, RECENT)).fetchone()
            if row[1]:
                means[rule] = row[0]
        return means

    def last_status(self, task_ids: list) -> dict:
        """task_id -> (status, started, error) of its latest attempt; tasks never attempted are left out.

        `skipped` rows are ignored: nothing ran, and the process that was running the task
        records its own outcome.
        """
        conn = self._reader()
        if conn is None:
            return {}
        result = {}
        ids = list(dict.fromkeys(task_ids))
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i:i + CHUNK]
            marks = ",".join("?" * len(chunk))
            # SQLite takes the bare columns of an aggregate query from the row holding the max().
            for task_id, status, started, error in conn.execute(
                    f"SELECT task_id, status, max(started), error FROM attempts"
                    f" WHERE task_id IN ({marks}) AND status != 'skipped' GROUP BY task_id", chunk):
                result[task_id] = (status, started, error)
        return result

    def recent_runs(self, limit: int = 10) -> list:
        """The latest runs, newest first, as dicts with the runs columns (targets and counts decoded)."""
        conn = self._reader()
        if conn is None:
            return []
        cursor = conn.execute("SELECT id, started, finished, command, targets, status, counts_json, host, pid"
                              " FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        runs = []
        for row in cursor:
            run = dict(zip(_RUN_COLUMNS, row, strict=True))
            run["targets"] = json.loads(run["targets"] or "[]")
            run["counts"] = json.loads(run["counts"] or "{}")
            runs.append(run)
        return runs

    def failed_attempts(self, run_id: int) -> list:
        """The failed and timed-out attempts of a run, in the order they started, as dicts (params decoded)."""
        conn = self._reader()
        if conn is None:
            return []
        cursor = conn.execute("SELECT * FROM attempts WHERE run_id = ? AND status IN ('failed', 'timeout')"
                              " ORDER BY started", (run_id,))
        out = []
        for row in cursor:
            attempt = dict(zip(_ATTEMPT_COLUMNS, row, strict=True))
            attempt["params"] = json.loads(attempt.pop("params_json") or "{}")
            out.append(attempt)
        return out

    # ------------------------------------------------------------------ internals

    def _flush(self) -> None:
        rows, starts, ended = self._rows, self._starts, self._ended
        if not rows and not starts and not ended:
            return
        conn = self._db()
        with _transaction(conn):
            if rows:
                conn.executemany(_INSERT, rows)
            if starts:
                conn.executemany(_INSERT_RUNNING, starts.values())
            if ended:
                conn.executemany(_DELETE_RUNNING, ended)
        self._on_disk.update(starts)
        self._rows, self._starts, self._ended = [], {}, []

    def _flush_soon(self, now: float) -> None:
        """A flush from `record`: if another process holds the lock past busy_timeout, keep the rows for later."""
        try:
            self._flush()
        except (sqlite3.Error, OSError):
            self._first_at = now  # try again in max_age; close() or finish_run() say what was lost

    def _reader(self) -> Optional[sqlite3.Connection]:
        """A connection for a read, after writing the buffer; None when no history exists yet.

        A process that has written nothing reads through a read-only connection, which needs no
        room on the disk and no schema change; StateError when the file cannot be read.
        """
        with self._lock:
            if self._conn is None and not os.path.exists(self.path):
                return None
            try:
                if self._conn is not None or self._rows or self._starts or self._ended:
                    self._flush()
                    return self._db()
                if self._read_conn is None or self._pid != os.getpid():
                    conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=BUSY_SECONDS,
                                           check_same_thread=False)
                    try:
                        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # fails on a non-database
                    except BaseException:
                        conn.close()
                        raise
                    self._read_conn = conn
                    self._pid = os.getpid()
                return self._read_conn
            except (sqlite3.Error, OSError) as exc:
                raise StateError(f"cannot read the run history {self._shown_path()}: {_reason(exc)}") from None

    def _shown_path(self) -> str:
        """The history's path as a user would type it from the project directory."""
        project = os.path.dirname(os.path.abspath(self.flow_dir))
        return os.path.relpath(self.path, project) if os.path.abspath(self.path).startswith(project) else self.path

    def _db(self) -> sqlite3.Connection:
        # A connection must not cross a fork: a child process opens its own.
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        os.makedirs(self.flow_dir, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so one batch is exactly one transaction.
        conn = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
        _use_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            with _transaction(conn):
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                # a version 1 file: its runs table predates plan_json
                if "plan_json" not in {row[1] for row in conn.execute("PRAGMA table_info(runs)")}:
                    conn.execute("ALTER TABLE runs ADD COLUMN plan_json TEXT")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._conn = conn
        self._pid = os.getpid()
        return conn


def _delete_runs_through(conn: sqlite3.Connection, last_id: int) -> int:
    """Delete runs up to id `last_id` with their attempts (inside the caller's transaction); return the runs gone."""
    conn.execute("DELETE FROM attempts WHERE run_id <= ?", (last_id,))
    conn.execute("DELETE FROM running WHERE run_id <= ?", (last_id,))
    return conn.execute("DELETE FROM runs WHERE id <= ?", (last_id,)).rowcount


def params_json(task) -> str:
    """The task's parameters as the JSON object attempts.params_json holds, as json.dumps writes it."""
    info = task.info
    names = info.param_names
    if len(names) == 1:  # most rules: one key, one string, two concatenations
        head = _ONE_PARAM.get(names[0])
        if head is None:
            head = _ONE_PARAM[names[0]] = "{" + _json_string(names[0]) + ": "
        return head + _json_string(format_value(task.values[0])) + "}"
    return json.dumps({name: format_value(v) for name, v in zip(names, task.values, strict=True)})


_ONE_PARAM: dict = {}  # parameter name -> '{"name": '
_json_string = json.encoder.encode_basestring_ascii  # what json.dumps uses for strings (ensure_ascii)


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL mode, once for all connections.

    The switch needs the file to itself, and SQLite reports "database is locked" at once instead
    of calling the busy handler when another process holds it (two flows starting on a fresh
    project), so we retry for as long as busy_timeout would wait.
    """
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            # Only a lock is worth waiting for: a file that cannot be opened at all (a directory in
            # its place, no permission) fails at once, the same way under any load.
            if not _is_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite said another connection holds the database (SQLITE_BUSY or SQLITE_LOCKED)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (5, 6)
    return "locked" in str(exc) or "busy" in str(exc)


def _reason(exc: BaseException) -> str:
    """An sqlite3 or OS error as a short phrase: 'disk I/O error', 'Permission denied'."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def hostname() -> str:
    # os.uname is a cheap system call; socket (for Windows) costs ~10 ms of imports.
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error).

    IMMEDIATE takes the write lock at the start, where busy_timeout waits for another process;
    a deferred transaction that upgrades to a writer later can fail with "database is locked"
    at once.
    """

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb):
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
        return False
