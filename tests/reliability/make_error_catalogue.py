"""Write docs/errors.md: every bad input the tests try on the compiler, and the message each one gets.

    python -m tests.reliability.make_error_catalogue          # rewrite docs/errors.md
    python -m tests.reliability.make_error_catalogue --check  # exit 1 when it is out of date

The messages are produced by running flow's compiler on each input, so the catalogue stays true;
tests/reliability/test_error_catalogue.py fails when the committed file differs from this output.
Cases: the hostile inputs of issue 11 that the compiler answers (values that leave an output's
place, limits, calendar edges, endless chains, unreadable Flowfiles) and every golden error file.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from flow.compiler.errors import FlowError, SourceCache, render

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "docs" / "errors.md"
GOLDEN = ROOT / "tests" / "golden" / "errors"


@dataclass
class Case:
    """One bad input: a Flowfile (text or bytes), what is asked of it, and how to show the input."""

    title: str
    flowfile: str | bytes
    requests: list = field(default_factory=list)  # targets as typed on the command line
    shown: str | None = None  # the Flowfile as the catalogue prints it, when the real one is unreadable
    fifo: bool = False  # the Flowfile is a named pipe
    asked: str | None = None  # the requests as the catalogue prints them, when they are unreadable


RULE_STR = 'rule bare(name: str):\n    output: "{name}.txt"\n    python: acts.write\n'
RULE_DIR = 'rule r(name: str):\n    output: "data/{name}.txt"\n    python: acts.write\n'
RULE_URL = 'rule export(key: str):\n    output: "s3://bucket/exports/{key}.tsv"\n    python: acts.write\n'
RULE_MONTHS = 'rule top_artists(interval: interval):\n    output: "data/top_artists_{interval}.tsv"\n' \
              '    python: acts.write\n'

CASES = [
    # issue 11 item 1: a value that would take an output out of its place
    Case("an absolute value", RULE_STR, ['bare("/tmp/x/abs")']),
    Case("a value that climbs out of the project", RULE_DIR, ['r("../../../esc")']),
    Case("a value that is '..'", RULE_DIR, ['r("..")']),
    Case("an empty value", RULE_DIR, ['r("")']),
    Case("a NUL byte in a value", RULE_DIR, ['r("a\x00b")'], asked='r("a<NUL>b")'),
    Case("a line break in a value", RULE_DIR, ['r("a\nb")'], asked='r("a<newline>b")'),
    Case("a value that would change an output URL's key", RULE_URL, ['export("2012?x=1")', 'export("a/b")']),
    Case("a name longer than file systems allow", RULE_DIR, [f'r("{"x" * 240}")'], asked='r("xxx...x") with 240 x'),
    Case("a value computed in requires that leaves its place",
         RULE_DIR + '\nrule top(name: str):\n    requires: r(name + "/../../x")\n    output: "top/{name}.txt"\n'
         '    python: acts.write\n', ['top("a")']),
    # items 7 and 8: limits
    Case("an integer literal of 4,301 digits", "range x = " + "1" * 4301 + "\n",
         shown="range x = 111...1  (4,301 digits)"),
    Case("a sum nested 350 deep", "range x = " + " + ".join(["1"] * 350) + "\n",
         shown="range x = 1 + 1 + ... + 1  (350 terms)"),
    Case("a conditional nested 500 deep", "range x = " + "1 if true else " * 500 + "1\n",
         shown="range x = 1 if true else 1 if true else ... 1  (500 times)"),
    Case("a list nested 1,000 deep", "range x = " + "[" * 1000 + "]" * 1000 + "\n",
         shown="range x = [[[...]]]  (1,000 deep)"),
    # items 10 and 18: calendar edges and digits
    Case("the last day as an interval", RULE_MONTHS, ["data/top_artists_9999-12-31.tsv"]),
    Case("the last ISO week of 9999", RULE_MONTHS, ["data/top_artists_9999-W52.tsv"]),
    Case("the year 9999 as an interval", RULE_MONTHS, ["top_artists(9999)"]),
    Case("Arabic-Indic digits in a target name", RULE_MONTHS, ["data/top_artists_\u0662\u0660\u0661\u0662.tsv"]),
    Case("Arabic-Indic digits in a Flowfile", RULE_MONTHS + "\ntarget old: top_artists(\u0662\u0660\u0661\u0662)\n"),
    # item 11: a chain without end
    Case("a rule that requires itself with no condition",
         'rule forever(date: date):\n    requires: forever(date - 1)\n    output: "f/{date}.tsv"\n'
         '    python: acts.write\n', ["forever(2012-06-01)"]),
    Case("a condition that never stops the chain",
         'rule back(date: date):\n    requires: back(date - 1) if date.year > 0 else []\n'
         '    output: "b/{date}.tsv"\n    python: acts.write\n', ["back(0001-01-05)"]),
    # item 14: unreadable Flowfiles
    Case("a Flowfile that is not UTF-8", b'rule a(date: date):\n    output: "caf\xe9/{date}"\n    python: acts.write\n',
         shown='rule a(date: date):\n    output: "caf\\xe9/{date}"   (Latin-1 byte 0xe9)\n    python: acts.write\n'),
    Case("a Flowfile that is a named pipe (FIFO)", "", fifo=True, shown="mkfifo Flowfile"),
]


def _messages(case: Case, directory: Path) -> str:
    """What flow says about the case: rendered diagnostics, or what was built when nothing failed."""
    from flow.compiler.graph import TaskFactory, build_graph
    from flow.compiler.loader import load
    from flow.compiler.resolve import resolve

    path = directory / "Flowfile"
    if case.fifo:
        os.mkfifo(path)
    else:
        path.write_bytes(case.flowfile if isinstance(case.flowfile, bytes) else case.flowfile.encode("utf-8"))
    sources = SourceCache()
    try:
        checked = load("Flowfile")
    except FlowError as exc:
        return "\n".join(render(d, sources) for d in exc.diagnostics)
    factory = TaskFactory(checked)
    out = []
    for request in case.requests or list(checked.targets):
        try:
            roots = resolve(factory, request)
            graph = build_graph(factory, roots, complete=lambda level: set())
            out.append(f"(builds {len(graph)} task{'s' * (len(graph) != 1)})")
        except FlowError as exc:
            out.extend(render(d, sources) for d in exc.diagnostics)
    return "\n".join(out)


def _golden_cases() -> list:
    """(name, Flowfile text, lint's report) for every golden error file."""
    from flow.compiler.lint import lint_file

    found = []
    previous = os.getcwd()
    os.chdir(GOLDEN)  # lint names each file as NAME.flow and finds the golden steps beside it
    try:
        for path in sorted(GOLDEN.glob("*.flow")):
            text = path.read_text(encoding="utf-8")
            sources = SourceCache({path.name: text})
            diagnostics = lint_file(path.name)
            report = "\n".join(render(d, sources, show_code=True) for d in diagnostics) or "(no problems found)"
            found.append((path.stem, text, report))
    finally:
        os.chdir(previous)
    return found


def _block(text: str, language: str = "") -> str:
    fence = "````" if "```" in text else "```"
    return f"{fence}{language}\n{text.rstrip()}\n{fence}\n"


def catalogue() -> str:
    """The whole of docs/errors.md."""
    parts = [
        "# Errors: every bad input tried, and what flow says\n",
        "Generated by `python -m tests.reliability.make_error_catalogue` from flow's own compiler;",
        "`tests/reliability/test_error_catalogue.py` fails when this file is out of date. Every",
        "message below comes with exit code 2 from `flow build`, `flow --dry-run` and `flow clean`",
        "(and exit code 1 from `flow lint`, which reports every problem it finds, in file order).",
        "The codes are listed in [flowfile.md](flowfile.md#lint).\n",
        "## Hostile input (issue 11)\n",
    ]
    previous = os.getcwd()
    for case in CASES:
        with tempfile.TemporaryDirectory() as directory:
            os.chdir(directory)
            try:
                messages = _messages(case, Path(directory))
            finally:
                os.chdir(previous)
        parts.append(f"### {case.title}\n")
        shown = case.shown if case.shown is not None else case.flowfile
        parts.append(_block(shown if isinstance(shown, str) else shown.decode("utf-8", "replace"), "flow"))
        if case.requests:
            parts.append("Asked for: " + (f"`{case.asked}`" if case.asked else
                                          ", ".join(f"`{request}`" for request in case.requests)) + "\n")
        parts.append(_block(messages))
    parts.append("## Every golden error file\n")
    parts.append("`tests/golden/errors/NAME.flow`, and what `flow lint` reports for it.\n")
    for name, text, report in _golden_cases():
        parts.append(f"### {name}\n")
        parts.append(_block(text, "flow"))
        parts.append(_block(report))
    return "\n".join(parts)


def main(argv: list) -> int:
    text = catalogue()
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run python -m tests.reliability.make_error_catalogue",
                  file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({len(CASES)} hostile inputs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
