"""Several flow processes on one backfill: each task runs exactly once, and the database pipeline is safe under -j 2.

Side effects are counted, not inferred: every action appends one line to a shared log with
O_APPEND (one write per line, atomic across processes), and the database is asked for its rows and
marker rows.
"""

from __future__ import annotations

import os
import shutil
import textwrap

from tests.reliability.helpers import ROOT, flow, start_flow

ACTIONS = '''
import os

def _ran(name):
    with open(os.path.join(os.environ["FLOW_TEST_DIR"], "ran.log"), "a") as log:
        log.write(name + "\\n")

def day(date, output):
    _ran(f"day {date}")
    with open(output, "w") as handle:
        handle.write("".join(f"{date} line {i}\\n" for i in range(2000)))

def tiny(date, output):
    _ran(f"tiny {date}")
    with open(output, "w") as handle:
        handle.write(str(date))

def month(inputs, output, interval):
    _ran(f"month {interval}")
    with open(output, "w") as handle:
        for path in inputs:
            with open(path) as part:
                handle.write(part.read())
'''

BACKFILL = """
rule day(date: date):
    output: "out/day/{date}.txt"
    python: acts.day

rule month(interval: interval):
    requires: day(d) for d in interval
    output: "out/month_{interval}.txt"
    python: acts.month

target backfill: month(m) for m in months(2012-01 .. 2012-03)

rule tiny(date: date):
    output: "out/tiny/{date}.txt"
    python: acts.tiny

target tinies: tiny(d) for d in days(2010-01-01 .. 2015-06-30)
"""


def _builds_at_once(tmp_path, target: str, count: int) -> list:
    """Run `count` builds of the target at once (-j 2 each); every one must succeed; the actions that ran."""
    (tmp_path / "acts.py").write_text(ACTIONS)
    (tmp_path / "Flowfile").write_text(textwrap.dedent(BACKFILL))
    env = {"FLOW_TEST_DIR": str(tmp_path)}
    builds = [start_flow(tmp_path, "build", "-j", "2", "-q", target, env=env) for _ in range(count)]
    results = [(build, *build.communicate(timeout=600)) for build in builds]
    for build, out, err in results:
        assert build.returncode == 0, out + err
    return (tmp_path / "ran.log").read_text().splitlines()


def test_four_concurrent_builds_of_one_backfill_run_each_task_exactly_once(tmp_path):
    ran = _builds_at_once(tmp_path, "backfill", 4)
    expected = [f"day 2012-0{m}-{d:02d}" for m, days in ((1, 31), (2, 29), (3, 31)) for d in range(1, days + 1)]
    expected += [f"month 2012-0{m}" for m in (1, 2, 3)]
    assert sorted(ran) == sorted(expected)  # every task, none twice
    for m, days in ((1, 31), (2, 29), (3, 31)):
        text = (tmp_path / "out" / f"month_2012-0{m}.txt").read_text()
        assert text.count("\n") == days * 2000
    leftovers = [name for folder, _, names in os.walk(tmp_path / "out") for name in names if "flow-tmp" in name]
    assert leftovers == []


def test_three_concurrent_builds_of_two_thousand_tiny_tasks_run_each_exactly_once(tmp_path):
    # Tasks of microseconds travel to the workers as numbers in quick messages, many to a message,
    # locked and re-checked by each build's main process: the three builds split the work.
    import datetime

    ran = _builds_at_once(tmp_path, "tinies", 3)
    first, last = datetime.date(2010, 1, 1), datetime.date(2015, 6, 30)
    days = [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]
    assert sorted(ran) == sorted(f"tiny {day}" for day in days)  # every task, none twice
    assert sorted(os.listdir(tmp_path / "out" / "tiny")) == sorted(f"{day}.txt" for day in days)
    assert (tmp_path / "out" / "tiny" / "2013-02-28.txt").read_text() == "2013-02-28"


def test_two_concurrent_builds_of_the_database_pipeline_under_j2_load_each_month_once(tmp_path, pg_dsn, pg_conn):
    """The root Flowfile's toplists_db_2012 on an empty database: the toplist_summary tasks of -j 2 used to
    collide on CREATE TABLE IF NOT EXISTS (issue 11, item 4); two such builds at once must not either."""
    shutil.copy(os.path.join(ROOT, "Flowfile"), tmp_path / "Flowfile")
    shutil.copytree(os.path.join(ROOT, "examples"), tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    env = {"FLOW_DATABASE_URL": pg_dsn}
    # the files first (no database involved), so the timed part is the loads and SQL racing each other
    files = flow(tmp_path, "build", "-j", "2", "-q", "toplists_2012", env=env)
    assert files.returncode == 0, files.stdout + files.stderr
    builds = [start_flow(tmp_path, "build", "-j", "2", "-q", "toplists_db_2012", env=env) for _ in range(2)]
    for build in builds:
        out, err = build.communicate(timeout=600)
        assert build.returncode == 0, out + err
    with pg_conn.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT (date_from, artist)) FROM top10")
        assert cur.fetchone() == (120, 120)  # ten artists for each of twelve months, loaded once
        cur.execute("SELECT count(*), count(DISTINCT date_from), min(artists), max(artists) FROM toplist_summary")
        assert cur.fetchone() == (12, 12, 10, 10)
        cur.execute("SELECT target_table, count(*) FROM flow_table_updates GROUP BY 1 ORDER BY 1")
        assert cur.fetchall() == [("top10", 12), ("toplist_summary", 12)]
    again = flow(tmp_path, "build", "-j", "2", "toplists_db_2012", env=env)
    assert again.returncode == 0 and "nothing to do" in again.stdout
