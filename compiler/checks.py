"""Semantic checks: resolve names, type every expression, check outputs; collect all errors, then raise."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Optional

from . import nodes as n
from . import types as t
from .commands import check_action
from .errors import Diagnostic, FlowCheckError, did_you_mean, error
from .expressions import CLOCK_NAMES, LIST, Compiled, Scope, coerce, compile_expr, compile_requirements

RULE_SETTINGS = ("retries", "timeout", "doc", "allow_open", "batch")
BATCH_ACTIONS = ("python", "spark", "sql")
# Types whose values are periods of time: a task with one that has not ended is open.
PERIOD_TYPES = ("date", "hour", "minute", "interval")
SPARK_SETTINGS = ("master", "conf", "app-name")
# The URL schemes outputs and external inputs may use (object stores; the runtime's storage/ serves them).
REMOTE_SCHEMES = ("s3", "gs", "gcs", "hdfs")
# What a `storage:` block may say per scheme: settings that are not secrets (credentials come from
# each store's own chain, never from the Flowfile).
STORAGE_SETTINGS = {"s3": ("endpoint-url", "region"), "gs": ("endpoint-url", "project"),
                    "gcs": ("endpoint-url", "project"), "hdfs": ("user",)}

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PLACEHOLDER_NAMES = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^{}]*)?\}")


@dataclass
class OutputPattern:
    """An output pattern split into literal text and parameter slots, with a typed regex to match names."""

    kind: str
    text: str
    parts: tuple  # literal strings and parameter indexes, alternating as they appear
    regex: Optional[re.Pattern]  # full match of the location; group names are parameter names
    name_regex: Optional[re.Pattern]  # match of the last path component, when it holds every placeholder

    formatters: tuple = ()  # (parameter index, value -> text) per placeholder, in order
    parsers: dict = field(default_factory=dict)  # parameter name -> (text -> value), to read names back

    def format(self, values: tuple) -> str:
        literal = self._literal
        if literal is None:
            literal = self._literal = "".join("{}" if p.__class__ is int else p.replace("{", "{{").replace("}", "}}")
                                              for p in self.parts)
        return literal.format(*[convert(values[index]) for index, convert in self.formatters])

    _literal = None


@dataclass
class RuleInfo:
    """A checked rule: the node plus what the graph needs to instantiate tasks fast."""

    node: n.Rule
    name: str
    param_names: tuple
    param_types: tuple
    significant: tuple  # indexes of significant parameters
    defaults: tuple  # Compiled default per parameter, or None
    output: Optional[OutputPattern]
    requires: Callable  # environment dict -> list of RequirementRef
    has_requires: bool
    uses_clock: bool = False  # requires reads today, yesterday or now: its environment needs the clock
    periods: tuple = ()  # indexes of significant parameters that are periods (dates, hours, intervals)
    allow_open: bool = False  # may be built before its period ends (a partial output is meant)
    batch: int = 0  # `batch: N`: one action run covers up to N contiguous partitions (0: one task per run)
    batch_index: int = -1  # the parameter whose values are the partitions a batch covers


@dataclass
class CheckedFlowfile:
    """A Flowfile whose names, types and outputs have been checked; ready for target resolution."""

    path: str
    text: str
    ast: n.Flowfile
    rules: dict  # name -> RuleInfo
    ranges: dict  # name -> list of values (constant ranges)
    targets: dict  # name -> (TargetDecl, requirements function)
    default: Optional[str]
    spark: dict = field(default_factory=dict)
    storage: dict = field(default_factory=dict)  # scheme -> {setting: text}, from the `storage:` block
    database: Optional[str] = None
    warnings: list = field(default_factory=list)
    relative_ranges: dict = field(default_factory=dict)  # name -> (clock environment -> list of values)
    timezone: str = "UTC"  # the zone of the clock that says whether a period has ended
    uses_clock: bool = False  # some range, target or rule reads today
    # Rules that can reach themselves through requires (day - 1 chains, or mistakes). When there
    # are none, no task graph can have a cycle, and the graph builder skips the cycle check.
    recursive_rules: frozenset = frozenset()


def check(flowfile: n.Flowfile, text: str = "") -> CheckedFlowfile:
    """Check a parsed Flowfile; raise FlowCheckError listing every error found."""
    errors: list[Diagnostic] = []
    rules = _unique(flowfile.rules, "rule", errors)
    ranges_nodes = _unique(flowfile.ranges, "range", errors)
    target_nodes = _unique(flowfile.targets, "target", errors)
    for kind_a, names_a, kind_b, names_b in (
        ("target", target_nodes, "rule", rules),
        ("range", ranges_nodes, "rule", rules),
        ("target", target_nodes, "range", ranges_nodes),
    ):
        for name in names_a.keys() & names_b.keys():
            node = names_a[name]
            errors.append(error("E101", f"{kind_a} '{name}' has the same name as a {kind_b}", node.name_span))

    # ranges may refer to earlier ranges
    ranges: dict[str, Compiled] = {}
    for decl in flowfile.ranges:
        scope = Scope({}, ranges, rules, errors)
        before = len(errors)
        compiled = compile_expr(decl.value, scope)
        # a range that fails is still known (as an error), so its uses do not add 'unknown name' errors
        ranges.setdefault(decl.name, Compiled(lambda env: None, "error", True, decl.span))
        if len(errors) > before:
            continue  # already explained; "must be made of literals" would only echo it
        if compiled.type != "error" and not compiled.type.startswith(LIST):
            errors.append(error("E107", f"range '{decl.name}' must be a list of dates or intervals", decl.value.span,
                                hint="for example: months(2012-01 .. 2012-12)"))
            continue
        if compiled.type != "error" and compiled.relative:
            ranges[decl.name] = Compiled(compiled.fn, compiled.type, False, decl.span, True)
            continue
        if compiled.type != "error" and not compiled.constant:
            errors.append(error("E107", f"range '{decl.name}' must be made of literal dates or intervals, "
                                "or be relative to today", decl.value.span))
            continue
        if compiled.type != "error":
            try:
                value = compiled.fn({})
            except (OverflowError, ValueError):
                errors.append(error("E108", f"range '{decl.name}' goes outside the dates flow can count "
                                    "(years 1 to 9999)", decl.value.span))
                continue
            ranges[decl.name] = Compiled(lambda env, v=value: v, compiled.type, True, decl.span)

    infos = {}
    for rule in flowfile.rules:
        info = _check_rule(rule, ranges, rules, errors)
        if info is not None:
            infos.setdefault(rule.name, info)

    programs = [rule for rule in flowfile.rules if isinstance(rule.action, (n.CommandAction, n.ShellAction))]
    if programs:
        lines = text.splitlines()
        for rule in programs:
            errors.extend(check_action(rule, lines))

    targets = {}
    for decl in flowfile.targets:
        scope = Scope({}, ranges, rules, errors)
        targets.setdefault(decl.name, (decl, compile_requirements(decl.requires, scope)))

    default = None
    if flowfile.default is not None:
        default, span = flowfile.default
        if default not in target_nodes and default not in rules:
            guess = did_you_mean(default, list(target_nodes))
            errors.append(error("E301", f"default target '{default}' is not defined"
                                + (f" (did you mean '{guess}'?)" if guess else ""), span))

    errors.extend(_check_output_clashes(infos))
    recursive = _recursive_rules(flowfile.rules)
    for name, info in infos.items():
        if info.batch and name in recursive:
            span = next(s.span for s in info.node.settings if s.key == "batch")
            errors.append(error("E211", f"batch: '{name}' requires itself (through its requires), so one run "
                                "could need its own output", span, hint="remove batch:, or the self-requirement"))
    spark = _check_spark(flowfile.spark, errors)
    storage = _check_storage(flowfile.storage, errors)
    timezone = _check_timezone(flowfile.timezone, errors)
    if errors:
        raise FlowCheckError(errors)
    return CheckedFlowfile(
        relative_ranges={name: c.fn for name, c in ranges.items() if c.relative},
        timezone=timezone,
        uses_clock=_reads_clock((flowfile.ranges, flowfile.targets, [r.requires for r in flowfile.rules])),
        recursive_rules=recursive,
        path=flowfile.path,
        text=text,
        ast=flowfile,
        rules=infos,
        ranges={name: c.fn({}) for name, c in ranges.items() if c.type != "error" and not c.relative},
        targets=targets,
        default=default,
        spark=spark,
        storage=storage,
        database=flowfile.database[0] if flowfile.database else None,
    )


def _called_rules(expr, rule_names: set, found: set) -> None:
    """Collect the rules an expression may call, in any branch."""
    if isinstance(expr, n.FuncCall) and expr.func in rule_names:
        found.add(expr.func)
    if isinstance(expr, (tuple, list)):
        for item in expr:
            _called_rules(item, rule_names, found)
        return
    for name in getattr(expr, "__dataclass_fields__", ()):
        if name != "span":
            _called_rules(getattr(expr, name), rule_names, found)


def _reads_clock(expr) -> bool:
    """Whether an expression (or any node below it) names today, yesterday or now."""
    if isinstance(expr, n.Name):
        return expr.name in CLOCK_NAMES
    if isinstance(expr, (tuple, list)):
        return any(_reads_clock(item) for item in expr)
    return any(_reads_clock(getattr(expr, name)) for name in getattr(expr, "__dataclass_fields__", ())
               if name not in ("span", "name_span"))


def _check_timezone(timezone, errors: list) -> str:
    if timezone is None:
        return "UTC"
    name, span = timezone
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errors.append(error("E702", f"unknown time zone '{name}'", span,
                            hint="an IANA name such as \"UTC\", \"Europe/Paris\" or \"America/New_York\""))
        return "UTC"
    return name


def _recursive_rules(rules) -> frozenset:
    names = {r.name for r in rules}
    calls = {}
    for rule in rules:
        found: set = set()
        _called_rules(rule.requires, names, found)
        calls[rule.name] = found
    recursive = set()
    for start in calls:
        stack, seen = list(calls[start]), set()
        while stack:
            current = stack.pop()
            if current == start:
                recursive.add(start)
                break
            if current not in seen:
                seen.add(current)
                stack.extend(calls.get(current, ()))
    return frozenset(recursive)


def _unique(items, kind: str, errors: list) -> dict:
    seen: dict = {}
    for item in items:
        if item.name in seen:
            first = seen[item.name].name_span
            errors.append(error("E101", f"{kind} '{item.name}' is defined twice (first at line {first.line})",
                                item.name_span))
        else:
            seen[item.name] = item
    return seen


def _check_rule(rule: n.Rule, ranges: dict, rules: dict, errors: list) -> Optional[RuleInfo]:
    variables = {}
    defaults = []
    for param in rule.params:
        if param.type not in t.TYPE_NAMES:
            guess = did_you_mean(param.type, t.TYPE_NAMES)
            errors.append(error("E104", f"unknown type '{param.type}'" + (f" (did you mean '{guess}'?)" if guess
                                else ""), param.type_span, hint="types: " + ", ".join(t.TYPE_NAMES)))
            continue
        if param.name in variables:
            errors.append(error("E101", f"parameter '{param.name}' is declared twice", param.span))
        variables[param.name] = param.type
        default = None
        if param.default is not None:
            scope = Scope({}, ranges, rules, errors)
            default = coerce(compile_expr(param.default, scope), param.type, scope, f"the default of '{param.name}'")
        elif not param.significant:
            errors.append(error("E208", f"insignificant parameter '{param.name}' needs a default", param.span,
                                hint="tasks are told apart by their significant parameters only"))
        defaults.append(default)

    if rule.output is None:
        errors.append(error("E204", f"rule '{rule.name}' has no output", rule.name_span,
                            hint='add a line like: output: "data/{date}.tsv"'))
    if rule.external and rule.action is not None:
        errors.append(error("E206", f"external rule '{rule.name}' cannot have an action", rule.action.span,
                            hint="an external rule's output is made outside flow; remove the action"))
    if not rule.external and rule.action is None:
        errors.append(error("E205", f"rule '{rule.name}' has no action", rule.name_span,
                            hint="add python:, spark:, spark-submit:, sql:, load:, command: or shell:, "
                            "or declare it 'external rule'"))
    if rule.action is not None and rule.action.kind in ("sql", "load") and rule.output is not None:
        if rule.output.kind != "table":
            errors.append(error("E209", f"a {rule.action.kind} action writes a table; declare: output: table \"name\"",
                                rule.output.span))
    if rule.action is not None and rule.output is not None and rule.output.kind == "table":
        if rule.action.kind not in ("sql", "load"):
            errors.append(error("E209", f"a table output needs a sql: or load: action, not {rule.action.kind}:",
                                rule.action.span))

    if isinstance(rule.action, n.SparkSubmitAction):
        for key, span in rule.action.setting_spans.items():
            if key not in n.SPARK_SUBMIT_SETTINGS:
                guess = did_you_mean(key, n.SPARK_SUBMIT_SETTINGS)
                errors.append(error("E701", f"unknown spark-submit setting '{key}'" + (
                    f" (did you mean '{guess}'?)" if guess else ""), span,
                    hint="see docs/spark.md for the settings spark-submit takes"))
    for setting in rule.settings:
        if setting.key not in RULE_SETTINGS:
            guess = did_you_mean(setting.key, RULE_SETTINGS + ("output", "requires", "python", "spark", "sql", "load",
                                                          "command", "shell"))
            errors.append(error("E701", f"unknown rule setting '{setting.key}'" + (f" (did you mean '{guess}'?)" if
                                guess else ""), setting.span))
        elif setting.key == "retries" and (not isinstance(setting.value, int) or isinstance(setting.value, bool)
                                           or setting.value < 0):
            errors.append(error("E702", "retries must be a whole number, 0 or more", setting.value_span))
        elif setting.key == "timeout" and (not isinstance(setting.value, float)):
            errors.append(error("E702", "timeout must be a duration such as 90s, 30m or 2h", setting.value_span))
        elif setting.key == "allow_open" and not isinstance(setting.value, bool):
            errors.append(error("E702", "allow_open must be true or false", setting.value_span))
        elif setting.key == "batch" and (not isinstance(setting.value, int) or isinstance(setting.value, bool)
                                         or setting.value < 1):
            errors.append(error("E702", "batch must be a whole number of partitions, 1 or more", setting.value_span))

    output = None
    if rule.output is not None and len(variables) == len(rule.params):
        output = _check_output(rule, errors)

    scope = Scope(variables, ranges, rules, errors)
    requires = compile_requirements(rule.requires, scope)
    batch, batch_index = _check_batch(rule, errors)
    return RuleInfo(
        node=rule,
        name=rule.name,
        param_names=tuple(p.name for p in rule.params),
        param_types=tuple(p.type for p in rule.params),
        significant=tuple(i for i, p in enumerate(rule.params) if p.significant),
        defaults=tuple(defaults),
        output=output,
        requires=requires,
        has_requires=bool(rule.requires),
        uses_clock=_reads_clock(rule.requires),
        periods=tuple(i for i, p in enumerate(rule.params) if p.significant and p.type in PERIOD_TYPES),
        allow_open=any(s.key == "allow_open" and s.value is True for s in rule.settings),
        batch=batch,
        batch_index=batch_index,
    )


def _check_batch(rule: n.Rule, errors: list) -> tuple:
    """(partitions per run, index of the partition parameter) for `batch: N`; (0, -1) without it or on error."""
    setting = next((s for s in rule.settings if s.key == "batch"), None)
    if setting is None or not isinstance(setting.value, int) or isinstance(setting.value, bool) or setting.value < 1:
        return 0, -1
    in_output = set(_PLACEHOLDER_NAMES.findall(rule.output.pattern)) if rule.output is not None else set()
    periods = [i for i, p in enumerate(rule.params) if p.significant and p.type in PERIOD_TYPES
               and (p.name in in_output or (rule.output is not None and rule.output.kind == "table"))]
    if len(periods) != 1:
        what = "none" if not periods else ", ".join(f"'{rule.params[i].name}'" for i in periods)
        errors.append(error(
            "E211", f"batch: the outputs of '{rule.name}' must each identify one partition: one date, hour, minute "
            f"or interval parameter in its output (found {what})", setting.span,
            hint="a batch covers contiguous partitions of one such parameter, each written and recorded on its own"))
        return 0, -1
    if rule.external or rule.action is None or rule.action.kind not in BATCH_ACTIONS:
        kind = "an external rule" if rule.external or rule.action is None else f"a {rule.action.kind}: action"
        errors.append(error("E211", f"batch works with python:, spark: and sql: actions, not {kind}", setting.span))
        return 0, -1
    return setting.value, periods[0]


def _output_error(rule: n.Rule, errors: list, code: str, message: str, hint=None):
    errors.append(error(code, message, _pattern_span(rule.output), hint))


def _pattern_span(output: n.Output) -> n.Span:
    """The quoted pattern: the output entry ends with it (escapes inside it are rare enough to ignore)."""
    span = output.span
    if span.end_line != span.line:
        return n.Span(span.file, span.line, span.column, span.line, span.column + 1)
    quoted = len(output.pattern.replace("\\", "\\\\").replace('"', '\\"')) + 2
    return n.Span(span.file, span.line, max(span.column, span.end_column - quoted), span.line, span.end_column)


# strftime-like directives an output may format a date, hour or minute with: regex, and text from the value.
_TIME_DIRECTIVES = {
    "Y": (r"\d{4}", lambda d: f"{d.year:04d}"),
    "m": (r"\d{2}", lambda d: f"{d.month:02d}"),
    "d": (r"\d{2}", lambda d: f"{d.day:02d}"),
    "j": (r"\d{3}", lambda d: f"{d.timetuple().tm_yday:03d}"),
    "H": (r"\d{2}", lambda d: f"{d.hour:02d}"),
    "M": (r"\d{2}", lambda d: f"{d.minute:02d}"),
}
# Per type: the directives it may use, what one value is called, and what names one whole value.
_FORMAT_RULES = {
    "date": ("Ymdj", "one day", ["%Y with %m and %d", "%Y with %j"]),
    "hour": ("YmdjH", "one whole hour", ["%Y with %m, %d and %H", "%Y with %j and %H"]),
    "minute": ("YmdjHM", "one whole minute", ["%Y with %m, %d, %H and %M", "%Y with %j, %H and %M"]),
}
_FORMAT_EXAMPLES = {
    "date": "for example {date:%Y/%m/%d} or {date:year=%Y/month=%m/day=%d}",
    "hour": "for example {hour:%Y/%m/%d/%H} or {hour:year=%Y/month=%m/day=%d/hour=%H}",
    "minute": "for example {minute:%Y/%m/%d/%H%M}",
}


@dataclass
class _Slot:
    """One placeholder of an output pattern: which parameter, how it prints, how a name parses back."""

    index: int
    name: str
    regex: str
    convert: Callable
    parse: Callable


def _time_format(fmt: str, type_name: str):
    """(regex, value -> text, text -> value) for a `{date:%Y/%m/%d}` format, or a message saying what is wrong."""
    import datetime

    allowed, what, needs = _FORMAT_RULES[type_name]
    regex, printers, seen = [], [], set()
    for piece in re.split(r"(%.)", fmt):
        if piece.startswith("%") and len(piece) == 2:
            if piece == "%%":
                regex.append("%")
                printers.append("%")
                continue
            directive = _TIME_DIRECTIVES.get(piece[1])
            if directive is None or piece[1] not in allowed:
                usable = ", ".join(f"%{c}" for c in allowed)
                return f"'{piece}' is not a {type_name} format this pattern can read back (use {usable})"
            seen.add(piece[1])
            regex.append(directive[0])
            printers.append(directive[1])
        elif piece:
            regex.append(re.escape(piece))
            printers.append(piece)
    clock = set(allowed) - set("Ymdj")
    if "Y" not in seen or not ({"m", "d"} <= seen or "j" in seen) or not clock <= seen:
        return f"format '{fmt}' does not name {what}: one placeholder needs " + ", or ".join(needs)
    make = {"date": lambda v: v.date(), "hour": lambda v: t.Hour(v.year, v.month, v.day, v.hour),
            "minute": lambda v: t.Minute(v.year, v.month, v.day, v.hour, v.minute)}[type_name]

    def convert(value):
        return "".join(p if p.__class__ is str else p(value) for p in printers)

    def parse(text):
        value = make(datetime.datetime.strptime(text, fmt))
        if convert(value) != text:  # strptime reads 2011-366 as 2012-01-01: only exact round trips count
            raise ValueError(f"'{text}' is not a {type_name} written as '{fmt}'")
        return value

    return "".join(regex), convert, parse


def _slot(rule: n.Rule, spec: str, errors: list) -> Optional[_Slot]:
    """Check one placeholder, `{name}` or `{date:%Y/%m/%d}`."""
    name, colon, fmt = (part.strip() for part in spec.partition(":"))
    index_of = {p.name: i for i, p in enumerate(rule.params)}
    if name not in index_of:
        guess = did_you_mean(name, index_of)
        _output_error(rule, errors, "E201", f"output placeholder '{{{name}}}' is not a parameter of '{rule.name}'"
                      + (f" (did you mean '{{{guess}}}'?)" if guess else ""))
        return None
    param = rule.params[index_of[name]]
    if not param.significant:
        _output_error(rule, errors, "E201", f"insignificant parameter '{name}' cannot be in the output",
                      hint="remove 'insignificant' or the placeholder")
    if not colon:
        return _Slot(index_of[name], name, t.PATTERN_REGEX[param.type], t.FORMATTERS[param.type],
                     lambda text, type_name=param.type: t.parse_value(type_name, text))
    if param.type not in _FORMAT_RULES:
        _output_error(rule, errors, "E207", f"only date, hour and minute parameters take a format, and '{name}' is "
                      f"{param.type}", hint=f"write {{{name}}}")
        return None
    made = _time_format(fmt, param.type)
    if isinstance(made, str):
        _output_error(rule, errors, "E207", made, hint=_FORMAT_EXAMPLES[param.type])
        return None
    regex, convert, parse = made
    return _Slot(index_of[name], name, regex, convert, parse)


def _check_output(rule: n.Rule, errors: list) -> Optional[OutputPattern]:
    output = rule.output
    pattern = output.pattern
    stripped = _PLACEHOLDER.sub("", pattern)
    if "{" in stripped or "}" in stripped:
        _output_error(rule, errors, "E207", f"output pattern '{pattern}' has an unmatched brace")
        return None
    if not pattern:
        _output_error(rule, errors, "E207", "output pattern is empty")
        return None
    remote_problem = _remote_pattern_problem(pattern, output.kind)
    if remote_problem:
        _output_error(rule, errors, "E210", remote_problem[0], hint=remote_problem[1])
        return None
    parts: list = []
    slots: list = []
    failed = set()  # placeholders already reported: no second error saying they are missing
    position = 0
    for match in _PLACEHOLDER.finditer(pattern):
        if match.start() > position:
            parts.append(pattern[position:match.start()])
        position = match.end()
        slot = _slot(rule, match.group(1), errors)
        if slot is None:
            failed.add(match.group(1).partition(":")[0].strip())
        else:
            parts.append(slot.index)
            slots.append(slot)
    if position < len(pattern):
        parts.append(pattern[position:])
    used = {slot.name for slot in slots}
    missing = [p.name for p in rule.params if p.significant and p.name not in used | failed]
    if missing and output.kind != "table":  # many tasks load one table; marker rows tell them apart
        names = ", ".join(f"'{m}'" for m in missing)
        _output_error(rule, errors, "E202", f"parameter{'s' * (len(missing) > 1)} {names} of '{rule.name}' "
                      f"not in its output: two tasks would write one file",
                      hint=f"put {{{missing[0]}}} in the output, or mark it 'insignificant' with a default")
        return None
    formatters = tuple((slot.index, slot.convert) for slot in slots)
    parsers = {slot.name: slot.parse for slot in slots}
    if output.kind == "table":
        return OutputPattern("table", pattern, tuple(parts), None, None, formatters, parsers)
    if failed:
        return None
    regex = re.compile(_regex_for(pattern, slots))
    # the last path component, for names given without their directory ('/' inside a {date:%Y/%m}
    # placeholder does not count)
    last = pattern[_last_separator(pattern) + 1:]
    last_slots = slots[len(slots) - len(_PLACEHOLDER.findall(last)):]
    name_regex = None
    if {slot.name for slot in last_slots} == used:
        name_regex = re.compile(_regex_for(last, last_slots))
    return OutputPattern(output.kind, pattern, tuple(parts), regex, name_regex, formatters, parsers)


def _remote_pattern_problem(pattern: str, kind: str):
    """(message, hint) when an output names a store badly: an unknown scheme, a bucket from a parameter."""
    scheme, separator, rest = pattern.partition("://")
    if not separator:
        return None
    if kind == "table":
        return f"a table output is a table name, not a URL ('{pattern}')", 'write: output: table "schema.name"'
    if scheme.lower() not in REMOTE_SCHEMES:
        known = ", ".join(f"{name}://" for name in REMOTE_SCHEMES)
        return f"flow cannot store outputs at '{scheme}://' URLs", f"use a local path or one of {known}"
    bucket, slash, key = rest.partition("/")
    if "{" in bucket or not bucket and scheme.lower() != "hdfs":
        return (f"the bucket of '{pattern}' must be written out, not made from parameters",
                f"for example {scheme}://my-bucket/data/{{date}}.tsv")
    if not key.strip("/"):
        return f"output '{pattern}' names a whole bucket", f"add a key, for example {scheme}://{bucket}/data/{{date}}.tsv"
    return None


def _last_separator(pattern: str) -> int:
    depth = 0
    last = -1
    for index, char in enumerate(pattern):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "/" and depth == 0:
            last = index
    return last


def _regex_for(pattern: str, slots: list) -> str:
    """The regex matching what `pattern` produces; each parameter is captured once, then back-referenced."""
    out = []
    position = 0
    seen = set()
    for match, slot in zip(_PLACEHOLDER.finditer(pattern), slots):
        out.append(re.escape(pattern[position:match.start()]))
        out.append(f"(?P={slot.name})" if slot.name in seen else f"(?P<{slot.name}>{slot.regex})")
        seen.add(slot.name)
        position = match.end()
    out.append(re.escape(pattern[position:]))
    return "".join(out)


def _sample_values() -> dict:
    """A few values of each type, to find two output patterns that can name the same file."""
    import datetime

    day = datetime.date(2012, 6, 1)
    return {
        "date": [day],
        "hour": [t.Hour(2012, 6, 1, 13)],
        "minute": [t.Minute(2012, 6, 1, 13, 5)],
        "interval": [t.year(2012), t.month(2012, 6), t.week(2012, 23), t.day(day),
                     t.custom(day, datetime.date(2012, 6, 15))],
        "int": [7],
        "str": ["x"],
        "bool": [True],
    }


def _check_output_clashes(infos: dict) -> list:
    found = []
    patterns = [(name, info) for name, info in infos.items() if info.output and info.output.regex is not None]
    for i, (name_a, a) in enumerate(patterns):
        samples_a = list(_samples(a))
        for name_b, b in patterns[i + 1:]:
            clash = next((s for s in samples_a if b.output.regex.fullmatch(s)), None)
            if clash is None:
                clash = next((s for s in _samples(b) if a.output.regex.fullmatch(s)), None)
            if clash is not None:
                found.append(error(
                    "E203", f"outputs of '{name_a}' and '{name_b}' can name the same file ('{clash}')",
                    _pattern_span(b.node.output), hint=f"'{name_a}' is at line {a.node.output.span.line}; "
                    "make the patterns differ by a fixed part"))
    return found


def _samples(info: RuleInfo):
    """A few concrete locations the rule's output pattern can produce."""
    import itertools

    unique = sorted({index for index, _ in info.output.formatters})
    samples = _sample_values()
    choices = [samples[info.param_types[i]] for i in unique]
    for combo in itertools.islice(itertools.product(*choices), 50):
        values = [None] * len(info.param_types)
        for index, value in zip(unique, combo, strict=True):
            values[index] = value
        yield info.output.format(tuple(values))


