"""Tests of load and sql actions against a real PostgreSQL (runtime/actions/sql.py, tables.py, db.py, tsv.py)."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import psycopg2
import pytest
from flow.compiler.nodes import NO_SPAN, Column, LoadAction, SqlAction
from flow.compiler.types import month
from flow.runtime import db, tsv
from flow.runtime.actions.base import ActionContext, ActionFailed
from flow.runtime.actions.sql import bind, run_load, run_sql
from flow.runtime.tables import existing_markers, normalise_type, parse_table_name
from hypothesis import given
from hypothesis import strategies as st

from tests.pg import with_options

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLUMNS = "date_from date, date_to date, artist text, streams int"


JUNE = month(2012, 6)


def columns(text: str = COLUMNS) -> tuple:
    return tuple(Column(*part.split(None, 1), NO_SPAN) for part in text.split(", "))


def load_action(**options) -> LoadAction:
    return LoadAction(columns=columns(options.pop("columns", COLUMNS)), span=NO_SPAN, **options)


def context(input_path: str, output: str = "top10", update_id: str = "toplist_db(2012-06)", **params) -> ActionContext:
    return ActionContext(
        task_id=update_id, rule="toplist_db", params={"interval": JUNE, **params},
        inputs=[input_path], output=output, update_id=update_id,
    )


def write_tsv(path, rows) -> str:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        tsv.write_rows(f, rows)
    return str(path)


def query(conn, text, args=None):
    with conn.cursor() as cur:
        cur.execute(text, args)
        rows = cur.fetchall()
    conn.rollback()
    return rows


ROWS = [
    (datetime.date(2012, 6, 1), datetime.date(2012, 7, 1), "plain", 1),
    (datetime.date(2012, 6, 1), datetime.date(2012, 7, 1), None, None),
    (datetime.date(2012, 6, 1), datetime.date(2012, 7, 1), "tab\there", 2),
    (datetime.date(2012, 6, 1), datetime.date(2012, 7, 1), "back\\slash \\N \\t", 3),
    (datetime.date(2012, 6, 1), datetime.date(2012, 7, 1), "new\nline and\r\ncrlf", 4),
    (datetime.date(2012, 6, 1), datetime.date(2012, 7, 1), "quotes ' \" `", 5),
    (datetime.date(2012, 6, 1), datetime.date(2012, 7, 1), "Sigur Rós, Björk, 坂本龍一, 🎵", 6),
    (datetime.date(2012, 6, 1), datetime.date(2012, 7, 1), "\\.", 7),
    (datetime.date(2012, 6, 1), datetime.date(2012, 7, 1), "", 8),
]


# ---------------------------------------------------------------------------- tsv (no database)


def test_format_row():
    assert tsv.format_row(["a\tb", None, "c\\d", "e\nf\rg", 1, True, datetime.date(2012, 6, 1)]) == (
        "a\\tb\t\\N\tc\\\\d\te\\nf\\rg\t1\tt\t2012-06-01\n"
    )


@given(st.lists(st.one_of(st.none(), st.text()), min_size=1, max_size=5))
def test_tsv_round_trip(values):
    assert tsv.parse_row(tsv.format_row(values)) == values


# ---------------------------------------------------------------------------- names, types, parameters (no database)


@pytest.mark.parametrize(
    "declared, canonical",
    [
        ("int", "integer"), ("INT4", "integer"), ("integer", "integer"), ("bigint", "bigint"),
        ("text", "text"), ("varchar(20)", "character varying(20)"),
        ("character varying ( 20 )", "character varying(20)"),
        ("char", "character(1)"), ("numeric(10, 2)", "numeric(10,2)"), ("float", "double precision"),
        ("timestamptz", "timestamp with time zone"), ("timestamp(3)", "timestamp(3) without time zone"),
        ("int[]", "integer[]"), ("date", "date"), ("bool", "boolean"),
    ],
)
def test_normalise_type(declared, canonical):
    assert normalise_type(declared) == canonical


@pytest.mark.parametrize("bad", ["int); DROP TABLE x; --", "text'", "int -- x", ""])
def test_rejects_non_types(bad):
    with pytest.raises(ActionFailed, match="is not a column type"):
        normalise_type(bad)


def test_table_names():
    assert str(parse_table_name("top10")) == "top10"
    assert parse_table_name("reports.monthly").schema == "reports"
    with pytest.raises(ActionFailed):
        parse_table_name("a.b.c")


def test_bind_values():
    values = bind(["interval", "interval.start", "interval.end", "n"], {"interval": JUNE, "n": 3})
    assert values == {"interval": "2012-06", "interval.start": JUNE.start, "interval.end": JUNE.end, "n": 3}
    with pytest.raises(ActionFailed, match="':nope' is not a parameter"):
        bind(["nope"], {"interval": JUNE})
    assert bind(["interval.next", "interval.days"], {"interval": JUNE}) == {
        "interval.next": "2012-07", "interval.days": JUNE.days,
    }
    for attr in ("middle", "_text", "__class__"):
        with pytest.raises(ActionFailed, match=f"has no '{attr}'"):
            bind([f"interval.{attr}"], {"interval": JUNE})


# ---------------------------------------------------------------------------- connections and secrets


def test_redact():
    assert db.redact("postgresql://flow:s3cr%40t@db:5432/x") == "postgresql://flow:***@db:5432/x"
    assert db.redact("postgres://db/x?user=u&password=pw&sslmode=require") == (
        "postgres://db/x?user=u&password=***&sslmode=require"
    )
    assert db.redact("host=db password=pw dbname=x") == "host=db password=*** dbname=x"
    assert db.redact("host=db password = 'p w\\'x' dbname=x") == "host=db password = *** dbname=x"
    assert db.redact("service=analytics") == "service=analytics"


def test_environment_overrides_flowfile(monkeypatch):
    monkeypatch.delenv(db.ENV_VAR, raising=False)
    assert db.resolve_dsn("service=analytics") == "service=analytics"
    assert db.resolve_dsn(None) == ""
    monkeypatch.setenv(db.ENV_VAR, "postgresql://elsewhere/db")
    assert db.resolve_dsn("service=analytics") == "postgresql://elsewhere/db"


def test_import_does_not_load_psycopg2():
    code = ("import sys, flow.runtime.db, flow.runtime.tables, flow.runtime.actions.sql; "
            "print('psycopg2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_wrong_password_is_one_redacted_line(pg_url):
    wrong = psycopg2.extensions.parse_dsn(pg_url)
    wrong_password = "not-the-password-" + "x" * 8
    url = f"postgresql://{wrong['user']}:{wrong_password}@{wrong['host']}:{wrong['port']}/{wrong['dbname']}"
    try:
        psycopg2.connect(url).close()
        pytest.skip("the server at FLOW_TEST_DATABASE_URL does not check passwords")
    except psycopg2.OperationalError:
        pass
    for dsn in (url, f"host={wrong['host']} port={wrong['port']} user={wrong['user']} password={wrong_password}"):
        with pytest.raises(db.DatabaseError) as info:
            db.connect(dsn)
        message = str(info.value)
        assert "\n" not in message
        assert wrong_password not in message
        assert message.startswith("cannot connect to ")
        assert message.endswith(f'password authentication failed for user "{wrong["user"]}"')
    assert str(info.value).startswith(f"cannot connect to host={wrong['host']}")


def test_connection_cache_reuses_and_replaces(pg_url):
    cache = db.ConnectionCache()
    first = cache.get(pg_url)
    assert cache.get(pg_url) is first
    first.close()
    second = cache.get(pg_url)
    assert second is not first and not second.closed
    cache.close_all()
    assert second.closed


# ---------------------------------------------------------------------------- load


def test_load_round_trip_and_marker(pg_dsn, tmp_path):
    conn = db.connect(pg_dsn)
    path = write_tsv(tmp_path / "top.tsv", ROWS)
    assert existing_markers(conn, ["toplist_db(2012-06)"]) == set()  # no marker table yet
    status = run_load(context(path), load_action(), conn)
    assert status == f"loaded {len(ROWS)} rows into top10"
    assert sorted(query(conn, "SELECT date_from, date_to, artist, streams FROM top10"), key=lambda r: r[3] or 0) == (
        sorted(ROWS, key=lambda r: r[3] or 0)
    )
    assert existing_markers(conn, ["toplist_db(2012-06)", "toplist_db(2012-07)"]) == {"toplist_db(2012-06)"}
    assert query(conn, "SELECT target_table FROM flow_table_updates") == [("top10",)]
    assert conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE


def test_rerun_loads_nothing(pg_dsn, tmp_path):
    conn = db.connect(pg_dsn)
    path = write_tsv(tmp_path / "top.tsv", ROWS)
    run_load(context(path), load_action(), conn)
    assert run_load(context(path), load_action(), conn) == "already loaded"
    assert query(conn, "SELECT count(*) FROM top10") == [(len(ROWS),)]


def test_csv_with_header_and_schema_qualified_output(pg_dsn, pg_schema, tmp_path):
    conn = db.connect(pg_dsn)
    path = tmp_path / "top.csv"
    path.write_text(
        'date_from,date_to,artist,streams\n2012-06-01,2012-07-01,"a, ""b""\nc",5\n2012-06-01,2012-07-01,,\n'
    )
    output = f"{pg_schema}_new.top10"
    try:
        status = run_load(context(str(path), output=output), load_action(format="csv", header=True), conn)
        assert status == f"loaded 2 rows into {output}"
        assert query(conn, f'SELECT artist, streams FROM "{pg_schema}_new".top10 ORDER BY streams') == [
            ('a, "b"\nc', 5), (None, None),
        ]
    finally:
        conn.rollback()
        with conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{pg_schema}_new" CASCADE')
        conn.commit()


def test_text_with_header_and_directory_input(pg_dsn, tmp_path):
    conn = db.connect(pg_dsn)
    parts = tmp_path / "parts"
    parts.mkdir()
    for i in range(2):
        with open(parts / f"part-{i:05}", "w") as f:
            f.write("date_from\tdate_to\tartist\tstreams\n")
            tsv.write_rows(f, [ROWS[i]])
    (parts / "_SUCCESS").write_text("")
    assert run_load(context(str(parts)), load_action(header=True), conn) == "loaded 2 rows into top10"


def test_existing_table_with_alias_types_is_accepted(pg_dsn, tmp_path):
    conn = db.connect(pg_dsn)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE top10 (date_from date, date_to date, artist varchar(100), streams int4)")
    conn.commit()
    path = write_tsv(tmp_path / "top.tsv", ROWS[:1])
    action = load_action(columns="date_from date, date_to date, artist character varying(100), streams integer")
    assert run_load(context(path), action, conn) == "loaded 1 rows into top10"


def test_column_mismatch_is_one_clear_line(pg_dsn, tmp_path):
    conn = db.connect(pg_dsn)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE top10 (date_from date, date_to date, artist text, streams bigint, extra text)")
    conn.commit()
    path = write_tsv(tmp_path / "top.tsv", ROWS[:1])
    with pytest.raises(ActionFailed) as info:
        run_load(context(path), load_action(columns="date_from date, date_to date, name text, streams int"), conn)
    assert str(info.value) == (
        "table 'top10' does not match the declared columns: "
        "column 'name' is missing; column 'streams' is bigint, declared integer; "
        "column 'artist' is not declared; column 'extra' is not declared"
    )
    assert existing_markers(conn, ["toplist_db(2012-06)"]) == set()


def test_bad_data_fails_with_line_and_leaves_nothing(pg_dsn, tmp_path):
    conn = db.connect(pg_dsn)
    path = tmp_path / "bad.tsv"
    path.write_text("2012-06-01\t2012-07-01\ta\t1\n2012-06-01\t2012-07-01\tb\tmany\n")
    with pytest.raises(ActionFailed) as info:
        run_load(context(str(path)), load_action(), conn)
    assert str(info.value) == (
        "load into 'top10' failed: invalid input syntax for type integer: \"many\" "
        "(COPY top10, line 2, column streams: \"many\")"
    )
    assert query(conn, "SELECT to_regclass('top10')") == [(None,)]
    assert existing_markers(conn, ["toplist_db(2012-06)"]) == set()


def test_before_and_after_hooks_bind_parameters(pg_dsn, tmp_path):
    conn = db.connect(pg_dsn)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE top10 (date_from date, date_to date, artist text, streams int)")
        cur.execute(
            "INSERT INTO top10 VALUES ('2012-06-01', '2012-07-01', 'stale', 0), ('2012-05-01', '2012-06-01', 'may', 0)"
        )
        cur.execute("CREATE TABLE load_log (period text, first_day date, note text)")
    conn.commit()
    path = write_tsv(tmp_path / "top.tsv", ROWS[:2])
    action = load_action(
        before="DELETE FROM top10 WHERE date_from = :interval.start",
        after=(
            "INSERT INTO load_log SELECT :interval, :interval.start, '100%' || count(*)"
            " FROM top10 WHERE date_from = :interval.start"
        ),
    )
    assert run_load(context(path), action, conn) == "loaded 2 rows into top10"
    assert query(conn, "SELECT artist FROM top10 ORDER BY artist NULLS LAST") == [("may",), ("plain",), (None,)]
    assert query(conn, "SELECT * FROM load_log") == [("2012-06", datetime.date(2012, 6, 1), "100%2")]


def test_failing_after_hook_rolls_back_everything(pg_dsn, tmp_path):
    conn = db.connect(pg_dsn)
    path = write_tsv(tmp_path / "top.tsv", ROWS)
    with pytest.raises(ActionFailed, match=r"^load into 'top10' failed: division by zero$"):
        run_load(context(path), load_action(after="SELECT 1 / 0"), conn)
    assert query(conn, "SELECT to_regclass('top10')") == [(None,)]
    assert existing_markers(conn, ["toplist_db(2012-06)"]) == set()
    assert run_load(context(path), load_action(), conn) == f"loaded {len(ROWS)} rows into top10"


def test_concurrent_loads_of_one_task_load_once(pg_dsn, tmp_path):
    path = write_tsv(tmp_path / "top.tsv", ROWS)
    # The sleep keeps the first transaction open while the second arrives, so they really overlap.
    action = load_action(before="SELECT pg_sleep(0.3)")
    barrier = threading.Barrier(2)
    results, errors = [], []

    def load():
        conn = db.connect(pg_dsn)
        try:
            barrier.wait()
            results.append(run_load(context(path), action, conn))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(results) == ["already loaded", f"loaded {len(ROWS)} rows into top10"]
    conn = db.connect(pg_dsn)
    assert query(conn, "SELECT count(*) FROM top10") == [(len(ROWS),)]
    assert query(conn, "SELECT count(*) FROM flow_table_updates") == [(1,)]


KILL_ROWS = 2_000_000

LOADER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from flow.compiler.nodes import NO_SPAN, Column, LoadAction
    from flow.runtime.actions.base import ActionContext
    from flow.runtime.actions.sql import run_load
    from flow.runtime.db import connect
    ctx = ActionContext("big(2012)", "big", {}, [sys.argv[3]], "big", "big(2012)")
    action = LoadAction((Column("n", "int", NO_SPAN), Column("artist", "text", NO_SPAN)), NO_SPAN)
    print(run_load(ctx, action, connect(sys.argv[2])), flush=True)
    """
)


