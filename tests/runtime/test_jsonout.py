"""`--format json` of the dry run, flow status, flow log and flow list: the real command's stdout is one document
that follows its documented schema, and says what the text output says."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.schemas import validate
from tests.serving import clone_root_project, make_project
from tests.serving import flow as run_flow

TODAY = ("--today", "2012-08-01")


@pytest.fixture
def clone(tmp_path):
    """The repository's Flowfile and examples in a temporary directory."""
    clone_root_project(tmp_path)
    return tmp_path


def flow(directory, *args, env=None):
    return run_flow(directory, *args, env=env, timeout=600)


def document(result, schema: str) -> dict:
    """The one JSON document on stdout, checked against docs/schemas/`schema`."""
    parsed = json.loads(result.stdout)  # fails if anything else was printed on stdout
    validate(parsed, schema)
    return parsed


# a dry-run line: the id (padded), two spaces, where the output goes, two spaces, (the reason)
DRY_RUN_LINE = re.compile(r"^(?P<id>\S(?:.*?\S)?)\s{2,}(?P<where>\S+)  \((?P<reason>[^)]*)\)$")


def text_plan(stdout: str) -> list:
    """(id, where, reason) of each task line of the text dry run, in order."""
    lines = []
    text = stdout.split("\n\n", 1)[1] if stdout.startswith("today: ") else stdout  # the clock's block first
    for line in text.splitlines():
        if not line.strip():
            break  # the task lines end at the first blank line; counts follow
        match = DRY_RUN_LINE.match(line)
        assert match, f"not a task line: {line!r}"
        lines.append((match["id"], match["where"], match["reason"]))
    return lines


def test_dry_run_json_lists_exactly_the_tasks_of_the_text_output(clone):
    # one day's count exists already: the plan stops there, and the dry run says why each task runs
    assert flow(clone, "build", "-q", *TODAY, "daily_artist_streams(2012-06-01)").returncode == 0
    text = flow(clone, "--dry-run", *TODAY, "top_artists_2012-06.tsv", "artist_streams_2012-07.tsv")
    as_json = flow(clone, "--dry-run", "--format", "json", *TODAY, "top_artists_2012-06.tsv",
                   "artist_streams_2012-07.tsv")
    assert text.returncode == as_json.returncode == 0, as_json.stderr
    plan = document(as_json, "dry-run.v1.json")
    assert [(t["id"], t["output"]["location"], t["reason"]) for t in plan["tasks"]] == text_plan(text.stdout)
    assert len(plan["tasks"]) == 29 + 29 + 1 + 1 + 31 + 31 + 1
    assert plan["complete"] == 1 and "1 task is already complete" in text.stdout
    assert [t["id"] for t in plan["targets"]] == ["top_artists(2012-06)", "artist_streams(2012-07)"]
    assert all(t["exists"] is False for t in plan["targets"] + plan["tasks"])
    top = next(t for t in plan["tasks"] if t["id"] == "top_artists(2012-06)")
    assert top["params"] == {"interval": "2012-06", "engine": "python"}
    assert top["output"] == {"kind": "file", "location": "data/top_artists_2012-06.tsv"}
    # the Flowfile reads today (a range relative to it): the JSON says which day, as the text does
    assert plan["today"] == {"date": "2012-08-01", "pinned": True, "zone": "UTC"}
    assert {"name": "last_7_days", "first": "2012-07-25", "last": "2012-07-31", "count": 7} in plan["ranges"]
    assert not os.path.exists(clone / "data" / "top_artists_2012-06.tsv")  # a dry run runs nothing


def test_dry_run_json_of_a_forced_and_a_complete_target(clone):
    assert flow(clone, "build", "-q", *TODAY, "streams(2012-06-01)").returncode == 0
    forced = document(flow(clone, "--dry-run", "--format", "json", "--force", *TODAY, "streams(2012-06-01)"),
                      "dry-run.v1.json")
    assert [(t["id"], t["reason"], t["exists"]) for t in forced["tasks"]] == [("streams(2012-06-01)", "forced", True)]
    done = flow(clone, "--dry-run", "--format", "json", *TODAY, "streams(2012-06-01)")
    assert done.returncode == 0
    nothing = document(done, "dry-run.v1.json")
    assert nothing["tasks"] == [] and nothing["complete"] == 1
    assert [(t["id"], t["exists"]) for t in nothing["targets"]] == [("streams(2012-06-01)", True)]


