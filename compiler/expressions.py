"""Type-check requirement and range expressions and compile them into fast Python closures."""

from __future__ import annotations

import datetime as _dt
import sys
from dataclasses import dataclass
from typing import Callable, Optional

from . import nodes as n
from . import types as t
from .errors import Diagnostic, error, suggest

# Types are strings: "date", "hour", "minute", "interval", "int", "str", "bool", "task" (a requirement),
# "list:<type>" and "temporal" (a date-like literal whose type the context decides).
LIST = "list:"

BUILTINS = ("days", "weeks", "months", "years", "hours", "minutes")
KIND_OF_BUILTIN = {"days": "day", "weeks": "week", "months": "month", "years": "year", "hours": "hour",
                   "minutes": "minute"}
# What one step of `value + 1` means for each type that counts.
STEP = {"date": t.ONE_DAY, "hour": t.ONE_HOUR, "minute": t.ONE_MINUTE}

ATTRIBUTES = {
    "interval": {
        "start": ("date", lambda v: v.start),
        "end": ("date", lambda v: v.end),
        "prev": ("interval", lambda v: v.prev),
        "next": ("interval", lambda v: v.next),
        "days": ("list:date", lambda v: v.days),
        "kind": ("str", lambda v: v.kind),
    },
    "date": {
        "year": ("int", lambda v: v.year),
        "month": ("int", lambda v: v.month),
        "day": ("int", lambda v: v.day),
        "weekday": ("int", lambda v: v.isoweekday()),
        "prev": ("date", lambda v: v - t.ONE_DAY),
        "next": ("date", lambda v: v + t.ONE_DAY),
    },
    "hour": {
        "date": ("date", lambda v: v.date()),
        "year": ("int", lambda v: v.year),
        "month": ("int", lambda v: v.month),
        "day": ("int", lambda v: v.day),
        "hour": ("int", lambda v: v.hour),
        "prev": ("hour", lambda v: v - t.ONE_HOUR),
        "next": ("hour", lambda v: v + t.ONE_HOUR),
    },
    "minute": {
        "date": ("date", lambda v: v.date()),
        "hour": ("hour", lambda v: t.Hour(v.year, v.month, v.day, v.hour)),
        "year": ("int", lambda v: v.year),
        "month": ("int", lambda v: v.month),
        "day": ("int", lambda v: v.day),
        "minute": ("int", lambda v: v.minute),
        "prev": ("minute", lambda v: v - t.ONE_MINUTE),
        "next": ("minute", lambda v: v + t.ONE_MINUTE),
    },
}

TEMPORAL_TYPES = ("date", "hour", "minute", "interval")


def literal_type(text: str) -> str:
    """The type a temporal literal reads as when nothing else decides: 2012-06-01T13 is an hour."""
    if "T" in text:
        return "hour" if len(text) <= 13 else "minute"
    return "date" if len(text) == 10 else "interval"


@dataclass
class Compiled:
    """A checked expression: a function of the environment (variable name -> value) and its type."""

    fn: Callable
    type: str
    constant: bool = False
    span: Optional[n.Span] = None
    relative: bool = False  # not constant, but depends on nothing but the build's clock (today)
    text: Optional[str] = None  # a literal as written, when it differs from str(value) (0999)
    variable: Optional[str] = None  # the name, when the expression only reads a variable
    passes: Optional[tuple] = None  # (rule, variable) for a one-parameter call given a variable as it is: top10(m)


def _relative(*parts: Compiled) -> bool:
    """Whether a value made of `parts` depends on the clock and on nothing else that varies."""
    return any(p.relative for p in parts) and all(p.relative or p.constant for p in parts)


# Names that read the build's clock, with their types: the Flowfile's today, the day before, the hour now.
CLOCK_NAMES = {
    "today": ("date", lambda env: _clock(env, t.TODAY)),
    "yesterday": ("date", lambda env: _clock(env, t.TODAY) - t.ONE_DAY),
    "now": ("hour", lambda env: _clock(env, t.NOW)),
}


