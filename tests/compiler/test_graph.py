"""Tests of compiler/graph.py: tasks interned by significant values, expansion stopping at complete tasks, cycles."""

import textwrap

import pytest
from flow.compiler.checks import check
from flow.compiler.graph import CycleError, TaskFactory, build_graph
from flow.compiler.parser import parse
from flow.compiler.resolve import resolve

TEXT = '''
rule streams(date: date):
    output: "data/streams/{date}.tsv"
    python: m.f

rule monthly(interval: interval, engine: str = "python" insignificant):
    requires: streams(day) for day in interval
    output: "data/monthly_{interval}.tsv"
    python: m.f

rule yearly(interval: interval):
    requires: monthly(m) for m in months(interval)
    output: "data/yearly_{interval}.tsv"
    python: m.f
'''


def make(text):
    text = textwrap.dedent(text)
    return TaskFactory(check(parse(text), text))


def test_tasks_are_interned_by_significant_values():
    factory = make(TEXT)
    [a] = resolve(factory, "monthly(2012-06)")
    [b] = resolve(factory, 'monthly(2012-06, engine="spark")')
    assert a is b and a.id == "monthly(2012-06)"


def test_full_graph():
    factory = make(TEXT)
    graph = build_graph(factory, resolve(factory, "yearly(2012)"), complete=lambda level: set())
    assert len(graph) == 1 + 12 + 366
    assert len(graph.requirements(resolve(factory, "monthly(2012-02)")[0])) == 29


def test_expansion_stops_at_complete_tasks():
    factory = make(TEXT)
    asked = []

    def complete(level):
        asked.append(len(level))
        return {task for task in level if task.name == "monthly" and task.params["interval"].start.month != 6}

    roots = resolve(factory, "yearly(2012)")
    graph = build_graph(factory, roots, complete)
    assert asked == [1, 12, 30]  # one bulk question per level; only June's days are looked at
    assert len(graph) == 1 + 12 + 30
    assert {task.id for task in graph.complete} == {f"monthly(2012-{m:02d})" for m in range(1, 13) if m != 6}
    june = resolve(factory, "monthly(2012-06)")[0]
    assert june in graph.expanded and resolve(factory, "monthly(2012-05)")[0] not in graph.expanded


def test_descend_into_complete_for_forced_tasks():
    factory = make(TEXT)
    roots = resolve(factory, "monthly(2012-06)")
    graph = build_graph(factory, roots, lambda level: set(level), descend_into_complete=lambda task: task in roots)
    assert len(graph) == 31


def test_cycle_is_reported_as_a_path():
    factory = make('''
rule a(interval: interval):
    requires: b(interval)
    output: "a_{interval}"
    python: m.f

rule b(interval: interval):
    requires: a(interval)
    output: "b_{interval}"
    python: m.f
''')
    with pytest.raises(CycleError) as caught:
        build_graph(factory, resolve(factory, "a(2012-06)"), lambda level: set())
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "E802"
    assert diagnostic.message == "tasks require each other in a cycle: a(2012-06) -> b(2012-06) -> a(2012-06)"


def test_self_requirement_with_a_stopping_condition_is_legal():
    factory = make('''
rule running(date: date):
    requires: running(date - 1) if date > 2012-06-01 else []
    output: "running_{date}"
    python: m.f
''')
    graph = build_graph(factory, resolve(factory, "running(2012-06-10)"), lambda level: set())
    assert len(graph) == 10
    assert [t.id for t in graph.requirements(resolve(factory, "running(2012-06-02)")[0])] == ["running(2012-06-01)"]


def test_days_shared_by_overlapping_intervals_are_one_task_each():
    # a week's days made first, then the month's: some exist, some are new; a day listed twice is
    # one task, in the order first listed
    factory = make(TEXT + '''
rule twice(interval: interval):
    requires: streams(day) for day in [interval.start.next, interval.start, interval.start.next]
    output: "data/twice_{interval}.tsv"
    python: m.f
''')
    [week] = resolve(factory, "monthly(2012-W22)")  # 2012-05-28 .. 2012-06-03
    week_days = factory.requirements(week)
    [june] = resolve(factory, "monthly(2012-06)")
    june_days = factory.requirements(june)
    assert [t.id for t in june_days] == [f"streams(2012-06-{d:02d})" for d in range(1, 31)]
    assert june_days[:3] == week_days[4:]  # the same tasks, not equal copies
    assert [t.output for t in june_days[:2]] == ["data/streams/2012-06-01.tsv", "data/streams/2012-06-02.tsv"]
    [again] = resolve(factory, "monthly(2012-06)")
    assert factory.requirements(again) is june_days
    [inside] = resolve(factory, "monthly(2012-W23)")  # 2012-06-04 .. 2012-06-10: every day exists
    assert factory.requirements(inside) == june_days[3:10]
    [both] = resolve(factory, "twice(2012-07)")
    assert [t.id for t in factory.requirements(both)] == ["streams(2012-07-02)", "streams(2012-07-01)"]
    [may] = resolve(factory, "monthly(2012-05)")  # its first days are new, its last four the week's
    may_days = factory.requirements(may)
    assert [t.id for t in may_days] == [f"streams(2012-05-{d:02d})" for d in range(1, 32)]
    assert may_days[27:] == week_days[:4] and may_days[27] is week_days[0]
    assert len(factory) == 5 + 7 + 27 + 2 + 27  # five intervals, their days once each


def test_a_call_given_the_loop_variable_makes_the_same_tasks_as_any_other_comprehension():
    # `streams(day) for day in interval` is made without an environment per day; a filter, a computed
    # argument or a second parameter take the general way: all must give the same tasks, in order.
    factory = make(TEXT + '''
rule daily(day: date):
    output: "data/daily/{day}.tsv"
    python: m.f

rule pair(day: date, other: date = 2012-01-01):
    output: "data/pair/{day}_{other}.tsv"
    python: m.f

range june = days(2012-06-01 .. 2012-06-30)

target direct: daily(d) for d in june
target filtered: daily(d) for d in june if d >= 2012-06-01
target computed: daily(d + 0) for d in june
target defaulted: pair(d) for d in june
''')
    direct = [t.id for t in resolve(factory, "direct")]
    assert direct == [f"daily(2012-06-{day:02d})" for day in range(1, 31)]
    assert [t.id for t in resolve(factory, "filtered")] == direct
    assert [t.id for t in resolve(factory, "computed")] == direct
    assert [t.id for t in resolve(factory, "defaulted")] == [f"pair(2012-06-{day:02d}, 2012-01-01)"
                                                              for day in range(1, 31)]
    [monthly] = resolve(factory, "monthly(2012-06)")
    assert [t.id for t in factory.requirements(monthly)] == [f"streams(2012-06-{day:02d})" for day in range(1, 31)]
