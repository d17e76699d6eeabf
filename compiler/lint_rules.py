"""The lint rules: one small function each, registered with the codes it reports."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

from . import commands, pyresolve
from . import nodes as n
from . import types as t
from .errors import Diagnostic, error, suggest, warning
from .expressions import ATTRIBUTES
from .visitor import calls, free_names

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass
class LintContext:
    """What every rule may look at. `flowfile` is None when the text does not parse."""

    path: str  # the Flowfile as diagnostics name it
    text: str
    flowfile: Optional[n.Flowfile]
    directory: str  # where the Flowfile is on disk: modules and .sql files are found from here
    anchors: dict = field(default_factory=dict)  # another file -> the Flowfile line whose noqa silences it
    _lines: Optional[list] = None
    _lookups: dict = field(default_factory=dict)

    def lookup(self, target: str) -> pyresolve.Lookup:
        """Where a python/spark function is, looked up once per lint run."""
        found = self._lookups.get(target)
        if found is None:
            found = self._lookups[target] = pyresolve.lookup(target, self.directory)
        return found

    def line(self, number: int) -> str:
        if self._lines is None:
            self._lines = self.text.splitlines()
        return self._lines[number - 1] if 0 < number <= len(self._lines) else ""


@dataclass(frozen=True)
class LintRule:
    codes: tuple[str, ...]
    summary: str
    check: Callable[[LintContext], Iterator[Diagnostic]]
    needs_nodes: bool = True  # False: runs on the raw text, even when it does not parse
    needs_clean: bool = False  # True: only when the checks pass (else its findings are mostly echoes)


RULES: list[LintRule] = []


def lint_rule(*codes: str, summary: str, needs_nodes: bool = True, needs_clean: bool = False):
    def register(function):
        RULES.append(LintRule(codes, summary, function, needs_nodes, needs_clean))
        return function

    return register


# ---------------------------------------------------------------------------- W101, W102


@lint_rule("W101", summary="a rule that no target reaches", needs_clean=True)
def unreachable_rules(ctx: LintContext):
    flowfile = ctx.flowfile
    if not flowfile.targets and flowfile.default is None:
        return  # a library of rules, built by path or call: nothing to be reached from
    rules = {rule.name: rule for rule in flowfile.rules}
    reached: set = set()
    todo = [name for target in flowfile.targets for name, _ in calls(target.requires, rules)]
    if flowfile.default is not None and flowfile.default[0] in rules:
        todo.append(flowfile.default[0])
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        todo.extend(callee for callee, _ in calls(rules[name].requires, rules))
    for rule in flowfile.rules:
        if rule.name not in reached:
            yield warning("W101", f"rule '{rule.name}' is not reached from any target", rule.name_span,
                          hint="require it from a target (or from a rule a target reaches), or delete it")


@lint_rule("W102", summary="a parameter the rule never uses", needs_clean=True)
def unused_parameters(ctx: LintContext):
    for rule in ctx.flowfile.rules:
        used = free_names(rule.requires)
        if rule.output is not None:
            used |= {m.group(1).split(":")[0].strip().split(".")[0]
                     for m in _PLACEHOLDER.finditer(rule.output.pattern)}
        action_uses = _names_used_by_action(ctx, rule)
        if action_uses is None:
            continue  # cannot tell what the action reads: say nothing
        used |= action_uses
        for param in rule.params:
            if param.name not in used:
                yield warning("W102", f"parameter '{param.name}' of rule '{rule.name}' is never used", param.span,
                              hint="use it in the output, the requires or the action, or remove it")


def _names_used_by_action(ctx: LintContext, rule: n.Rule) -> Optional[set]:
    action = rule.action
    if action is None:
        return set()
    if action.kind in ("python", "spark"):
        found = ctx.lookup(action.target)
        if found.signature is None or found.signature.takes_anything:
            return None
        return set(found.signature.required + found.signature.optional)
    if action.kind in ("command", "shell"):
        return commands.names_used(action)
    if action.kind == "spark-submit":
        if action.args is None:
            # the app gets OUTPUT INPUT...: the significant parameters reach it through the output
            return {p.name for p in rule.params if p.significant}
        return {m.group(1).strip().split(".")[0] for arg in action.args for m in _PLACEHOLDER.finditer(str(arg))}
    texts = []
    if action.kind == "sql":
        texts.append(action.text if action.text is not None else _read_sql(ctx, action.file)[0])
    else:
        texts.extend(sql for sql in (action.before, action.after) if isinstance(sql, str))
    names = set()
    for sql in texts:
        if sql is None:
            return None
        parameters = _parameters(sql)
        if parameters is None:
            return None
        names |= {name.split(".")[0] for name, _, _ in parameters}
    if names - {p.name for p in rule.params} - _batch_names(rule):
        return None  # the SQL names unknown parameters (E602): a typo, not an unused parameter
    return names


# ---------------------------------------------------------------------------- E401-E405: python and spark


@lint_rule("E401", "E402", "E403", "E404", summary="a python or spark function that cannot be found or called")
def python_functions(ctx: LintContext):
    for rule in ctx.flowfile.rules:
        action = rule.action
        if action is None or action.kind not in ("python", "spark"):
            continue
        found = ctx.lookup(action.target)
        target_span = _find_in_line(ctx, action.span, action.target, after=":")
        module, _, function = action.target.rpartition(".")
        if found.problem is not None:
            kind, detail = found.problem
            if kind == "form":
                yield error("E401", f"'{action.target}' is not of the form module.function", target_span,
                            hint=f"for example: {action.kind}: mypackage.steps.{action.target}")
            elif kind == "module":
                yield error("E401", f"cannot find python module '{detail}'", _prefix(target_span, len(detail)),
                            hint="modules are looked up in the Flowfile's directory, then on sys.path")
            elif kind == "function":
                yield error("E402", f"module '{module}' has no function '{function}'"
                            + suggest(function, found.candidates),
                            _suffix(target_span, len(function)))
            else:
                yield error("E404", f"cannot read module '{module}': {detail}", target_span)
            continue
        signature = found.signature
        if signature is None or signature.takes_anything:
            continue
        batched = any(s.key == "batch" for s in rule.settings)  # one run covers partitions: see "Batched runs"
        provided = ["inputs", "outputs", "partitions"] if batched else ["inputs", "input", "output"]
        provided += ["spark"] if action.kind == "spark" else []
        provided += [p.name for p in rule.params]
        for name in signature.positional_only:
            yield error("E403", f"'{function}' takes '{name}' as positional-only, but flow passes arguments by name",
                        _suffix(target_span, len(function)), hint=f"remove the '/' from the signature of '{function}'")
        for name in signature.required:
            if name not in provided:
                yield error("E403", f"'{function}' asks for '{name}', which rule '{rule.name}' does not provide"
                            + suggest(name, provided), _suffix(target_span, len(function)),
                            hint=f"a {action.kind} function may ask for: " + ", ".join(provided))
            elif name == "input" and not rule.requires:
                yield error("E403", f"'{function}' asks for 'input', but rule '{rule.name}' requires nothing",
                            _suffix(target_span, len(function)), hint="'input' is the one file a rule requires")


@lint_rule("E405", summary="a spark-submit application file that does not exist")
def spark_submit_apps(ctx: LintContext):
    for rule in ctx.flowfile.rules:
        action = rule.action
        if action is None or action.kind != "spark-submit" or re.match(r"[a-z][a-z0-9+.-]*://", action.app):
            continue
        if not os.path.exists(os.path.join(ctx.directory, action.app)):
            yield error("E405", f"spark-submit application '{action.app}' does not exist",
                        _find_in_line(ctx, action.span, f'"{action.app}"', after=":"),
                        hint="the path is relative to the Flowfile's directory")


# ---------------------------------------------------------------------------- W103: programs


@lint_rule("W103", summary="a command: program that is not found (looked up, never run)")
def command_programs(ctx: LintContext):
    import shutil

    for rule in ctx.flowfile.rules:
        program = commands.program(rule.action)
        if not program:
            continue
        span = rule.action.arg_spans[0]
        if "/" in program:
            # the program starts in the action's cwd (the Flowfile's directory unless cwd: says otherwise)
            cwd = commands.settings(rule.action).get("cwd")
            base = os.path.join(ctx.directory, cwd) if isinstance(cwd, str) else ctx.directory
            path = os.path.join(base, os.path.expanduser(program))
            if not os.path.isfile(path):
                yield warning("W103", f"program '{program}' does not exist", span,
                              hint="a relative path starts from the Flowfile's directory (or the cwd: setting)")
            elif not os.access(path, os.X_OK):
                yield warning("W103", f"program '{program}' is not executable", span,
                              hint=f"chmod +x {program}")
        elif shutil.which(program) is None:
            yield warning("W103", f"program '{program}' is not found on PATH", span,
                          hint="install it, or give its path (a relative one starts from the Flowfile's directory)")


# ---------------------------------------------------------------------------- W104: resources


@lint_rule("W104", summary="a resource limit that no rule uses", needs_clean=True)
def unused_limits(ctx: LintContext):
    used = {a.key for rule in ctx.flowfile.rules for s in rule.settings if s.key == "resources" for a in s.value}
    for limit in ctx.flowfile.resources:
        if limit.key not in used:
            yield warning("W104", f"no rule uses resource '{limit.key}'" + suggest(limit.key, sorted(used)),
                          limit.span, hint="a limit counts only the tasks of rules that say resources: "
                          f"{limit.key}=N")


# ---------------------------------------------------------------------------- E501: secrets

_VALUE = r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s,;)\"'&]+)"
_SECRET_KEY = r"[\w.-]*(?:passw(?:or)?d|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key)[\w.-]*"
_SECRETS = (
    ("url", re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@\"']+:(?P<value>[^\s@/\"']+)@")),
    ("aws", re.compile(r"\b(?P<value>(?:AKIA|ASIA)[0-9A-Z]{16})\b")),
    ("key", re.compile(rf"(?i)(?P<key>{_SECRET_KEY})[\"']?\s*:\s*(?:str|int)\s*=\s*{_VALUE}")),
    ("key", re.compile(rf"(?i)(?P<key>{_SECRET_KEY})[\"']?\s*(?P<sep>=|:)\s*{_VALUE}")),
)
_NOT_SECRETS = set(t.TYPE_NAMES) | {"true", "false", "none", "null", "required", "optional"}


@lint_rule("E501", summary="a literal password, token or key", needs_nodes=False)
def secrets(ctx: LintContext):
    yield from find_secrets(ctx.path, ctx.text)
    if ctx.flowfile is None:
        return
    for rule in ctx.flowfile.rules:
        if rule.action is not None and rule.action.kind == "sql" and rule.action.file is not None:
            text, path, _ = _read_sql(ctx, rule.action.file)
            if text is not None:
                ctx.anchors[_display(ctx, rule.action.file)] = rule.action.span.line
                yield from find_secrets(_display(ctx, rule.action.file), text)


def find_secrets(path: str, text: str) -> Iterator[Diagnostic]:
    """Literal credentials in any line: URLs with a password, AWS key ids, `password = ...` and the like."""
    lowered = text.lower()
    if not any(word in lowered for word in ("://", "akia", "asia", "pass", "pwd", "secret", "token", "key")):
        return
    for number, line in enumerate(text.splitlines(), 1):
        taken: list = []
        for kind, pattern in _SECRETS:
            for match in pattern.finditer(line):
                start, end = match.span("value")
                if any(a < end and start < b for a, b in taken) or not _looks_secret(match, kind):
                    continue
                taken.append((start, end))
                if kind == "url":
                    message = "database URL holds a literal password"
                elif kind == "aws":
                    message = "literal AWS access key id"
                else:
                    message = f"'{match.group('key')}' is set to a literal secret"
                yield error("E501", message, n.Span(path, number, start + 1, number, end + 1),
                            hint="read secrets from the environment (PGPASSWORD, ~/.pgpass, AWS_* variables); "
                            "never commit them")


def _looks_secret(match: re.Match, kind: str) -> bool:
    value = match.group("value")
    if kind != "key":
        return not value.startswith(("$", "%", "{", "*"))
    quoted = value[:1] in "\"'"
    inner = value[1:-1] if quoted else value
    if not inner.strip() or inner.startswith(("$", ":", "%", "{", "<", "*")) or inner.lower() in _NOT_SECRETS:
        return False
    if quoted or match.groupdict().get("sep") == "=":
        return True
    # `password: read it from the environment` is prose; `token: ghp_1234...` is not
    return bool(re.search(r"[\d_\-+/=]", inner)) or len(inner) >= 12


# ---------------------------------------------------------------------------- E601-E604: SQL


@lint_rule("E601", "E602", "E603", "E604", summary="SQL that does not parse or names unknown parameters")
def sql_texts(ctx: LintContext):
    for rule in ctx.flowfile.rules:
        action = rule.action
        if action is None:
            continue
        if action.kind == "sql" and action.file is not None:
            text, path, problem = _read_sql(ctx, action.file)
            span = action.text_span
            quoted = n.Span(span.file, span.line, span.column - 1, span.end_line, span.end_column)
            if text is None:
                yield error("E604", f"cannot read sql file '{action.file}': {problem}", quoted,
                            hint="the path is relative to the Flowfile's directory")
                continue
            display = _display(ctx, action.file)
            ctx.anchors[display] = action.span.line
            position = lambda offset, sql, width, d=display: _file_position(d, sql, offset, width)  # noqa: E731
            yield from _check_sql(rule, text, position)
        elif action.kind == "sql":
            yield from _check_sql(rule, action.text, _inline_mapper(ctx, action.text_span))
        elif action.kind == "load":
            for sql, span in ((action.before, action.before_span), (action.after, action.after_span)):
                if isinstance(sql, str) and span is not None:
                    quote = 3 if ctx.line(span.line)[span.column - 1: span.column + 2] == '"""' else 1
                    start = n.Span(span.file, span.line, span.column + quote, span.end_line, span.end_column)
                    yield from _check_sql(rule, sql, _inline_mapper(ctx, start))


