"""End-to-end through the `flow` command: hourly partitions, ranges relative to today, open periods, batches."""

from __future__ import annotations

import pytest

from tests.runtime.test_cli_build import flow, runs, write_flowfile

ACTIONS = '''
import os

def _note(text):
    with open(os.path.join(os.environ["FLOW_TEST_DIR"], "runs.log"), "a") as log:
        log.write(text + "\\n")

def hour(hour, output):
    _note(f"hour {hour}")
    with open(output, "w") as f:
        f.write(f"{hour.hour}\\n")

def day_of_hours(date, inputs, output):
    _note(f"day {date}")
    with open(output, "w") as f:
        f.write(str(sum(int(open(path).read()) for path in inputs)) + "\\n")
'''


@pytest.fixture
def project(tmp_path):
    (tmp_path / "acts.py").write_text(ACTIONS)
    return tmp_path


HOURLY = """
rule logs(hour: hour):
    output: "logs/{hour:year=%Y/month=%m/day=%d/hour=%H}/part.tsv"
    python: acts.hour

rule daily(date: date):
    requires: logs(h) for h in hours(date)
    output: "daily/{date}.tsv"
    python: acts.day_of_hours
"""


def test_an_hourly_rule_built_for_a_day(project):
    write_flowfile(project, HOURLY)
    result = flow(project, "build", "daily/2012-06-01.tsv")
    assert result.returncode == 0, result.stderr
    parts = sorted(p.relative_to(project).as_posix() for p in (project / "logs").rglob("part.tsv"))
    assert len(parts) == 24
    assert parts[0] == "logs/year=2012/month=06/day=01/hour=00/part.tsv"
    assert parts[-1] == "logs/year=2012/month=06/day=01/hour=23/part.tsv"
    assert (project / "daily" / "2012-06-01.tsv").read_text() == f"{sum(range(24))}\n"
    assert sorted(runs(project))[:2] == ["day 2012-06-01", "hour 2012-06-01T00"]

    # one hour asked for by the file it produces, after its output was deleted
    (project / "logs/year=2012/month=06/day=01/hour=13/part.tsv").unlink()
    again = flow(project, "build", "logs/year=2012/month=06/day=01/hour=13/part.tsv")
    assert again.returncode == 0, again.stderr
    assert runs(project)[-1] == "hour 2012-06-01T13"
    assert len(runs(project)) == 26


def test_a_bad_hour_on_the_command_line_is_one_clear_error(project):
    write_flowfile(project, HOURLY)
    result = flow(project, "build", "logs(2012-06-01T24)")
    assert result.returncode == 2
    assert "'2012-06-01T24' is not an hour: hour must be in 0..23" in result.stderr
    assert "Traceback" not in result.stderr


DAILY = """
rule day(date: date):
    output: "days/{date}.tsv"
    python: acts.day

rule month(interval: interval):
    requires: day(d) for d in interval
    output: "months/{interval}.tsv"
    python: acts.month

range last_7_days = days(today - 7 .. yesterday)
target recent: day(d) for d in last_7_days
target closed_months: month(m) for m in months(today - 60 .. today)
"""

DAILY_ACTIONS = '''
def day(date, output):
    _note(f"day {date}")
    open(output, "w").write(f"{date}\\n")

def month(interval, inputs, output):
    _note(f"month {interval}")
    open(output, "w").write("".join(open(path).read() for path in inputs))
'''


@pytest.fixture
def daily(project):
    (project / "acts.py").write_text(ACTIONS + DAILY_ACTIONS)
    write_flowfile(project, DAILY)
    return project


def test_a_relative_range_with_today_pinned(daily):
    listed = flow(daily, "list", "--today", "2012-03-01")
    assert listed.returncode == 0, listed.stderr
    assert "last_7_days  2012-02-23 .. 2012-02-29  7 values" in listed.stdout
    assert "today: 2012-03-01 (pinned), UTC" in listed.stdout

    dry = flow(daily, "--dry-run", "recent", "--today", "2012-03-01")
    assert dry.returncode == 0, dry.stderr
    assert "range last_7_days = 2012-02-23 .. 2012-02-29 (7 values)" in dry.stdout
    assert "target recent = day(2012-02-23 .. 2012-02-29)" in dry.stdout

    built = flow(daily, "build", "recent", "--today", "2012-03-01")
    assert built.returncode == 0, built.stderr
    assert sorted(p.name for p in (daily / "days").iterdir()) == [f"2012-02-{d}.tsv" for d in range(23, 30)]

    # the environment variable pins it too; a day later one more day is due
    later = flow(daily, "build", "recent", env={"FLOW_TODAY": "2012-03-02"})
    assert later.returncode == 0, later.stderr
    assert runs(daily)[-1] == "day 2012-03-01"
    assert len(runs(daily)) == 8