class NoClock(LookupError):
    """An expression read today, but whoever built the graph gave no clock."""


# The environment key (never a Flowfile name) under which a limit on the requirements of one task is passed.
REQUIREMENTS_LIMIT = "\0requirements limit"


class TooManyRequirements(Exception):
    """One task's requirements passed the limit under REQUIREMENTS_LIMIT; `count` is how many were known."""

    def __init__(self, count: int):
        super().__init__(count)
        self.count = count


def _clock(env, key):
    value = env.get(key)
    if value is None:
        raise NoClock(key)
    return value


# A requirement before it becomes a Task is a plain tuple (rule name, values in parameter order):
# a backfill makes one per task, and a tuple subclass costs twice as much to build.


class Scope:
    """What names mean where an expression is compiled: parameters, loop variables, ranges, rules."""

    def __init__(self, variables: dict, ranges: dict, rules: dict, errors: list):
        self.variables = variables  # name -> type
        self.ranges = ranges  # name -> Compiled (constant list)
        self.rules = rules  # name -> nodes.Rule
        self.errors: list[Diagnostic] = errors

    def with_variable(self, name: str, type_name: str) -> "Scope":
        variables = dict(self.variables)
        variables[name] = type_name
        return Scope(variables, self.ranges, self.rules, self.errors)


def _bad(scope: Scope, code: str, message: str, span, hint=None) -> Compiled:
    scope.errors.append(error(code, message, span, hint))
    return Compiled(lambda env: None, "error", span=span)


def _const(value, type_name, span) -> Compiled:
    return Compiled(lambda env: value, type_name, True, span)


def compile_expr(expr, scope: Scope) -> Compiled:
    """Compile one expression; problems are appended to scope.errors and give type 'error'."""
    method = _COMPILERS.get(type(expr))
    if method is None:
        return _bad(scope, "E107", "this expression is not allowed here", getattr(expr, "span", None))
    return method(expr, scope)


def _literal(expr: n.Literal, scope: Scope) -> Compiled:
    if expr.kind == "temporal":
        return Compiled(lambda env, v=expr.value: v, "temporal", True, expr.span)
    if expr.text is not None:
        return Compiled(lambda env, v=expr.value: v, expr.kind, True, expr.span, text=expr.text)
    return _const(expr.value, expr.kind, expr.span)


def _name(expr: n.Name, scope: Scope) -> Compiled:
    name = expr.name
    if name in scope.variables:
        return Compiled(lambda env: env[name], scope.variables[name], False, expr.span, variable=name)
    if name in scope.ranges:
        compiled = scope.ranges[name]
        return Compiled(compiled.fn, compiled.type, not compiled.relative, expr.span, compiled.relative)
    if name in CLOCK_NAMES:
        type_name, fn = CLOCK_NAMES[name]
        return Compiled(fn, type_name, False, expr.span, True)
    candidates = list(scope.variables) + list(scope.ranges)
    if name in scope.rules:
        return _bad(scope, "E103", f"'{name}' is a rule; call it: {name}(...)", expr.span)
    guess = suggest(name, candidates)
    return _bad(
        scope, "E103", f"unknown name '{name}'" + guess, expr.span,
        hint=None if guess or not candidates else "names in scope: " + ", ".join(sorted(candidates)),
    )


def coerce(compiled: Compiled, expected: str, scope: Scope, what: str) -> Compiled:
    """Check that `compiled` fits `expected`, converting literals (2012-06 -> interval, 2012 -> year)."""
    actual = compiled.type
    if actual == expected or actual == "error" or expected == "any":
        return compiled
    if compiled.constant and expected in TEMPORAL_TYPES and actual in ("temporal", "str", "int"):
        text = compiled.text if compiled.text is not None else str(compiled.fn({}))
        try:
            value = t.parse_value(expected, text)
        except t.TypeError_ as exc:
            return _bad(scope, "E108", f"{what}: {exc}", compiled.span)
        except OverflowError:
            return _bad(scope, "E108", f"{what}: '{text}' is out of the range of dates", compiled.span)
        return _const(value, expected, compiled.span)
    if compiled.constant and expected == "str" and actual == "temporal":
        return Compiled(compiled.fn, "str", True, compiled.span)
    if expected.startswith(LIST) and actual.startswith(LIST):
        inner_expected = expected[len(LIST):]
        inner_actual = actual[len(LIST):]
        if inner_actual == inner_expected:
            return compiled
    return _bad(scope, "E107", f"{what} must be {_describe(expected)}, not {_describe(actual)}", compiled.span)