def test_dry_run_json_says_whether_each_table_marker_exists(clone, pg_dsn):
    env = {"FLOW_DATABASE_URL": pg_dsn}
    built = flow(clone, "build", "-q", "-j", "2", *TODAY, "toplist_db(2012-06)", env=env)
    assert built.returncode == 0, built.stderr
    plan = document(flow(clone, "--dry-run", "--format", "json", *TODAY, "toplist_summary(2012-06)",
                         "toplist_db(2012-07)", env=env), "dry-run.v1.json")
    tables = {t["id"]: (t["marker"], t["reason"]) for t in plan["tasks"] if t["output"]["kind"] == "table"}
    assert tables == {"toplist_summary(2012-06)": (False, "marker row missing"),
                      "toplist_db(2012-07)": (False, "marker row missing")}
    assert all("marker" not in t for t in plan["tasks"] if t["output"]["kind"] != "table")
    loaded = document(flow(clone, "--dry-run", "--format", "json", *TODAY, "toplist_db(2012-06)", env=env),
                      "dry-run.v1.json")
    assert [(t["id"], t["marker"]) for t in loaded["targets"]] == [("toplist_db(2012-06)", True)]


def test_a_database_that_cannot_be_reached_makes_markers_unknown_and_says_so_on_stderr(clone):
    unreachable = {"FLOW_DATABASE_URL": "postgresql://flow@127.0.0.1:1/nowhere?connect_timeout=5"}
    result = flow(clone, "--dry-run", "--format", "json", *TODAY, "toplist_db(2012-06)", env=unreachable)
    assert result.returncode == 0, result.stderr
    plan = document(result, "dry-run.v1.json")
    table = next(t for t in plan["tasks"] if t["id"] == "toplist_db(2012-06)")
    assert (table["exists"], table["marker"], table["reason"]) == (None, None, "marker unknown: database unreachable")
    assert plan["targets"][0]["marker"] is None
    assert len(plan["notes"]) == 1 and plan["notes"][0].startswith("note: cannot check table outputs: ")
    assert plan["notes"][0] in result.stderr


def test_format_json_needs_a_dry_run_and_events_need_a_build(tmp_path):
    project = make_project(tmp_path)
    build = flow(project, "build", "--format", "json", "good")
    assert build.returncode == 2 and "--format json needs --dry-run" in build.stderr and build.stdout == ""
    events = flow(project, "--dry-run", "--events", "events.jsonl", "good")
    assert events.returncode == 2 and "--events" in events.stderr
    assert not os.path.exists(os.path.join(project, "events.jsonl"))


def test_status_json_marks_each_task_once_with_what_it_requires(tmp_path):
    project = make_project(tmp_path)
    assert flow(project, "build", "-k", "broken", "day_2012-01-01.txt").returncode == 1
    result = flow(project, "status", "--format", "json", "broken", "month_2012-01.txt")
    assert result.returncode == 0, result.stderr
    status = document(result, "status.v1.json")
    tasks = {t["id"]: t for t in status["tasks"]}
    assert len(tasks) == len(status["tasks"])  # each task once
    assert status["targets"][:3] == ["after_bad(2012-03-01)", "after_bad(2012-03-02)", "after_bad(2012-03-03)"]
    assert tasks["after_bad(2012-03-01)"]["status"] == "missing"
    assert tasks["after_bad(2012-03-01)"]["requires"] == ["bad(2012-03-01)"]
    bad = tasks["bad(2012-03-01)"]
    assert bad["status"] == "failed" and bad["last_attempt"]["status"] == "failed"
    assert "no data for 2012-03-01" in bad["last_attempt"]["error"]
    assert "hunter2secret" not in result.stdout  # the action's error named a password: redacted
    assert tasks["day(2012-01-01)"]["status"] == "complete" and tasks["day(2012-01-01)"]["requires"] == []
    assert tasks["month(2012-01)"]["status"] == "missing" and len(tasks["month(2012-01)"]["requires"]) == 31
    assert tasks["day(2012-01-02)"]["status"] == "missing"
    # the same marks as the text tree
    text = flow(project, "status", "broken").stdout
    assert "bad(2012-03-01)  [FAILED last time" in text and status["truncated"] is False


