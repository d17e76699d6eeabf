"""End-to-end through the `flow` command: resource limits under -j, and priorities deciding what starts first."""

from __future__ import annotations

import pytest

from tests.runtime.test_cli_build import flow, runs, write_flowfile

ACTIONS = '''
import os, time

def _note(text):
    with open(os.path.join(os.environ["FLOW_TEST_DIR"], "runs.log"), "a") as log:
        log.write(text + "\\n")

def _span(name, body):
    """Record when the action started and ended (the system-wide monotonic clock), around body()."""
    started = time.monotonic()
    body()
    with open(os.path.join(os.environ["FLOW_TEST_DIR"], "spans.log"), "a") as log:
        log.write(f"{name} {started!r} {time.monotonic()!r}\\n")

def query(date, output):
    # long enough that tasks started together under -j 4 would surely overlap
    _span(f"query {date}", lambda: time.sleep(0.2))
    open(output, "w").write(f"{date}\\n")

def waits_for_light(date, output):
    # holds the resource until a task that needs none has run: only a loop that skips this
    # rule's waiting tasks and takes the next ready one lets that happen
    deadline = time.monotonic() + 60
    while not os.path.exists("light_ran") and time.monotonic() < deadline:
        time.sleep(0.01)
    _note(f"heavy {date} {'saw light' if os.path.exists('light_ran') else 'gave up'}")
    open(output, "w").write(f"{date}\\n")

def light(date, output):
    open("light_ran", "w").close()
    open(output, "w").write(f"{date}\\n")

def batch_query(partitions, outputs):
    _span(f"batch {partitions[0]} {len(partitions)}", lambda: time.sleep(0.2))
    for day, output in zip(partitions, outputs):
        open(output, "w").write(f"{day}\\n")

def fails(date, output):
    raise RuntimeError(f"no data for {date}")

def note(date, output):
    name = os.path.basename(output).lstrip(".").split("_")[0]  # the output is a temporary: .low_...
    _note(f"{name} {date}")
    open(output, "w").write(f"{date}\\n")
'''

LIMITED = """
resources: postgres = 1

rule query(date: date):
    output: "out/query_{date}.txt"
    resources: postgres=1, memory=2
    python: acts.query

target june: query(d) for d in days(2012-06-01 .. 2012-06-08)
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "acts.py").write_text(ACTIONS)
    return tmp_path


def build(project, *args, resources=""):
    return flow(project, "build", *args, env={"FLOW_RESOURCES": resources})


def spans(project) -> list:
    """(name, start, end) of every recorded action run, by start."""
    found = []
    for line in (project / "spans.log").read_text().splitlines():
        *name, start, end = line.split()
        found.append((" ".join(name), float(start), float(end)))
    return sorted(found, key=lambda span: span[1])


def most_at_once(found: list) -> int:
    """The most actions that ran at the same moment."""
    edges = sorted([(start, 1) for _, start, _ in found] + [(end, -1) for _, _, end in found])
    running = peak = 0
    for _, step in edges:  # at a tie an end sorts first: touching spans do not overlap
        running += step
        peak = max(peak, running)
    return peak


def test_a_limit_of_1_is_never_exceeded_under_j4(project):
    write_flowfile(project, LIMITED)
    result = build(project, "-j", "4", "june")
    assert result.returncode == 0, result.stderr
    found = spans(project)
    assert len(found) == 8
    for (before, _, ended), (after, started, _) in zip(found, found[1:]):
        assert started >= ended, f"{after} started before {before} ended"


def test_sql_tasks_limited_to_one_connection_never_overlap_in_the_database(project, pg_dsn, pg_conn):
    """A real PostgreSQL: each task's transaction records when it started and ended by the server's clock."""
    pg_conn.autocommit = True
    with pg_conn.cursor() as cursor:
        cursor.execute("CREATE TABLE day_rows (day date PRIMARY KEY, started timestamptz, ended timestamptz)")
    write_flowfile(project, """
        resources: postgres = 1

        rule day_rows(date: date):
            output: table "day_rows"
            resources: postgres=1
            sql: \"\"\"
                INSERT INTO day_rows (day, started) VALUES (:date, clock_timestamp());
                SELECT pg_sleep(0.2);
                UPDATE day_rows SET ended = clock_timestamp() WHERE day = :date
            \"\"\"

        target june: day_rows(d) for d in days(2012-06-01 .. 2012-06-06)
    """)
    result = flow(project, "build", "-j", "4", "june", env={"FLOW_DATABASE_URL": pg_dsn, "FLOW_RESOURCES": ""})
    assert result.returncode == 0, result.stderr
    with pg_conn.cursor() as cursor:
        cursor.execute("SELECT day, started, ended FROM day_rows ORDER BY started")
        rows = cursor.fetchall()
    assert len(rows) == 6
    for (before, _, ended), (after, started, _) in zip(rows, rows[1:]):
        assert started >= ended, f"{after} started before {before} ended"


def test_the_limit_from_the_command_line_wins_over_the_environment_and_the_flowfile(project):
    write_flowfile(project, LIMITED.replace("postgres = 1", "postgres = 4"))
    result = flow(project, "build", "-j", "4", "june", "--resources", "postgres=2",
                  env={"FLOW_RESOURCES": "postgres=3"})
    assert result.returncode == 0, result.stderr
    assert len(spans(project)) == 8
    assert most_at_once(spans(project)) <= 2


def test_a_task_waiting_for_its_resource_lets_the_next_ready_task_run(project):
    write_flowfile(project, """
        resources: postgres = 1

        rule heavy(date: date):
            output: "out/heavy_{date}.txt"
            resources: postgres=1
            python: acts.waits_for_light

        rule light(date: date):
            output: "out/light_{date}.txt"
            python: acts.light

        target all: heavy(d) for d in days(2012-06-01 .. 2012-06-03), light(2012-06-01)
    """)
    result = build(project, "-j", "2", "all")
    assert result.returncode == 0, result.stderr
    assert runs(project)[0] == "heavy 2012-06-01 saw light"


def test_a_batch_holds_its_rules_resources_once_per_run(project):
    write_flowfile(project, """
        resources: postgres = 1

        rule query(date: date):
            output: "out/query_{date}.txt"
            resources: postgres=1
            python: acts.batch_query
            batch: 2

        target june: query(d) for d in days(2012-06-01 .. 2012-06-08)
    """)
    result = build(project, "-j", "4", "june")
    assert result.returncode == 0, result.stderr
    found = spans(project)
    assert [name for name, _, _ in found] == ["batch 2012-06-01 2", "batch 2012-06-03 2", "batch 2012-06-05 2",
                                              "batch 2012-06-07 2"]
    assert most_at_once(found) == 1


def test_a_failure_stops_the_tasks_waiting_for_a_resource_and_keep_going_runs_them(project):
    write_flowfile(project, LIMITED + """
