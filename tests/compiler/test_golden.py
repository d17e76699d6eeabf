"""Golden tests: `flow lint` output for tests/golden/errors/NAME.flow, `flow graph --format json` for graphs/.

Each case is found by its file stem. After changing a message, run with FLOW_REGOLD=1 to rewrite
the expected files, then read the diff by eye before committing it.
"""

import io
import os
from pathlib import Path

import pytest
from flow.runtime.commands.graph import run_graph as graph_command
from flow.runtime.commands.lint import run_lint as lint_command

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
REGOLD = os.environ.get("FLOW_REGOLD") == "1"


def _cases(folder: str) -> list:
    return sorted(path.stem for path in (GOLDEN / folder).glob("*.flow"))


def _compare(expected_path: Path, actual: str) -> None:
    if REGOLD:
        expected_path.write_text(actual, encoding="utf-8")
    assert expected_path.exists(), f"no {expected_path.name}: run with FLOW_REGOLD=1, then review it"
    assert actual == expected_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", _cases("errors"))
def test_lint_output(name, monkeypatch):
    monkeypatch.chdir(GOLDEN / "errors")  # diagnostics then name the file as NAME.flow
    out, err = io.StringIO(), io.StringIO()
    code = lint_command(f"{name}.flow", "text", out=out, err=err)
    assert err.getvalue() == ""
    _compare(GOLDEN / "errors" / f"{name}.err", out.getvalue())
    clean = out.getvalue().endswith(": no problems found\n")
    assert code == (0 if clean else 1)


def test_every_code_has_a_golden_case():
    from flow.compiler.lint_rules import RULES

    text = "".join(path.read_text(encoding="utf-8") for path in (GOLDEN / "errors").glob("*.err"))
    codes = {code for rule in RULES for code in rule.codes} - {"E404"}  # E404 needs a broken .py: see test_lint
    codes |= {f"E00{i}" for i in range(1, 10)} | {"E011"}  # E010 (not UTF-8) is a read error: see test_loader
    codes |= {"E101", "E102", "E103", "E104", "E105", "E106", "E107", "E108", "E109", "E110", "E111"}
    codes |= {f"E20{i}" for i in range(1, 10)} | {"E211", "E301", "E701", "E702", "E705"}
    missing = sorted(code for code in codes if f"[{code}]" not in text)
    assert not missing


def _graph_args(flow: Path) -> list:
    first = flow.read_text(encoding="utf-8").splitlines()[0]
    return first.split(":", 1)[1].split() if first.startswith("# targets:") else []


@pytest.mark.parametrize("name", _cases("graphs"))
def test_graph_output(name, monkeypatch):
    monkeypatch.chdir(GOLDEN / "graphs")
    flow = GOLDEN / "graphs" / f"{name}.flow"
    out, err = io.StringIO(), io.StringIO()
    assert graph_command(flow.name, _graph_args(flow), "json", out=out, err=err) == 0, err.getvalue()
    _compare(GOLDEN / "graphs" / f"{name}.json", out.getvalue())
