"""One error hierarchy for flow and one renderer: file:line:col, the source line, carets, a hint."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from .nodes import Span


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a Flowfile: an error or a warning, with a stable code."""

    severity: str  # "error" or "warning"
    code: str  # e.g. "E201"; stable, used by suppression comments and --format json
    message: str
    span: Optional[Span]
    hint: Optional[str] = None

    def sort_key(self):
        span = self.span
        return (span.file, span.line, span.column, self.code) if span else ("", 0, 0, self.code)


class FlowError(Exception):
    """Base of every error flow reports to users (never with a traceback)."""

    exit_code = 2

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic | str):
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic("error", "E000", diagnostics, None)]
        elif isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        super().__init__(self.diagnostics[0].message if self.diagnostics else "error")

    def __reduce__(self):
        return (type(self), (self.diagnostics,))


class FlowSyntaxError(FlowError):
    """The Flowfile does not parse."""


class FlowCheckError(FlowError):
    """The Flowfile parses but is not meaningful: unknown names, wrong types, clashing outputs."""


class UsageError(FlowError):
    """The command line asks for something that does not exist or does not parse."""


class RunError(FlowError):
    """Something went wrong while running tasks (a failure the user should read, not a crash)."""

    exit_code = 1


def error(code: str, message: str, span: Optional[Span] = None, hint: Optional[str] = None) -> Diagnostic:
    return Diagnostic("error", code, message, span, hint)


def warning(code: str, message: str, span: Optional[Span] = None, hint: Optional[str] = None) -> Diagnostic:
    return Diagnostic("warning", code, message, span, hint)


class SourceCache:
    """Lines of the files diagnostics point into, read once each."""

    def __init__(self, texts: Optional[dict[str, str]] = None):
        self._lines: dict[str, list[str]] = {}
        for name, text in (texts or {}).items():
            self._lines[name] = text.splitlines()

    def line(self, file: str, number: int) -> Optional[str]:
        lines = self._lines.get(file)
        if lines is None:
            try:
                with open(file, encoding="utf-8", errors="replace") as handle:
                    lines = handle.read().splitlines()
            except OSError:
                lines = []
            self._lines[file] = lines
        if 1 <= number <= len(lines):
            return lines[number - 1]
        return None


def render(diagnostic: Diagnostic, sources: Optional[SourceCache] = None, show_code: bool = False) -> str:
    """Render like a compiler: `Flowfile:12:9: error: ...`, the source line, carets, then a hint.

    show_code appends ` [E102]` to the message (flow lint does, so people know what to silence).
    """
    span = diagnostic.span
    message = f"{diagnostic.message} [{diagnostic.code}]" if show_code else diagnostic.message
    if span is None or span.line <= 0:
        text = f"{diagnostic.severity}: {message}"
        if diagnostic.hint:
            text += f"\n  hint: {diagnostic.hint}"
        return text
    head = f"{span.file}:{span.line}:{span.column}: {diagnostic.severity}: {message}"
    out = [head]
    source = (sources or SourceCache()).line(span.file, span.line)
    if source is not None:
        expanded = source.expandtabs(1)
        start = max(span.column - 1, 0)
        if span.end_line == span.line and span.end_column > span.column:
            width = span.end_column - span.column
        else:
            width = max(len(expanded.rstrip()) - start, 1)
        shown, start, width = _excerpt(_masked(expanded), start, width)
        out.append("    " + shown)
        out.append("    " + " " * start + "^" * max(width, 1))
    if diagnostic.hint:
        out.append(f"  hint: {diagnostic.hint}")
    return "\n".join(out)


# A password written in a URL (`postgresql://user:secret@host`) or as `password=secret`: an error about
# that line (a `coordinator:` or `database:` that must not hold one) must not print it again.
_URL_PASSWORD = re.compile(r"(?<=://)([^\s/@\"']*:)([^\s\"']+)(?=@)")
_KEY_PASSWORD = re.compile(r"(?i)(\bpassword\s*=\s*)([^\s\"']+)")


def _masked(line: str) -> str:
    """The line with every password replaced by as many asterisks, so that carets still line up."""
    line = _URL_PASSWORD.sub(lambda m: m.group(1) + "*" * len(m.group(2)), line)
    return _KEY_PASSWORD.sub(lambda m: m.group(1) + "*" * len(m.group(2)), line)


# A source line longer than this is shown as an excerpt around the caret (a 4,000-digit number
# or a thousand nested brackets would otherwise fill the terminal).
MAX_SHOWN = 100


def _excerpt(line: str, start: int, width: int) -> tuple:
    """(the part of `line` to show, the caret's start in it, the caret's width)."""
    if len(line) <= MAX_SHOWN:
        return line, start, width
    first = max(0, min(start - MAX_SHOWN // 4, len(line) - MAX_SHOWN))
    prefix = "..." if first > 0 else ""
    suffix = "..." if first + MAX_SHOWN < len(line) else ""
    caret = len(prefix) + start - first
    return prefix + line[first:first + MAX_SHOWN] + suffix, caret, min(width, MAX_SHOWN - (start - first))


def render_all(diagnostics: list[Diagnostic], sources: Optional[SourceCache] = None) -> str:
    sources = sources or SourceCache()
    return "\n".join(render(d, sources) for d in diagnostics)


def did_you_mean(name: str, candidates) -> Optional[str]:
    """A close match among candidates, for 'did you mean' hints."""
    import difflib

    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def suggestion(name: str, candidates, form: str = "'{}'") -> Optional[str]:
    """`did you mean 'x'?` for the closest candidate (shown through `form`), or None."""
    guess = did_you_mean(name, candidates)
    return f"did you mean {form.format(guess)}?" if guess is not None else None


def suggest(name: str, candidates, form: str = "'{}'") -> str:
    """` (did you mean 'x'?)` to append to a message, or "" when nothing is close."""
    text = suggestion(name, candidates, form)
    return f" ({text})" if text else ""
