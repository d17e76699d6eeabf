"""Hours and minutes: Luigi's text forms, arithmetic, hours()/minutes(), formats that read back."""

import datetime

import pytest
from flow.compiler import types as t
from flow.compiler.checks import check
from flow.compiler.errors import FlowCheckError, FlowError
from flow.compiler.graph import TaskFactory
from flow.compiler.parser import parse
from flow.compiler.resolve import resolve

FLOWFILE = '''
rule logs(hour: hour):
    output: "logs/{hour:year=%Y/month=%m/day=%d/hour=%H}/part.tsv"
    python: acts.hour

rule plain(hour: hour):
    output: "plain/{hour}.tsv"
    python: acts.hour

rule daily(date: date):
    requires: logs(h) for h in hours(date)
    output: "daily/{date}.tsv"
    python: acts.day

rule lagged(hour: hour):
    requires: logs(hour - 1), logs(hour.next), plain(2012-06-01T13 + 2)
    output: "lagged/{hour}.tsv"
    python: acts.hour

rule clicks(minute: minute):
    output: "clicks/{minute:%Y/%m/%d/%H%M}.tsv"
    python: acts.minute

target night: logs(h) for h in hours(2012-06-01T22 .. 2012-06-02T01)
target an_hour_of_clicks: clicks(m) for m in minutes(2012-06-01T13)
target june_hours: logs(h) for h in hours(2012-06)
target evening: plain(h) for h in hours(2012-06-01) if h.hour >= 18
'''


@pytest.fixture
def factory():
    return TaskFactory(check(parse(FLOWFILE)))


def test_text_forms_parse_and_print_back():
    assert str(t.parse_hour("2012-06-01T13")) == "2012-06-01T13"
    assert str(t.parse_minute("2012-06-01T1305")) == "2012-06-01T1305"
    assert t.format_value(t.parse_hour("2012-06-01T00") - t.ONE_HOUR) == "2012-05-31T23"
    with pytest.raises(t.TypeError_, match="hour must be in 0..23"):
        t.parse_hour("2012-06-01T24")
    with pytest.raises(t.TypeError_, match="expected YYYY-MM-DDTHH"):
        t.parse_hour("2012-06-01")


def test_hours_of_a_day_and_of_an_interval(factory):
    [daily] = resolve(factory, "daily/2012-06-01.tsv")
    hours = factory.requirements(daily)
    assert len(hours) == 24
    assert hours[0].output == "logs/year=2012/month=06/day=01/hour=00/part.tsv"
    assert hours[-1].id == "logs(2012-06-01T23)"
    assert len(factory.target("june_hours")) == 30 * 24
    assert [task.id for task in factory.target("evening")][:2] == ["plain(2012-06-01T18)", "plain(2012-06-01T19)"]
    assert len(factory.target("evening")) == 6


def test_a_range_of_hours_crosses_midnight(factory):
    assert [task.id for task in factory.target("night")] == [
        "logs(2012-06-01T22)", "logs(2012-06-01T23)", "logs(2012-06-02T00)", "logs(2012-06-02T01)"]


def test_hour_arithmetic(factory):
    [task] = resolve(factory, "lagged(2012-06-01T00)")
    assert [req.id for req in factory.requirements(task)] == [
        "logs(2012-05-31T23)", "logs(2012-06-01T01)", "plain(2012-06-01T15)"]


def test_minutes_print_and_read_back(factory):
    tasks = factory.target("an_hour_of_clicks")
    assert len(tasks) == 60
    assert tasks[5].output == "clicks/2012/06/01/1305.tsv"
    [back] = resolve(factory, "clicks/2012/06/01/1305.tsv")
    assert back is tasks[5]


def test_paths_read_back_into_hours(factory):
    [task] = resolve(factory, "logs/year=2012/month=06/day=09/hour=07/part.tsv")
    assert task.params == {"hour": t.Hour(2012, 6, 9, 7)}
    assert task.params["hour"] != datetime.date(2012, 6, 9)
    [by_name] = resolve(factory, "2012/06/09/1305.tsv")  # without its directory
    assert by_name.id == "clicks(2012-06-09T1305)"
    with pytest.raises(FlowError, match="hour must be in 0..23"):
        resolve(factory, "plain/2012-06-09T24.tsv")


@pytest.mark.parametrize("text, message", [
    ('rule r(hour: hour):\n    output: "x/{hour:%Y/%m/%d}.tsv"\n    python: a.b\n',
     "format '%Y/%m/%d' does not name one whole hour"),
    ('rule r(date: date):\n    output: "x/{date:%Y/%m/%d/%H}.tsv"\n    python: a.b\n',
     "'%H' is not a date format this pattern can read back"),
    ('rule r(m: minute):\n    output: "x/{m:%Y/%m/%d/%H}.tsv"\n    python: a.b\n',
     "does not name one whole minute"),
    ('rule r(hour: hour):\n    output: "x/{hour}.tsv"\n    python: a.b\ntarget t: r(2012-06-01T25)\n',
     "'2012-06-01T25' is not an hour: hour must be in 0..23"),
    ('rule r(hour: hour):\n    output: "x/{hour}.tsv"\n    python: a.b\ntarget t: r(h) for h in hours(2012)\n'
     'target u: r(2012-06-01)\n', "'2012-06-01' is not an hour"),
    ('rule r(hour: hour):\n    output: "x/{hour}.tsv"\n    python: a.b\ntarget t: r(h) for h in hours(true)\n',
     "the argument of hours() must be a date or an interval, not a bool"),
    ('rule r(hour: hour):\n    output: "x/{hour}.tsv"\n    python: a.b\n'
     'target t: r(h) for h in hours(2012-06-01T05 .. 2012-06-01T04)\n', "hours() range is empty"),
])
def test_mistakes_are_compile_errors(text, message):
    with pytest.raises(FlowCheckError) as caught:
        check(parse(text))
    assert message in str(caught.value)
