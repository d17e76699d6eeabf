"""Run history: rows written and read back, one transaction per batch, two writing processes, latest status."""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
import subprocess
import sys

import pytest
from flow.compiler import types as T
from flow.compiler.checks import check
from flow.compiler.graph import TaskFactory
from flow.compiler.parser import parse
from flow.runtime.history import History

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLOWFILE = """
rule streams(date: date):
    output: "data/streams/{date}.tsv"
    python: examples.top_artists.fake_streams

rule top_artists(interval: interval, engine: str = "python" insignificant):
    output: "data/top_artists_{interval}.tsv"
    python: examples.top_artists.top10
"""


def make_factory():
    return TaskFactory(check(parse(FLOWFILE), FLOWFILE))


@pytest.fixture(scope="module")
def factory():
    return make_factory()


def streams(factory, n, first=datetime.date(2000, 1, 1)):
    return [factory.task("streams", (first + datetime.timedelta(days=i),)) for i in range(n)]


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def transactions(history):
    """Start recording the statements the history's connection runs; return the list they go to."""
    statements = []
    history._db().set_trace_callback(statements.append)
    return statements


def count(statements, word):
    return sum(1 for s in statements if s.strip().upper().startswith(word))


# ---------------------------------------------------------------------------- rows


def test_rows_are_recorded_and_read_back(tmp_path, factory):
    flow_dir = str(tmp_path / ".flow")
    history = History(flow_dir)
    top = factory.task("top_artists", (T.month(2012, 6), "spark"))
    day = streams(factory, 1)[0]
    run = history.start_run("flow build -j 2 toplists", ["toplists"])
    history.record(run, day, "done", 1, 1000.0, 0.5)
    history.record(run, top, "failed", 1, 1001.0, 2.0, "ValueError: no rows")
    history.record(run, top, "timeout", 2, 1004.0, 60.0, "timed out after 60s")
    history.finish_run(run, "failed", {"ran": 1, "failed": 1})
    history.close()

    again = History(flow_dir)
    [latest] = again.recent_runs(5)
    assert latest["id"] == run
    assert latest["command"] == "flow build -j 2 toplists"
    assert latest["targets"] == ["toplists"]
    assert latest["status"] == "failed"
    assert latest["counts"] == {"ran": 1, "failed": 1}
    assert latest["host"] and latest["pid"] == os.getpid()
    assert latest["finished"] >= latest["started"]
    failed = again.failed_attempts(run)
    assert [(a["task_id"], a["status"], a["attempt"], a["error"]) for a in failed] == [
        ("top_artists(2012-06)", "failed", 1, "ValueError: no rows"),
        ("top_artists(2012-06)", "timeout", 2, "timed out after 60s"),
    ]
    assert failed[0]["rule"] == "top_artists"
    assert failed[0]["params"] == {"interval": "2012-06", "engine": "spark"}
    assert failed[0]["output"] == "data/top_artists_2012-06.tsv"
    assert failed[0]["duration"] == 2.0
    assert again.mean_durations(["streams", "top_artists", "nothing"]) == {"streams": 0.5}
    again.close()

    conn = sqlite3.connect(os.path.join(flow_dir, "history.sqlite"))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {row[0] for row in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index'")}
    assert any("(task_id" in sql for sql in indexes) and any("(rule" in sql for sql in indexes)
    conn.close()


def test_nothing_is_created_until_something_is_written(tmp_path):
    flow_dir = tmp_path / ".flow"
    history = History(str(flow_dir))
    assert history.recent_runs(10) == []
    assert history.last_status(["streams(2012-06-01)"]) == {}
    assert history.mean_durations(["streams"]) == {}
    assert history.failed_attempts(1) == []
    history.close()
    assert not flow_dir.exists()


def test_reads_see_buffered_rows(tmp_path, factory):
    history = History(str(tmp_path), max_age=3600)
    run = history.start_run("flow", [])
    task = streams(factory, 1)[0]
    history.record(run, task, "failed", 1, 10.0, 1.0, "boom")
    assert history.last_status([task.id]) == {task.id: ("failed", 10.0, "boom")}
    history.close()


def test_long_errors_keep_their_end(tmp_path, factory):
    history = History(str(tmp_path))
    run = history.start_run("flow", [])
    history.record(run, streams(factory, 1)[0], "failed", 1, 1.0, 1.0, "x" * 20_000 + "the real error")
    [attempt] = history.failed_attempts(run)
    assert attempt["error"].endswith("the real error") and len(attempt["error"]) < 9_000
    history.close()


# ---------------------------------------------------------------------------- batching


def test_ten_thousand_records_are_one_transaction(tmp_path, factory):
    history = History(str(tmp_path), max_rows=20_000, max_age=3600)
    run = history.start_run("flow", [])
    statements = transactions(history)
    for task in streams(factory, 10_000):
        history.record(run, task, "done", 1, 1.0, 0.01)
    assert statements == []  # nothing written while recording
    history.flush()
    assert count(statements, "BEGIN") == 1 and count(statements, "COMMIT") == 1
    rows = history._db().execute("SELECT count(*) FROM attempts").fetchone()[0]
    assert rows == 10_000
    history.close()


def test_a_full_buffer_is_written_at_5000_rows(tmp_path, factory):
    history = History(str(tmp_path), max_age=3600)
    run = history.start_run("flow", [])
    statements = transactions(history)
    for task in streams(factory, 10_000):
        history.record(run, task, "done", 1, 1.0, 0.01)
    assert count(statements, "BEGIN") == 2
    history.flush()  # nothing left to write
    assert count(statements, "BEGIN") == 2
    history.close()


def test_a_buffer_older_than_a_second_is_written(tmp_path, factory):
    clock = Clock()
    history = History(str(tmp_path), clock=clock)
    run = history.start_run("flow", [])
    statements = transactions(history)
    a, b, c, d = streams(factory, 4)
    history.record(run, a, "done", 1, 1.0, 0.01)
    clock.now = 0.5
    history.record(run, b, "done", 1, 1.0, 0.01)
    assert count(statements, "BEGIN") == 0
    clock.now = 1.0
    history.record(run, c, "done", 1, 1.0, 0.01)
    assert count(statements, "BEGIN") == 1
    # a quiet loop: flush_if_due writes once the oldest row is a second old
    clock.now = 1.5
    history.record(run, d, "done", 1, 1.0, 0.01)
    history.flush_if_due()
    assert count(statements, "BEGIN") == 1
    clock.now = 2.5
    history.flush_if_due()
    assert count(statements, "BEGIN") == 2
    assert history._db().execute("SELECT count(*) FROM attempts").fetchone()[0] == 4
    history.close()


# ---------------------------------------------------------------------------- two processes

WRITER = """
import os, sys, time
from flow.runtime import history as history_module
from flow.runtime.history import History
from tests.runtime.test_history import make_factory, streams
flow_dir, name, barrier = sys.argv[1], sys.argv[2], sys.argv[3]
# What this test checks is that nothing is lost and the writers take turns, not how long a lock is
# waited for: on a loaded CI box the other writer may be descheduled for seconds while it holds it.
history_module.BUSY_SECONDS = 120.0
tasks = streams(make_factory(), 3000)
history = History(flow_dir, max_rows=50)
# both processes begin writing together: each says it is ready, then waits for the other (no timer)
open(os.path.join(barrier, name), "w").close()
deadline = time.monotonic() + 120
while len(os.listdir(barrier)) < 2:
    if time.monotonic() > deadline:
        sys.exit("the other writer never started")
    time.sleep(0.001)
run = history.start_run("flow " + name, [name])
for i, task in enumerate(tasks):
    history.record(run, task, "done", 1, time.time(), 0.001, name)
    if i % 100 == 0:
        time.sleep(0.002)  # like a build, which does other things between records
    if i == 1500:
        # half way: wait until the other writer's rows are in, so the two surely interleave even
        # when a loaded machine starts one process long after the other
        history.flush()
        other = "two" if name == "one" else "one"
        deadline = time.monotonic() + 60
        while not history._db().execute("SELECT 1 FROM attempts WHERE error = ? LIMIT 1", (other,)).fetchone():
            if time.monotonic() > deadline:
                sys.exit("the other writer never wrote")
            time.sleep(0.01)
history.finish_run(run, "done", {"ran": len(tasks)})
history.close()
"""


def test_two_processes_write_at_once_and_lose_nothing(tmp_path):
    flow_dir = str(tmp_path / ".flow")
    barrier = tmp_path / "ready"
    barrier.mkdir()
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, flow_dir, name, str(barrier)], cwd=REPO, env=env,
                                stderr=subprocess.PIPE, text=True) for name in ("one", "two")]
    for writer in writers:
        _, err = writer.communicate(timeout=600)
        assert writer.returncode == 0, err
    conn = sqlite3.connect(os.path.join(flow_dir, "history.sqlite"))
    per_writer = dict(conn.execute("SELECT error, count(*) FROM attempts GROUP BY error"))
    assert per_writer == {"one": 3000, "two": 3000}
    runs = conn.execute("SELECT command, status, counts_json FROM runs ORDER BY command").fetchall()
    assert runs == [("flow one", "done", json.dumps({"ran": 3000})), ("flow two", "done", json.dumps({"ran": 3000}))]
    # The writers' batches interleaved (a switch from one writer to the other more than once),
    # so each really waited for the other's transactions.
    order = [row[0] for row in conn.execute("SELECT error FROM attempts ORDER BY rowid")]
    switches = sum(1 for x, y in zip(order[:-1], order[1:], strict=True) if x != y)
    assert switches > 1, switches
    conn.close()


