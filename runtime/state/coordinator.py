"""State that flow processes on many hosts share in one PostgreSQL database: claims with leases, resources, history.

Each process registers an *owner* row (a random token, its host and pid) whose `expires` it pushes
forward from a background thread, one UPDATE for all it holds. A task is claimed by inserting or
taking over its row in `flow_claims` (keyed by the task's lock key): a row is taken over only when
it is free or its owner's lease has run out, so the tasks of a process that died go to another
once its lease ends. Released rows stay (owner NULL) while a live process may act on a plan made
before the release: a claim that takes over a row tells the executor another process may have
finished the task, so it re-checks the output even where a Target skips that re-check (object
stores); `retain` deletes the rows no live plan can need any more. A claim is released, and the
attempt's history written, in one transaction fenced by the owner token: a process whose lease ran
out cannot release, or overwrite, a claim that another took over, and says so (`warnings`). Every
time is the database's clock, so hosts need not agree on the time. Resources are rows tied to their
holder's lease too; each take also records the priority this process asks at, so a lower priority
elsewhere waits for it.

Round trips: one per round of tasks the executor is about to start (`claim_ahead`: a single
INSERT ... ON CONFLICT for all of them; one per task when tasks start one at a time), none for a task another
process holds until the next poll (one query for every refused task, twice a second), and
releases, attempts and running rows written together in one transaction, once a second or per
5,000 rows like the local history, or within a quarter second of a release (others may wait for it).
psycopg2 is imported on first use.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import uuid
from typing import Callable, Optional

from flow.compiler.types import format_value

from .. import conninfo
from ..history import MAX_AGE, MAX_ERROR, MAX_ROWS, RECENT, StateError, hostname
from . import StateStore, remove_task_logs

COORDINATOR_ENV = "FLOW_COORDINATOR_URL"
LEASE_ENV = "FLOW_LEASE_SECONDS"
WAIT_ENV = "FLOW_COORDINATOR_WAIT"
DEFAULT_LEASE = 30.0
# How long a build keeps retrying a coordinator it lost (a database restart) before it stops.
DEFAULT_WAIT = 30.0
# How often the tasks other processes hold are asked about again, in one query.
REFRESH_SECONDS = 0.5
# At most this many refused tasks are asked about in one query (a 100,000-task backfill over
# four processes leaves each waiting on most of them).
REFRESH_BATCH = 2_000
# Releases wait at most this long for their batch: other processes may be waiting for them.
RELEASE_AGE = 0.25
RECONNECT_PAUSE = 0.5
CONNECT_TIMEOUT = 10
# Rows per INSERT statement when a batch is written.
PAGE = 1_000
# Retention leaves a released claim for this long at least: a process still planning has not
# registered its plan's time yet (planning a million tasks takes seconds; this is ample).
PLANNING_MARGIN = 600.0

_SCHEMA_LOCK = "flow coordinator schema"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS flow_owners (
    owner text PRIMARY KEY, host text, pid integer, run_id bigint,
    started timestamptz NOT NULL DEFAULT now(), expires timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS flow_claims (
    key text PRIMARY KEY, owner text, claimed_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS flow_claims_owner ON flow_claims (owner);
CREATE TABLE IF NOT EXISTS flow_runs (
    id bigserial PRIMARY KEY, started double precision, finished double precision, command text,
    targets text, status text, counts_json text, host text, pid integer, plan_json text, owner text);
CREATE TABLE IF NOT EXISTS flow_attempts (
    run_id bigint, task_id text, rule text, params_json text, output text, status text, attempt integer,
    started double precision, duration double precision, host text, error text,
    UNIQUE (run_id, task_id, attempt, status));
CREATE INDEX IF NOT EXISTS flow_attempts_task ON flow_attempts (task_id, started);
CREATE INDEX IF NOT EXISTS flow_attempts_rule ON flow_attempts (rule, started);
CREATE TABLE IF NOT EXISTS flow_running (
    run_id bigint, task_id text, rule text, attempt integer, started double precision, host text,
    PRIMARY KEY (run_id, task_id, attempt));
CREATE TABLE IF NOT EXISTS flow_resources (
    resource text, owner text, holder text, amount integer NOT NULL,
    PRIMARY KEY (resource, owner, holder));
CREATE TABLE IF NOT EXISTS flow_resource_asks (
    resource text, owner text, priority integer NOT NULL, waiting boolean NOT NULL,
    asked timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (resource, owner));
-- added in flow 0.4 (retention): when each process planned, when each claim was released
ALTER TABLE flow_owners ADD COLUMN IF NOT EXISTS planned timestamptz NOT NULL DEFAULT now();
ALTER TABLE flow_claims ADD COLUMN IF NOT EXISTS released timestamptz NOT NULL DEFAULT now();
CREATE INDEX IF NOT EXISTS flow_claims_released ON flow_claims (released) WHERE owner IS NULL;
"""
# The newest column of _SCHEMA: when it exists, so does everything before it.
_NEWEST = ("flow_claims", "released")
# A process that took a resource this recently (its ask row is rewritten at most every quarter of
# this), and holds none of it now, is between two of its tasks: a lower-priority take elsewhere
# waits for it (ten times the executor's 0.2 s poll, so a loaded host's pause between two tasks
# does not let a lower priority in).
ASK_SECONDS = 2.0

