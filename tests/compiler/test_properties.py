"""Property tests: any text, however broken, gives a checked Flowfile or a FlowError that renders, never a crash.

Inputs are the root Flowfile with characters, lines or tokens deleted, duplicated or swapped, and
Flowfiles assembled from random tokens. Hypothesis is derandomized so CI sees the same examples.
"""

import re
from pathlib import Path

from flow.compiler.checks import check
from flow.compiler.errors import FlowError, SourceCache, render_all
from flow.compiler.lint import lint_file
from flow.compiler.parser import parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
FLOWFILE = (ROOT / "Flowfile").read_text(encoding="utf-8")
SETTINGS = settings(max_examples=250, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

TOKENS = re.findall(r"\s+|\w+|[^\w\s]", FLOWFILE)
LINES = FLOWFILE.splitlines(keepends=True)


def compile_or_error(text: str) -> None:
    """Parse and check; a FlowError must carry diagnostics that render against the text."""
    try:
        check(parse(text, "Flowfile"), text)
    except FlowError as exc:
        assert exc.diagnostics
        rendered = render_all(exc.diagnostics, SourceCache({"Flowfile": text}))
        assert rendered and "Traceback" not in rendered


def _mutate(units: list, data) -> str:
    units = list(units)
    for _ in range(data.draw(st.integers(1, 3))):
        if not units:
            break
        i = data.draw(st.integers(0, len(units) - 1))
        operation = data.draw(st.sampled_from(["delete", "duplicate", "swap", "insert"]))
        if operation == "delete":
            del units[i]
        elif operation == "duplicate":
            units.insert(i, units[i])
        elif operation == "swap":
            j = data.draw(st.integers(0, len(units) - 1))
            units[i], units[j] = units[j], units[i]
        else:
            units.insert(i, data.draw(st.sampled_from(TOKENS + ["\t", "'", '"', '"""', "(", "]", "\\", "\n    "])))
    return "".join(units)


@SETTINGS
@given(st.data())
def test_mutated_characters(data):
    compile_or_error(_mutate(list(FLOWFILE), data))


@SETTINGS
@given(st.data())
def test_mutated_lines(data):
    compile_or_error(_mutate(LINES, data))


@SETTINGS
@given(st.data())
def test_mutated_tokens(data):
    compile_or_error(_mutate(TOKENS, data))


WORDS = ["rule", "external", "target", "range", "default", ":", "(", ")", "[", "]", ",", "=", "..", ".", "+", "-",
         "if", "else", "for", "in", "not", "and", "or", "true", "false", "output", "requires", "python", "spark",
         "spark-submit", "sql", "load", "columns", "dir", "table", "insignificant", "date", "interval", "int", "str",
         "a", "b", "x", "m.f", "2012", "2012-06", "2012-W23", "2012-06-01", "2012-06-01-2012-06-15", "2012-13",
         "30m", "1.5h", "42", '"a/{x}.tsv"', '"q.sql"', '"""SELECT :x"""', "days", "months", "\n", "\n    ",
         "\n        ", "#", "# noqa", "\\\n", "\t", "'", '"']


@settings(max_examples=400, derandomize=True, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=40))
def test_random_token_soup(words):
    compile_or_error(" ".join(words))


@settings(max_examples=100, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_lint_never_crashes(tmp_path_factory, data):
    mode = data.draw(st.sampled_from(["chars", "lines", "tokens"]))
    units = {"chars": list(FLOWFILE), "lines": LINES, "tokens": TOKENS}[mode]
    text = _mutate(units, data)
    path = tmp_path_factory.getbasetemp() / "Flowfile"
    path.write_text(text, encoding="utf-8")
    for diagnostic in lint_file(str(path)):
        assert diagnostic.code and diagnostic.message
