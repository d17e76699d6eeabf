"""Tests of compiler/sqltext.py: finding SQL parameters, converting them for psycopg2, syntax errors."""

import pytest
from flow.compiler.sqltext import find_parameters, syntax_errors, to_psycopg


def names(sql):
    return [name for name, _, _ in find_parameters(sql)]


def test_finds_names_and_attributes_with_offsets():
    sql = "SELECT * FROM t WHERE d >= :interval.start AND d < :interval.end AND x = :date"
    found = find_parameters(sql)
    assert [n for n, _, _ in found] == ["interval.start", "interval.end", "date"]
    for name, start, end in found:
        assert sql[start:end] == ":" + name


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT ':date'",                     # string literal
        "SELECT $$ :date $$",                 # dollar-quoted string
        "SELECT E'\\' :date'",               # escape string with an escaped quote
        "SELECT 1 -- :date",                  # line comment
        "SELECT 1 /* :date */",               # block comment
        "SELECT x::date FROM t",              # cast
        "SELECT x ::date FROM t",             # cast with a space
        'SELECT ":date" FROM t',              # quoted identifier
        "SELECT a[1:n] FROM t",               # array slice
        "SELECT a[lo:hi] FROM t",
        "SELECT f(x := 1)",                   # named argument
        "SELECT : date",                      # not touching
        'SELECT :"date"',                     # quoted name is not a parameter
    ],
)
def test_leaves_non_parameters_alone(sql):
    assert names(sql) == []


def test_parameter_in_parenthesis_inside_brackets():
    assert names("SELECT a[(:n)] FROM t") == ["n"]


def test_attribute_must_touch():
    assert names("SELECT :interval .start") == ["interval"]
    assert names("SELECT :interval. start") == ["interval"]


def test_keyword_names_and_non_ascii_offsets():
    sql = "SELECT 'ééé', :start, :end"
    found = find_parameters(sql)
    assert found == [("start", sql.index(":start"), sql.index(":start") + 6), ("end", sql.index(":end"), len(sql))]


def test_to_psycopg_converts_and_doubles_percent():
    text, params = to_psycopg("SELECT '50%' LIKE x, :date, :interval.start, :date -- 100%")
    assert text == "SELECT '50%%' LIKE x, %(date)s, %(interval.start)s, %(date)s -- 100%%"
    assert params == ["date", "interval.start"]


def test_to_psycopg_without_parameters():
    assert to_psycopg("SELECT 1") == ("SELECT 1", [])


def test_syntax_ok_with_parameters():
    assert syntax_errors("INSERT INTO r SELECT :interval.start, count(*) FROM t WHERE d = :date") == []
    assert syntax_errors("DELETE FROM t WHERE a = :x; SELECT 1") == []


def test_syntax_error_offset():
    sql = "SELECT :interval.start,, 1"
    [(offset, message)] = syntax_errors(sql)
    assert offset == sql.index(",,") + 1
    assert message == 'syntax error at or near ","'


def test_syntax_error_offset_after_non_ascii():
    sql = "SELECT 'ééé' AS x, :date FORM t"
    [(offset, message)] = syntax_errors(sql)
    assert offset == sql.index("t", sql.index("FORM"))
    assert "near" in message


def test_unterminated_string():
    sql = "SELECT :date, 'abc"
    [(offset, message)] = syntax_errors(sql)
    assert offset == sql.index("'abc")
    assert "unterminated" in message


def test_error_at_end_of_input():
    [(offset, message)] = syntax_errors("SELECT * FROM")
    assert 0 <= offset <= len("SELECT * FROM")
    assert "end of input" in message