rule broken(date: date):
    output: "out/broken_{date}.txt"
    resources: postgres=1
    python: acts.fails

target some: broken(2012-06-01), query(d) for d in days(2012-06-01 .. 2012-06-03)
""")
    stopped = build(project, "-j", "2", "some")
    assert stopped.returncode == 1, stopped.stderr
    assert "1 failed" in stopped.stdout
    kept_going = build(project, "-j", "2", "-k", "some")
    assert kept_going.returncode == 1, kept_going.stderr
    assert sorted(p.name for p in (project / "out").iterdir()) == [
        "query_2012-06-01.txt", "query_2012-06-02.txt", "query_2012-06-03.txt"]
    assert most_at_once(spans(project)) == 1


def test_a_limit_from_the_environment_smaller_than_a_task_needs_is_refused_before_anything_runs(project):
    write_flowfile(project, LIMITED)
    result = build(project, "-j", "4", "june", resources="postgres=0")
    assert result.returncode == 2
    assert result.stderr == ("error: a task of 'query' needs postgres=1, more than the limit of 0 that "
                             "FLOW_RESOURCES sets, so it could never start\n")
    assert not (project / "out").exists()


def test_unreadable_limits_are_a_clear_error(project):
    write_flowfile(project, LIMITED)
    result = build(project, "june", resources="postgres=two")
    assert result.returncode == 2
    assert result.stderr == ("error: FLOW_RESOURCES: 'postgres=two' is not name=N (a whole number, 0 or more); "
                             "for example: postgres=2,memory=16\n")
    assert "Traceback" not in result.stderr


def test_a_task_that_needs_more_than_the_flowfile_limit_is_a_compile_error(project):
    write_flowfile(project, LIMITED.replace("postgres=1, memory=2", "postgres=2"))
    result = build(project, "june")
    assert result.returncode == 2
    assert result.stderr.startswith("Flowfile:6:16: error: a task of 'query' needs postgres=2, more than the "
                                    "limit of 1 that the resources: block sets, so it could never start\n")


PRIORITIES = """
rule low(date: date):
    output: "out/low_{date}.txt"
    python: acts.note

rule high(date: date):
    output: "out/high_{date}.txt"
    priority: 5
    python: acts.note

rule last(date: date):
    output: "out/last_{date}.txt"
    priority: -1
    python: acts.note

rule report(date: date):
    requires: low(date)
    output: "out/report_{date}.txt"
    python: acts.note

target mixed:
    last(2012-06-01)
    low(d) for d in days(2012-06-01 .. 2012-06-02)
    high(d) for d in days(2012-06-01 .. 2012-06-02)

target backlog: low(d) for d in days(2012-06-01 .. 2012-06-03)

target urgent:
    priority: 10
    report(2012-06-09)
"""


def test_with_j1_the_higher_priority_rule_starts_first(project):
    write_flowfile(project, PRIORITIES)
    result = build(project, "-j", "1", "mixed")
    assert result.returncode == 0, result.stderr
    assert runs(project) == ["high 2012-06-01", "high 2012-06-02", "low 2012-06-01", "low 2012-06-02",
                             "last 2012-06-01"]


def test_a_targets_priority_reaches_what_its_tasks_need(project):
    write_flowfile(project, PRIORITIES)
    result = build(project, "-j", "1", "backlog", "urgent")
    assert result.returncode == 0, result.stderr
    assert runs(project) == ["low 2012-06-09", "report 2012-06-09", "low 2012-06-01", "low 2012-06-02",
                             "low 2012-06-03"]


def test_without_priorities_the_order_is_unchanged(project):
    write_flowfile(project, PRIORITIES.replace("    priority: 5\n", "").replace("    priority: -1\n", "")
                   .replace("    priority: 10\n", ""))
    result = build(project, "-j", "1", "mixed")
    assert result.returncode == 0, result.stderr
    assert runs(project) == ["last 2012-06-01", "low 2012-06-01", "low 2012-06-02", "high 2012-06-01",
                             "high 2012-06-02"]