# ---------------------------------------------------------------------------- reading


def test_last_status_picks_the_latest_attempt(tmp_path, factory):
    history = History(str(tmp_path))
    a, b, c, never = streams(factory, 4)
    first = history.start_run("flow", [])
    history.record(first, a, "failed", 1, 100.0, 1.0, "boom")
    history.record(first, a, "done", 2, 102.0, 1.0)
    history.record(first, b, "done", 1, 100.0, 1.0)
    second = history.start_run("flow", [])
    history.record(second, b, "failed", 1, 200.0, 1.0, "disk full")
    history.record(second, c, "done", 1, 150.0, 1.0)
    # another process was running c: that says nothing about how c went
    history.record(second, c, "skipped", 1, 300.0, 0.0)
    history.flush()
    assert history.last_status([a.id, b.id, c.id, never.id]) == {
        a.id: ("done", 102.0, None),
        b.id: ("failed", 200.0, "disk full"),
        c.id: ("done", 150.0, None),
    }
    history.close()


def test_last_status_of_many_tasks_goes_in_chunks(tmp_path, factory):
    history = History(str(tmp_path))
    run = history.start_run("flow", [])
    tasks = streams(factory, 2500)
    for i, task in enumerate(tasks):
        history.record(run, task, "done" if i % 2 else "failed", 1, float(i), 1.0)
    statements = transactions(history)
    status = history.last_status([t.id for t in tasks] + ["nothing(1)"])
    assert len(status) == 2500
    assert status[tasks[7].id][0] == "done" and status[tasks[8].id][0] == "failed"
    selects = [s for s in statements if s.startswith("SELECT")]
    assert len(selects) == 3  # 900 + 900 + 701 ids
    history.close()


