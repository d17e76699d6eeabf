"""Tests of the `resources:` and `priority:` settings in the parser and checks (compiler side only)."""

import textwrap

import pytest
from flow.compiler.checks import check
from flow.compiler.errors import FlowCheckError, FlowSyntaxError
from flow.compiler.parser import parse


def checked(text):
    text = textwrap.dedent(text)
    return check(parse(text, "F"), text)


def codes(text):
    with pytest.raises((FlowCheckError, FlowSyntaxError)) as caught:
        checked(text)
    return [(d.code, d.message) for d in caught.value.diagnostics]


def test_rule_amounts_limits_and_priorities_are_read():
    result = checked('''
        resources: postgres = 2, memory = 16
        resources:
            gpu = 1
            disk = 0

        rule load(date: date):
            output: "a/{date}.tsv"
            python: m.f
            resources: postgres=1, memory=4, scratch=0
            priority: -2

        rule plain(date: date):
            output: "b/{date}.tsv"
            python: m.f

        target urgent:
            """The ones first."""
            priority: 10
            load(2012-01-01)
    ''')
    assert result.resources == {"postgres": 2, "memory": 16, "gpu": 1, "disk": 0}
    assert result.rules["load"].resources == (("postgres", 1), ("memory", 4))  # an amount of 0 holds nothing
    assert result.rules["load"].priority == -2
    assert result.rules["plain"].resources == () and result.rules["plain"].priority == 0
    assert result.target_priorities == {"urgent": 10}
    assert result.targets["urgent"][0].doc == "The ones first."
    assert result.uses_priority


def test_no_priority_anywhere_keeps_the_fast_path():
    result = checked('''
        rule load(date: date):
            output: "a/{date}.tsv"
            python: m.f
            resources: postgres=1
    ''')
    assert not result.uses_priority and result.target_priorities == {}


def test_resources_is_still_a_name_elsewhere():
    # a rule, a parameter and a requirement called `resources` are fine: only `resources:` is the keyword
    result = checked('''
        rule resources(date: date):
            output: "a/{date}.tsv"
            python: m.f

        rule user(date: date, priority: int = 1 insignificant):
            requires: resources(date)
            output: "b/{date}.tsv"
            python: m.f
    ''')
    assert set(result.rules) == {"resources", "user"}


def test_a_task_that_needs_more_than_the_limit_is_refused():
    assert codes('''
        resources: postgres = 1
        rule load(date: date):
            output: "a/{date}.tsv"
            python: m.f
            resources: postgres=3
    ''') == [("E213", "a task of 'load' needs postgres=3, more than the limit of 1 that the resources: block sets, "
                      "so it could never start")]


def test_resource_without_a_limit_is_unlimited():
    result = checked('''
        resources: postgres = 1
        rule load(date: date):
            output: "a/{date}.tsv"
            python: m.f
            resources: memory=1000
    ''')
    assert result.rules["load"].resources == (("memory", 1000),)


@pytest.mark.parametrize("line, code", [
    ("resources: postgres=1.5", "E004"),
    ("resources: postgres", "E004"),
    ("resources: postgres=true", "E702"),
    ("resources: postgres=-1", "E702"),
    ('resources: postgres="1"', "E702"),
    ("priority: true", "E702"),
    ("priority: 1h", "E702"),
])
def test_bad_values(line, code):
    found = codes(f'''
        rule load(date: date):
            output: "a/{{date}}.tsv"
            python: m.f
            {line}
    ''')
    assert [c for c, _ in found] == [code]


def test_negative_retries_now_reads_as_a_bad_value_not_a_syntax_error():
    assert codes('''
        rule load(date: date):
            output: "a/{date}.tsv"
            python: m.f
            retries: -1
    ''') == [("E702", "retries must be a whole number, 0 or more")]