def test_a_relative_range_of_months_stops_at_the_last_closed_month(daily):
    built = flow(daily, "build", "closed_months", "--today", "2012-03-15")
    assert built.returncode == 0, built.stderr
    assert sorted(p.name for p in (daily / "months").iterdir()) == ["2012-01.tsv", "2012-02.tsv"]


def test_an_open_month_is_refused_then_allowed_with_the_override(daily):
    refused = flow(daily, "build", "months/2012-03.tsv", "--today", "2012-03-15")
    assert refused.returncode == 2
    assert "month(2012-03) can be built from 2012-04-01 00:00 UTC" in refused.stderr
    assert "day(2012-03-15 .. 2012-03-31) can be built from 2012-03-16 00:00 UTC" in refused.stderr
    assert "--allow-open" in refused.stderr
    assert runs(daily) == [] and not (daily / "days").exists()  # nothing half-built

    allowed = flow(daily, "build", "months/2012-03.tsv", "--today", "2012-03-15", "--allow-open")
    assert allowed.returncode == 0, allowed.stderr
    assert (daily / "months" / "2012-03.tsv").read_text().splitlines()[-1] == "2012-03-31"

    # once the month has ended, the same request needs no override
    (daily / "months" / "2012-03.tsv").unlink()
    closed = flow(daily, "build", "months/2012-03.tsv", "--today", "2012-04-01")
    assert closed.returncode == 0, closed.stderr


def test_a_rule_setting_allows_open_periods_for_that_rule_only(daily):
    write_flowfile(daily, DAILY.replace('    python: acts.day\n', '    python: acts.day\n    allow_open: true\n'))
    partial_day = flow(daily, "build", "days/2012-03-15.tsv", "--today", "2012-03-15")
    assert partial_day.returncode == 0, partial_day.stderr
    month = flow(daily, "build", "months/2012-03.tsv", "--today", "2012-03-15")
    assert month.returncode == 2
    assert "month(2012-03) covers a period that has not ended" in month.stderr


def test_the_clock_of_the_flowfile_time_zone(daily):
    # a bad zone is a Flowfile error; a good one is what the refusal names
    write_flowfile(daily, 'timezone: "Mars/Olympus"\n' + DAILY)
    bad = flow(daily, "build", "days/2012-03-15.tsv")
    assert bad.returncode == 2 and "unknown time zone 'Mars/Olympus'" in bad.stderr
    write_flowfile(daily, 'timezone: "Asia/Tokyo"\n' + DAILY)
    refused = flow(daily, "build", "days/2999-01-01.tsv")
    assert refused.returncode == 2
    assert "day(2999-01-01) can be built from 2999-01-02 00:00 Asia/Tokyo" in refused.stderr


BATCHED = """
rule daily(date: date):
    output: "daily/{date}.tsv"
    python: acts.many_days
    batch: 31

rule quarter(interval: interval):
    requires: daily(d) for d in interval
    output: "quarters/{interval}.tsv"
    python: acts.concatenate

target q1: quarter(2012-01-01-2012-03-31)
"""

BATCH_ACTIONS = '''
def many_days(partitions, date, inputs, outputs):
    assert date == partitions and len(inputs) == len(outputs) == len(partitions)
    _note(f"batch {partitions[0]} {partitions[-1]} {len(partitions)}")
    if os.path.exists(os.path.join(os.environ["FLOW_TEST_DIR"], "fail")):
        open(outputs[0], "w").write("half done")
        raise RuntimeError("the cluster is down")
    for day, output in zip(partitions, outputs):
        with open(output, "w") as f:
            f.write(f"{day}\\n")

def concatenate(inputs, output):
    with open(output, "w") as f:
        f.write("".join(open(path).read() for path in inputs))
'''


@pytest.fixture
def batched(project):
    (project / "acts.py").write_text(ACTIONS + BATCH_ACTIONS)
    write_flowfile(project, BATCHED)
    return project


def test_a_batched_backfill_of_90_days_then_one_cleaned_day(batched):
    dry = flow(batched, "--dry-run", "q1")
    assert "daily: 90 partitions in 3 runs (batch: 31)" in dry.stdout
    built = flow(batched, "build", "q1")
    assert built.returncode == 0, built.stderr
    assert runs(batched) == ["batch 2012-01-01 2012-01-31 31", "batch 2012-02-01 2012-03-02 31",
                             "batch 2012-03-03 2012-03-30 28"]
    assert len(list((batched / "daily").iterdir())) == 90  # one file per partition
    assert (batched / "daily" / "2012-02-29.tsv").read_text() == "2012-02-29\n"
    assert "90 daily(2012-01-01 .. 2012-03-30)" in built.stdout  # each partition reported on its own

    cleaned = flow(batched, "clean", "-y", "daily/2012-02-10.tsv")
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (batched / "daily" / "2012-02-10.tsv").exists()
    again = flow(batched, "build", "daily/2012-02-10.tsv")
    assert again.returncode == 0, again.stderr
    assert runs(batched)[3:] == ["batch 2012-02-10 2012-02-10 1"]
    status = flow(batched, "status", "q1")
    assert status.returncode == 0, status.stderr