def test_mean_durations_use_recent_successes(tmp_path, factory):
    history = History(str(tmp_path))
    run = history.start_run("flow", [])
    tasks = streams(factory, 80)
    for i, task in enumerate(tasks):
        # 30 old slow ones, then 50 recent ones of 2 s; failures never count
        history.record(run, task, "done", 1, float(i), 10.0 if i < 30 else 2.0)
        history.record(run, task, "failed", 1, float(i) + 0.5, 100.0, "boom")
    top = factory.task("top_artists", (T.month(2012, 6), "python"))
    history.record(run, top, "done", 1, 1.0, 4.0)
    history.record(run, top, "done", 1, 2.0, 6.0)
    assert history.mean_durations(["streams", "top_artists"]) == {"streams": 2.0, "top_artists": 5.0}
    history.close()


def test_recent_runs_newest_first(tmp_path):
    history = History(str(tmp_path))
    ids = [history.start_run(f"flow build {i}", [str(i)]) for i in range(5)]
    history.finish_run(ids[0], "done", {"ran": 0})
    runs = history.recent_runs(3)
    assert [r["id"] for r in runs] == ids[::-1][:3]
    assert runs[0]["status"] == "running" and runs[0]["finished"] is None and runs[0]["counts"] == {}
    history.close()


# ---------------------------------------------------------------------------- what a live page reads


def running_rows(history):
    history.flush()
    return history._db().execute("SELECT task_id, attempt FROM running ORDER BY task_id").fetchall()


def test_a_quick_attempt_never_reaches_the_running_table(tmp_path, factory):
    history = History(str(tmp_path), max_age=3600)
    run = history.start_run("flow", [])
    statements = transactions(history)
    task = streams(factory, 1)[0]
    history.record_start(run, task, 1, 1.0)
    history.record(run, task, "done", 1, 1.0, 0.01)
    history.flush()
    assert not any("running" in s for s in statements)
    assert running_rows(history) == []
    history.close()


