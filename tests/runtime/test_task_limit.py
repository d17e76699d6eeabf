"""A build or dry run above the task limit is refused, saying how many tasks it would be (issue 11, item 15)."""

from __future__ import annotations

import os
import shutil
import textwrap

import pytest
from flow.runtime import limits

from tests.reliability.helpers import ROOT, flow

FLOWFILE = """
rule day(date: date):
    output: "out/day_{date}.txt"
    python: acts.day

rule span(interval: interval):
    requires: day(d) for d in interval
    output: "out/span_{interval}.txt"
    python: acts.span
"""

ACTIONS = '''
def day(date, output):
    open(output, "w").write(str(date))

def span(inputs, output):
    open(output, "w").write(str(len(inputs)))
'''


@pytest.fixture
def project(tmp_path):
    (tmp_path / "acts.py").write_text(ACTIONS)
    (tmp_path / "Flowfile").write_text(textwrap.dedent(FLOWFILE))
    return tmp_path


@pytest.mark.parametrize("how", ["flag", "environment"])
@pytest.mark.parametrize("mode", ["build", "--dry-run"])
def test_a_typo_sized_interval_is_refused_with_its_task_count(project, how, mode):
    # a year where a month was meant: 366 days and the span, above a limit of 100
    args, env = (["--max-tasks", "100"], None) if how == "flag" else ([], {"FLOW_MAX_TASKS": "100"})
    result = flow(project, mode, *args, "span(2012)", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        "error: span(2012) would need at least 367 tasks, more than the limit of 100 (a typo in an interval?);"
        " raise it with --max-tasks N or FLOW_MAX_TASKS=N, or lift it with --max-tasks 0")
    assert not (project / "out").exists() and not (project / ".flow").exists()


def test_many_roots_are_counted_level_by_level(project):
    result = flow(project, "build", "--max-tasks", "50", "--dry-run", *[f"day(2012-01-{d:02d})" for d in range(1, 32)],
                  "span(2012-02)")
    assert result.returncode == 2
    assert "would need at least 61 tasks, more than the limit of 50" in result.stderr
    assert result.stderr.startswith("error: day(2012-01-01), day(2012-01-02), day(2012-01-03) ... would need")


def test_the_limit_can_be_lifted_and_is_not_reached_by_ordinary_builds(project):
    assert flow(project, "build", "--max-tasks", "0", "span(2012-02)", env={"FLOW_MAX_TASKS": "10"}).returncode == 0
    assert (project / "out" / "span_2012-02.txt").read_text() == "29"
    assert flow(project, "build", "span(2012-03)").returncode == 0  # the default is far above a month
    assert limits.DEFAULT_MAX_TASKS >= 1_000_000  # ten times the largest benchmark (bench/, 100k tasks)


def test_a_limit_that_is_not_a_number_is_a_clear_error(project):
    result = flow(project, "build", "span(2012-02)", env={"FLOW_MAX_TASKS": "lots"})
    assert result.returncode == 2
    assert result.stderr.strip() == "error: FLOW_MAX_TASKS='lots' is not a whole number of tasks"


FILTERED = FLOWFILE + """
rule workdays(interval: interval):
    requires: day(d) for d in interval if d.weekday < 6
    output: "out/workdays_{interval}.txt"
    python: acts.span
"""


@pytest.mark.parametrize("target, count", [("span(2012)", 367), ("workdays(2012)", 102)])
def test_a_typo_is_refused_before_its_requirements_are_made(target, count):
    # The counter is the factory's own: how many tasks it made. The refusal must come while the
    # one task's requirements are being listed, not after all 366 days became tasks.
    from flow.compiler.checks import check
    from flow.compiler.graph import TaskFactory, build_graph
    from flow.compiler.parser import parse
    from flow.compiler.resolve import resolve

    text = textwrap.dedent(FILTERED)
    factory = TaskFactory(check(parse(text), text))
    roots = resolve(factory, target)
    counter = limits.TaskCounter(100, roots)
    with pytest.raises(limits.TooManyTasks, match=f"would need at least {count} tasks"):
        build_graph(counter.factory(factory), roots, counter.complete(lambda tasks: set()))
    assert len(factory) == 1  # the root alone: none of its requirements was made into a task


def test_the_typo_on_the_shipped_flowfile_is_refused_at_once(tmp_path):
    # top_artists over the whole calendar: 3.65 million days; refused before any is made (a second, not 1.7 GB)
    shutil.copy(os.path.join(ROOT, "Flowfile"), tmp_path / "Flowfile")
    shutil.copytree(os.path.join(ROOT, "examples"), tmp_path / "examples")
    result = flow(tmp_path, "--dry-run", "top_artists_0001-01-01-9999-12-31.tsv")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: top_artists(0001-01-01-9999-12-31) would need at least 3,652,059 tasks,"
                                    " more than the limit of 1,000,000"), result.stderr