def _check_storage(settings: tuple, errors: list) -> dict:
    """The `storage:` block as {scheme: {key: text}}; credentials and unknown keys are errors."""
    result: dict = {}
    for block in settings:
        if block.key not in STORAGE_SETTINGS:
            guess = did_you_mean(block.key, STORAGE_SETTINGS)
            errors.append(error("E703", f"unknown storage '{block.key}'" + (f" (did you mean '{guess}'?)" if guess else ""),
                                block.span, hint="the storage: block takes s3, gs and hdfs blocks"))
            continue
        if not isinstance(block.value, tuple):
            errors.append(error("E704", f"storage {block.key} must be an indented block of 'key: value' lines",
                                block.value_span))
            continue
        known = STORAGE_SETTINGS[block.key]
        for setting in block.value:
            if setting.key not in known:
                secret = any(word in setting.key.lower() for word in ("key", "secret", "token", "password", "credential"))
                guess = did_you_mean(setting.key, known)
                hint = ("credentials never go in the Flowfile: the store's own chain finds them "
                        "(AWS variables or profiles, Google application default credentials)" if secret else
                        f"{block.key} takes {', '.join(known)}")
                errors.append(error("E703", f"unknown {block.key} storage setting '{setting.key}'"
                                    + (f" (did you mean '{guess}'?)" if guess and not secret else ""), setting.span, hint=hint))
            elif not isinstance(setting.value, str):
                errors.append(error("E704", f"storage {block.key} {setting.key} must be a string", setting.value_span))
            else:
                result.setdefault(block.key, {})[setting.key] = setting.value
    return result


def _check_spark(settings: tuple, errors: list) -> dict:
    result = {}
    for setting in settings:
        if setting.key not in SPARK_SETTINGS:
            guess = did_you_mean(setting.key, SPARK_SETTINGS)
            errors.append(error("E701", f"unknown spark setting '{setting.key}'" + (f" (did you mean '{guess}'?)" if
                                guess else ""), setting.span, hint="the spark: block takes master, conf and app-name"))
        elif setting.key == "conf":
            if not isinstance(setting.value, tuple):
                errors.append(error("E702", "conf must be an indented block of 'key: value' lines", setting.value_span))
                continue
            result["conf"] = {s.key: t.format_value(s.value) for s in setting.value}
        else:
            if not isinstance(setting.value, str):
                errors.append(error("E702", f"spark {setting.key} must be a string", setting.value_span))
                continue
            result[setting.key] = setting.value
    return result
