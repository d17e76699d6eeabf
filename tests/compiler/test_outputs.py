"""Tests of compiler/outputs.py: patterns format locations, read them back, and refuse values that escape."""

import textwrap

import pytest
from flow.compiler import outputs
from flow.compiler.checks import check
from flow.compiler.errors import UsageError
from flow.compiler.graph import TaskFactory
from flow.compiler.parser import parse
from flow.compiler.resolve import resolve

TEXT = '''
rule bare(name: str):
    output: "{name}.txt"
    python: m.f

rule r(name: str, n: int = 1):
    output: "out/{name}/{n}.txt"
    python: m.f

rule remote(key: str):
    output: "s3://bucket/exports/{key}.tsv"
    python: m.f

rule loaded(region: str):
    output: table "loads_{region}"
    sql: "SELECT 1"

rule chain(name: str):
    requires: bare(name + "/../../x")
    output: "chain/{name}.txt"
    python: m.f
'''


@pytest.fixture(scope="module")
def factory():
    text = textwrap.dedent(TEXT)
    return TaskFactory(check(parse(text), text))


def refused(factory, request: str) -> str:
    with pytest.raises(UsageError) as caught:
        resolve(factory, request)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.span is None  # a usage error: the command line (or a value computed from it) is at fault
    return f"{diagnostic.code}: {diagnostic.message}"


@pytest.mark.parametrize("value, why", [
    ("/tmp/x/abs", "a '/' would take output '{name}.txt' out of the place it names"),
    ("../../../esc", "a '/' would take output '{name}.txt' out of the place it names"),
    ("..", "'..' would take output '{name}.txt' out of the place it names"),
    (".", "'.' would take output '{name}.txt' out of the place it names"),
    ("", "an empty value cannot name part of output '{name}.txt'"),
])
def test_values_that_leave_the_pattern_place_are_refused(factory, value, why):
    assert refused(factory, f'bare("{value}")') == f"E803: parameter 'name' of 'bare' is '{value}': {why}"


@pytest.mark.parametrize("value, shown", [("a\nb", "'a\\nb'"), ("a\x00b", "'a\\x00b'"), ("a\rb", "'a\\rb'")])
def test_control_characters_are_refused_and_shown_escaped(factory, value, shown):
    message = refused(factory, f'bare("{value}")')
    assert message.startswith(f"E803: parameter 'name' of 'bare' is {shown}: a control character")


def test_a_value_computed_in_requires_is_checked_too(factory):
    task = resolve(factory, 'chain("a")')[0]
    with pytest.raises(UsageError) as caught:
        factory.requirements(task)
    assert "parameter 'name' of 'bare' is 'a/../../x'" in str(caught.value)


def test_ordinary_values_still_work(factory):
    assert resolve(factory, 'bare("report 2012 (final)")')[0].output == "report 2012 (final).txt"
    assert resolve(factory, 'bare("..hidden")')[0].output == "..hidden.txt"
    assert resolve(factory, 'r("x", -3)')[0].output == "out/x/-3.txt"
    assert resolve(factory, 'bare("ünïcode")')[0].output == "ünïcode.txt"


def test_url_keys_stay_under_their_prefix(factory):
    assert resolve(factory, 'remote("2012-06")')[0].output == "s3://bucket/exports/2012-06.tsv"
    assert refused(factory, 'remote("a/b")').startswith("E803: parameter 'key' of 'remote' is 'a/b': a '/'")
    for character in "?#%":
        assert f"a '{character}' would change what output URL" in refused(factory, f'remote("a{character}b")')


def test_table_names_refuse_only_empty_and_control_values(factory):
    assert resolve(factory, 'loaded("eu/west")')[0].output == "loads_eu/west"
    assert refused(factory, 'loaded("a\nb")').startswith("E803: parameter 'region' of 'loaded' is 'a\\nb'")


