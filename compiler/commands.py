"""Patterns of `command:` and `shell:` actions: split into text and placeholders, checked against the rule.

A pattern is text with `{name}` or `{name.attr}` placeholders: `output`, `input`, `inputs` or a
parameter of the rule; a date, hour or minute may take a strftime format (`{date:%Y%m%d}`). A
`command:` argument that is exactly `{inputs}` becomes one argument per input; inside a longer one
(`--input={inputs}`) the inputs are joined by commas, as Hadoop, Spark and Scio read lists of
paths. `{{` and `}}` stand for literal braces (awk's `{ print $1 }` is written `{{ print $1 }}`),
so that a typo in a placeholder is an error and never silently left in place.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Iterator, Optional, Union

from . import nodes as n
from .errors import Diagnostic, error, suggest
from .expressions import ATTRIBUTES

SPECIAL = ("output", "input", "inputs")
FORMATTED = ("date", "hour", "minute")  # the types a placeholder may format: {date:%Y%m%d}

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_BRACES_HINT = "write {{ and }} for a literal brace"


@dataclass(frozen=True)
class Placeholder:
    """`{name.attr...}` or `{name.attr...:format}` at [start, end) of its pattern."""

    name: str
    attrs: tuple
    start: int
    end: int
    format: Optional[str] = None  # strftime format of a date, hour or minute: {date:%Y%m%d}

    @property
    def text(self) -> str:
        spec = "" if self.format is None else ":" + self.format
        return "{" + ".".join((self.name,) + self.attrs) + spec + "}"


Part = Union[str, Placeholder]


def split(pattern: str) -> tuple[list, list]:
    """(parts, problems): literal strings and Placeholders in order; (start, end, message) per bad brace."""
    parts: list = []
    problems: list = []
    literal: list = []
    position = 0
    for match in _TOKEN.finditer(pattern):
        literal.append(pattern[position:match.start()])
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
        elif token in ("{", "}"):
            problems.append((match.start(), match.end(), f"unmatched '{token}'"))
        else:
            inner, colon, spec = match.group(1).partition(":")
            inner = inner.strip()
            if not _DOTTED.fullmatch(inner):
                problems.append((match.start(), match.end(), f"'{token}' is not a placeholder"))
                continue
            if "".join(literal):
                parts.append("".join(literal))
            literal = []
            name, *attrs = inner.split(".")
            parts.append(Placeholder(name, tuple(attrs), match.start(), match.end(), spec if colon else None))
    literal.append(pattern[position:])
    if "".join(literal):
        parts.append("".join(literal))
    return parts, problems


def patterns(action) -> Iterator[tuple[str, n.Span]]:
    """(pattern, span of its quoted string) for every pattern of the action.

    The values of `env:` are patterns too (never shell-quoted: no shell reads them).
    """
    if isinstance(action, n.CommandAction):
        for arg, span in zip(action.args, action.arg_spans):
            yield arg, span
    elif isinstance(action, n.ShellAction):
        yield action.script, action.script_span
    for setting in getattr(action, "settings", ()):
        if setting.key == "env" and isinstance(setting.value, tuple):
            for variable in setting.value:
                if isinstance(variable.value, str):
                    yield variable.value, variable.value_span


def names_used(action) -> set:
    """The parameter names (and output/input/inputs) the action's patterns mention."""
    used = set()
    for pattern, _ in patterns(action):
        used |= {part.name for part in split(pattern)[0] if isinstance(part, Placeholder)}
    return used


def settings(action) -> dict:
    """The action's settings as plain values: env a dict of str -> pattern."""
    result = {}
    for setting in action.settings:
        value = setting.value
        if setting.key == "env" and isinstance(value, tuple):
            value = {variable.key: variable.value for variable in value}
        result[setting.key] = value
    return result


# ---------------------------------------------------------------------------- checks


def check_action(rule: n.Rule, source_lines: list) -> list[Diagnostic]:
    """Every problem of a rule's command: or shell: action: placeholders, then settings."""
    action = rule.action
    if not isinstance(action, (n.CommandAction, n.ShellAction)):
        return []
    found = []
    for pattern, span in patterns(action):
        locate = _locator(span, source_lines)
        parts, problems = split(pattern)
        for start, end, message in problems:
            found.append(error("E211", message, locate(start, end), hint=_BRACES_HINT))
        for part in parts:
            if isinstance(part, Placeholder):
                problem = _check_placeholder(rule, part)
                if problem is not None:
                    message, hint = problem
                    found.append(error("E211", message, locate(part.start, part.end), hint=hint))
    found.extend(_check_settings(rule, action))
    return found