def test_a_failed_batch_publishes_none_of_its_partitions_and_retries_as_a_whole(batched):
    write_flowfile(batched, BATCHED.replace("    batch: 31\n", "    batch: 31\n    retries: 1\n"))
    (batched / "fail").write_text("")
    failed = flow(batched, "build", "daily/2012-01-05.tsv", "daily/2012-01-06.tsv")
    assert failed.returncode == 1
    assert runs(batched) == ["batch 2012-01-05 2012-01-06 2"] * 2  # the retry reruns the whole run
    assert "the cluster is down" in failed.stdout + failed.stderr
    assert not (batched / "daily").exists() or not list((batched / "daily").iterdir())
    (batched / "fail").unlink()
    fixed = flow(batched, "build", "daily/2012-01-05.tsv", "daily/2012-01-06.tsv")
    assert fixed.returncode == 0, fixed.stderr
    assert sorted(p.name for p in (batched / "daily").iterdir()) == ["2012-01-05.tsv", "2012-01-06.tsv"]


SPARK_BATCHED = """
rule per_day(date: date):
    output: dir "spark_days/{date}"
    spark: acts.spark_days
    batch: 3

target four_days: per_day(d) for d in days(2012-01-01 .. 2012-01-04)

spark:
    master: "local[1]"
    conf:
        spark.ui.enabled: "false"
        spark.sql.shuffle.partitions: "1"
"""

SPARK_ACTIONS = '''
def spark_days(spark, partitions, outputs):
    _note(f"spark {partitions[0]} {len(partitions)}")
    rows = [(str(day), index) for index, day in enumerate(partitions)]
    frame = spark.createDataFrame(rows, ["day", "index"])
    for day, output in zip(partitions, outputs):
        frame.where(frame.day == str(day)).coalesce(1).write.mode("overwrite").csv(output)
'''


def test_a_batched_spark_function_writes_a_directory_per_partition(project):
    (project / "acts.py").write_text(ACTIONS + SPARK_ACTIONS)
    write_flowfile(project, SPARK_BATCHED)
    built = flow(project, "build", "four_days", timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    assert runs(project) == ["spark 2012-01-01 3", "spark 2012-01-04 1"]
    for day in ("2012-01-01", "2012-01-02", "2012-01-03", "2012-01-04"):
        output = project / "spark_days" / day
        assert (output / "_SUCCESS").exists()
        text = "".join(p.read_text() for p in output.glob("part-*"))
        assert text.startswith(day + ",")


SQL_BATCHED = '''
rule daily_rows(date: date):
    output: table "daily_rows"
    sql: """
        CREATE TABLE IF NOT EXISTS daily_rows (day date, n int);
        CREATE TABLE IF NOT EXISTS batch_calls (partitions int);
        INSERT INTO batch_calls VALUES (cardinality(:partitions));
        DELETE FROM daily_rows WHERE day = ANY(:partitions);
        INSERT INTO daily_rows SELECT d, 1 FROM unnest(:date) AS d
    """
    batch: 31

target q1: daily_rows(d) for d in days(2012-01-01 .. 2012-03-30)
'''


def test_a_batched_sql_action_writes_a_marker_row_per_partition(project, pg_dsn):
    import psycopg2

    write_flowfile(project, SQL_BATCHED)
    database = {"FLOW_DATABASE_URL": pg_dsn}
    built = flow(project, "build", "q1", env=database)
    assert built.returncode == 0, built.stdout + built.stderr
    with psycopg2.connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT partitions FROM batch_calls ORDER BY partitions DESC")
        assert [row[0] for row in cur.fetchall()] == [31, 31, 28]
        cur.execute("SELECT count(*), count(DISTINCT day) FROM daily_rows")
        assert cur.fetchone() == (90, 90)
        cur.execute("SELECT count(*) FROM flow_table_updates WHERE update_id LIKE 'daily_rows(%'")
        assert cur.fetchone() == (90,)
        # one day's marker gone: the next build redoes that day alone, in a run of one
        cur.execute("DELETE FROM flow_table_updates WHERE update_id = 'daily_rows(2012-02-10)'")
    again = flow(project, "build", "q1", env=database)
    assert again.returncode == 0, again.stdout + again.stderr
    with psycopg2.connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT partitions FROM batch_calls ORDER BY partitions DESC")
        assert [row[0] for row in cur.fetchall()] == [31, 31, 28, 1]
        cur.execute("SELECT count(*) FROM daily_rows")
        assert cur.fetchone() == (90,)
