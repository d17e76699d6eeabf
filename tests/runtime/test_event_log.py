"""`flow build --events FILE`: the build's events as JSON lines, one listener on the event stream (events.EventLog)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from flow.runtime.events import EventLog, TaskEvent

from tests.schemas import validate
from tests.serving import environment, flow, make_project, start_flow, wait_for

RETRIED = '''
import os

def flaky(date, output):
    # fails on its first attempt, succeeds on the second
    if not os.path.exists(f"tried-{date}"):
        open(f"tried-{date}", "w").close()
        raise RuntimeError("first attempt fails")
    open(output, "w").write("ok\\n")
'''

RETRIED_RULE = '''
rule flaky(date: date):
    """Succeeds on its second attempt."""
    requires: day(date)
    output: "out/flaky_{date}.txt"
    python: retried.flaky
    retries: 2
'''


def events_of(path) -> list:
    """The lines of an event log, each parsed and checked against docs/schemas/events.v1.json."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    assert text.endswith("\n"), "the log ends with a whole line"
    lines = [json.loads(line) for line in text.splitlines()]
    for line in lines:
        validate(line, "events.v1.json")
    return lines


@pytest.fixture
def project(tmp_path):
    directory = make_project(tmp_path)
    (tmp_path / "retried.py").write_text(RETRIED)
    with open(tmp_path / "Flowfile", "a") as flowfile:
        flowfile.write(textwrap.dedent(RETRIED_RULE))
    return directory


def test_a_build_with_a_failed_and_a_retried_task_writes_every_event(project):
    result = flow(project, "build", "-k", "--events", "events.jsonl", "broken", "flaky(2012-05-01)")
    assert result.returncode == 1, result.stderr
    events = events_of(os.path.join(project, "events.jsonl"))
    first, last = events[0], events[-1]
    assert first["event"] == "run-started" and first["version"] == 1 and first["tasks"] == 8
    assert first["targets"] == ["after_bad(2012-03-01)", "after_bad(2012-03-02)", "after_bad(2012-03-03)",
                                "flaky(2012-05-01)"]
    assert last["event"] == "run-finished" and last["status"] == "failed" and last["exit_code"] == 1
    assert last["counts"]["ran"] == 2 and last["counts"]["failed"] == 3 and last["counts"]["blocked"] == 3
    flaky = [(e["event"], e["attempt"]) for e in events if e.get("task") == "flaky(2012-05-01)"]
    assert flaky == [("task-started", 1), ("task-retried", 1), ("task-started", 2), ("task-finished", 2)]
    retried = next(e for e in events if e["event"] == "task-retried")
    assert retried["error"] == "RuntimeError: first attempt fails" and retried["retries"] == 2
    assert retried["log"] == os.path.join(".flow", "logs", "flaky", "flaky(2012-05-01).log")
    failed = [e for e in events if e["event"] == "task-failed"]
    assert sorted(e["task"] for e in failed) == ["bad(2012-03-01)", "bad(2012-03-02)", "bad(2012-03-03)"]
    assert all("postgresql://loader:***@db.example" in e["error"] for e in failed)
    assert all(any("RuntimeError: no data" in line for line in e["tail"]) for e in failed)
    blocked = {e["task"]: e["blocked_by"] for e in events if e["event"] == "task-blocked"}
    assert blocked == {f"after_bad(2012-03-0{d})": f"bad(2012-03-0{d})" for d in (1, 2, 3)}
    with open(os.path.join(project, "events.jsonl"), encoding="utf-8") as handle:
        assert "hunter2secret" not in handle.read()
    times = [e["time"] for e in events]
    assert times[0] <= min(times[1:]) and times[-1] >= max(times[:-1])

    # the same run, and the same failed attempts, as the history the page and `flow log` read
    log = json.loads(flow(project, "log", "--format", "json").stdout)["runs"][0]
    assert log["id"] == first["run"]
    assert sorted((a["task"], a["attempt"]) for a in log["failed"]) == sorted(
        (e["task"], e["attempt"]) for e in events if e["event"] in ("task-failed", "task-retried"))


def test_nothing_to_do_still_writes_a_run_started_and_a_run_finished_line(project):
    assert flow(project, "build", "day_2012-01-01.txt").returncode == 0
    again = flow(project, "build", "--events", "noop.jsonl", "day_2012-01-01.txt")
    assert again.returncode == 0 and again.stdout.startswith("nothing to do")
    events = events_of(os.path.join(project, "noop.jsonl"))
    assert [(e["event"], e.get("run"), e.get("status")) for e in events] == [
        ("run-started", None, None), ("run-finished", None, "success")]


def test_a_flowfile_error_replaces_the_last_builds_log(project):
    assert flow(project, "build", "--events", "events.jsonl", "day_2012-01-01.txt").returncode == 0
    with open(os.path.join(project, "Flowfile"), "a") as flowfile:
        flowfile.write("rule broken(:\n")
    result = flow(project, "build", "--events", "events.jsonl", "day_2012-01-01.txt")
    assert result.returncode == 2 and "Flowfile:" in result.stderr
    events = events_of(os.path.join(project, "events.jsonl"))
    assert [(e["event"], e.get("status"), e.get("exit_code")) for e in events] == [
        ("run-started", None, None), ("run-finished", "error", 2)]


