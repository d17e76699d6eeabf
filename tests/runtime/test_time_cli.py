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