# An owner is live while its lease has not run out.
_LIVE = "EXISTS (SELECT 1 FROM flow_owners o WHERE o.owner = {0} AND o.expires > now())"
_CLAIM = ("INSERT INTO flow_claims AS c (key, owner) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE"
          " SET owner = EXCLUDED.owner, claimed_at = now()"
          " WHERE c.owner IS NULL OR c.owner = EXCLUDED.owner OR NOT " + _LIVE.format("c.owner")
          + " RETURNING xmax = 0")  # true: a new row, so no other process ever claimed the task
# Per resource asked for: what the other live holders hold, and (flag true) the resources that
# another process asks for at a higher priority, live or not: usually none, and then nothing more is asked.
_RESOURCE_COUNTS = (
    "SELECT resource, sum(amount), false FROM flow_resources f WHERE resource = ANY(%(names)s)"
    " AND NOT (owner = %(owner)s AND holder = %(holder)s) AND " + _LIVE.format("f.owner") + " GROUP BY resource"
    " UNION ALL SELECT DISTINCT resource, 0, true FROM flow_resource_asks WHERE resource = ANY(%(names)s)"
    " AND owner <> %(owner)s AND priority > %(priority)s")
# Of those, the resources a live process waits for, or is between two of its tasks for (it took
# the resource lately and holds none of it now).
_OUTRANKED = (
    "SELECT DISTINCT a.resource FROM flow_resource_asks a WHERE a.resource = ANY(%(asked)s)"
    " AND a.owner <> %(owner)s AND a.priority > %(priority)s AND " + _LIVE.format("a.owner")
    + " AND (a.waiting OR (a.asked > now() - %(recent)s * interval '1 second' AND NOT EXISTS"
    " (SELECT 1 FROM flow_resources h WHERE h.resource = a.resource AND h.owner = a.owner)))")
# Many claims in one statement, in key order so that two processes claiming overlapping sets take
# the rows' locks in the same order and never deadlock.
_CLAIM_MANY = ("INSERT INTO flow_claims AS c (key, owner) SELECT k, %(owner)s FROM unnest(%(keys)s::text[]) AS k"
               " ORDER BY k ON CONFLICT (key) DO UPDATE SET owner = EXCLUDED.owner, claimed_at = now()"
               " WHERE c.owner IS NULL OR c.owner = EXCLUDED.owner OR NOT " + _LIVE.format("c.owner")
               + " RETURNING c.key, xmax = 0")
_PREPARE_CLAIM = "PREPARE flow_claim (text, text) AS " + _CLAIM.replace("%s", "$1", 1).replace("%s", "$2", 1)
_HELD_ELSEWHERE = ("SELECT c.key FROM flow_claims c WHERE c.key = ANY(%s) AND c.owner <> %s AND "
                   + _LIVE.format("c.owner"))
_RUN_COLUMNS = ("id", "started", "finished", "command", "targets", "status", "counts", "host", "pid")
_ATTEMPT_COLUMNS = ("run_id", "task_id", "rule", "params_json", "output", "status", "attempt", "started",
                    "duration", "host", "error")


def coordinator_dsn(setting: Optional[str]) -> Optional[str]:
    """The coordinator's DSN: FLOW_COORDINATOR_URL, else the Flowfile's `coordinator:`; None when there is none.

    The setting is a libpq URL or key=value string without a password, or `$NAME`, an environment
    variable holding one. StateError when that variable is not set: a build that was meant to
    coordinate must not run alone.
    """
    explicit = os.environ.get(COORDINATOR_ENV)
    if explicit:
        return explicit
    if not setting:
        return None
    if setting.startswith("$"):
        value = os.environ.get(setting[1:])
        if not value:
            raise StateError(f"the Flowfile's coordinator is {setting}, and {setting[1:]} is not set")
        return value
    return setting


