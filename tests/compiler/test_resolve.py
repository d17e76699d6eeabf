"""Tests of compiler/resolve.py: what a user types on the command line becomes root tasks."""

import textwrap

import pytest
from flow.compiler.checks import check
from flow.compiler.errors import UsageError
from flow.compiler.graph import TaskFactory
from flow.compiler.parser import parse
from flow.compiler.resolve import resolve

TEXT = '''
rule streams(date: date):
    output: "data/streams/{date}.tsv"
    python: m.f

rule top_artists(interval: interval, engine: str = "python" insignificant):
    output: "data/top_artists_{interval}.tsv"
    python: m.f

rule report(interval: interval):
    output: "reports/top_artists_{interval}.tsv"
    python: m.f

rule summary(kind: str = "all"):
    output: "summary_{kind}.txt"
    python: m.f

range june = days(2012-06-01 .. 2012-06-03)
target june_streams: streams(d) for d in june
'''


@pytest.fixture(scope="module")
def factory():
    text = textwrap.dedent(TEXT)
    return TaskFactory(check(parse(text), text))


def ids(tasks):
    return [task.id for task in tasks]


def test_named_target(factory):
    expected = ["streams(2012-06-01)", "streams(2012-06-02)", "streams(2012-06-03)"]
    assert ids(resolve(factory, "june_streams")) == expected


def test_exact_path(factory):
    [task] = resolve(factory, "data/streams/2012-06-01.tsv")
    assert task.id == "streams(2012-06-01)" and task.output == "data/streams/2012-06-01.tsv"
    assert ids(resolve(factory, "./data/top_artists_2012-W23.tsv")) == ["top_artists(2012-W23)"]


def test_file_name_alone(factory):
    assert ids(resolve(factory, "2012-06-01.tsv")) == ["streams(2012-06-01)"]


def test_call_forms(factory):
    assert ids(resolve(factory, "top_artists(2012-06)")) == ["top_artists(2012-06)"]
    [task] = resolve(factory, 'top_artists(interval=2012, engine="spark")')
    assert task.id == "top_artists(2012)" and task.params["engine"] == "spark"
    assert ids(resolve(factory, "summary")) == ["summary(all)"]


def _usage(factory, name):
    with pytest.raises(UsageError) as caught:
        resolve(factory, name)
    [diagnostic] = caught.value.diagnostics
    return diagnostic


def test_ambiguous_name_names_both_rules(factory):
    diagnostic = _usage(factory, "top_artists_2012-06.tsv")
    assert diagnostic.message == "'top_artists_2012-06.tsv' matches the outputs of 'top_artists' and 'report'"


def test_unknown_name_with_did_you_mean(factory):
    diagnostic = _usage(factory, "june_stream")
    assert diagnostic.message == "'june_stream' is not a target, a rule or the output of any rule"
    assert diagnostic.hint == "did you mean 'june_streams'?"
    assert _usage(factory, "top_artist(2012)").hint == "did you mean 'top_artists'?"


def test_bad_interval_value(factory):
    diagnostic = _usage(factory, "top_artists(2012-13)")
    assert diagnostic.message == ("argument 'interval' of 'top_artists': "
                                  "'2012-13' is not an interval: month must be in 1..12")
    assert "is not an interval" in _usage(factory, "data/top_artists_2012-13.tsv").message


def test_rule_without_defaults_needs_parameters(factory):
    assert _usage(factory, "streams").message == "rule 'streams' needs parameters"
    assert _usage(factory, "streams()").message == "'streams' needs a value for 'date'"
    assert _usage(factory, "streams(2012-06-01, 2)").message == "'streams' takes 1 arguments"