def _batch_names(rule: n.Rule) -> set:
    """Names a batched rule's action gets beyond its parameters (see "Batched runs" in docs/flowfile.md)."""
    return {"partitions"} if any(s.key == "batch" for s in rule.settings) else set()


def _check_sql(rule: n.Rule, sql: str, position) -> Iterator[Diagnostic]:
    from .sqltext import syntax_errors

    for offset, message in syntax_errors(sql):
        end = len(sql.rstrip())
        if offset >= end and end:
            offset = end - 1  # "at end of input": point at the last thing written, not past it
        width = len(re.match(r"\w+|\S|", sql[offset:]).group(0)) or 1
        message = message[0].lower() + message[1:] if message else "syntax error"
        text = f"sql {message}" if message.startswith("syntax error") else f"sql: {message}"
        yield error("E601", text, position(offset, sql, width))
    types = {p.name: p.type for p in rule.params}
    types.update(dict.fromkeys(_batch_names(rule), "list"))
    for name, start, end in _parameters(sql) or ():
        head, _, attr = name.partition(".")
        span = position(start, sql, end - start)
        if head not in types:
            known = ", ".join(f":{p}" for p in types)
            yield error("E602", f"sql parameter ':{head}' is not a parameter of rule '{rule.name}'"
                        + suggest(head, types, "':{}'"), span,
                        hint=f"rule '{rule.name}' has {known}" if known else f"rule '{rule.name}' has no parameters")
        elif attr:
            attributes = ATTRIBUTES.get(types[head], {})
            if attr not in attributes:
                article = "an" if types[head][0] in "aeiou" else "a"
                yield error("E603", f"sql parameter ':{name}': {article} {types[head]} has no attribute '{attr}'"
                            + suggest(attr, attributes), span,
                            hint=("attributes: " + ", ".join(sorted(attributes))) if attributes else None)


