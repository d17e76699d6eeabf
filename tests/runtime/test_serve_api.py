"""`flow serve`'s JSON endpoints and pages over a history written by real builds through the `flow` command."""

from __future__ import annotations

import socket
import subprocess
import sys
from urllib.parse import quote

import pytest

from tests.serving import BUILT, Server, environment, flow, make_project, start_flow, wait_for


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A project after `flow build -k good broken` (run 1), then a no-op of `good` and a build of day(2012-05-01)."""
    directory = make_project(tmp_path_factory.mktemp("served"))
    first = flow(directory, "build", "-k", "-j", "2", "good", "broken")
    assert first.returncode == 1, first.stdout + first.stderr
    second = flow(directory, "build", "day(2012-05-01)")
    assert second.returncode == 0, second.stdout + second.stderr
    server = Server(directory)
    yield directory, server
    server.stop()


def test_runs_newest_first_with_command_state_counts_and_host(built):
    _, server = built
    answer = server.json("/api/runs")
    assert answer["total"] == 2
    newest, first = answer["runs"]
    assert newest["command"] == "flow build day(2012-05-01)" and newest["state"] == "success"
    assert first["command"] == "flow build good broken" and first["state"] == "failed"
    assert first["counts"]["ran"] == 62 and first["counts"]["failed"] == 3 and first["counts"]["blocked"] == 3
    assert first["plan"] == {"tasks": 68, "complete": 0, "jobs": 2,
                             "rules": {"day": 59 + 1, "month": 2, "bad": 3, "after_bad": 3}}
    assert first["host"] == socket.gethostname() and first["duration"] > 0
    assert server.json("/api/runs?limit=1&offset=1")["runs"][0]["id"] == first["id"]


def test_a_run_counts_its_tasks_by_status_and_rule(built):
    _, server = built
    answer = server.json("/api/runs/1")
    assert {k: v for k, v in answer["counts"].items() if v} == BUILT
    assert answer["rules"] == {"day": {"done": 60}, "month": {"done": 2}, "bad": {"failed": 3},
                               "after_bad": {"upstream_failed": 3}}
    assert answer["progress"] == {"finished": 68, "total": 68, "eta": None}
    assert answer["live"] is False


def test_a_runs_task_list_is_searched_filtered_and_paged_on_the_server(built):
    _, server = built
    everything = server.json("/api/runs/1/tasks?limit=1000")
    assert everything["total"] == 68
    statuses = [row["status"] for row in everything["rows"]]
    assert statuses[:3] == ["failed"] * 3 and statuses[3:6] == ["upstream_failed"] * 3  # failures first
    found = server.json("/api/runs/1/tasks?q=" + quote("2012-01-15"))
    assert [row["id"] for row in found["rows"]] == ["day(2012-01-15)"]
    failed = server.json("/api/runs/1/tasks?status=failed")
    assert [row["id"] for row in failed["rows"]] == ["bad(2012-03-01)", "bad(2012-03-02)", "bad(2012-03-03)"]
    assert "RuntimeError: no data for 2012-03-01" in failed["rows"][0]["error"]
    assert server.json("/api/runs/1/tasks?rule=month")["total"] == 2
    assert server.json("/api/runs/1/tasks?hide_done=1")["total"] == 6
    page = server.json("/api/runs/1/tasks?status=done&offset=50&limit=50")
    assert page["total"] == 62 and len(page["rows"]) == 12


def test_a_target_shows_every_task_a_build_of_it_needs_with_its_status(built):
    directory, server = built
    assert server.json("/api/targets") == {"targets": ["good", "broken", "live"], "default": "good"}
    broken = server.json("/api/target?name=broken")
    assert {k: v for k, v in broken["counts"].items() if v} == {"failed": 3, "upstream_failed": 3}
    assert broken["target"]["roots"] == ["after_bad(2012-03-01)", "after_bad(2012-03-02)", "after_bad(2012-03-03)"]
    live = server.json("/api/target/tasks?name=live")
    assert {row["id"]: row["status"] for row in live["rows"]} == {
        "held(2012-04-01)": "pending", "held(2012-04-02)": "pending",
        "day(2012-04-01)": "pending", "day(2012-04-02)": "pending"}
    good = server.json("/api/target?name=good")  # complete tasks are leaves, as a build sees them
    assert {k: v for k, v in good["counts"].items() if v} == {"done": 2}
    assert server.json("/api/target/tasks?name=" + quote("month(2012-01)"))["rows"][0]["status"] == "done"


def test_the_rule_graph_with_and_without_counts(built):
    _, server = built
    plain = server.json("/api/graph")
    assert [node["id"] for node in plain["nodes"]] == ["day", "month", "bad", "after_bad", "held"]
    assert sorted(map(tuple, plain["edges"])) == [("bad", "after_bad"), ("day", "held"), ("day", "month")]
    counted = server.json("/api/graph?run=1&hide_done=1")
    assert {node["id"]: node["counts"] for node in counted["nodes"]} == {
        "bad": {"failed": 3}, "after_bad": {"upstream_failed": 3}}
    assert counted["edges"] == [["bad", "after_bad"]]
    target = server.json("/api/graph?target=live")
    assert {node["id"] for node in target["nodes"]} == {"day", "held"}


def test_a_task_shows_parameters_output_attempts_error_and_log_without_the_password(built):
    _, server = built
    task = server.json("/api/task?id=" + quote("bad(2012-03-02)"))
    assert task["rule"] == "bad" and task["params"] == {"date": "2012-03-02"}
    assert task["output"] == "out/bad_2012-03-02.txt" and task["exists"] is False
    assert [(a["run_id"], a["status"], a["attempt"]) for a in task["attempts"]] == [(1, "failed", 1)]
    assert task["attempts"][0]["pid"] == server.json("/api/runs/1")["run"]["pid"]  # the process that ran it
    assert task["attempts"][0]["duration"] >= 0
    assert "RuntimeError: no data for 2012-03-02" in task["error"]
    assert "postgresql://loader:***@db.example/warehouse" in task["error"]
    assert "no data for 2012-03-02" in task["log_tail"]
    assert task["required_by"] == ["after_bad(2012-03-02)"] and task["requires"] == []
    assert task["neighbour_status"] == {"after_bad(2012-03-02)": "upstream_failed"}
    month = server.json("/api/task?id=" + quote("month(2012-02)"))
    assert month["exists"] is True and month["status"] == "done"
    assert len(month["requires"]) == 29 and month["required_by"] == []
    for path in ("/api/runs/1/tasks?status=failed", "/api/task?id=" + quote("bad(2012-03-02)"),
                 "/runs/1?status=failed", "/task?id=" + quote("bad(2012-03-02)")):
        status, body = server.get(path)
        assert status == 200 and "hunter2secret" not in body, path


def test_pages_render_and_bad_requests_are_one_clear_message(built):
    _, server = built
    for path in ("/", "/runs/1", "/runs/1?q=2012-01&status=done&offset=10", "/target?name=good", "/graph",
                 "/targets", "/task?id=" + quote("month(2012-01)"), "/static/flow.css", "/static/flow.js"):
        status, _ = server.get(path)
        assert status == 200, path
    assert server.json("/api/runs/99", 404) == {"error": "no run #99 in the history"}
    assert server.json("/api/runs/1/tasks?status=weird", 400)["error"].startswith("'status' must be one of")
    assert server.json("/api/runs?limit=x", 400) == {"error": "'limit' must be a whole number, not 'x'"}
    assert "is not a target" in server.json("/api/target?name=nothing", 400)["error"]
    assert server.json("/api/task?id=" + quote("nothing(1)"), 404)["error"].startswith("no task 'nothing(1)'")
    status, body = server.get("/runs/99")
    assert status == 404 and "no run #99" in body


def test_a_live_build_shows_running_tasks_progress_and_then_its_end(tmp_path):
    directory = make_project(tmp_path)
    server = Server(directory)
    build = start_flow(directory, "build", "-j", "2", "live")
    try:
        def running():
            runs = server.json("/api/runs")["runs"]
            return runs and server.json(f"/api/runs/{runs[0]['id']}")["counts"]["running"] == 2 and runs[0]
        run = wait_for(running, "both held tasks to show as running")
        assert run["state"] == "running"
        answer = server.json(f"/api/runs/{run['id']}")
        assert answer["live"] is True
        assert answer["counts"]["done"] == 2 and answer["counts"]["pending"] == 0
        assert answer["progress"]["finished"] == 2 and answer["progress"]["total"] == 4
        assert answer["progress"]["eta"] is not None  # the two days' pace stands in for held
        rows = server.json(f"/api/runs/{run['id']}/tasks?status=running")["rows"]
        assert sorted(row["id"] for row in rows) == ["held(2012-04-01)", "held(2012-04-02)"]
        under_way = server.json("/api/task?id=" + quote("held(2012-04-01)"))["running"]
        assert (under_way["run_id"], under_way["host"], under_way["pid"]) == (run["id"], socket.gethostname(),
                                                                               build.pid)
        assert server.json("/api/target?name=live")["counts"]["running"] == 2
        (tmp_path / "release").write_text("")
        assert build.wait(timeout=120) == 0
        final = server.json(f"/api/runs/{run['id']}")
        assert final["run"]["state"] == "success" and final["counts"]["done"] == 4 and final["counts"]["running"] == 0
    finally:
        (tmp_path / "release").write_text("")
        build.wait(timeout=120)
        server.stop()


def test_start_up_errors_are_one_line(tmp_path):
    directory = make_project(tmp_path)
    missing = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['starlette'] = None; from flow.runtime.cli import main; "
         "main(['serve'])"], cwd=directory, env=environment(), capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert missing.stderr == "error: flow serve needs the web extra: pip install 'flow[web]'\n"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = flow(directory, "serve", "--port", str(taken.getsockname()[1]))
    assert busy.returncode == 2 and busy.stderr.startswith("error: cannot listen on 127.0.0.1:")
    assert len(busy.stderr.splitlines()) == 1
    (tmp_path / "Flowfile").write_text("rule x(:\n")
    broken = flow(directory, "serve")
    assert broken.returncode == 2 and broken.stderr.startswith("Flowfile:1:")


def test_other_commands_never_import_the_web_stack(tmp_path):
    directory = make_project(tmp_path)
    code = ("import sys\nfrom flow.runtime.cli import main\ntry:\n    main(['list'])\nexcept SystemExit:\n    pass\n"
            "print('web stack:', sorted(m for m in ('starlette', 'uvicorn', 'flow.runtime.web') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=directory, env=environment(), capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "web stack: []"


def test_serving_changes_nothing_in_the_project(built):
    directory, server = built
    import os

    before = {name: os.stat(os.path.join(directory, ".flow", name)).st_mtime_ns
              for name in os.listdir(os.path.join(directory, ".flow")) if name.startswith("history")}
    for path in ("/", "/runs/1", "/target?name=live", "/task?id=" + quote("day(2012-01-01)")):
        server.get(path)
    after = {name: os.stat(os.path.join(directory, ".flow", name)).st_mtime_ns
             for name in os.listdir(os.path.join(directory, ".flow")) if name.startswith("history")}
    assert after == before
    assert not os.path.exists(os.path.join(directory, "out", "held_2012-04-01.txt"))


def test_free_text_is_redacted_like_dsns(monkeypatch):
    from flow.runtime.db import redact_text

    monkeypatch.setenv("PGPASSWORD", "hunter22")
    monkeypatch.setenv("FLOW_DATABASE_URL", "postgresql://u:p%40ss@h/db")
    text = ("connect postgresql://u:s3cret@h/db failed; password=abc 'postgres://a:b@c/d' env hunter22,"
            " written p%40ss, decoded p@ss")
    assert redact_text(text) == ("connect postgresql://u:***@h/db failed; password=*** 'postgres://a:***@c/d'"
                                 " env ***, written ***, decoded ***")


def test_the_page_never_starts_the_embedded_database(tmp_path):
    import os
    import shutil

    from tests.serving import ROOT

    shutil.copy(os.path.join(ROOT, "Flowfile"), tmp_path)
    server = Server(str(tmp_path))
    try:
        target = server.json("/api/target?name=toplists_db_2012")  # table outputs, no database configured
        assert target["counts"]["pending"] == sum(target["counts"].values()) > 0
        task = server.json("/api/task?id=" + quote("toplist_db(2012-06)"))
        assert task["exists"] is None  # unknown: no database runs
    finally:
        server.stop()
    assert not os.path.exists(tmp_path / ".flow" / "db")


def test_a_history_written_by_an_older_flow_is_read_without_writing_it(tmp_path):
    import os
    import sqlite3

    directory = make_project(tmp_path)
    os.makedirs(tmp_path / ".flow")
    path = tmp_path / ".flow" / "history.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE runs (id INTEGER PRIMARY KEY, started REAL, finished REAL, command TEXT, targets TEXT,
                           status TEXT, counts_json TEXT, host TEXT, pid INTEGER);
        CREATE TABLE attempts (run_id INTEGER, task_id TEXT, rule TEXT, params_json TEXT, output TEXT,
                               status TEXT, attempt INTEGER, started REAL, duration REAL, host TEXT, error TEXT);
        INSERT INTO runs VALUES (1, 10.0, 12.0, 'flow build good', '["good"]', 'failed', '{"failed": 1}', 'h', 1);
        INSERT INTO attempts VALUES (1, 'day(2012-01-01)', 'day', '{"date": "2012-01-01"}', 'out/day_2012-01-01.txt',
                                     'failed', 1, 10.5, 1.0, 'h', 'boom');
        PRAGMA user_version = 1;
    """)
    conn.close()
    before = path.read_bytes()
    server = Server(directory)
    try:
        assert server.json("/api/runs")["runs"][0]["plan"] == {}
        assert {k: v for k, v in server.json("/api/runs/1")["counts"].items() if v} == {"failed": 1}
        assert server.json("/api/runs/1/tasks")["rows"][0]["error"] == "boom"
    finally:
        server.stop()
    assert path.read_bytes() == before