def lease_seconds() -> float:
    return _seconds(LEASE_ENV, DEFAULT_LEASE)


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise StateError(f"{name} must be a number of seconds, not {text!r}") from None
    if value <= 0:
        raise StateError(f"{name} must be more than 0 seconds, not {text!r}")
    return value


class PostgresState(StateStore):
    """Claims, leases, resources and the run history of every flow process sharing one coordinator database."""

    shared = True

    def __init__(self, dsn: str, lease: Optional[float] = None, wait: Optional[float] = None,
                 max_rows: int = MAX_ROWS, max_age: float = MAX_AGE, clock: Callable[[], float] = time.monotonic,
                 planned: Optional[float] = None):
        self.dsn = dsn
        # When this process began to look at outputs (time.monotonic()): retention keeps every claim
        # released since then, since this process's plan may still hold the task as missing.
        self.planned = planned if planned is not None else time.monotonic()
        self.where = conninfo.redact(dsn) if dsn else "the default database (libpq PG* variables)"
        self.lease = lease if lease is not None else lease_seconds()
        self.wait = wait if wait is not None else _seconds(WAIT_ENV, DEFAULT_WAIT)
        self.max_rows = max_rows
        self.max_age = max_age
        self._clock = clock
        self.host = hostname()
        self.owner: Optional[str] = None  # registered on the first claim or run
        self._run_id: Optional[int] = None
        self._conn = None
        self._lock = threading.RLock()  # the main connection and the buffers
        self._held: dict = {}  # key -> owner token it was claimed under
        self._refused: dict = {}  # keys another process held when last asked, in the order first refused
        self._free: set = set()  # refused keys the last refresh found free
        self._taken_over: set = set()  # held keys whose row another process had claimed before
        self._refreshed_at = float("-inf")
        self._rows: list = []
        self._starts: dict = {}
        self._ended: list = []
        self._releases: list = []  # (key, owner token)
        self._first_at = 0.0
        self._first_release_at = 0.0
        self._renewer: Optional[_Renewer] = None
        self._problems: list = []
        self._asks: dict = {}  # resource -> (priority, waiting, when) last written to flow_resource_asks

    # ------------------------------------------------------------------ connection

    def _connect(self):
        import psycopg2

        problem = conninfo.misread(self.dsn) if self.dsn else None
        if problem:
            raise StateError(f"cannot connect to the coordinator: {problem}")
        conn = psycopg2.connect(self.dsn or "", connect_timeout=CONNECT_TIMEOUT, application_name="flow coordinator")
        try:
            _ensure_schema(conn)
            with conn.cursor() as cursor:  # planned once per connection: planning cost more than running it
                cursor.execute(_PREPARE_CLAIM)
            conn.commit()
        except BaseException:
            conn.close()
            raise
        return conn

    def _do(self, work, retry: bool = True, single: bool = False):
        """Run `work(cursor)` in one transaction; reconnect and retry for `wait` seconds while the database is gone.

        `single`: the work is one statement, sent in autocommit mode, so it costs one round trip
        instead of two (the statement, then COMMIT).

        Every statement flow sends is safe to repeat: claims and releases are fenced by the owner
        token, history rows are unique. StateError, in one redacted line, when it cannot be done.
        """
        import psycopg2

        deadline = None
        with self._lock:
            while True:
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = None
                        self._conn = self._connect()
                    conn = self._conn
                    try:
                        if conn.autocommit != single:
                            conn.autocommit = single
                        with conn.cursor() as cursor:
                            result = work(cursor)
                        if not single:
                            conn.commit()
                        return result
                    except BaseException:
                        if not conn.closed:
                            try:
                                conn.rollback()
                            except psycopg2.Error:
                                pass
                        raise
                except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                    self._drop()
                    now = time.monotonic()
                    deadline = deadline if deadline is not None else now + self.wait
                    if not retry or now >= deadline:
                        raise StateError(f"the coordinator {self.where} cannot be reached: "
                                         f"{_one_line(exc, self.dsn)}") from None
                    time.sleep(RECONNECT_PAUSE)
                except psycopg2.Error as exc:
                    raise StateError(f"the coordinator {self.where} refused: {_one_line(exc, self.dsn)}") from None

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is gone either way
                pass

    # ------------------------------------------------------------------ owner and lease

    def _ensure_owner(self) -> str:
        """This process's owner token, registered with a fresh lease; a new one when the lease was lost."""
        renewer = self._renewer
        if self.owner is not None and renewer is not None and not renewer.lost:
            return self.owner
        if renewer is not None and renewer.lost:
            lost = [key for key, owner in self._held.items() if owner == self.owner]
            self._problems.append(
                f"this process lost its lease on the coordinator (its renewals failed for {self.lease:g}s);"
                f" {len(lost):,} task{'s' if len(lost) != 1 else ''} it was running may have been taken over"
                f" by another process")
            renewer.stop()
        owner = uuid.uuid4().hex
        lease = self.lease

        def register(cursor):
            # the plan's time on the database's clock: now, less how long ago (by this host's clock) it began
            cursor.execute("INSERT INTO flow_owners (owner, host, pid, run_id, expires, planned) VALUES"
                           " (%s, %s, %s, %s, now() + %s * interval '1 second', now() - %s * interval '1 second')",
                           (owner, self.host, os.getpid(), self._run_id, lease,
                            max(0.0, time.monotonic() - self.planned)))
            if self._run_id is not None:  # `flow log` tells a live run by its owner's lease
                cursor.execute("UPDATE flow_runs SET owner = %s WHERE id = %s", (owner, self._run_id))

        self._do(register)
        self.owner = owner
        self._asks = {}  # the rows of a lost token are not this owner's
        self._renewer = _Renewer(self, owner)
        self._renewer.start()
        return owner

    # ------------------------------------------------------------------ claims (the locks)

    def try_lock(self, key: str) -> bool:
        """Claim the task: one round trip; a task another process held at the last look is asked about once a second."""
        if key in self._held:
            return True
        if key in self._refused:
            if self._clock() - self._refreshed_at >= REFRESH_SECONDS:
                self._refresh()
            if key not in self._free:
                return False
        owner = self._ensure_owner()

        def claim(cursor):
            cursor.execute("EXECUTE flow_claim (%s, %s)", (key, owner))
            row = cursor.fetchone()
            return None if row is None else row[0]

        fresh = self._do(claim, single=True)
        if fresh is not None:
            self._held[key] = owner
            if not fresh:
                self._taken_over.add(key)
            self._refused.pop(key, None)
            self._free.discard(key)
            return True
        self._refused[key] = None
        self._free.discard(key)
        return False

    def claim_ahead(self, keys: list) -> None:
        """Claim, in one round trip, the tasks the executor is about to try; try_lock then answers from memory.

        Keys held already or refused lately are left out (try_lock asks about those on its own schedule);
        a key claimed here and never tried is released with the others when the build ends.
        """
        held, refused = self._held, self._refused
        wanted = sorted({key for key in keys if key not in held and key not in refused})
        if len(wanted) < 2:
            return  # one claim: try_lock's own statement costs the same
        owner = self._ensure_owner()

        def claim(cursor):
            cursor.execute(_CLAIM_MANY, {"owner": owner, "keys": wanted})
            return cursor.fetchall()

        claimed = set()
        for key, fresh in self._do(claim, single=True):
            claimed.add(key)
            held[key] = owner
            if not fresh:
                self._taken_over.add(key)
            self._free.discard(key)
        for key in wanted:
            if key not in claimed:
                refused[key] = None
                self._free.discard(key)

    def _refresh(self) -> None:
        """Ask once which refused tasks are still held by a live process; the others may be claimed.

        At most REFRESH_BATCH keys a time, the longest refused first (in a backfill they end
        first); those still held go to the back, so a long task never hides the others.
        """
        refused = self._refused
        keys = list(itertools.islice(refused, REFRESH_BATCH))
        owner = self.owner or ""

        def held(cursor):
            cursor.execute(_HELD_ELSEWHERE, (keys, owner))
            return {row[0] for row in cursor.fetchall()}

        still = self._do(held, single=True)
        self._free = set(keys) - still
        if len(refused) > len(keys):
            for key in keys:
                if key in still:
                    del refused[key]
                    refused[key] = None
        self._refreshed_at = self._clock()

    def taken_over(self, key: str) -> bool:
        """Whether the claim just taken had been another process's (released or expired): it may have finished it."""
        return key in self._taken_over

    def unlock(self, key: str) -> None:
        """Release the claim with the next batch (the attempt's history row goes in the same transaction)."""
        self._taken_over.discard(key)
        owner = self._held.pop(key, None)
        if owner is None:
            return
        with self._lock:
            self._note_buffered()
            if not self._releases:
                self._first_release_at = self._clock()
            self._releases.append((key, owner))

    # ------------------------------------------------------------------ resources

    def try_take_resources(self, holder: str, amounts: dict, limits: dict, priority: int = 0) -> bool:
        """Take `amounts` for `holder` if no limit is passed and no live process asks at a higher priority; never waits.

        A process asking at a higher priority is one that was refused and still waits, or one that
        took the resource less than ASK_SECONDS ago and holds none of it now (between two of its
        tasks). Every take, refused or not, records this process's ask (`flow_resource_asks`,
        one row per resource and process; rewritten when it changes or every ASK_SECONDS / 4),
        in the same round trips as the take; one more only while another process asks higher.
        """
        wanted = {name: amount for name, amount in amounts.items() if amount}
        if not wanted:
            return True
        owner = self._ensure_owner()
        names = sorted(wanted)
        ask = {"names": names, "owner": owner, "holder": holder, "priority": priority, "recent": ASK_SECONDS}

        def take(cursor):
            # one lock per resource, taken in name order so two takers never deadlock; then what
            # the others hold, and whether anyone asks at a higher priority
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('flow resource ' || r))"
                           " FROM (SELECT r FROM unnest(%(names)s::text[]) AS r ORDER BY r) AS sorted;"
                           + _RESOURCE_COUNTS, ask)
            used: dict = {}
            asked = []
            for name, amount, higher in cursor.fetchall():
                if higher:
                    asked.append(name)
                else:
                    used[name] = amount
            outranked = False
            if asked:
                cursor.execute(_OUTRANKED, dict(ask, asked=asked))
                outranked = bool(cursor.fetchall())
            taken = not outranked and all(
                limits.get(name) is None or used.get(name, 0) + wanted[name] <= limits[name] for name in names)
            statements = []
            now = self._clock()
            recorded = self._asks  # name -> (priority, waiting, when written): a steady backfill rewrites it seldom
            if any(recorded.get(name, (None, None, float("-inf")))[:2] != (priority, not taken)
                   or now - recorded[name][2] > ASK_SECONDS / 4 for name in names):
                statements.append("INSERT INTO flow_resource_asks AS a (resource, owner, priority, waiting)"
                                  " SELECT r, %(owner)s, %(priority)s, %(waiting)s FROM unnest(%(names)s::text[]) AS r"
                                  " ON CONFLICT (resource, owner) DO UPDATE SET priority = EXCLUDED.priority,"
                                  " waiting = EXCLUDED.waiting, asked = now()")
                recorded.update(dict.fromkeys(names, (priority, not taken, now)))
            if taken:
                statements.append("INSERT INTO flow_resources (resource, owner, holder, amount)"
                                  " SELECT r, %(owner)s, %(holder)s, a"
                                  " FROM unnest(%(names)s::text[], %(amounts)s::int[]) AS t(r, a)"
                                  " ON CONFLICT (resource, owner, holder) DO UPDATE SET amount = EXCLUDED.amount")
            if statements:
                cursor.execute(";".join(statements),
                               dict(ask, waiting=not taken, amounts=[wanted[name] for name in names]))
            return taken

        return self._do(take)

    def give_back_resources(self, holder: str) -> None:
        """Give back at once what `holder` took: another process may be waiting for it."""
        owner = self.owner
        if owner is None:
            return
        self._do(lambda cursor: cursor.execute("DELETE FROM flow_resources WHERE owner = %s AND holder = %s",
                                               (owner, holder)), single=True)

    # ------------------------------------------------------------------ writing history

    def start_run(self, command: str, targets: list, plan=None) -> int:
        """Insert the run at once, so an unreachable coordinator shows before anything runs.

        The owner (and its lease renewer thread) is registered at the first claim, after the
        build has forked its workers: a fork copies no thread.
        """
        def insert(cursor):
            cursor.execute("INSERT INTO flow_runs (started, command, targets, status, host, pid, plan_json)"
                           " VALUES (%s, %s, %s, 'running', %s, %s, %s) RETURNING id",
                           (time.time(), command, json.dumps(list(targets)), self.host, os.getpid(),
                            json.dumps(plan, sort_keys=True) if plan is not None else None))
            return cursor.fetchone()[0]

        run_id = self._do(insert)
        self._run_id = run_id
        return run_id

    def _note_buffered(self) -> None:
        if not self._rows and not self._starts and not self._ended and not self._releases:
            self._first_at = self._clock()

    def record_start(self, run_id, task, attempt, started) -> None:
        with self._lock:
            self._note_buffered()
            self._starts[(run_id, task.id, attempt)] = (run_id, task.id, task.name, attempt, started, self.host)

    def record_blocked(self, run_id, blocked) -> None:
        started = time.time()
        with self._lock:
            self._note_buffered()
            for task, cause in blocked.items():
                self._rows.append((run_id, task.id, task.name, _params(task), task.output, "blocked", 0, started, 0.0,
                                   self.host, f"requires {cause.id}, which did not complete"))

    def record(self, run_id, task, status, attempt, started, duration, error=None) -> None:
        if error is not None and len(error) > MAX_ERROR:
            error = "..." + error[-MAX_ERROR:]
        with self._lock:
            self._note_buffered()
            self._rows.append((run_id, task.id, task.name, _params(task), task.output, status, attempt, started,
                               duration, self.host, error))
            if self._starts.pop((run_id, task.id, attempt), None) is None:
                self._ended.append((run_id, task.id, attempt))
            if len(self._rows) >= self.max_rows:
                self._flush()

    def due_at(self) -> Optional[float]:
        if self._releases:
            return min(self._first_at + self.max_age, self._first_release_at + RELEASE_AGE)
        if self._rows or self._starts or self._ended:
            return self._first_at + self.max_age
        return None

    def flush_if_due(self) -> None:
        due = self.due_at()
        if due is not None and self._clock() >= due:
            self._flush()

    def _flush(self) -> None:
        """Write every buffered row and release every buffered claim in one transaction."""
        from psycopg2.extras import execute_values

        with self._lock:
            rows, starts, ended, releases = self._rows, self._starts, self._ended, self._releases
            if not rows and not starts and not ended and not releases:
                return

            def write(cursor):
                if rows:
                    execute_values(cursor, "INSERT INTO flow_attempts VALUES %s ON CONFLICT DO NOTHING", rows,
                                   page_size=PAGE)
                if starts:
                    execute_values(cursor, "INSERT INTO flow_running VALUES %s ON CONFLICT DO NOTHING",
                                   list(starts.values()), page_size=PAGE)
                if ended:
                    cursor.execute("DELETE FROM flow_running r USING unnest(%s::bigint[], %s::text[], %s::int[])"
                                   " AS e(run_id, task_id, attempt) WHERE r.run_id = e.run_id"
                                   " AND r.task_id = e.task_id AND r.attempt = e.attempt",
                                   ([e[0] for e in ended], [e[1] for e in ended], [e[2] for e in ended]))
                released = set()
                if releases:
                    # fenced: only claims still ours go; a claim another process took over stays its own
                    cursor.execute("UPDATE flow_claims c SET owner = NULL, released = now()"
                                   " FROM unnest(%s::text[], %s::text[])"
                                   " AS r(key, owner) WHERE c.key = r.key AND c.owner = r.owner RETURNING c.key",
                                   ([r[0] for r in releases], [r[1] for r in releases]))
                    released = {row[0] for row in cursor.fetchall()}
                return released

            released = self._do(write)
            lost = [key for key, _ in releases if key not in released]
            if lost:
                shown = ", ".join(lost[:3]) + (f" and {len(lost) - 3:,} more" if len(lost) > 3 else "")
                self._problems.append(f"{len(lost):,} task{'s' if len(lost) != 1 else ''} ended after another"
                                      f" process took over {'its' if len(lost) == 1 else 'their'} claim"
                                      f" (this process's lease had run out): {shown}")
            self._rows, self._starts, self._ended, self._releases = [], {}, [], []

    def finish_run(self, run_id: int, status: str, counts: dict) -> None:
        self._flush()
        self._do(lambda cursor: (
            cursor.execute("UPDATE flow_runs SET finished = %s, status = %s, counts_json = %s WHERE id = %s",
                           (time.time(), status, json.dumps(counts, sort_keys=True), run_id)),
            cursor.execute("DELETE FROM flow_running WHERE run_id = %s", (run_id,))))

    def warnings(self) -> list:
        """What went wrong with the leases in this process, one line each, for the build to print."""
        return list(self._problems)

    def prune(self, keep_runs: int) -> int:
        def prune(cursor):
            cursor.execute("SELECT id FROM flow_runs ORDER BY id DESC LIMIT 1 OFFSET %s", (max(keep_runs, 0),))
            row = cursor.fetchone()
            if row is None:
                return 0
            cursor.execute("DELETE FROM flow_attempts WHERE run_id <= %s", row)
            cursor.execute("DELETE FROM flow_running WHERE run_id <= %s", row)
            cursor.execute("DELETE FROM flow_runs WHERE id <= %s", row)
            return cursor.rowcount

        self._flush()
        return self._do(prune)

    def retain(self, keep_runs: int, keep_days: float, log_dir: str) -> int:
        """History retention, as the local store's, and what the coordinator's own tables no longer need.

        In one transaction: runs beyond the newest `keep_runs` or older than `keep_days` (never one
        whose process is live) with their attempts; released claims that no live process's plan
        can need (released before the oldest live plan, and at least PLANNING_MARGIN ago); the
        claims of processes whose lease ran out as long ago, then those owner rows; the resource
        rows and asks of processes whose lease ran out. The logs of tasks no kept attempt
        explains are deleted on this host (each host keeps its own logs).
        """
        self._flush()
        me = self.host
        margin = PLANNING_MARGIN

        def retain(cursor):
            through = None
            if keep_runs:
                cursor.execute("SELECT id FROM flow_runs ORDER BY id DESC LIMIT 1 OFFSET %s", (keep_runs,))
                row = cursor.fetchone()
                through = row[0] if row else None
            if keep_days:
                cursor.execute("SELECT max(id) FROM flow_runs WHERE started < %s", (time.time() - keep_days * 86400,))
                row = cursor.fetchone()
                if row[0] is not None:
                    through = max(through or 0, row[0])
            stale = []
            removed = 0
            if through is not None:
                cursor.execute("SELECT min(id) FROM flow_runs r WHERE " + _LIVE.format("r.owner"))
                live = cursor.fetchone()[0]
                if live is not None:
                    through = min(through, live - 1)
                cursor.execute("SELECT DISTINCT rule, task_id FROM flow_attempts old WHERE run_id <= %(t)s"
                               " AND host = %(host)s AND NOT EXISTS (SELECT 1 FROM flow_attempts kept"
                               " WHERE kept.task_id = old.task_id AND kept.run_id > %(t)s)", {"t": through, "host": me})
                stale = cursor.fetchall()
                cursor.execute("DELETE FROM flow_attempts WHERE run_id <= %s", (through,))
                cursor.execute("DELETE FROM flow_running WHERE run_id <= %s", (through,))
                cursor.execute("DELETE FROM flow_runs WHERE id <= %s", (through,))
                removed = cursor.rowcount
            # the oldest plan a live process may still act on, and a margin for one still planning
            cursor.execute("SELECT least(now() - %s * interval '1 second',"
                           " (SELECT min(planned) FROM flow_owners WHERE expires > now()))", (margin,))
            horizon = cursor.fetchone()[0]
            cursor.execute(
                "DELETE FROM flow_claims WHERE owner IS NULL AND released < %(horizon)s;"
                "DELETE FROM flow_claims c USING flow_owners o WHERE c.owner = o.owner AND o.expires < %(horizon)s;"
                "DELETE FROM flow_owners o WHERE o.expires < now() - %(margin)s * interval '1 second'"
                " AND NOT EXISTS (SELECT 1 FROM flow_claims c WHERE c.owner = o.owner);"
                "DELETE FROM flow_resources f WHERE NOT " + _LIVE.format("f.owner") + ";"
                "DELETE FROM flow_resource_asks a WHERE NOT " + _LIVE.format("a.owner"),
                {"horizon": horizon, "margin": margin})
            return removed, stale

        removed, stale = self._do(retain)
        remove_task_logs(log_dir, stale)
        return removed

    def close(self) -> None:
        """Write what is buffered, release every claim, resource and the lease; one try (the build is over)."""
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.stop()
        try:
            if self.owner is not None or self._rows or self._releases:
                self.wait = 0.0  # no retries now: a coordinator that is gone was reported already

                for key, owner in self._held.items():
                    self._releases.append((key, owner))
                self._held.clear()
                self._flush()
                owner = self.owner
                if owner is not None:
                    self._do(lambda cursor: (
                        cursor.execute("DELETE FROM flow_resources WHERE owner = %s", (owner,)),
                        cursor.execute("DELETE FROM flow_resource_asks WHERE owner = %s", (owner,)),
                        cursor.execute("UPDATE flow_claims SET owner = NULL, released = now() WHERE owner = %s",
                                       (owner,)),
                        cursor.execute("DELETE FROM flow_owners WHERE owner = %s", (owner,))))
        finally:
            # once only: what could not be written is lost, and the lease runs out by itself
            self.owner = None
            self._held.clear()
            self._rows, self._starts, self._ended, self._releases = [], {}, [], []
            self._drop()

    # ------------------------------------------------------------------ reading

    def exists(self) -> bool:
        return bool(self._do(lambda cursor: (cursor.execute("SELECT EXISTS (SELECT 1 FROM flow_runs)"),
                                             cursor.fetchone()[0])[1]))

    def mean_durations(self, rules: list) -> dict:
        names = list(dict.fromkeys(rules))
        if not names:
            return {}

        def means(cursor):
            cursor.execute("SELECT rule, avg(duration) FROM (SELECT rule, duration, row_number() OVER"
                           " (PARTITION BY rule ORDER BY started DESC) AS n FROM flow_attempts"
                           " WHERE rule = ANY(%s) AND status = 'done') AS recent WHERE n <= %s GROUP BY rule",
                           (names, RECENT))
            return dict(cursor.fetchall())

        return self._do(means)

    def last_status(self, task_ids: list) -> dict:
        return {task: row[:3] for task, row in self._latest(task_ids, "status <> 'skipped'").items()}

    def built_by(self, task_ids: list) -> dict:
        """task_id -> the host whose successful attempt was its latest: which host ran what (`flow status`)."""
        return {task: row[3] for task, row in self._latest(task_ids, "status = 'done'").items()}

    def _latest(self, task_ids: list, which: str) -> dict:
        ids = list(dict.fromkeys(task_ids))
        if not ids:
            return {}

        def latest(cursor):
            cursor.execute("SELECT DISTINCT ON (task_id) task_id, status, started, error, host FROM flow_attempts"
                           f" WHERE task_id = ANY(%s) AND {which} ORDER BY task_id, started DESC", (ids,))
            return {row[0]: row[1:] for row in cursor.fetchall()}

        return self._do(latest)

    def recent_runs(self, limit: int = 10) -> list:
        def runs(cursor):
            cursor.execute("SELECT r.id, r.started, r.finished, r.command, r.targets, r.status, r.counts_json,"
                           " r.host, r.pid, " + _LIVE.format("r.owner") + " FROM flow_runs r"
                           " ORDER BY r.id DESC LIMIT %s", (limit,))
            return cursor.fetchall()

        out = []
        for row in self._do(runs):
            run = dict(zip(_RUN_COLUMNS, row[:-1], strict=True))
            run["targets"] = json.loads(run["targets"] or "[]")
            run["counts"] = json.loads(run["counts"] or "{}")
            run["live"] = row[-1]  # its process still holds its lease
            out.append(run)
        return out

    def failed_attempts(self, run_id: int) -> list:
        def failed(cursor):
            cursor.execute("SELECT * FROM flow_attempts WHERE run_id = %s AND status IN ('failed', 'timeout')"
                           " ORDER BY started", (run_id,))
            return cursor.fetchall()

        out = []
        for row in self._do(failed):
            attempt = dict(zip(_ATTEMPT_COLUMNS, row, strict=True))
            attempt["params"] = json.loads(attempt.pop("params_json") or "{}")
            out.append(attempt)
        return out

    def running_now(self) -> list:
        """The attempts under way in every live process, oldest first, as dicts (run_id, task_id, host, started)."""
        def running(cursor):
            cursor.execute("SELECT g.run_id, g.task_id, g.host, g.started FROM flow_running g"
                           " JOIN flow_runs r ON r.id = g.run_id WHERE " + _LIVE.format("r.owner")
                           + " ORDER BY g.started")
            return cursor.fetchall()

        return [dict(zip(("run_id", "task_id", "host", "started"), row, strict=True)) for row in self._do(running)]