def _parameters(sql: str):
    from pglast.parser import ParseError

    from .sqltext import find_parameters

    try:
        return find_parameters(sql)
    except ParseError:
        return None


def _inline_mapper(ctx: LintContext, start: n.Span):
    """Offsets into an inline SQL string -> Flowfile spans, undoing escapes of a "..." string."""
    line_text = ctx.line(start.line)
    raw_start = start.column - 1
    long_string = line_text[max(raw_start - 3, 0):raw_start] == '"""'
    index: Optional[list] = None
    if not long_string:
        index = _escape_index(line_text, raw_start)

    def position(offset: int, sql: str, width: int) -> n.Span:
        if index is not None:
            first = index[min(offset, len(index) - 1)]
            last = index[min(offset + width, len(index) - 1)]
            return n.Span(start.file, start.line, start.column + first, start.line, start.column + max(last, first + 1))
        prefix = sql[:offset]
        breaks = prefix.count("\n")
        column = start.column + offset if breaks == 0 else offset - prefix.rfind("\n")
        line = start.line + breaks
        rest = sql[offset:offset + width]
        end = column + (len(rest.split("\n")[0]) or 1)
        return n.Span(start.file, line, column, line, end)

    return position


def _escape_index(line: str, start: int) -> list:
    """For a "..." string whose text starts at line[start]: unquoted offset -> offset in the source."""
    index = []
    i = start
    while i < len(line) and line[i] != '"':
        index.append(i - start)
        if line[i] == "\\" and i + 1 < len(line):
            following = line[i + 1]
            if following == "N" and "}" in line[i:]:
                i = line.index("}", i) + 1
            else:
                i += {"x": 4, "u": 6, "U": 10}.get(following, 2)
        else:
            i += 1
    index.append(i - start)
    return index


