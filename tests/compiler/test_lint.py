"""Tests of lint.py, lint_rules.py and pyresolve.py beyond the golden files: formats, exit codes, edge cases."""

import io
import json
import sys

import pytest
from flow.compiler import lint as lint_module
from flow.compiler.lint import lint_file
from flow.compiler.lint_rules import find_secrets
from flow.compiler.pyresolve import lookup
from flow.runtime.commands.lint import run_lint as lint_command

RULE = '''rule daily(date: date):
    output: "data/{date}.tsv"
    python: steps.daily

target june: daily(2012-06-01)
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "steps.py").write_text("def daily(date, output):\n    pass\n")
    return tmp_path


def run(path, fmt="text"):
    out, err = io.StringIO(), io.StringIO()
    code = lint_command(str(path), fmt, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_clean_file_exits_0(project):
    (project / "Flowfile").write_text(RULE)
    assert run("Flowfile") == (0, "Flowfile: no problems found\n", "")


def test_warnings_alone_exit_1(project):
    (project / "Flowfile").write_text(RULE.replace("date: date)", "date: date, x: int = 1 insignificant)"))
    code, out, _ = run("Flowfile")
    assert code == 1 and out.endswith("Flowfile: 1 warning\n")


def test_unreadable_file_exits_2(project):
    code, out, err = run("missing/Flowfile")
    assert (code, out) == (2, "") and "no Flowfile at 'missing/Flowfile'" in err
    (project / "binary").write_bytes(b"\xff\xfe rule")
    code, _, err = run("binary")
    assert code == 2 and "not UTF-8 text" in err
    assert run(str(project))[0] == 2


def test_json_format(project):
    (project / "Flowfile").write_text(RULE.replace("steps.daily", "steps.dialy"))
    code, out, _ = run("Flowfile", "json")
    assert code == 1
    assert json.loads(out) == [{
        "file": "Flowfile", "line": 3, "column": 19, "end_line": 3, "end_column": 24, "severity": "error",
        "code": "E402", "message": "module 'steps' has no function 'dialy' (did you mean 'daily'?)", "hint": None,
    }]


def test_github_format(project):
    (project / "Flowfile").write_text('database: "postgres://u:pw1@h/db"\n' + RULE)
    code, out, _ = run("Flowfile", "github")
    assert code == 1
    expected = "::error file=Flowfile,line=1,col=25,title=E501::database URL holds a literal password%0Ahint: "
    assert out.startswith(expected)


def test_noqa_only_silences_lint_codes(project):
    (project / "Flowfile").write_text(RULE.replace("target june: daily(2012-06-01)",
                                                   "target june: daily(2012-13-01)  # noqa"))
    assert [d.code for d in lint_file("Flowfile")] == ["E108"]


def test_module_with_syntax_error(project):
    (project / "broken.py").write_text("def daily(:\n")
    (project / "Flowfile").write_text(RULE.replace("steps.daily", "broken.daily"))
    [diagnostic] = lint_file("Flowfile")
    assert diagnostic.code == "E404"
    assert diagnostic.message == "cannot read module 'broken': broken.py:1: invalid syntax"


def test_lookup_never_runs_user_code(project):
    (project / "pkg").mkdir()
    (project / "pkg" / "__init__.py").write_text("raise SystemExit('imported!')\n")
    (project / "pkg" / "mod.py").write_text("raise SystemExit('imported!')\ndef f(output, *, spark): pass\n")
    found = lookup("pkg.mod.f", str(project))
    assert found.problem is None and found.signature.required == ("output", "spark")
    assert "pkg" not in sys.modules and "pkg.mod" not in sys.modules


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from other import f\n", None),  # re-exported: exists, signature unknown
        ("f = make()\n", None),
        ("from other import *\n", None),
        ("if True:\n    def f(output): pass\n", ("output",)),
        ("def g(): pass\n", "missing"),
    ],
)
def test_lookup_forms(project, source, expected):
    (project / "m.py").write_text(source)
    found = lookup("m.f", str(project))
    if expected == "missing":
        assert found.problem == ("function", "f") and found.candidates == ("g",)
    elif expected is None:
        assert found.problem is None and found.signature is None
    else:
        assert found.signature.required == expected


def test_builtin_and_stdlib_modules(project):
    assert lookup("os.path.join", ".").problem is None
    assert lookup("json.loads", ".").signature.takes_anything
    assert lookup("no_such_module_xyz.f", ".").problem == ("module", "no_such_module_xyz")


@pytest.mark.parametrize(
    "line, found",
    [
        ("database: \"postgresql://flow:pw@host/db\"", True),
        ("database: \"postgresql://flow@host/db\"", False),
        ("database: \"postgresql://flow:${PGPASSWORD}@host/db\"", False),
        ("# PGPASSWORD=secret flow build", True),
        ("# set PGPASSWORD in the environment", False),
        ("# password: read it from ~/.pgpass", False),
        ("# password: hunter2", True),
        ("spark.hadoop.fs.s3a.secret.key: \"abc\"", True),
        ("api_key = \"\"", False),
        ("rule r(token: str = \"t0k\"):", True),
        ("rule r(token: str):", False),
        ("sql: \"SELECT * FROM u WHERE password = :password\"", False),
        ("# AKIAIOSFODNN7EXAMPLE", True),
        ("requires: tokens(day) for day in interval", False),
    ],
)
def test_secrets(line, found):
    assert bool(list(find_secrets("F", line))) is found


def test_internal_errors_are_reported_without_traceback(project, monkeypatch):
    (project / "Flowfile").write_text(RULE)

    def broken(path):
        raise RuntimeError("boom")

    monkeypatch.setattr(lint_module, "_lint", broken)
    code, out, err = run("Flowfile")
    assert code == 2 and err == "flow lint: internal error: RuntimeError: boom (please report this)\n"


def test_sql_file_problems_sort_and_silence_at_the_sql_line(project):
    (project / "q.sql").write_text("SELECT :nope\n")
    text = 'rule t(d: date):\n    output: table "t"\n    sql: "q.sql"{}\n\ntarget x: t(2012-06-01)\n'
    (project / "Flowfile").write_text(text.format(""))
    [diagnostic] = lint_file("Flowfile")
    assert (diagnostic.code, diagnostic.span.file, diagnostic.span.line) == ("E602", "q.sql", 1)
    (project / "Flowfile").write_text(text.format("  # noqa: E602"))
    assert lint_file("Flowfile") == []


def test_rule_library_without_targets_has_no_unreached_warnings(project):
    (project / "Flowfile").write_text(RULE.split("target")[0])
    assert lint_file("Flowfile") == []


def test_root_flowfile_lints(monkeypatch):
    codes = [d.code for d in lint_file("Flowfile")]
    assert set(codes) <= {"W101"}  # toplist_db is reached by no target yet


def test_a_batched_function_may_ask_for_partitions_and_outputs_but_not_output(tmp_path):
    (tmp_path / "steps.py").write_text("def many(partitions, inputs, outputs):\n    pass\n\n"
                                       "def single(date, output):\n    pass\n")
    (tmp_path / "Flowfile").write_text(
        'rule a(date: date):\n    output: "a/{date}.tsv"\n    python: steps.many\n    batch: 31\n\n'
        'rule b(date: date):\n    output: "b/{date}.tsv"\n    python: steps.single\n    batch: 31\n')
    out, err = io.StringIO(), io.StringIO()
    code = lint_command(str(tmp_path / "Flowfile"), "text", out=out, err=err)
    assert code == 1
    assert "'single' asks for 'output', which rule 'b' does not provide (did you mean 'outputs'?)" in out.getvalue()
    assert "rule 'a'" not in out.getvalue()