class _Renewer(threading.Thread):
    """Pushes this process's lease forward every third of its length, one UPDATE for every claim and resource."""

    def __init__(self, state: PostgresState, owner: str):
        super().__init__(name="flow-lease", daemon=True)
        self.state = state
        self.owner = owner
        self.lost = False  # the lease ran out before a renewal got through
        self._stop_event = threading.Event()
        self._conn = None

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive() and self is not threading.current_thread():
            self.join(timeout=CONNECT_TIMEOUT + 5)

    def run(self) -> None:
        import psycopg2

        state = self.state
        interval = state.lease / 3
        try:
            while not self._stop_event.wait(interval):
                try:
                    if self._conn is None:
                        self._conn = psycopg2.connect(state.dsn or "", connect_timeout=CONNECT_TIMEOUT,
                                                      application_name="flow lease")
                        self._conn.autocommit = True
                    with self._conn.cursor() as cursor:
                        cursor.execute("UPDATE flow_owners SET expires = now() + %s * interval '1 second'"
                                       " WHERE owner = %s AND expires > now()", (state.lease, self.owner))
                        if cursor.rowcount == 0:
                            self.lost = True  # another process may have taken over our claims: never renew again
                            return
                except psycopg2.Error:
                    self._close()  # the database is away: try again next time, while the lease lasts
        finally:
            self._close()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass


def _ensure_schema(conn) -> None:
    """Create (or bring up to date) the tables on first use; under an advisory lock, so processes starting together
    do it once."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s)"
                       " AND attname = %s AND NOT attisdropped)", _NEWEST)
        if cursor.fetchone()[0]:
            conn.commit()
            return
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_SCHEMA_LOCK,))
        cursor.execute(_SCHEMA)
    conn.commit()


def _params(task) -> str:
    return json.dumps({name: format_value(v) for name, v in zip(task.info.param_names, task.values, strict=True)})


def _one_line(exc, dsn: str) -> str:
    from ..db import one_line

    return one_line(str(exc), dsn)