def _file_position(path: str, sql: str, offset: int, width: int = 1) -> n.Span:
    prefix = sql[:offset]
    line = prefix.count("\n") + 1
    column = offset - (prefix.rfind("\n") + 1) + 1
    rest = sql[offset:offset + width].split("\n")[0]
    return n.Span(path, line, column, line, column + (len(rest) or 1))


def _read_sql(ctx: LintContext, name: str):
    """(text, path on disk, problem) for a .sql file next to the Flowfile."""
    path = os.path.join(ctx.directory, name)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(), path, None
    except OSError as exc:
        return None, path, (exc.strerror or str(exc)).lower()
    except UnicodeDecodeError:
        return None, path, "not utf-8 text"


def _display(ctx: LintContext, name: str) -> str:
    return os.path.normpath(os.path.join(os.path.dirname(ctx.path), name))


# ---------------------------------------------------------------------------- spans


def _find_in_line(ctx: LintContext, span: n.Span, needle: str, after: str = "") -> n.Span:
    """The span of `needle` on the first line of `span`, looking past `after`; the whole span if absent."""
    line = ctx.line(span.line)
    begin = line.find(after, span.column - 1) + len(after) if after else span.column - 1
    found = line.find(needle, max(begin, 0))
    if found < 0:
        return span
    return n.Span(span.file, span.line, found + 1, span.line, found + 1 + len(needle))


def _prefix(span: n.Span, width: int) -> n.Span:
    return n.Span(span.file, span.line, span.column, span.line, span.column + width)


def _suffix(span: n.Span, width: int) -> n.Span:
    if span.end_line != span.line:
        return span
    return n.Span(span.file, span.line, span.end_column - width, span.line, span.end_column)
