"""Batched rules: the checks of `batch: N`, and how missing partitions are cut into runs."""

import datetime

import pytest
from flow.compiler.checks import check
from flow.compiler.errors import FlowCheckError
from flow.compiler.graph import TaskFactory
from flow.compiler.parser import parse
from flow.runtime.batches import group_runs

FLOWFILE = '''
rule daily(date: date):
    output: "daily/{date}.tsv"
    python: acts.daily
    batch: 31

rule regional(region: str, date: date):
    output: "regional/{region}/{date}.tsv"
    python: acts.daily
    batch: 7

rule monthly(interval: interval):
    output: "monthly/{interval}.tsv"
    python: acts.monthly
    batch: 12

rule single(date: date):
    output: "single/{date}.tsv"
    python: acts.daily
'''


@pytest.fixture
def factory():
    return TaskFactory(check(parse(FLOWFILE)))


def days(first, count):
    return [first + datetime.timedelta(days=i) for i in range(count)]


def ids(runs):
    return [[task.id for task in run] for run in runs]


def test_ninety_days_make_three_runs(factory):
    tasks = [factory.from_params("daily", {"date": d}) for d in days(datetime.date(2012, 1, 1), 90)]
    runs = group_runs(list(reversed(tasks)))
    assert [len(run) for run in runs] == [31, 31, 28]
    assert runs[0][0].id == "daily(2012-01-01)" and runs[2][-1].id == "daily(2012-03-30)"


def test_a_gap_cuts_a_run(factory):
    chosen = [d for d in days(datetime.date(2012, 1, 1), 10) if d.day != 5]
    runs = group_runs([factory.from_params("daily", {"date": d}) for d in chosen])
    assert [len(run) for run in runs] == [4, 5]


def test_other_parameters_keep_runs_apart(factory):
    tasks = [factory.from_params("regional", {"region": region, "date": d})
             for region in ("eu", "us") for d in days(datetime.date(2012, 1, 1), 8)]
    assert sorted(len(run) for run in group_runs(tasks)) == [1, 1, 7, 7]
    assert all(len({task.params["region"] for task in run}) == 1 for run in group_runs(tasks))


def test_intervals_batch_when_adjacent_and_of_one_kind(factory):
    from flow.compiler import types as t

    months = [t.month(2012, m) for m in range(1, 13)] + [t.month(2013, 2)]
    runs = group_runs([factory.from_params("monthly", {"interval": m}) for m in months])
    assert [len(run) for run in runs] == [12, 1]


def test_rules_without_batch_run_alone(factory):
    tasks = [factory.from_params("single", {"date": d}) for d in days(datetime.date(2012, 1, 1), 3)]
    assert [len(run) for run in group_runs(tasks)] == [1, 1, 1]


@pytest.mark.parametrize("rule, message", [
    ('rule r(region: str):\n    output: "r/{region}.tsv"\n    python: a.b\n    batch: 31\n',
     "the outputs of 'r' must each identify one partition"),
    ('rule r(date: date):\n    output: "r/{date}.tsv"\n    python: a.b\n    batch: 0\n',
     "batch must be a whole number of partitions, 1 or more"),
    ('rule r(date: date):\n    output: "r/{date}.tsv"\n    spark-submit: "app.py"\n    batch: 3\n',
     "batch works with python:, spark: and sql: actions, not a spark-submit: action"),
    ('rule r(date: date):\n    requires: r(date - 1) if date > 2012-01-01 else []\n    output: "r/{date}.tsv"\n'
     '    python: a.b\n    batch: 3\n', "batch: 'r' requires itself"),
])
def test_batch_mistakes_are_compile_errors(rule, message):
    with pytest.raises(FlowCheckError) as caught:
        check(parse(rule))
    assert message in str(caught.value)


def test_the_plan_schedules_batches_as_units(factory):
    """Ninja style: a month needing 62 batched days waits for both batches, then is ready."""
    import networkx as nx
    from flow.compiler import types as t
    from flow.runtime.batches import Batch, units
    from flow.runtime.plan import Plan

    text = FLOWFILE + '''
rule total(interval: interval):
    requires: daily(d) for d in interval
    output: "total/{interval}.tsv"
    python: acts.total
'''
    factory = TaskFactory(check(parse(text)))
    total = factory.from_params("total", {"interval": t.custom(datetime.date(2012, 1, 1), datetime.date(2012, 3, 3))})
    days_needed = factory.requirements(total)
    graph = nx.DiGraph()
    graph.add_edges_from((total, day) for day in days_needed)
    to_run = [total] + days_needed
    scheduled, requirements, dependents, member_of = units(
        to_run, lambda task: list(graph.successors(task)), lambda task: list(graph.predecessors(task)))
    batches = [unit for unit in scheduled if isinstance(unit, Batch)]
    assert [len(b) for b in batches] == [31, 31]
    assert batches[0].id == "daily(2012-01-01 .. 2012-01-31)"
    assert member_of(days_needed[40]) is batches[1]
    plan = Plan(scheduled, requirements, dependents)
    first, second = plan.next_ready(), plan.next_ready()
    assert {first, second} == set(batches) and not plan.has_ready()
    plan.finished(first, True)
    assert not plan.has_ready()
    plan.finished(second, True)
    assert plan.next_ready() is total


def test_batch_1_still_gives_the_action_lists():
    from flow.runtime.batches import Batch, units

    factory = TaskFactory(check(parse('rule one(date: date):\n    output: "o/{date}.tsv"\n    python: a.b\n'
                                      '    batch: 1\n')))
    tasks = [factory.from_params("one", {"date": d}) for d in days(datetime.date(2012, 1, 1), 2)]
    scheduled, _, _, _ = units(tasks, lambda task: [], lambda task: [])
    assert [type(unit) for unit in scheduled] == [Batch, Batch]
    assert scheduled[0].partitions == [datetime.date(2012, 1, 1)]