def test_killed_load_leaves_nothing_and_next_load_loads_once(pg_dsn, tmp_path):
    path = tmp_path / "big.tsv"
    with open(path, "w") as f:
        f.writelines(f"{i}\tartist number {i}\n" for i in range(KILL_ROWS))
    dsn = with_options(pg_dsn, application_name="flow-kill-test")
    watcher = db.connect(pg_dsn)
    loader = subprocess.Popen([sys.executable, "-c", LOADER, ROOT, dsn, str(path)], stdout=subprocess.PIPE)
    try:
        # Kill once the server reports rows copied by the loader's session: COPY is under way.
        deadline = time.monotonic() + 30
        copied = []
        while not copied and loader.poll() is None and time.monotonic() < deadline:
            copied = query(
                watcher,
                "SELECT p.tuples_processed FROM pg_stat_progress_copy p JOIN pg_stat_activity a USING (pid)"
                " WHERE a.application_name = 'flow-kill-test' AND p.tuples_processed > 0",
            )
        assert copied, "the loader never got to COPY, or finished first (use more rows)"
        loader.send_signal(signal.SIGKILL)
        assert loader.wait() == -signal.SIGKILL
    finally:
        loader.kill()
        loader.wait()
    assert query(watcher, "SELECT to_regclass('big')") == [(None,)]  # created in the killed transaction
    assert existing_markers(watcher, ["big(2012)"]) == set()

    # The next load waits for the dead session's lock to go, then loads everything exactly once.
    again = subprocess.run([sys.executable, "-c", LOADER, ROOT, pg_dsn, str(path)], capture_output=True, text=True)
    assert again.stdout.strip() == f"loaded {KILL_ROWS} rows into big", again.stderr
    assert query(watcher, "SELECT count(*), count(DISTINCT n) FROM big") == [(KILL_ROWS, KILL_ROWS)]
    assert existing_markers(watcher, ["big(2012)"]) == {"big(2012)"}


