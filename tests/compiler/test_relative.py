"""Ranges relative to the build's date: today, yesterday, now; the clock is an input, never read here."""

import datetime

import pytest
from flow.compiler import types as t
from flow.compiler.checks import check
from flow.compiler.errors import FlowCheckError, UsageError
from flow.compiler.graph import TaskFactory
from flow.compiler.parser import parse

FLOWFILE = '''
rule day(date: date):
    output: "days/{date}.tsv"
    python: acts.day

rule month(interval: interval):
    requires: day(d) for d in interval
    output: "months/{interval}.tsv"
    python: acts.month

rule hourly(hour: hour):
    output: "hours/{hour}.tsv"
    python: acts.hour

rule trailing(date: date):
    requires: day(d) for d in days(today - 3 .. yesterday)
    output: "trailing/{date}.tsv"
    python: acts.day

range last_7_days = days(today - 7 .. yesterday)
range last_year = months(today - 365 .. today)
range last_3_hours = hours(now - 3 .. now)
range fixed = days(2012-06-01 .. 2012-06-03)

target week: day(d) for d in last_7_days
target year: month(m) for m in last_year
'''


def factory_on(day: datetime.date, hour: int = 0) -> TaskFactory:
    moment = datetime.datetime(day.year, day.month, day.day, hour, 30)
    return TaskFactory(check(parse(FLOWFILE)), t.Clock(day, moment))


def test_ranges_follow_the_clock_given():
    factory = factory_on(datetime.date(2012, 3, 1), hour=14)
    assert factory.relative_range("last_7_days") == [datetime.date(2012, 2, d) for d in range(23, 30)]
    # the current month has not ended: the range stops at the last closed one
    assert [str(m) for m in factory.relative_range("last_year")] == [f"2011-{m:02d}" for m in range(3, 13)] + [
        "2012-01", "2012-02"]
    assert [str(h) for h in factory.relative_range("last_3_hours")] == [
        "2012-03-01T11", "2012-03-01T12", "2012-03-01T13"]
    assert [task.id for task in factory.target("week")][-1] == "day(2012-02-29)"


def test_constant_ranges_stay_constant():
    checked = check(parse(FLOWFILE))
    assert checked.ranges == {"fixed": [datetime.date(2012, 6, d) for d in (1, 2, 3)]}
    assert set(checked.relative_ranges) == {"last_7_days", "last_year", "last_3_hours"}
    assert checked.uses_clock


def test_rules_may_read_today_in_requires():
    factory = factory_on(datetime.date(2012, 3, 1))
    task = factory.from_params("trailing", {"date": datetime.date(2000, 1, 1)})
    assert [req.id for req in factory.requirements(task)] == ["day(2012-02-27)", "day(2012-02-28)",
                                                              "day(2012-02-29)"]


def test_without_a_clock_a_relative_target_is_a_usage_error():
    factory = TaskFactory(check(parse(FLOWFILE)))
    with pytest.raises(UsageError, match="target 'week' depends on today"):
        factory.target("week")


def test_a_range_empty_on_every_date_is_an_error():
    text = FLOWFILE + "range never = days(today .. today - 1)\n"
    with pytest.raises(FlowCheckError, match="days\\(\\) range is empty whatever the build's date"):
        check(parse(text))


def test_a_parameter_named_today_is_the_parameter():
    text = '''
rule r(today: date):
    requires: s(today + 1)
    output: "r/{today}.tsv"
    python: a.b

rule s(date: date):
    output: "s/{date}.tsv"
    python: a.b
'''
    checked = check(parse(text))
    factory = TaskFactory(checked)  # no clock needed: `today` is the parameter here
    task = factory.from_params("r", {"today": datetime.date(2012, 1, 1)})
    assert [req.id for req in factory.requirements(task)] == ["s(2012-01-02)"]


def test_closed_prefix_and_period_end():
    moment = datetime.datetime(2012, 3, 1, 0, 0)
    assert t.period_end(datetime.date(2012, 2, 29)) == moment
    assert t.period_end(t.month(2012, 2)) == moment
    assert t.period_end(t.Hour(2012, 2, 29, 23)) == moment
    days = [datetime.date(2012, 2, 28), datetime.date(2012, 2, 29), datetime.date(2012, 3, 1)]
    assert t.closed_prefix(days, moment) == days[:2]
