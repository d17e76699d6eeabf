"""Through the real `flow` command: interval kinds, comparisons, calendar edges, digits and endless chains."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLOWFILE = '''
rule month_file(interval: interval):
    output: "out/top_{interval}.tsv"
    python: acts.write

rule later(interval: interval):
    requires: month_file(interval) if interval >= 2012-06 and interval <= 2012-08 else []
    output: "out/later_{interval}.tsv"
    python: acts.write

rule forever(date: date):
    requires: forever(date - 1)
    output: "out/forever_{date}.tsv"
    python: acts.day

rule back(date: date):
    requires: back(date + 1) if date.year > 1 else []
    output: "out/back_{date}.tsv"
    python: acts.day
'''

ACTIONS = '''
def write(output, interval):
    with open(output, "w") as handle:
        handle.write(f"interval={interval}\\n")

def day(output, date):
    with open(output, "w") as handle:
        handle.write(f"date={date}\\n")
'''


@pytest.fixture
def project(tmp_path):
    (tmp_path / "Flowfile").write_text(textwrap.dedent(FLOWFILE))
    (tmp_path / "acts.py").write_text(ACTIONS)
    return tmp_path


def flow(project, *args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "flow.runtime.cli", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)


def without_endless(project):
    # the endless rule is a compile error for every command; most tests need the file without it
    text = (project / "Flowfile").read_text()
    start = text.index("rule forever")
    (project / "Flowfile").write_text(text[:start] + text[text.index("rule back"):])


def test_two_intervals_that_print_differently_are_two_tasks(project):
    without_endless(project)
    result = flow(project, "build", "out/top_2012-06.tsv", "out/top_2012-06-01-2012-07-01.tsv")
    assert result.returncode == 0, result.stderr
    assert (project / "out" / "top_2012-06.tsv").read_text() == "interval=2012-06\n"
    assert (project / "out" / "top_2012-06-01-2012-07-01.tsv").read_text() == "interval=2012-06-01-2012-07-01\n"


def test_interval_at_least_and_at_most_work_in_requires(project):
    without_endless(project)
    result = flow(project, "build", "later(2012-07)", "later(2012-09)")
    assert result.returncode == 0, result.stderr
    assert (project / "out" / "top_2012-07.tsv").exists()
    assert not (project / "out" / "top_2012-09.tsv").exists()


@pytest.mark.parametrize("name", ["out/top_9999-12-31.tsv", "out/top_9999-W52.tsv", "out/top_9999.tsv"])
def test_intervals_past_the_calendar_are_one_clear_error(project, name):
    without_endless(project)
    result = flow(project, "--dry-run", name)
    assert result.returncode == 2
    assert "is out of range: the last day an interval can hold is 9999-12-30" in result.stderr
    assert "Traceback" not in result.stderr


def test_unicode_digits_are_not_a_year_and_0999_is_one_everywhere(project):
    without_endless(project)
    result = flow(project, "--dry-run", "out/top_\u0662\u0660\u0661\u0662.tsv")
    assert result.returncode == 2
    assert "is not a target, a rule or the output of any rule" in result.stderr
    text = (project / "Flowfile").read_text() + "\ntarget old: month_file(0999)\n"
    (project / "Flowfile").write_text(text)
    assert flow(project, "build", "old").returncode == 0
    assert flow(project, "build", "month_file(0999)").stdout.startswith("nothing to do")
    assert (project / "out" / "top_0999.tsv").read_text() == "interval=0999\n"


def test_a_rule_that_requires_itself_without_end_is_refused_at_once(project):
    result = flow(project, "--dry-run", "forever(2012-06-01)")
    assert result.returncode == 2
    assert result.stderr.startswith("Flowfile:12:15: error: rule 'forever' requires itself without end: "
                                    "forever -> forever, and no condition stops the chain")


def test_a_condition_that_never_stops_names_the_chain_start(project):
    without_endless(project)
    result = flow(project, "--dry-run", "back(9999-12-20)")
    assert result.returncode == 2
    assert result.stderr.startswith(
        "Flowfile:12:15: error: rule 'back' requires itself without end: the chain that starts at "
        "back(9999-12-20) reaches back(9999-12-31), where a date leaves the calendar (years 1 to 9999)")
