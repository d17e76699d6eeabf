"""Lint a Flowfile: parse, check and run the lint rules, honour `# noqa`; render as text, JSON or GitHub annotations.

Exit codes: 0 nothing reported; 1 at least one error or warning reported (CI should fail on
warnings too: silence a deliberate one with `# noqa: CODE`); 2 the Flowfile cannot be read, or
lint itself failed (an internal error, reported without a traceback).

Syntax and check errors (E0xx-E3xx, E7xx) cannot be silenced: flow cannot run such a file.
Everything the lint rules report (W1xx, E4xx, E5xx, E6xx) can be, on the line it points at.
"""

from __future__ import annotations

import os
from typing import Optional

from .checks import check
from .errors import Diagnostic, FlowError, SourceCache, render
from .lint_rules import RULES, LintContext
from .loader import display_path, parse_cached, read_flowfile

FORMATS = ("text", "json", "github")


def lint_file(path: str) -> list[Diagnostic]:
    """Every problem in the Flowfile at `path`, in file order; raise UsageError when it cannot be read."""
    return _lint(path)[0]


def _lint(path: str) -> tuple[list[Diagnostic], str, str]:
    text = _read(path)
    display = display_path(path)
    found: list[Diagnostic] = []
    flowfile = None
    try:
        flowfile = parse_cached(text, display)  # only good parses are cached: errors are always fresh
        check(flowfile, text)
    except FlowError as exc:
        found.extend(exc.diagnostics)
    clean = not found
    ctx = LintContext(display, text, flowfile, os.path.dirname(os.path.abspath(path)))
    for rule in RULES:
        if (rule.needs_nodes and flowfile is None) or (rule.needs_clean and not clean):
            continue
        found.extend(d for d in rule.check(ctx) if not _silenced(d, ctx, flowfile))
    return _in_file_order(_unique(found), ctx), display, text


def _read(path: str) -> str:
    return read_flowfile(path, hint="run flow lint where your Flowfile is, or pass -f PATH")


def _silenced(diagnostic: Diagnostic, ctx: LintContext, flowfile) -> bool:
    span = diagnostic.span
    if span is None:
        return False
    line = span.line if span.file == ctx.path else ctx.anchors.get(span.file)
    suppressions = flowfile.suppressions if flowfile is not None else _suppressions(ctx.text)
    if line not in suppressions:
        return False
    codes = suppressions[line]
    return codes is None or diagnostic.code in codes


def _suppressions(text: str) -> dict:
    from .parser import find_suppressions

    return find_suppressions(text)


def _unique(diagnostics: list) -> list:
    return list(dict.fromkeys(diagnostics))


def _in_file_order(diagnostics: list, ctx: LintContext) -> list:
    """Sort by position in the Flowfile; problems in a .sql file sit at the line of its `sql:`."""

    def key(d: Diagnostic):
        span = d.span
        if span is None:
            return (0, 0, 0, 0, d.code)
        if span.file == ctx.path:
            return (span.line, 0, 0, span.column, d.code)
        return (ctx.anchors.get(span.file, 1 << 30), 1, span.line, span.column, d.code)

    return sorted(diagnostics, key=key)


def lint_source(path: str) -> tuple[list[Diagnostic], str, str]:
    """Every problem in the Flowfile at `path` in file order, the name to show for the file, and its text.

    Raises UsageError when the file cannot be read. Printing is `flow lint`'s (runtime/commands/lint.py).
    """
    return _lint(path)


def as_text(diagnostics: list, display: str, text: Optional[str] = None) -> str:
    """Rendered diagnostics, a blank line between them, then a count."""
    sources = SourceCache({display: text} if text is not None else None)
    blocks = [render(d, sources, show_code=True) for d in diagnostics]
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    if not diagnostics:
        summary = f"{display}: no problems found"
    else:
        parts = [f"{count} {word}{'s' * (count != 1)}" for count, word in ((errors, "error"), (warnings, "warning"))
                 if count]
        summary = f"{display}: " + " and ".join(parts)
    return "\n\n".join(blocks + [summary])


def as_json(diagnostic: Diagnostic) -> dict:
    span = diagnostic.span
    return {
        "file": span.file if span else None,
        "line": span.line if span else None,
        "column": span.column if span else None,
        "end_line": span.end_line if span else None,
        "end_column": span.end_column if span else None,
        "severity": diagnostic.severity,
        "code": diagnostic.code,
        "message": diagnostic.message,
        "hint": diagnostic.hint,
    }


def as_github(diagnostic: Diagnostic) -> str:
    """A GitHub Actions workflow command: `::error file=F,line=L,col=C,title=CODE::message`."""
    span = diagnostic.span
    level = "error" if diagnostic.severity == "error" else "warning"
    props = []
    if span is not None and span.line > 0:
        props += [f"file={_property(span.file)}", f"line={span.line}", f"col={span.column}"]
    props.append(f"title={_property(diagnostic.code)}")
    message = diagnostic.message + (f"\nhint: {diagnostic.hint}" if diagnostic.hint else "")
    return f"::{level} {','.join(props)}::{_data(message)}"


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
