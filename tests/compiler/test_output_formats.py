"""Date formats in output patterns: {date:year=%Y/month=%m/day=%d} prints and reads back."""

import datetime

import pytest
from flow.compiler.checks import check
from flow.compiler.errors import FlowCheckError, FlowError
from flow.compiler.graph import TaskFactory
from flow.compiler.parser import parse
from flow.compiler.resolve import resolve

FLOWFILE = '''
rule events(date: date):
    output: "data/events/{date:year=%Y/month=%m/day=%d}/part.tsv"
    python: acts.day

rule ordinal(date: date):
    output: "data/ordinal/{date:%Y-%j}.tsv"
    python: acts.day
'''


@pytest.fixture
def factory():
    return TaskFactory(check(parse(FLOWFILE)))


def test_formatted_dates_print_into_the_path(factory):
    task = factory.from_params("events", {"date": datetime.date(2012, 6, 9)})
    assert task.output == "data/events/year=2012/month=06/day=09/part.tsv"
    early = factory.from_params("ordinal", {"date": datetime.date(987, 1, 5)})
    assert early.output == "data/ordinal/0987-005.tsv"  # zero-padded, unlike strftime's %Y on glibc


def test_paths_read_back_into_dates(factory):
    [task] = resolve(factory, "data/events/year=2012/month=06/day=09/part.tsv")
    assert task.params == {"date": datetime.date(2012, 6, 9)}
    [task] = resolve(factory, "2012-366.tsv")  # the file name alone, when it holds the whole date
    assert task.params == {"date": datetime.date(2012, 12, 31)}


@pytest.mark.parametrize("name, message", [
    ("data/ordinal/2011-366.tsv", "'2011-366' is not a date written as '%Y-%j'"),
    ("data/events/year=2012/month=02/day=30/part.tsv", "day is out of range for month"),
])
def test_impossible_dates_are_named(factory, name, message):
    with pytest.raises(FlowError) as caught:
        resolve(factory, name)
    assert message in str(caught.value)


@pytest.mark.parametrize("params, output, message", [
    ("date: date", '"data/{date:%Y/%m}.tsv"', "format '%Y/%m' does not name one day"),
    ("date: date", '"data/{date:%Y-%m-%d %H}.tsv"', "'%H' is not a date format this pattern can read back"),
    ("date: date, n: int", '"data/{n:%Y}/{date}.tsv"',
     "only date, hour and minute parameters take a format, and 'n' is int"),
])
def test_bad_formats_are_errors(params, output, message):
    text = f"""
rule r({params}):
    output: {output}
    python: acts.day
"""
    with pytest.raises(FlowCheckError) as caught:
        check(parse(text))
    messages = [d.message for d in caught.value.diagnostics]
    assert any(message in m for m in messages), messages
    assert not any(d.code == "E202" for d in caught.value.diagnostics)  # no second error for the same placeholder