def _describe(type_name: str) -> str:
    if type_name == LIST + "any":
        return "an empty list"
    if type_name.startswith(LIST):
        return f"a list of {type_name[len(LIST):]}s"
    if type_name == "temporal":
        return "a date or interval literal"
    if type_name == "task":
        return "a rule call"
    article = "an" if type_name[0] in "aeiou" else "a"
    return f"{article} {type_name}"


def _attribute(expr: n.Attribute, scope: Scope) -> Compiled:
    base = compile_expr(expr.value, scope)
    base_type = base.type
    if base_type == "temporal":
        # 2012-06.start: read the literal as an interval (or date) first
        text = str(base.fn({}))
        as_type = literal_type(text)
        if as_type == "date" and expr.attr not in ATTRIBUTES["date"]:
            as_type = "interval"  # 2012-06-01.end: the day as an interval
        base = coerce(base, as_type, scope, "value")
        base_type = base.type
    if base_type == "error":
        return base
    attributes = ATTRIBUTES.get(base_type, {})
    if expr.attr not in attributes:
        known = ", ".join(sorted(attributes)) or "none"
        return _bad(
            scope, "E109", f"{_describe(base_type)} has no attribute '{expr.attr}'" + suggest(expr.attr, attributes),
            expr.span, hint=f"attributes: {known}",
        )
    result_type, getter = attributes[expr.attr]
    base_fn = base.fn
    return Compiled(lambda env: getter(base_fn(env)), result_type, base.constant, expr.span, base.relative)


def _binop(expr: n.BinOp, scope: Scope) -> Compiled:
    left = compile_expr(expr.left, scope)
    right = compile_expr(expr.right, scope)
    compiled = _binop_typed(expr, scope, left, right)
    compiled.relative = _relative(left, right)
    return compiled