# ---------------------------------------------------------------------------- sql


def sql_context(output: str, update_id: str = "monthly_summary(2012-06)", **params) -> ActionContext:
    return ActionContext(
        task_id=update_id, rule="monthly_summary", params={"interval": JUNE, **params},
        inputs=["top10"], output=output, update_id=update_id,
    )


def test_sql_action_binds_parameters_and_writes_marker(pg_dsn, pg_schema, tmp_path):
    conn = db.connect(pg_dsn)
    run_load(context(write_tsv(tmp_path / "top.tsv", ROWS)), load_action(), conn)
    output = f"{pg_schema}.monthly_summary"
    action = SqlAction(
        text=f"""
            CREATE TABLE IF NOT EXISTS {pg_schema}.monthly_summary (month date, label text, artists int);
            -- a comment with :interval and 100% in it
            INSERT INTO {pg_schema}.monthly_summary
            SELECT :interval.start, :label || ' ' || :interval, count(*)
            FROM top10 WHERE date_from = :interval.start AND date_to = :interval.end AND artist NOT LIKE '%%zzz'
        """,
        file=None, span=NO_SPAN, text_span=NO_SPAN,
    )
    label = "it's'); DROP TABLE top10; --"
    assert run_sql(sql_context(output, label=label), action, conn) == "sql done, 1 rows"
    assert query(conn, f"SELECT * FROM {pg_schema}.monthly_summary") == [
        (datetime.date(2012, 6, 1), label + " 2012-06", len(ROWS) - 1),
    ]
    assert query(conn, "SELECT count(*) FROM top10") == [(len(ROWS),)]
    assert run_sql(sql_context(output, label=label), action, conn) == "already done"
    assert query(conn, f"SELECT count(*) FROM {pg_schema}.monthly_summary") == [(1,)]
    assert existing_markers(conn, ["monthly_summary(2012-06)"]) == {"monthly_summary(2012-06)"}