def test_a_path_that_cannot_be_written_stops_the_build_before_it_starts(project):
    result = flow(project, "build", "--events", "no/such/dir/events.jsonl", "day_2012-01-01.txt")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: cannot write no/such/dir/events.jsonl: No such file or directory"
    assert not os.path.exists(os.path.join(project, "out"))


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_a_full_disk_stops_the_log_with_a_warning_not_the_build(project):
    result = flow(project, "build", "--events", "/dev/full", "month_2012-01.txt")
    assert result.returncode == 0, result.stderr
    assert "warning: cannot write /dev/full: No space left on device; the event log stops here" in result.stderr
    assert os.path.exists(os.path.join(project, "out", "month_2012-01.txt"))


def test_a_killed_build_leaves_whole_lines_only(project):
    build = start_flow(project, "build", "--events", "events.jsonl", "live")
    try:
        log = os.path.join(project, "events.jsonl")

        def held_started():
            if not os.path.exists(log):
                return False
            with open(log, encoding="utf-8") as handle:
                return any('"task-started"' in line and '"rule": "held"' in line for line in handle)

        wait_for(held_started, "the held task's start in the event log")  # written within a second
        os.killpg(build.pid, signal.SIGKILL)
        build.wait(timeout=60)
    finally:
        if build.poll() is None:
            os.killpg(build.pid, signal.SIGKILL)
            build.wait(timeout=60)
        build.stdout.close()
        build.stderr.close()
    events = events_of(log)
    assert events[0]["event"] == "run-started" and events[-1]["event"] != "run-finished"


# ---------------------------------------------------------------------------- the listener itself


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def a_task(tmp_path):
    """A real Task of a small Flowfile (EventLog reads its rule, parameters and output)."""
    from flow.compiler.graph import TaskFactory
    from flow.compiler.loader import load
    from flow.runtime.clock import build_clock

    make_project(tmp_path)
    checked = load(str(tmp_path / "Flowfile"))
    return TaskFactory(checked, build_clock("UTC", "2012-06-01")).target("good")[0]


def test_events_wait_in_the_buffer_until_a_second_has_passed(tmp_path):
    clock = Clock()
    task = a_task(tmp_path)
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path), "flow build", str(tmp_path), clock=clock)
    log.run_started(1, {"tasks": 1, "complete": 0, "jobs": 1})
    log.task_started(TaskEvent("started", task, 1, 1000.0))
    assert path.read_text() == ""  # buffered: no write per event
    assert log.wake_at() == 101.0
    clock.now = 100.5
    log.tick()
    assert path.read_text() == ""
    clock.now = 101.0
    log.tick()
    assert [json.loads(line)["event"] for line in path.read_text().splitlines()] == ["run-started", "task-started"]
    log.task_finished(TaskEvent("failed", task, 1, 1000.0, 0.5, "boom"))  # a failure is written at once
    assert json.loads(path.read_text().splitlines()[-1])["event"] == "task-failed"
    assert log.close(1, "failed") is None
    assert json.loads(path.read_text().splitlines()[-1])["status"] == "failed"


def test_a_write_that_fails_half_way_is_cut_back_to_the_last_whole_line(tmp_path, monkeypatch):
    clock = Clock()
    task = a_task(tmp_path)
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path), "flow build", str(tmp_path), clock=clock)
    log.run_started(1, {"tasks": 1})
    log.tick()
    clock.now = 102.0
    log.tick()
    whole = path.read_text()
    real_write = os.write

    def half_then_full(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))  # part of a line reaches the file, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    log.task_started(TaskEvent("started", task, 1, 1000.0))
    clock.now = 104.0
    log.tick()
    monkeypatch.undo()
    problem = log.close(1, "failed")
    assert problem == f"cannot write {path}: No space left on device; the event log stops here"
    assert path.read_text() == whole  # the half line is gone, and nothing was written after it


def test_a_thousand_tasks_give_one_start_and_one_end_line_each(tmp_path):
    """A thousand tasks through a real build with --events: one line per start and end, in order per task."""
    (tmp_path / "acts.py").write_text("def day(date, output):\n    open(output, 'w').write(str(date))\n")
    (tmp_path / "Flowfile").write_text(textwrap.dedent('''
        rule day(date: date):
            output: "out/{date}.txt"
            python: acts.day

        target many: day(d) for d in days(2010-01-01 .. 2012-09-26)
    '''))
    result = subprocess.run([sys.executable, "-m", "flow.runtime.cli", "build", "-q", "-j", "2", "--events",
                             "events.jsonl", "many"], cwd=tmp_path, env=environment(), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    events = events_of(tmp_path / "events.jsonl")
    assert len(events) == 2 + 2 * 1000
    per_task: dict = {}
    for event in events[1:-1]:
        per_task.setdefault(event["task"], []).append(event["event"])
    assert len(per_task) == 1000 and all(kinds == ["task-started", "task-finished"] for kinds in per_task.values())