def test_a_live_run_lists_its_pending_tasks(tmp_path):
    # -j 1: once a held task runs, the build waits on it, and what it planned and has not started is pending
    directory = make_project(tmp_path)
    server = Server(directory)
    build = start_flow(directory, "build", "-j", "1", "live")
    try:
        def held_running():
            runs = server.json("/api/runs")["runs"]
            if not runs:
                return None
            rows = server.json(f"/api/runs/{runs[0]['id']}/tasks?status=running")["rows"]
            return any(row["id"].startswith("held(") for row in rows) and runs[0]
        run = wait_for(held_running, "a held task to run")
        answer = server.json(f"/api/runs/{run['id']}")
        started = {row["id"]: row["status"] for row in server.json(f"/api/runs/{run['id']}/tasks")["rows"]}
        pending = server.json(f"/api/runs/{run['id']}/tasks?status=pending")
        names = [row["id"] for row in pending["rows"]]
        assert pending["total"] == len(names) == answer["counts"]["pending"] >= 1
        assert all(row["status"] == "pending" for row in pending["rows"])
        everything = {"day(2012-04-01)", "day(2012-04-02)", "held(2012-04-01)", "held(2012-04-02)"}
        assert set(names) == everything - set(started) and names == sorted(names)
        assert server.json(f"/api/runs/{run['id']}/tasks?status=pending&rule=held")["total"] == \
            sum(1 for name in names if name.startswith("held("))
        status, body = server.get(f"/runs/{run['id']}?status=pending")
        assert status == 200 and all(f">{name}</a>" in body for name in names)
        (tmp_path / "release").write_text("")
        assert build.wait(timeout=120) == 0
        assert server.json(f"/api/runs/{run['id']}/tasks?status=pending")["total"] == 0  # all done now
    finally:
        (tmp_path / "release").write_text("")
        build.wait(timeout=120)
        server.stop()