def test_a_long_attempt_shows_as_running_until_it_ends(tmp_path, factory):
    clock = Clock()
    history = History(str(tmp_path), clock=clock)
    run = history.start_run("flow", [])
    a, b = streams(factory, 2)
    history.record_start(run, a, 1, 1.0)
    history.record_start(run, b, 1, 1.0)
    assert history.due_at() == 1.0
    clock.now = 1.0
    history.flush_if_due()
    assert history.due_at() is None
    assert running_rows(history) == [(a.id, 1), (b.id, 1)]
    history.record(run, a, "failed", 1, 1.0, 5.0, "boom")
    history.record_start(run, a, 2, 7.0)  # its retry
    assert running_rows(history) == [(a.id, 2), (b.id, 1)]
    history.finish_run(run, "interrupted", {})
    assert running_rows(history) == []
    history.close()


def test_attempts_recorded_together_read_back_as_those_recorded_one_by_one(tmp_path, factory):
    # the executor records the starts and ends of a worker message's jobs in one call each
    clock = Clock()
    history = History(str(tmp_path), clock=clock)
    run = history.start_run("flow", [])
    a, b, c = streams(factory, 3)
    history.record_starts(run, [(a, 1, 1.0), (b, 1, 1.0), (c, 1, 1.0)])
    clock.now = 1.0
    history.flush_if_due()  # the starts reach the disk: a page shows them running
    assert running_rows(history) == [(a.id, 1), (b.id, 1), (c.id, 1)]
    history.record_many(run, [(a, "done", 1, 1.0, 0.5, None), (b, "failed", 1, 1.0, 0.25, "x" * 9000)])
    assert running_rows(history) == [(c.id, 1)]
    rows = history._db().execute("SELECT task_id, rule, params_json, output, status, attempt, duration, length(error)"
                                 " FROM attempts ORDER BY task_id").fetchall()
    assert rows == [(a.id, "streams", '{"date": "2000-01-01"}', a.output, "done", 1, 0.5, None),
                    (b.id, "streams", '{"date": "2000-01-02"}', b.output, "failed", 1, 0.25, 8003)]
    history.close()


def test_plan_and_blocked_tasks_are_recorded(tmp_path, factory):
    history = History(str(tmp_path))
    a, b = streams(factory, 2)
    run = history.start_run("flow build", ["x"], {"tasks": 2, "complete": 0, "jobs": 1, "rules": {"streams": 2}})
    history.record(run, a, "failed", 1, 1.0, 1.0, "boom")
    history.record_blocked(run, {b: a})
    history.finish_run(run, "failed", {"failed": 1, "blocked": 1})
    conn = history._db()
    assert json.loads(conn.execute("SELECT plan_json FROM runs").fetchone()[0])["rules"] == {"streams": 2}
    assert conn.execute("SELECT task_id, status, attempt, error FROM attempts WHERE status = 'blocked'").fetchall() == [
        (b.id, "blocked", 0, f"requires {a.id}, which did not complete")]
    history.close()


def test_a_version_1_file_gains_the_new_column_and_table(tmp_path, factory):
    os.makedirs(tmp_path / ".flow")
    conn = sqlite3.connect(tmp_path / ".flow" / "history.sqlite")
    conn.executescript("""
        CREATE TABLE runs (id INTEGER PRIMARY KEY, started REAL, finished REAL, command TEXT, targets TEXT,
                           status TEXT, counts_json TEXT, host TEXT, pid INTEGER);
        CREATE TABLE attempts (run_id INTEGER, task_id TEXT, rule TEXT, params_json TEXT, output TEXT,
                               status TEXT, attempt INTEGER, started REAL, duration REAL, host TEXT, error TEXT);
        INSERT INTO runs (started, command, targets, status) VALUES (1.0, 'flow build', '[]', 'success');
        PRAGMA user_version = 1;
    """)
    conn.close()
    history = History(str(tmp_path / ".flow"))
    run = history.start_run("flow build y", ["y"], {"tasks": 1})
    history.record_start(run, streams(factory, 1)[0], 1, 1.0)
    assert [r["command"] for r in history.recent_runs(5)] == ["flow build y", "flow build"]
    assert len(running_rows(history)) == 1
    assert history._db().execute("PRAGMA user_version").fetchone()[0] == 2
    history.close()
