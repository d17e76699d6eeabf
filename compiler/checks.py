"""Semantic checks: resolve names, type every expression, check outputs; collect all errors, then raise."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Optional

from . import nodes as n
from . import types as t
from .errors import Diagnostic, FlowCheckError, error, suggest
from .expressions import CLOCK_NAMES, LIST, Compiled, Scope, coerce, compile_expr, compile_requirements
from .outputs import REMOTE_SCHEMES, OutputPattern, check_output, output_clashes  # noqa: F401
from .recursion import endless_requirements, recursive_rules
from .visitor import find_all

_PLACEHOLDER_NAMES = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^{}]*)?\}")
RULE_SETTINGS = ("retries", "timeout", "doc", "allow_open", "batch", "resources", "priority")
TARGET_SETTINGS = ("priority",)
BATCH_ACTIONS = ("python", "spark", "sql")
# Types whose values are periods of time: a task with one that has not ended is open.
PERIOD_TYPES = ("date", "hour", "minute", "interval")
SPARK_SETTINGS = ("master", "conf", "app-name")
# What a `storage:` block may say per scheme: settings that are not secrets (credentials come from
# each store's own chain, never from the Flowfile).
STORAGE_SETTINGS = {"s3": ("endpoint-url", "region"), "gs": ("endpoint-url", "project"),
                    "gcs": ("endpoint-url", "project"), "hdfs": ("user",)}


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
    resources: tuple = ()  # `resources: postgres=1`: (name, amount) pairs one task (or batch run) holds
    priority: int = 0  # `priority: N`: ready tasks with a higher priority start first


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
    coordinator: Optional[str] = None  # a PostgreSQL URL without a password, or "$VARIABLE" naming one
    warnings: list = field(default_factory=list)
    relative_ranges: dict = field(default_factory=dict)  # name -> (clock environment -> list of values)
    timezone: str = "UTC"  # the zone of the clock that says whether a period has ended
    uses_clock: bool = False  # some range, target or rule reads today
    # Rules that can reach themselves through requires (day - 1 chains, or mistakes). When there
    # are none, no task graph can have a cycle, and the graph builder skips the cycle check.
    recursive_rules: frozenset = frozenset()
    resources: dict = field(default_factory=dict)  # resource name -> limit, from the top-level `resources:`
    target_priorities: dict = field(default_factory=dict)  # target name -> its `priority: N` (when set)
    # Some rule or target sets a priority: only then does a build compute effective priorities.
    uses_priority: bool = False


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
        from .commands import check_action  # only Flowfiles with programs import it, at every start

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
            errors.append(error("E301", f"default target '{default}' is not defined"
                                + suggest(default, target_nodes), span))

    errors.extend(output_clashes(infos))
    recursive = recursive_rules(flowfile.rules)
    for name, info in infos.items():
        if info.batch and name in recursive:
            span = next(s.span for s in info.node.settings if s.key == "batch")
            errors.append(error("E212", f"batch: '{name}' requires itself (through its requires), so one run "
                                "could need its own output", span, hint="remove batch:, or the self-requirement"))
    errors.extend(endless_requirements(flowfile.rules))
    limits = _check_amounts(flowfile.resources, "limit", errors)
    errors.extend(over_limits(infos, limits, "the resources: block"))
    target_priorities = _check_target_settings(flowfile.targets, errors)
    spark = _check_spark(flowfile.spark, errors)
    storage = _check_storage(flowfile.storage, errors)
    timezone = _check_timezone(flowfile.timezone, errors)
    coordinator = _check_coordinator(flowfile.coordinator, errors)
    if errors:
        raise FlowCheckError(errors)
    return CheckedFlowfile(
        relative_ranges={name: c.fn for name, c in ranges.items() if c.relative},
        timezone=timezone,
        uses_clock=_reads_clock([d.value for d in flowfile.ranges] + [e for d in flowfile.targets for e in d.requires]
                                + [e for r in flowfile.rules for e in r.requires]),
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
        resources=limits,
        target_priorities=target_priorities,
        uses_priority=bool(target_priorities) or any(info.priority for info in infos.values()),
        coordinator=coordinator,
    )


def _reads_clock(exprs) -> bool:
    """Whether any of the expressions names today, yesterday or now."""
    return any(node.name in CLOCK_NAMES for node in find_all(exprs, n.Name))


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


_VARIABLE = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*")
_PASSWORD_IN_URL = re.compile(r"^postgres(?:ql)?://[^/@?]*:[^/?]*@|[?&]password=", re.IGNORECASE)
_PASSWORD_IN_PAIRS = re.compile(r"(?:^|\s)password\s*=", re.IGNORECASE)
_COORDINATOR_HINT = ('a PostgreSQL URL such as "postgresql://flow@db.example.com/flow" (the password from'
                     ' PGPASSWORD or ~/.pgpass), or "$NAME", an environment variable that holds one')


def _check_coordinator(coordinator, errors: list) -> Optional[str]:
    """The `coordinator:` setting: a libpq URL or key=value string without a password, or `$VARIABLE`."""
    if coordinator is None:
        return None
    value, span = coordinator
    if value.startswith("$"):
        if not _VARIABLE.fullmatch(value):
            errors.append(error("E705", f"coordinator '{value}' is not an environment variable name", span,
                                hint=_COORDINATOR_HINT))
            return None
        return value
    is_url = value.lower().startswith(("postgres://", "postgresql://"))
    if not is_url and "=" not in value:
        errors.append(error("E705", f"coordinator '{value}' is neither a PostgreSQL URL nor $VARIABLE", span,
                            hint=_COORDINATOR_HINT))
        return None
    if _PASSWORD_IN_URL.search(value) if is_url else _PASSWORD_IN_PAIRS.search(value):
        errors.append(error("E705", "the coordinator setting holds a password", span, hint=_COORDINATOR_HINT))
        return None
    return value


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
            errors.append(error("E104", f"unknown type '{param.type}'" + suggest(param.type, t.TYPE_NAMES),
                                param.type_span, hint="types: " + ", ".join(t.TYPE_NAMES)))
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
                errors.append(error("E701", f"unknown spark-submit setting '{key}'"
                                    + suggest(key, n.SPARK_SUBMIT_SETTINGS), span,
                                    hint="see docs/spark.md for the settings spark-submit takes"))
    for setting in rule.settings:
        if setting.key not in RULE_SETTINGS:
            known = RULE_SETTINGS + ("output", "requires", "python", "spark", "sql", "load", "command", "shell")
            errors.append(error("E701", f"unknown rule setting '{setting.key}'" + suggest(setting.key, known),
                                setting.span))
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
        elif setting.key == "priority" and not _is_int(setting.value):
            errors.append(error("E702", "priority must be a whole number (higher starts first; the default is 0)",
                                setting.value_span))

    output = None
    if rule.output is not None and len(variables) == len(rule.params):
        output = check_output(rule, errors)

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
        resources=tuple((name, amount) for name, amount in _check_amounts(
            tuple(a for s in rule.settings if s.key == "resources" for a in s.value), "amount", errors).items()
            if amount),
        priority=next((s.value for s in rule.settings if s.key == "priority" and _is_int(s.value)), 0),
    )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_amounts(settings: tuple, what: str, errors: list) -> dict:
    """`name=N` settings of a `resources:` line as {name: N}: whole numbers, 0 or more, each name once."""
    found: dict = {}
    for setting in settings:
        if not _is_int(setting.value) or setting.value < 0:
            errors.append(error("E702", f"the {what} of resource '{setting.key}' must be a whole number, 0 or more",
                                setting.value_span, hint=f"for example: resources: {setting.key}=1"))
        elif setting.key in found:
            errors.append(error("E702", f"resource '{setting.key}' is given twice", setting.span))
        else:
            found[setting.key] = setting.value
    return found


def over_limits(infos: dict, limits: dict, source: str) -> list:
    """E213 for every rule whose task needs more of a resource than its limit ever allows (it could never start)."""
    found = []
    for info in infos.values():
        for name, amount in info.resources:
            limit = limits.get(name)
            if limit is not None and amount > limit:
                setting = next(s for s in info.node.settings if s.key == "resources")
                span = next((a.span for a in setting.value if a.key == name), setting.span)
                found.append(error("E213", f"a task of '{info.name}' needs {name}={amount}, more than the limit "
                                   f"of {limit} that {source} sets, so it could never start", span,
                                   hint=f"lower what the rule asks for, or raise the limit of '{name}'"))
    return found


def _check_target_settings(targets: tuple, errors: list) -> dict:
    """Target name -> its priority, for targets that set one; unknown settings and bad values are errors."""
    priorities = {}
    for decl in targets:
        for setting in decl.settings:
            if setting.key not in TARGET_SETTINGS:
                errors.append(error("E701", f"unknown target setting '{setting.key}'"
                                    + suggest(setting.key, TARGET_SETTINGS), setting.span,
                                    hint="a target's block takes priority: N before its requirements"))
            elif not _is_int(setting.value):
                errors.append(error("E702", "priority must be a whole number (higher starts first; the default "
                                    "is 0)", setting.value_span))
            else:
                priorities[decl.name] = setting.value
    return priorities



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
            "E212", f"batch: the outputs of '{rule.name}' must each identify one partition: one date, hour, minute "
            f"or interval parameter in its output (found {what})", setting.span,
            hint="a batch covers contiguous partitions of one such parameter, each written and recorded on its own"))
        return 0, -1
    if rule.external or rule.action is None or rule.action.kind not in BATCH_ACTIONS:
        kind = "an external rule" if rule.external or rule.action is None else f"a {rule.action.kind}: action"
        errors.append(error("E212", f"batch works with python:, spark: and sql: actions, not {kind}", setting.span))
        return 0, -1
    return setting.value, periods[0]


def _check_storage(settings: tuple, errors: list) -> dict:
    """The `storage:` block as {scheme: {key: text}}; credentials and unknown keys are errors."""
    result: dict = {}
    for block in settings:
        if block.key not in STORAGE_SETTINGS:
            errors.append(error("E703", f"unknown storage '{block.key}'" + suggest(block.key, STORAGE_SETTINGS),
                                block.span, hint="the storage: block takes s3, gs and hdfs blocks"))
            continue
        if not isinstance(block.value, tuple):
            errors.append(error("E704", f"storage {block.key} must be an indented block of 'key: value' lines",
                                block.value_span))
            continue
        known = STORAGE_SETTINGS[block.key]
        for setting in block.value:
            if setting.key not in known:
                secret = any(word in setting.key.lower()
                             for word in ("key", "secret", "token", "password", "credential"))
                hint = ("credentials never go in the Flowfile: the store's own chain finds them "
                        "(AWS variables or profiles, Google application default credentials)" if secret else
                        f"{block.key} takes {', '.join(known)}")
                errors.append(error("E703", f"unknown {block.key} storage setting '{setting.key}'"
                                    + ("" if secret else suggest(setting.key, known)), setting.span, hint=hint))
            elif not isinstance(setting.value, str):
                errors.append(error("E704", f"storage {block.key} {setting.key} must be a string", setting.value_span))
            else:
                result.setdefault(block.key, {})[setting.key] = setting.value
    return result


def _check_spark(settings: tuple, errors: list) -> dict:
    result = {}
    for setting in settings:
        if setting.key not in SPARK_SETTINGS:
            errors.append(error("E701", f"unknown spark setting '{setting.key}'" + suggest(setting.key, SPARK_SETTINGS),
                                setting.span, hint="the spark: block takes master, conf and app-name"))
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