def test_sql_file_relative_to_flowfile(pg_dsn, tmp_path):
    conn = db.connect(pg_dsn)
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "make.sql").write_text("CREATE TABLE made AS SELECT :interval.end AS day")
    ctx = sql_context("made")
    ctx.flowfile_dir = str(tmp_path)
    assert run_sql(ctx, SqlAction(None, "sql/make.sql", NO_SPAN, NO_SPAN), conn) == "sql done, 1 rows"
    assert query(conn, "SELECT day FROM made") == [(datetime.date(2012, 7, 1),)]


def test_sql_errors_roll_back(pg_dsn):
    conn = db.connect(pg_dsn)
    failing = SqlAction("CREATE TABLE s (x int); INSERT INTO s VALUES (1 / 0)", None, NO_SPAN, NO_SPAN)
    with pytest.raises(ActionFailed, match=r"^sql of monthly_summary\(2012-06\) failed: division by zero$"):
        run_sql(sql_context("s"), failing, conn)
    no_table = SqlAction("SELECT :interval.start", None, NO_SPAN, NO_SPAN)
    with pytest.raises(ActionFailed, match="did not create its output table 's'"):
        run_sql(sql_context("s"), no_table, conn)
    assert query(conn, "SELECT to_regclass('s')") == [(None,)]
    assert existing_markers(conn, ["monthly_summary(2012-06)"]) == set()


def test_connection_stays_usable_after_failures(pg_dsn, tmp_path):
    conn = db.connect(pg_dsn)
    with pytest.raises(ActionFailed):
        run_sql(sql_context("s"), SqlAction("SELEC 1", None, NO_SPAN, NO_SPAN), conn)
    path = write_tsv(tmp_path / "top.tsv", ROWS[:1])
    assert run_load(context(path), load_action(), conn) == "loaded 1 rows into top10"
