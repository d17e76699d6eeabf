"""Tests of compiler/parser.py: nodes and spans built from text, suppressions, and translated syntax errors."""

import dataclasses
import textwrap

import pytest
from flow.compiler import nodes as n
from flow.compiler.errors import FlowSyntaxError, render
from flow.compiler.parser import find_suppressions, parse

PIPELINE = '''
rule daily(date: date):
    """One day.

    More words.
    """
    output: "data/{date}.tsv"
    python: steps.daily
    retries: 2
    timeout: 30m

rule monthly(interval: interval, engine: str = "python" insignificant):
    requires:
        daily(day) for day in interval if day.weekday < 6
        daily(interval.start - 1)
    output: dir "monthly/{interval}"
    spark: steps.monthly

rule totals(interval: interval):
    requires: monthly(interval)
    output: table "totals"
    sql: """
        INSERT INTO totals SELECT :interval.start
    """

rule loaded(date: date):
    requires: daily(date)
    output: table "plays"
    load:
        columns: day date, artist text, streams int, tags varchar(20)[]
        format: "csv"
        header: true
        before: "DELETE FROM plays WHERE day = :date"

external rule dump(date: date):
    output: "dumps/{date}.tsv"

rule app(interval: interval):
    output: dir "app/{interval}"
    spark-submit: "apps/count.py"
        master: "local[2]"
        args: ["{output}", "{inputs}"]

range q1 = months(2012-01 .. 2012-03)

target first_quarter:
    """Q1."""
    monthly(m) for m in q1
    totals(m, ) for m in q1

target one: daily(2012-06-01), dump(date=2012-06-02)

default: first_quarter
database: "postgresql://localhost/flow"

spark:
    master: "local[2]"
    conf:
        spark.sql.shuffle.partitions: "4"
'''


@pytest.fixture(scope="module")
def flowfile():
    return parse(PIPELINE)


def test_declarations(flowfile):
    assert [r.name for r in flowfile.rules] == ["daily", "monthly", "totals", "loaded", "dump", "app"]
    assert [r.name for r in flowfile.ranges] == ["q1"]
    assert [t.name for t in flowfile.targets] == ["first_quarter", "one"]
    assert flowfile.default[0] == "first_quarter"
    assert flowfile.database[0] == "postgresql://localhost/flow"
    assert {s.key for s in flowfile.spark} == {"master", "conf"}


def test_rule_settings_and_doc(flowfile):
    daily = flowfile.rules[0]
    assert daily.doc == "One day.\n\nMore words."
    assert daily.retries == 2 and daily.timeout == 1800.0
    assert daily.output == n.Output("file", "data/{date}.tsv", daily.output.span)
    assert daily.action.kind == "python" and daily.action.target == "steps.daily"


def test_parameters(flowfile):
    engine = flowfile.rules[1].params[1]
    assert (engine.name, engine.type, engine.significant) == ("engine", "str", False)
    assert engine.default.value == "python"
    assert engine.type_span.line == 12 and engine.type_span.column == 42


def test_requires_forms(flowfile):
    first, second = flowfile.rules[1].requires
    assert isinstance(first, n.Comprehension) and first.var == "day" and first.condition is not None
    assert isinstance(second, n.FuncCall) and isinstance(second.args[0], n.BinOp)
    assert flowfile.rules[1].output.kind == "dir"


def test_actions(flowfile):
    totals, loaded, dump, app = flowfile.rules[2:]
    assert totals.action.text.strip() == "INSERT INTO totals SELECT :interval.start"
    assert totals.action.text_span.line == 22 and totals.action.text_span.column == 13
    assert [c.type for c in loaded.action.columns] == ["date", "text", "int", "varchar(20)[]"]
    assert loaded.action.format == "csv" and loaded.action.header is True
    assert loaded.action.before == "DELETE FROM plays WHERE day = :date"
    assert dump.external and dump.action is None
    assert app.action.app == "apps/count.py" and app.action.args == ("{output}", "{inputs}")


def test_spans_are_one_based_characters():
    flowfile = parse('rule r(d: date):\n    output: "{d}"\n    python: m.f\n', "F")
    rule = flowfile.rules[0]
    assert rule.name_span == n.Span("F", 1, 6, 1, 7)
    assert rule.params[0].span == n.Span("F", 1, 8, 1, 15)


def test_sql_file_action():
    flowfile = parse('rule r(d: date):\n    output: table "t"\n    sql: "queries/r.sql"\n')
    action = flowfile.rules[0].action
    assert action.file == "queries/r.sql" and action.text is None


def test_suppressions():
    text = "a  # noqa\nb  # noqa: W101, E501\nc # not noqa-like: x\nd\n"
    assert find_suppressions(text) == {1: None, 2: {"W101", "E501"}, 3: None}
    assert find_suppressions("no comments") == {}


def test_line_continuation_and_comments():
    text = 'rule r(d: date):  # a comment\n    output: \\\n        "{d}"\n    # inside\n    python: m.f\n'
    assert parse(text).rules[0].output.pattern == "{d}"


