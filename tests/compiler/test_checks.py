"""Tests of compiler/checks.py and compiler/expressions.py: every error collected, types and values computed."""

import datetime as dt
import textwrap

import pytest
from flow.compiler import types as t
from flow.compiler.checks import check
from flow.compiler.errors import FlowCheckError
from flow.compiler.parser import parse

DAILY = '''
rule daily(date: date):
    output: "data/{date}.tsv"
    python: m.f
'''


def checked(text):
    text = textwrap.dedent(text)
    return check(parse(text, "F"), text)


def errors(text):
    with pytest.raises(FlowCheckError) as caught:
        checked(text)
    return [(d.code, d.message) for d in caught.value.diagnostics]


def test_root_flowfile_checks():
    with open("Flowfile", encoding="utf-8") as handle:
        text = handle.read()
    result = check(parse(text), text)
    assert result.default == "toplists_db_2012"
    assert [str(m) for m in result.ranges["months_2012"]][:2] == ["2012-01", "2012-02"]
    assert result.rules["top_artists"].significant == (0,)


def test_all_errors_are_collected_in_file_order():
    found = errors(DAILY + '''
rule monthly(interval: interval):
    requires: dialy(day) for day in interval
    output: "monthly/{intervl}.tsv"
    python: m.f
    retry: 1

target t: monthly(2012-13)
default: nothing
''')
    assert [code for code, _ in found] == ["E102", "E201", "E202", "E701", "E108", "E301"]


@pytest.mark.parametrize(
    "requires, message",
    [
        ("daily(interval)", "argument 'date' of 'daily' must be a date, not an interval"),
        ("daily(interval.start + interval)", "cannot apply '+' to a date and an interval"),
        ("daily(d) for d in 3", "cannot iterate over an int"),
        ("daily(interval.first)", "an interval has no attribute 'first'"),
        ("daily(date=interval.start, date=interval.end)", "argument 'date' of 'daily' given twice"),
        ("daily(day=interval.start)", "'daily' has no parameter 'day'"),
        ("daily()", "'daily' needs a value for 'date'"),
        ("interval", "a requirement must be a rule call, not an interval"),
        ("daily(interval.start) if interval else []", "a condition must be a bool, not an interval"),
    ],
)
def test_type_errors(requires, message):
    found = errors(DAILY + f'''
rule monthly(interval: interval):
    requires: {requires}
    output: "monthly/{{interval}}.tsv"
    python: m.f
''')
    assert found[0][1] == message


def _requirements(text, rule, **params):
    result = checked(text)
    info = result.rules[rule]
    env = {name: params.get(name, default.fn({}) if default else None)
           for name, default in zip(info.param_names, info.defaults, strict=True)}
    return [(name, tuple(t.format_value(v) for v in values)) for name, values in info.requires(env)]


def test_date_arithmetic_conditionals_and_lists():
    text = DAILY + '''
rule window(date: date, wide: bool = false insignificant):
    requires:
        daily(date - 1)
        [daily(date + 1), daily(date.next)] if wide else []
        daily(d) for d in days(date - 2 .. date - 2) if d.weekday != 7
    output: "window/{date}.tsv"
    python: m.f
'''
    june3 = dt.date(2012, 6, 3)
    assert _requirements(text, "window", date=june3) == [("daily", ("2012-06-02",)), ("daily", ("2012-06-01",))]
    assert _requirements(text, "window", date=june3, wide=True)[1:3] == [("daily", ("2012-06-04",))] * 2


def test_interval_attributes_and_builtins():
    text = DAILY + '''
rule monthly(interval: interval):
    requires:
        daily(interval.prev.end - 1)
        monthly(w) for w in weeks(interval) if false
        daily(d) for d in interval.days if d == interval.start
    output: "monthly/{interval}.tsv"
    python: m.f
'''
    june = t.parse_interval("2012-06")
    assert _requirements(text, "monthly", interval=june) == [("daily", ("2012-05-31",)), ("daily", ("2012-06-01",))]


def test_ranges_and_targets():
    result = checked(DAILY + '''
range june = days(2012-06-01 .. 2012-06-30)
range weeks_2012 = weeks(2012)
range quarters = months(2012-01 .. 2012-03)
target first: daily(d) for d in june if d.day == 1
''')
    assert len(result.ranges["june"]) == 30
    # the weeks that start in 2012: Monday 2012-12-31 starts 2013-W01
    assert [str(w) for w in result.ranges["weeks_2012"][::52]] == ["2012-W01", "2013-W01"]
    assert [str(q) for q in result.ranges["quarters"]] == ["2012-01", "2012-02", "2012-03"]
    assert list(result.targets["first"][1]({})) == [("daily", (dt.date(2012, 6, 1),))]


def test_bare_year_is_an_interval():
    result = checked(DAILY + 'range y = months(2012)\nrange z = years(2010 .. 2012)\n')
    assert len(result.ranges["y"]) == 12 and [str(y) for y in result.ranges["z"]] == ["2010", "2011", "2012"]


def test_output_checks():
    assert errors('rule r(d: date):\n    output: ""\n    python: m.f\n') == [("E207", "output pattern is empty")]
    found = errors(DAILY + 'rule other(date: date):\n    output: "data/{date}.tsv"\n    python: m.f\n')
    assert found[0][0] == "E203"


def test_table_outputs_may_leave_parameters_out():
    checked('rule r(d: date):\n    output: table "plays"\n    sql: "INSERT INTO plays SELECT :d"\n')


def test_settings():
    assert errors(DAILY.replace("python: m.f", "python: m.f\n    retries: 1.5s")) == [
        ("E702", "retries must be a whole number, 0 or more")]
    result = checked(DAILY + 'spark:\n    master: "local[2]"\n    conf:\n        spark.x: 4\n')
    assert result.spark == {"master": "local[2]", "conf": {"spark.x": "4"}}


def test_names_must_be_unique():
    found = errors(DAILY + DAILY + "target daily: daily(2012-06-01)\n")
    assert [code for code, _ in found] == ["E101", "E101"]


def test_external_and_missing_actions():
    found = errors('external rule e(d: date):\n    output: "{d}"\n    python: m.f\n'
                   'rule r(d: date):\n    output: "x{d}"\n')
    assert [code for code, _ in found] == ["E206", "E205"]


RULE = 'rule r(d: date):\n    output: "x/{d}"\n    python: m.f\n'


@pytest.mark.parametrize("value", ["postgresql://flow@db.example.com/flow", "host=db dbname=flow", "$FLOW_COORD"])
def test_coordinator_takes_a_url_key_values_or_a_variable(value):
    assert checked(f'coordinator: "{value}"\n' + RULE).coordinator == value


@pytest.mark.parametrize("value, message", [
    ("postgresql://flow:hunter2@db/flow", "the coordinator setting holds a password"),
    ("postgresql://db/flow?password=hunter2", "the coordinator setting holds a password"),
    ("host=db password=hunter2", "the coordinator setting holds a password"),
    ("$1BAD", "coordinator '$1BAD' is not an environment variable name"),
    ("db.example.com", "coordinator 'db.example.com' is neither a PostgreSQL URL nor $VARIABLE"),
])
def test_a_bad_coordinator_setting_is_refused(value, message):
    found = errors(f'coordinator: "{value}"\n' + RULE)
    assert found == [("E705", message)]