def test_names_longer_than_file_systems_allow_are_refused(factory):
    assert resolve(factory, f'bare("{"x" * 200}")')[0].output == "x" * 200 + ".txt"
    assert refused(factory, f'bare("{"x" * 240}")').startswith("E804: output of 'bare' has a name of 244 bytes")
    # bytes, not characters: 80 three-byte characters are 240 bytes
    assert refused(factory, f'bare("{"€" * 80}")').startswith("E804: output of 'bare' has a name of 244 bytes")
    assert refused(factory, f'r("x", {"9" * 300})').startswith("E804: output of 'r' has a name of 304 bytes")


def test_format_and_read_are_inverse():
    text = textwrap.dedent(TEXT)
    pattern = check(parse(text), text).rules["r"].output
    location = pattern.format(("north", 12))
    assert location == "out/north/12.txt"
    assert pattern.read(location) == {"name": "north", "n": 12}
    assert pattern.read("elsewhere/north/12.txt") is None
    assert pattern.read_name("12.txt") is None  # the last component does not hold every placeholder


def _many_rules(count: int) -> str:
    rules = [f'rule r{i}(date: date, region: str):\n    output: "data/r{i}/{{region}}/{{date}}.tsv"\n    python: m.f\n'
             for i in range(count)]
    return "\n".join(rules)


def test_clash_check_tries_each_sample_against_a_handful_of_patterns():
    text = _many_rules(2000)
    flowfile = check(parse(text), text)
    indexes = []
    assert outputs.output_clashes(flowfile.rules, indexes) == []
    # one sample per rule, and the prefix index leads each to its own pattern only: no regex is tried
    # at all, where comparing every pair would try 2000 x 1999
    assert indexes[0].tried == 0


def test_patterns_sharing_both_ends_are_still_compared():
    text = "".join(f'rule r{i}(date: date):\n    output: "data/{{date}}_r{i}.tsv"\n    python: m.f\n' for i in range(3))
    indexes = []
    flowfile = check(parse(text), text)
    assert outputs.output_clashes(flowfile.rules, indexes) == []
    assert indexes[0].tried == 0  # suffixes differ: no regex tried
    text += 'rule other(date: date):\n    output: "data/{date}_r1.tsv.tsv"\n    python: m.f\n'
    text += 'rule wide(name: str):\n    output: "data/{name}"\n    python: m.f\n'
    with pytest.raises(Exception) as caught:
        check(parse(text), text)
    assert [d.message for d in caught.value.diagnostics] == [
        "outputs of 'r0' and 'wide' can name the same file ('data/2012-06-01_r0.tsv')",
        "outputs of 'r1' and 'wide' can name the same file ('data/2012-06-01_r1.tsv')",
        "outputs of 'r2' and 'wide' can name the same file ('data/2012-06-01_r2.tsv')",
        "outputs of 'other' and 'wide' can name the same file ('data/2012-06-01_r1.tsv.tsv')",
    ]


def test_clash_check_still_finds_clashes_through_the_index():
    text = _many_rules(30) + '\nrule other(date: date):\n    output: "data/r7/x/{date}.tsv"\n    python: m.f\n'
    with pytest.raises(Exception) as caught:
        check(parse(text), text)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "E203"
    assert diagnostic.message == "outputs of 'r7' and 'other' can name the same file ('data/r7/x/2012-06-01.tsv')"


def test_the_directory_a_pattern_fixes():
    # completeness groups a rule's outputs by this directory without looking at each output
    text = textwrap.dedent('''
    rule day(date: date):
        output: "data/streams_{date}.tsv"
        python: m.f

    rule here(n: int):
        output: "{n}.tsv"
        python: m.f

    rule absolute(name: str):
        output: "/srv/out/{name}.bin"
        python: m.f

    rule nested(date: date):
        output: "data/{date:%Y/%m/%d}.tsv"
        python: m.f

    rule deeper(region: str, date: date):
        output: "data/{region}/{date}.tsv"
        python: m.f
    ''')
    rules = check(parse(text), text).rules
    assert {name: info.output.directory for name, info in rules.items()} == {
        "day": "data", "here": "", "absolute": "/srv/out", "nested": None, "deeper": None}