def test_log_json_lists_runs_newest_first_with_redacted_failures(tmp_path):
    project = make_project(tmp_path)
    empty = flow(project, "log", "--format", "json")
    assert document(empty, "log.v1.json")["runs"] == []
    assert flow(project, "build", "-k", "broken").returncode == 1
    assert flow(project, "build", "day_2012-01-01.txt").returncode == 0
    result = flow(project, "log", "--format", "json")
    log = document(result, "log.v1.json")
    newest, failed_run = log["runs"]
    assert newest["status"] == "success" and newest["command"] == "flow build day_2012-01-01.txt"
    assert newest["counts"]["ran"] == 1 and newest["failed"] == []
    assert failed_run["status"] == "failed" and failed_run["counts"]["failed"] == 3
    assert sorted(a["task"] for a in failed_run["failed"]) == ["bad(2012-03-01)", "bad(2012-03-02)",
                                                                "bad(2012-03-03)"]
    assert all("RuntimeError: no data for" in a["error"] and "***" in a["error"] for a in failed_run["failed"])
    assert "hunter2secret" not in result.stdout
    pruned = document(flow(project, "log", "--prune", "1", "--format", "json"), "log.v1.json")
    assert pruned == {"version": 1, "command": "log-prune", "deleted": 1, "kept": 1}


def test_list_json_has_every_rule_target_and_range_of_the_text_listing(clone):
    result = flow(clone, "list", "--format", "json", *TODAY)
    listing = document(result, "list.v1.json")
    text = flow(clone, "list", *TODAY).stdout
    assert [r["name"] for r in listing["rules"]] == re.findall(r"^  (\w+)\(", text, re.MULTILINE)
    top = next(r for r in listing["rules"] if r["name"] == "top_artists")
    assert top["params"] == [{"name": "interval", "type": "interval", "significant": True, "default": None},
                             {"name": "engine", "type": "str", "significant": False, "default": '"python"'}]
    assert top["output"] == {"kind": "file", "pattern": "data/top_artists_{interval}.tsv"}
    assert top["action"] == "python" and top["doc"].startswith("The ten most streamed artists")
    targets = {t["name"]: t["tasks"] for t in listing["targets"]}
    assert targets == {"toplists_2012": 12, "last_7_days_counts": 7, "toplists_db_2012": 12}
    ranges = {r["name"]: r for r in listing["ranges"]}
    assert ranges["months_2012"]["count"] == 12 and ranges["months_2012"]["relative"] is False
    assert ranges["last_7_days"]["first"] == "2012-07-25" and ranges["last_7_days"]["relative"] is True
    assert listing["default"] == "toplists_db_2012"


def test_a_flowfile_error_is_text_on_stderr_and_nothing_on_stdout(tmp_path):
    (tmp_path / "Flowfile").write_text("rule a(:\n")
    for command in (["--dry-run"], ["status"], ["list"]):
        result = flow(tmp_path, *command, "--format", "json")
        assert result.returncode == 2 and result.stdout == ""
        assert "Flowfile:1:" in result.stderr and "Traceback" not in result.stderr


def test_a_list_written_item_by_item_is_the_same_text_as_the_whole_document():
    import io

    from flow.runtime.commands.jsonout import dumps, write

    items = [{"id": f"day(2012-06-{d:02d})", "exists": d % 2 == 0} for d in range(1, 2501)]
    streamed = io.StringIO()
    write({"version": 1, "tasks": iter(items), "notes": []}, streamed)
    assert streamed.getvalue() == dumps({"version": 1, "tasks": items, "notes": []}) + "\n"
    empty = io.StringIO()
    write({"tasks": iter([])}, empty)
    assert json.loads(empty.getvalue()) == {"tasks": []}
