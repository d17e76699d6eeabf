"""Tests of compiler/export.py: `flow graph` in each format and `flow list`."""

import io
import json

import pytest
from flow.runtime.commands.graph import run_graph as graph_command
from flow.runtime.commands.graph import run_list as list_command

TEXT = '''rule daily(date: date):
    """One day."""
    output: "data/{date}.tsv"
    python: m.f

rule monthly(interval: interval, fast: bool = false insignificant):
    """A month.

    Longer text.
    """
    requires: daily(interval.start) if fast else [daily(d) for d in interval]
    output: dir "monthly/{interval}"
    python: m.f

range q = months(2012-01 .. 2012-03)

target quarter:
    """The first quarter."""
    monthly(m) for m in q

default: quarter
'''


@pytest.fixture
def flowfile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Flowfile").write_text(TEXT)
    return "Flowfile"


def run(function, *args):
    out, err = io.StringIO(), io.StringIO()
    code = function(*args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_rule_graph_dot_dashes_conditional_edges(flowfile):
    code, out, _ = run(graph_command, flowfile, [], "dot")
    assert code == 0
    assert '    "monthly" -> "daily" [style=dashed];' in out
    assert '    "daily" [label="daily\\ndata/{date}.tsv"];' in out


def test_task_graph_json(flowfile):
    code, out, _ = run(graph_command, flowfile, ["monthly(2012-02)"], "json")
    data = json.loads(out)
    assert code == 0 and len(data["nodes"]) == 30 and len(data["edges"]) == 29
    assert data["nodes"][-1] == {"id": "monthly(2012-02)", "rule": "monthly",
                                 "params": {"interval": "2012-02", "fast": "false"}, "output": "monthly/2012-02"}
    assert data["edges"][0] == ["monthly(2012-02)", "daily(2012-02-01)"]


def test_mermaid(flowfile):
    code, out, _ = run(graph_command, flowfile, ['monthly(2012-02, fast=true)'], "mermaid")
    assert out.splitlines() == ["flowchart BT", '    n0["daily(2012-02-01)"]', '    n1["monthly(2012-02)"]',
                                "    n1 --> n0"]


def test_graph_errors_go_to_stderr_with_exit_2(flowfile):
    code, out, err = run(graph_command, flowfile, ["nothing"], "dot")
    assert (code, out) == (2, "")
    assert err.startswith("error: 'nothing' is not a target, a rule or the output of any rule")


def test_list(flowfile):
    code, out, _ = run(list_command, flowfile)
    assert code == 0
    assert out.splitlines() == [
        "rules:",
        "  daily(date: date) -> data/{date}.tsv  [python]",
        "      One day.",
        "  monthly(interval: interval, fast: bool = false insignificant) -> dir monthly/{interval}  [python]",
        "      A month.",
        "",
        "targets:",
        "  quarter  3 tasks  The first quarter.",
        "",
        "ranges:",
        "  q  2012-01 .. 2012-03  3 values",
        "",
        "default: quarter",
    ]


def test_list_of_a_broken_flowfile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Flowfile").write_text("rule daily(date: date)\n")
    code, out, err = run(list_command, "Flowfile")
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == "Flowfile:1:23: error: unexpected end of line, expected ':'"
