"""Tasks that create one table at the same time must not collide on PostgreSQL's catalog (issue 11, item 4)."""

from __future__ import annotations

import threading

from flow.compiler.nodes import NO_SPAN, SqlAction
from flow.compiler.types import month
from flow.runtime import db
from flow.runtime.actions.base import ActionContext
from flow.runtime.actions.sql import run_sql

from tests.reliability.helpers import wait_for

GATE = 424242  # an advisory lock the test holds to keep the first task inside its transaction


def context(day: int) -> ActionContext:
    update_id = f"summary(2012-{day:02d})"
    return ActionContext(task_id=update_id, rule="summary", params={"interval": month(2012, day)}, inputs=[],
                         output="summary", update_id=update_id)


def waiting_on_a_lock(admin, pid: int) -> bool:
    with admin.cursor() as cur:
        cur.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,))
        row = cur.fetchone()
    return row is not None and row[0] == "Lock"


def test_two_sql_tasks_creating_one_missing_table_both_succeed(pg_dsn):
    """The root Flowfile's toplist_summary SQL, twice at once: without a creation lock the second
    `CREATE TABLE IF NOT EXISTS` fails on pg_type_typname_nsp_index when the first commits."""
    admin, first, second = db.connect(pg_dsn), db.connect(pg_dsn), db.connect(pg_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (GATE,))
    create = "CREATE TABLE IF NOT EXISTS summary (month text, n int);"
    held = SqlAction(create + f" SELECT pg_advisory_xact_lock_shared({GATE});"
                     " INSERT INTO summary VALUES (:interval, 1)", None, NO_SPAN, NO_SPAN)
    plain = SqlAction(create + " INSERT INTO summary VALUES (:interval, 2)", None, NO_SPAN, NO_SPAN)
    results: dict = {}

    def run(name, ctx, action, conn):
        try:
            results[name] = run_sql(ctx, action, conn)
        except Exception as exc:  # noqa: BLE001 - the assertion below shows it
            results[name] = exc

    threads = [threading.Thread(target=run, args=("first", context(1), held, first)),
               threading.Thread(target=run, args=("second", context(2), plain, second))]
    try:
        threads[0].start()
        wait_for(lambda: waiting_on_a_lock(admin, first.get_backend_pid()), "the first task to wait at the gate")
        threads[1].start()
        wait_for(lambda: waiting_on_a_lock(admin, second.get_backend_pid()), "the second task to wait for the first")
    finally:
        with admin.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
        for thread in threads:
            thread.join(60)
    assert results == {"first": "sql done, 1 rows", "second": "sql done, 1 rows"}
    with admin.cursor() as cur:
        cur.execute("SELECT month, n FROM summary ORDER BY n")
        assert cur.fetchall() == [("2012-01", 1), ("2012-02", 2)]
    for conn in (admin, first, second):
        conn.close()