def _binop_typed(expr: n.BinOp, scope: Scope, left: Compiled, right: Compiled) -> Compiled:
    if "error" in (left.type, right.type):
        return Compiled(lambda env: None, "error", span=expr.span)
    op = expr.op
    # a literal on one side takes the type of the other side (day == 2012-06-01)
    if left.type == "temporal" and right.type == "int" and op in ("+", "-"):
        # 2012-06-01 + 3 is a date; 2012-06 + 1 an interval; 2012-06-01T13 - 1 an hour
        left = coerce(left, literal_type(str(left.fn({}))), scope, "operand")
    if left.type == "temporal" and right.type in TEMPORAL_TYPES:
        left = coerce(left, right.type, scope, "operand")
    if right.type == "temporal" and left.type in TEMPORAL_TYPES:
        right = coerce(right, left.type, scope, "operand")
    lf, rf = left.fn, right.fn
    constant = left.constant and right.constant
    if op in ("and", "or"):
        for side in (left, right):
            coerce(side, "bool", scope, f"an operand of '{op}'")
        fn = (lambda env: lf(env) and rf(env)) if op == "and" else (lambda env: lf(env) or rf(env))
        return Compiled(fn, "bool", constant, expr.span)
    if op in ("+", "-"):
        kinds = (left.type, right.type)
        if left.type in STEP and right.type == "int":
            step = STEP[left.type] if op == "+" else -STEP[left.type]
            return Compiled(lambda env: lf(env) + step * rf(env), left.type, constant, expr.span)
        if left.type in STEP and right.type == left.type and op == "-":
            step = STEP[left.type]
            return Compiled(lambda env: (lf(env) - rf(env)) // step, "int", constant, expr.span)
        if kinds == ("interval", "int"):
            sign = 1 if op == "+" else -1
            return Compiled(lambda env: t.shift(lf(env), sign * rf(env)), "interval", constant, expr.span)
        if kinds == ("int", "int"):
            fn = (lambda env: lf(env) + rf(env)) if op == "+" else (lambda env: lf(env) - rf(env))
            return Compiled(fn, "int", constant, expr.span)
        if kinds == ("str", "str") and op == "+":
            return Compiled(lambda env: lf(env) + rf(env), "str", constant, expr.span)
        return _bad(scope, "E107", f"cannot apply '{op}' to {_describe(left.type)} and {_describe(right.type)}",
                    expr.span, hint="dates, hours and intervals take whole numbers of steps: day - 1, hour + 2")
    # comparisons
    if left.type != right.type:
        return _bad(scope, "E107", f"cannot compare {_describe(left.type)} with {_describe(right.type)}", expr.span)
    if op in ("<", "<=", ">", ">=") and left.type in ("bool", "task") or left.type.startswith(LIST):
        return _bad(scope, "E107", f"cannot order {_describe(left.type)} values with '{op}'", expr.span)
    import operator

    function = {
        "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    }[op]
    return Compiled(lambda env: function(lf(env), rf(env)), "bool", constant, expr.span)


def _not(expr: n.Not, scope: Scope) -> Compiled:
    value = coerce(compile_expr(expr.value, scope), "bool", scope, "the operand of 'not'")
    fn = value.fn
    return Compiled(lambda env: not fn(env), "bool", value.constant, expr.span)


def _conditional(expr: n.Conditional, scope: Scope) -> Compiled:
    condition = coerce(compile_expr(expr.condition, scope), "bool", scope, "a condition")
    then = compile_expr(expr.then, scope)
    otherwise = compile_expr(expr.otherwise, scope)
    result_type = then.type
    branches = {then.type, otherwise.type}
    # [] (a list of "any") is an empty list of requirements: `a(day - 1) if day > start else []`
    if branches <= {"task", LIST + "task", LIST + "any"} and branches & {"task", LIST + "task"}:
        # requirement branches: normalise both to lists of requirements
        then, otherwise = _as_requirements(then), _as_requirements(otherwise)
        result_type = LIST + "task"
    elif "error" not in (then.type, otherwise.type) and then.type != otherwise.type:
        otherwise = coerce(otherwise, then.type, scope, "the 'else' branch")
    cf, tf, of = condition.fn, then.fn, otherwise.fn
    return Compiled(lambda env: tf(env) if cf(env) else of(env), result_type, False, expr.span)


def _as_requirements(compiled: Compiled) -> Compiled:
    if compiled.type == "task":
        fn = compiled.fn
        return Compiled(lambda env: [fn(env)], LIST + "task", compiled.constant, compiled.span)
    return compiled


def _iterable(expr, scope: Scope) -> tuple[Compiled, str]:
    compiled = compile_expr(expr, scope)
    if compiled.type == "temporal":
        compiled = coerce(compiled, "interval", scope, "the thing iterated over")
    if compiled.type == "interval":
        fn = compiled.fn
        # the interval itself: it iterates over its days and says how many without making them
        return Compiled(fn, LIST + "date", compiled.constant, compiled.span), "date"
    if compiled.type.startswith(LIST):
        return compiled, compiled.type[len(LIST):]
    if compiled.type != "error":
        _bad(scope, "E111", f"cannot iterate over {_describe(compiled.type)}", compiled.span,
             hint="iterate over an interval (its days), a range, or days()/weeks()/months()/years()")
    return compiled, "error"


def _comprehension(expr: n.Comprehension, scope: Scope) -> Compiled:
    iterable, item_type = _iterable(expr.iterable, scope)
    inner = scope.with_variable(expr.var, item_type)
    element = compile_expr(expr.element, inner)
    condition = coerce(compile_expr(expr.condition, inner), "bool", inner, "a filter") if expr.condition else None
    var = expr.var
    it_fn, el_fn = iterable.fn, element.fn
    flatten = element.type.startswith(LIST)
    result_type = element.type if flatten else LIST + element.type
    cond_fn = condition.fn if condition else None
    # Requirements are counted against the caller's limit (graph.TaskFactory.max_requirements) while
    # they are made, so that a typo's millions of them are refused before they take the memory.
    counted = element.type in ("task", LIST + "task")
    # `top10(m) for m in months`: each requirement is (rule, (item,)), made without an environment
    # per item (a target of 30,830 months at every command; the 938,000 days of a 1M graph's aggregates)
    passes = element.passes
    direct = passes[0] if passes is not None and passes[1] == var and cond_fn is None else None

    def run(env):
        items = it_fn(env)
        if items is None:
            return []
        limit = env.get(REQUIREMENTS_LIMIT) if counted else None
        if limit is None:
            limit = sys.maxsize
        elif cond_fn is None and not flatten and len(items) > limit:  # one requirement per item: known now
            raise TooManyRequirements(len(items))
        if direct is not None:
            return [(direct, (item,)) for item in items]
        local = dict(env)
        out = []
        add = out.extend if flatten else out.append
        for item in items:
            local[var] = item
            if cond_fn is not None and not cond_fn(local):
                continue
            add(el_fn(local))
            if len(out) > limit:
                raise TooManyRequirements(len(out))
        return out

    return Compiled(run, result_type, False, expr.span)


def _list(expr: n.ListExpr, scope: Scope) -> Compiled:
    items = [compile_expr(item, scope) for item in expr.items]
    if not items:
        return _const([], LIST + "any", expr.span)
    types = {i.type for i in items if i.type != "error"}
    if types <= {"task", LIST + "task"}:
        fns = [(_as_requirements(i).fn) for i in items]
        return Compiled(lambda env: [r for f in fns for r in f(env)], LIST + "task", False, expr.span)
    first = items[0].type
    items = [coerce(i, first, scope, "a list item") for i in items]
    fns = [i.fn for i in items]
    return Compiled(lambda env: [f(env) for f in fns], LIST + first, all(i.constant for i in items), expr.span)


def _span_range(expr: n.SpanRange, scope: Scope) -> Compiled:
    return _bad(scope, "E107", "a '..' range is only allowed inside days(), weeks(), months() or years()", expr.span)


def _call(expr: n.FuncCall, scope: Scope) -> Compiled:
    if expr.func in BUILTINS and expr.func not in scope.rules:
        return _builtin(expr, scope)
    rule = scope.rules.get(expr.func)
    if rule is None:
        known = list(scope.rules) + list(BUILTINS)
        return _bad(scope, "E102", f"unknown rule '{expr.func}'" + suggest(expr.func, known),
                    expr.name_span)
    return compile_call(rule, expr, scope)


def compile_call(rule: n.Rule, expr: n.FuncCall, scope: Scope) -> Compiled:
    """A requirement on another rule: check arity and types, fill defaults, return a maker of (rule name, values)."""
    params = rule.params
    if len(expr.args) > len(params):
        return _bad(scope, "E105", f"'{rule.name}' takes {len(params)} argument{'s' * (len(params) != 1)}, "
                    f"{len(expr.args)} given", expr.span, hint=_signature(rule))
    slots: list = [None] * len(params)
    for index, arg in enumerate(expr.args):
        param = params[index]
        slots[index] = coerce(compile_expr(arg, scope), _known(param.type), scope,
                              f"argument '{param.name}' of '{rule.name}'")
    by_name = {p.name: i for i, p in enumerate(params)}
    misnamed = False
    for name, value, span in expr.kwargs:
        index = by_name.get(name)
        if index is None:
            misnamed = True  # then a missing argument is most likely this one, misspelled: say it once
            _bad(scope, "E106", f"'{rule.name}' has no parameter '{name}'" + suggest(name, by_name), span,
                 hint=_signature(rule))
            continue
        if slots[index] is not None:
            _bad(scope, "E106", f"argument '{name}' of '{rule.name}' given twice", span)
            continue
        slots[index] = coerce(compile_expr(value, scope), _known(params[index].type), scope,
                              f"argument '{name}' of '{rule.name}'")
    for index, param in enumerate(params):
        if slots[index] is None:
            if param.default is None and not param.significant:
                # already reported where the parameter is declared (E208)
                slots[index] = Compiled(lambda env: None, "error", span=expr.span)
                continue
            if param.default is None and misnamed:
                return Compiled(lambda env: None, "error", span=expr.span)
            if param.default is None:
                return _bad(scope, "E105", f"'{rule.name}' needs a value for '{param.name}'", expr.span,
                            hint=_signature(rule))
            # the default was checked where the parameter is declared; do not report it again
            slots[index] = coerce(compile_expr(param.default, Scope({}, scope.ranges, scope.rules, [])),
                                  _known(param.type), Scope({}, scope.ranges, scope.rules, []),
                                  f"the default of '{param.name}'")
    fns = tuple(s.fn for s in slots)
    name = rule.name
    if len(fns) == 1:
        only = fns[0]
        passed = slots[0].variable  # None when the argument was converted or computed
        return Compiled(lambda env: (name, (only(env),)), "task", False, expr.span,
                        passes=(name, passed) if passed is not None else None)
    return Compiled(lambda env: (name, tuple([f(env) for f in fns])), "task", False, expr.span)


def _known(type_name: str) -> str:
    # an unknown parameter type is reported where it is declared (E104); accept any argument here
    return type_name if type_name in t.TYPE_NAMES else "any"


def _signature(rule: n.Rule) -> str:
    parts = []
    for p in rule.params:
        part = f"{p.name}: {p.type}"
        if p.default is not None:
            part += " = ..."
        parts.append(part)
    return f"{rule.name}({', '.join(parts)})"


def _builtin(expr: n.FuncCall, scope: Scope) -> Compiled:
    """days/weeks/months/years/hours/minutes of `a .. b` (both included) or of a period (those starting in it)."""
    kind = KIND_OF_BUILTIN[expr.func]
    item_type = _ITEM_TYPE.get(kind, "interval")
    result_type = LIST + item_type
    if len(expr.args) != 1 or expr.kwargs:
        return _bad(scope, "E105", f"{expr.func}() takes one argument: a range 'a .. b' or an interval", expr.span)
    arg = expr.args[0]
    if isinstance(arg, n.SpanRange):
        first = _bound(arg.first, kind, item_type, scope, f"the start of {expr.func}()")
        last = _bound(arg.last, kind, item_type, scope, f"the end of {expr.func}()")
        ff, lf = first.fn, last.fn
        between = _BETWEEN.get(kind)
        if between is not None:
            fn = lambda env: between(ff(env), lf(env))  # noqa: E731
        else:
            fn = lambda env: t.intervals_between(kind, ff(env), lf(env))  # noqa: E731
        compiled = Compiled(fn, result_type, first.constant and last.constant, expr.span)
        if _relative(first, last):
            return _closed_only(compiled, expr, arg, scope)
        if compiled.constant and "error" not in (first.type, last.type):
            try:
                empty = ff({}) > lf({})
            except (OverflowError, ValueError):
                return _bad(scope, "E108", f"{expr.func}() range goes outside the dates flow can count "
                            "(years 1 to 9999)", arg.span)
            if empty:
                return _bad(scope, "E108", f"{expr.func}() range is empty: its start is after its end", arg.span)
        return compiled
    inner = compile_expr(arg, scope)
    if kind in ("hour", "minute"):
        # the hours of a day, of an interval (and the minutes of an hour)
        allowed = ("date", "interval", "hour") if kind == "minute" else ("date", "interval")
        if inner.constant and inner.type in ("temporal", "int", "str"):  # 2012-06, 2012, 2012-06-01T13
            text = str(inner.fn({}))
            inner = coerce(inner, "hour" if "T" in text and kind == "minute" else "interval", scope,
                           f"the argument of {expr.func}()")
        elif inner.type not in allowed + ("error",):
            return _bad(scope, "E107", f"the argument of {expr.func}() must be "
                        + " or ".join(_describe(a) for a in allowed) + f", not {_describe(inner.type)}", inner.span)
        within = t.hours_within if kind == "hour" else t.minutes_within
        fn = inner.fn
        return Compiled(lambda env: within(fn(env)), result_type, inner.constant, expr.span, inner.relative)
    inner = coerce(inner, "interval", scope, f"the argument of {expr.func}()")
    fn = inner.fn
    if kind == "day":
        return Compiled(lambda env: fn(env).days, result_type, inner.constant, expr.span, inner.relative)
    return Compiled(lambda env: t.intervals_within(kind, fn(env)), result_type, inner.constant, expr.span,
                    inner.relative)


# Build dates a range relative to today is tried on at compile time: one that is empty on every one
# of them (month and year ends, a leap day, a Monday and a Sunday) is empty on any day.
_SAMPLE_TODAYS = tuple(_dt.date(*ymd) for ymd in (
    (2012, 1, 1), (2012, 2, 29), (2012, 3, 1), (2012, 6, 4), (2012, 6, 10), (2012, 6, 30), (2012, 12, 31),
    (2013, 1, 15), (2013, 7, 31)))


def _closed_only(compiled: Compiled, expr: n.FuncCall, arg: n.SpanRange, scope: Scope) -> Compiled:
    """A range relative to today: it stops at the last period closed by the build's clock."""
    fn = compiled.fn

    def closed(env):
        moment = env.get(t.MOMENT)
        return t.closed_prefix(fn(env), moment) if moment is not None else fn(env)

    try:
        empty = all(not closed(t.Clock.at_midnight(day).env()) for day in _SAMPLE_TODAYS)
    except (OverflowError, ValueError, TypeError):
        empty = False
    if empty:
        return _bad(scope, "E108", f"{expr.func}() range is empty whatever the build's date: its start is after "
                    "its end, or it ends in a period that is never closed", arg.span,
                    hint="a range relative to today keeps only periods that have ended: days(today - 7 .. yesterday)")
    return Compiled(closed, compiled.type, False, compiled.span, True)


_ITEM_TYPE = {"day": "date", "hour": "hour", "minute": "minute"}
_BETWEEN = {"day": t.days_between, "hour": t.hours_between, "minute": t.minutes_between}


def _bound(expr, kind: str, bound_type: str, scope: Scope, what: str) -> Compiled:
    """One end of `a .. b`; a date where intervals are counted stands for the interval holding it."""
    compiled = compile_expr(expr, scope)
    if bound_type == "interval" and compiled.type == "date":
        fn = compiled.fn
        return Compiled(lambda env: t.interval_containing(kind, fn(env)), "interval", compiled.constant,
                        compiled.span, compiled.relative)
    return coerce(compiled, bound_type, scope, what)


_COMPILERS = {
    n.Literal: _literal,
    n.Name: _name,
    n.Attribute: _attribute,
    n.BinOp: _binop,
    n.Not: _not,
    n.Conditional: _conditional,
    n.Comprehension: _comprehension,
    n.ListExpr: _list,
    n.SpanRange: _span_range,
    n.FuncCall: _call,
}


def compile_requirements(exprs, scope: Scope) -> Callable:
    """Compile a requires list into one function: environment -> list of (rule name, values)."""
    parts = []
    for expr in exprs:
        compiled = compile_expr(expr, scope)
        if compiled.type == "task":
            fn = compiled.fn
            parts.append((False, fn))
        elif compiled.type == LIST + "task" or compiled.type == LIST + "any":
            parts.append((True, compiled.fn))
        elif compiled.type not in ("error", LIST + "error"):
            _bad(scope, "E107", f"a requirement must be a rule call, not {_describe(compiled.type)}", compiled.span)
    if len(parts) == 1:
        many, fn = parts[0]
        if many:
            return fn
        return lambda env: [fn(env)]

    def run(env):
        out = []
        for many, fn in parts:
            if many:
                out.extend(fn(env))
            else:
                out.append(fn(env))
        return out

    return run