def _check_placeholder(rule: n.Rule, part: Placeholder):
    """(message, hint) for a placeholder the rule cannot fill, else None."""
    types = {p.name: p.type for p in rule.params}
    if part.name in SPECIAL:
        if part.attrs:
            return f"'{{{part.name}}}' has no attribute '{part.attrs[0]}'", "it is a path"
        if part.format is not None:
            return f"'{{{part.name}}}' takes no format", "it is a path"
        if part.name == "input" and not rule.requires:
            return f"'{{input}}' is the file rule '{rule.name}' requires, but it requires nothing", None
        return None
    if part.name not in types:
        known = list(SPECIAL) + list(types)
        return (f"unknown placeholder '{{{part.name}}}' (not a parameter of rule '{rule.name}')"
                + suggest(part.name, known, "'{{{}}}'"),
                "placeholders: " + ", ".join("{" + k + "}" for k in known) + "; " + _BRACES_HINT)
    type_name = types[part.name]
    shown = part.name
    for attr in part.attrs:
        attributes = ATTRIBUTES.get(type_name, {})
        if attr not in attributes:
            article = "an" if type_name[0] in "aeiou" else "a"
            return (f"'{{{shown}.{attr}}}': {article} {type_name} has no attribute '{attr}'"
                    + suggest(attr, attributes),
                    ("attributes: " + ", ".join(sorted(attributes))) if attributes else None)
        type_name = attributes[attr][0]
        shown += "." + attr
    if part.format is not None and type_name not in FORMATTED:
        return (f"'{part.text}': only dates, hours and minutes take a format, and '{shown}' is {type_name}",
                f"write {{{shown}}}")
    return None


def _check_settings(rule: n.Rule, action) -> Iterator[Diagnostic]:
    for setting in action.settings:
        key, value = setting.key, setting.value
        if key not in n.COMMAND_SETTINGS:
            yield error("E701", f"unknown {action.kind} setting '{key}'" + suggest(key, n.COMMAND_SETTINGS),
                        setting.span, hint=f"a {action.kind}: block takes " + ", ".join(n.COMMAND_SETTINGS))
        elif key == "env":
            if not isinstance(value, tuple) or not all(isinstance(v, n.Setting) for v in value):
                yield error("E702", "env must be an indented block of 'NAME: \"value\"' lines", setting.value_span)
                continue
            for variable in value:
                if not isinstance(variable.value, str):
                    yield error("E702", f"the value of environment variable '{variable.key}' must be a string",
                                variable.value_span, hint=f'write {variable.key}: "..."')
        elif key == "cwd" and not isinstance(value, str):
            yield error("E702", "cwd must be a directory as a string", setting.value_span,
                        hint="relative to the Flowfile's directory, which is the default")
        elif key == "stdout":
            if value != "output":
                yield error("E702", "stdout can only be 'output' (standard output becomes the output file)",
                            setting.value_span, hint="without it, standard output goes to the task's log")
            elif rule.output is not None and rule.output.kind != "file":
                yield error("E702", f"stdout: output needs a file output, and rule '{rule.name}' writes a "
                            f"{rule.output.kind}", setting.value_span)


# ---------------------------------------------------------------------------- positions in strings


def _locator(span: n.Span, source_lines: list):
    """A function (start, end) -> Span of those characters of the string written at `span`."""
    line = source_lines[span.line - 1] if 0 < span.line <= len(source_lines) else None
    if line is None:
        return lambda start, end: span
    raw = line[span.column - 1:]
    if raw.startswith('"""'):
        return lambda start, end: _long_string_span(span, source_lines, start, end)
    index = _escape_index(raw)

    def locate(start: int, end: int) -> n.Span:
        first = index[min(start, len(index) - 1)]
        last = index[min(end, len(index) - 1)]
        return n.Span(span.file, span.line, span.column + first, span.line, span.column + max(last, first + 1))

    return locate


def _escape_index(raw: str) -> list:
    """For a "..." string starting at raw[0]: offset in its value -> offset in raw."""
    index = []
    i = 1
    while i < len(raw) and raw[i] != '"':
        index.append(i)
        if raw[i] == "\\":
            j = i + 2
            # the shortest escape that decodes (\\n, \\x41, \\u00e9, \\N{...})
            while j <= len(raw):
                try:
                    ast.literal_eval('"' + raw[i:j] + '"')
                    break
                except (SyntaxError, ValueError):
                    j += 1
            i = j
        else:
            i += 1
    index.append(i)
    return index


def _long_string_span(span: n.Span, source_lines: list, start: int, end: int) -> n.Span:
    # a """...""" string is raw: offsets map straight to the text, line by line
    text = "\n".join(source_lines[span.line - 1:span.end_line])[span.column - 1 + 3:]
    before = text[:start]
    line = span.line + before.count("\n")
    column = (span.column + 3 + start) if "\n" not in before else start - before.rfind("\n")
    width = len(text[start:end].split("\n")[0]) or 1
    return n.Span(span.file, line, column, line, column + width)


def program(action) -> Optional[str]:
    """The program a command: runs, when it is fixed text (no placeholder)."""
    if not isinstance(action, n.CommandAction):
        return None
    parts, problems = split(action.args[0])
    if problems or any(isinstance(p, Placeholder) for p in parts):
        return None
    return "".join(parts)