def _error(text):
    with pytest.raises(FlowSyntaxError) as caught:
        parse(textwrap.dedent(text), "F")
    [diagnostic] = caught.value.diagnostics
    return diagnostic


@pytest.mark.parametrize(
    "text, code, message, where",
    [
        ("rule r(d: date)\n    output: \"x\"\n", "E004", "unexpected end of line, expected ':'", (1, 16)),
        ("rule r(d: date):\n\toutput: \"x\"\n", "E002", "indentation contains a tab", (2, 1)),
        ("rule r(d: date):\n    output: 'x'\n", "E005", "strings use double quotes", (2, 13)),
        ("rule r(d: date):\n    output: \"x\n", "E005", "unterminated string", (2, 13)),
        ("target t: a(1 .. 2\n", "E004", "unexpected end of file: a '(' is never closed", (1, 19)),
        ("range r = 2012 .. 2013\n", "E004",
         "a '..' range is only allowed inside days(), weeks(), months() or years()", (1, 16)),
        ("rule r(d: date):\n    output: \"a\"\n  python: m.f\n", "E001",
         "unindent does not match any outer indentation level", (3, 3)),
        ("target t: a(x=1, 2)\n", "E006", "positional argument after a keyword argument", (1, 18)),
        ("rule r(d: date):\n    output: \"a\"\n    output: \"b\"\n    python: m.f\n", "E008",
         "rule 'r' has two outputs", (3, 5)),
    ],
)
def test_syntax_errors(text, code, message, where):
    diagnostic = _error(text)
    assert (diagnostic.code, diagnostic.message) == (code, message)
    assert (diagnostic.span.line, diagnostic.span.column) == where


def test_syntax_error_renders_with_caret(tmp_path):
    diagnostic = _error("rule r(d: date)\n    output: \"x\"\n")
    path = tmp_path / "F"
    path.write_text("rule r(d: date)\n")
    diagnostic = dataclasses.replace(diagnostic, span=n.Span(str(path), 1, 16, 1, 17))
    assert render(diagnostic).splitlines()[1:] == ["    rule r(d: date)", "                   ^"]


def test_errors_are_picklable():
    import pickle

    try:
        parse("rule (\n")
    except FlowSyntaxError as exc:
        again = pickle.loads(pickle.dumps(exc))
        assert again.diagnostics == exc.diagnostics


# ---------------------------------------------------------------------------- every error, every limit


def _diagnostics(text: str) -> list:
    with pytest.raises(FlowSyntaxError) as caught:
        parse(textwrap.dedent(text))
    return [(d.code, d.message, d.span.line if d.span else None) for d in caught.value.diagnostics]


def test_errors_found_while_building_nodes_are_all_reported_in_file_order():
    found = _diagnostics('''
        rule a(date: date):
            output: "a/{date}"
            output: "b/{date}"
            python: m.f
            python: m.g
            requires: b(x=1, 2)

        rule b(x: int):
            output: table "t"
            load:
                delimiter: ","
                quote: "'"
    ''')
    assert found == [
        ("E008", "rule 'a' has two outputs", 4),
        ("E008", "rule 'a' has two actions (python and python)", 6),
        ("E006", "positional argument after a keyword argument", 7),
        ("E007", "a load block needs 'columns: name type, ...'", 11),
        ("E007", "unknown load setting 'delimiter'", 12),
        ("E007", "unknown load setting 'quote'", 13),
    ]


def test_a_bad_escape_does_not_hide_the_next_problem():
    found = _diagnostics('''
        rule a(date: date):
            output: "a\\x4{date}"
            output: "b/{date}"
            python: m.f
    ''')
    assert [code for code, _, _ in found] == ["E005", "E008"]


@pytest.mark.parametrize("expression", [
    " + ".join(["1"] * 350),
    "1 if true else " * 500 + "1",
    "[" * 1000 + "]" * 1000,
    "not " * 400 + "true",
])
def test_nesting_beyond_the_limit_is_a_located_error(expression):
    with pytest.raises(FlowSyntaxError) as caught:
        parse(f"\nrange x = {expression}\n")
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "E011"
    assert diagnostic.message == "nested too deeply: more than 100 levels"
    assert diagnostic.span.line == 2 and 11 <= diagnostic.span.column <= len(expression) + 10


def test_nesting_within_the_limit_parses():
    flowfile = parse("range x = " + " + ".join(["1"] * 80) + "\n")
    assert flowfile.ranges[0].name == "x"


def test_an_integer_longer_than_flow_reads_is_a_located_error():
    with pytest.raises(FlowSyntaxError) as caught:
        parse("range x = " + "1" * 4301 + "\n")
    [diagnostic] = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.column) == ("E011", 1, 11)
    assert diagnostic.message == "a number of 4,301 digits is longer than flow reads (at most 100)"


def test_unicode_digits_are_not_digits():
    with pytest.raises(FlowSyntaxError) as caught:
        parse("range x = days(\u0662\u0660\u0661\u0662-06-01 .. 2012-06-02)\n")
    assert caught.value.diagnostics[0].code == "E005"
