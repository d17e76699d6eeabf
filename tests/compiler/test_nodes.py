"""Tests of compiler/nodes.py's `node` classes: frozen values, equal by their fields, whole through the parse cache."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
from flow.compiler import nodes as n
from flow.compiler.loader import parse_cached

SPAN = n.Span("Flowfile", 1, 1, 1, 5)


def test_nodes_are_equal_and_hash_alike_by_their_fields_and_print_them():
    assert n.Name("x", SPAN) == n.Name("x", n.Span("Flowfile", 1, 1, 1, 5))
    assert hash(n.Name("x", SPAN)) == hash(n.Name("x", n.Span("Flowfile", 1, 1, 1, 5)))
    assert n.Name("x", SPAN) != n.Name("y", SPAN)
    assert n.Name("x", SPAN) != n.Output("x", SPAN, SPAN)  # another class is never equal
    assert repr(n.Name("x", SPAN)) == ("Name(name='x', span=Span(file='Flowfile', line=1, column=1, end_line=1,"
                                       " end_column=5))")


def test_nodes_are_frozen():
    name = n.Name("x", SPAN)
    with pytest.raises(dataclasses.FrozenInstanceError):
        name.name = "y"
    with pytest.raises(dataclasses.FrozenInstanceError):
        name.other = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        del name.span
    assert not hasattr(name, "__dict__")


def test_defaults_and_factories_fill_what_is_not_given_and_are_not_shared():
    first, second = n.SparkSubmitAction("app.py", {}, SPAN), n.SparkSubmitAction("app.py", {}, SPAN)
    assert (first.args, first.kind, first.setting_spans) == (None, "spark-submit", {})
    assert first.setting_spans is not second.setting_spans
    assert n.SparkSubmitAction("app.py", {}, SPAN, setting_spans={"master": SPAN}).setting_spans == {"master": SPAN}
    assert n.PythonAction._field_defaults == {"kind": "python"}
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'span'"):
        n.PythonAction("m.f")


def test_a_parsed_flowfile_comes_back_equal_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOW_CACHE_DIR", str(tmp_path))
    text = ('rule a(day: date):\n    output: "a_{day}.txt"\n    python: m.f\n\n'
            'range days = days(2024-01-01 .. 2024-01-31)\n\ntarget all: a(d) for d in days\n')
    parsed = parse_cached(text, "Flowfile")
    assert [entry.suffix for entry in tmp_path.iterdir()] == [".pickle"]
    cached = parse_cached(text, "Flowfile")  # read back from the pickle the first call wrote
    assert cached is not parsed and cached == parsed
    assert pickle.loads(pickle.dumps(parsed.rules[0])) == parsed.rules[0]
