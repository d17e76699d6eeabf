"""Turn what a user typed (a file name, a path, a named target, a call) into root tasks."""

from __future__ import annotations

import os
import re

from . import types as t
from .errors import Diagnostic, UsageError, suggestion
from .graph import Task, TaskFactory

_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$", re.S)


def resolve(factory: TaskFactory, name: str) -> list:
    """Resolve one requested target into tasks, or raise UsageError saying what is wrong."""
    flowfile = factory.flowfile
    if name in flowfile.targets:
        return factory.target(name)
    call = _CALL.match(name)
    if call:
        return [_resolve_call(factory, call.group(1), call.group(2))]
    if name in flowfile.rules:
        info = flowfile.rules[name]
        if all(d is not None for d in info.defaults):
            return [factory.from_params(name, {})]
        raise UsageError(_usage(f"rule '{name}' needs parameters",
                                f"ask for one of its outputs or call it: {name}(...)"))
    return [_resolve_path(factory, name)]


def _usage(message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic("error", "E901", message, None, hint)


def _resolve_path(factory: TaskFactory, name: str) -> Task:
    # a URL stays as typed: normpath would fold 's3://bucket' into 's3:/bucket'
    location = os.path.normpath(name) if name not in ("", ".") and "://" not in name else name
    if location.startswith("./"):
        location = location[2:]
    exact, by_name, bad_values = [], [], []
    for rule_name, info in factory.flowfile.rules.items():
        output = info.output
        if output is None or output.regex_source is None:
            continue
        for read, bucket in ((output.read, exact), (output.read_name, by_name)):
            try:
                params = read(location)
            except ValueError as exc:  # TypeError_ included
                bad_values.append((rule_name, str(exc)))
                continue
            if params is not None:
                bucket.append((rule_name, params))
                break
    found = exact or by_name
    if len(found) > 1:
        names = " and ".join(f"'{rule}'" for rule, _ in found)
        raise UsageError(_usage(f"'{name}' matches the outputs of {names}",
                                "give the full path, or ask by rule: rule(args)"))
    if found:
        rule_name, params = found[0]
        return factory.from_params(rule_name, params)
    if bad_values:
        rule_name, message = bad_values[0]
        raise UsageError(_usage(f"'{name}' looks like an output of '{rule_name}' but {message}"))
    candidates = list(factory.flowfile.targets) + list(factory.flowfile.rules)
    hint = suggestion(name, candidates) or "run 'flow list' to see rules, targets and output patterns"
    raise UsageError(_usage(f"'{name}' is not a target, a rule or the output of any rule", hint))


def _split_args(text: str) -> list:
    parts, current, quote = [], "", None
    for char in text:
        if quote:
            current += char
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
            current += char
        elif char == ",":
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def _resolve_call(factory: TaskFactory, rule_name: str, args: str) -> Task:
    info = factory.flowfile.rules.get(rule_name)
    if info is None:
        raise UsageError(_usage(f"unknown rule '{rule_name}'", suggestion(rule_name, factory.flowfile.rules)))
    params: dict = {}
    signature = f"{rule_name}(" + ", ".join(f"{n}: {ty}" for n, ty in zip(info.param_names, info.param_types)) + ")"
    for index, arg in enumerate(_split_args(args)):
        key, eq, value = arg.partition("=")
        if eq and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            key = key.strip()
            if key not in info.param_names:
                raise UsageError(_usage(f"'{rule_name}' has no parameter '{key}'", signature))
        else:
            if index >= len(info.param_names):
                raise UsageError(_usage(f"'{rule_name}' takes {len(info.param_names)} arguments", signature))
            key, value = info.param_names[index], arg
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        type_name = info.param_types[info.param_names.index(key)]
        try:
            params[key] = t.parse_value(type_name, value)
        except t.TypeError_ as exc:
            raise UsageError(_usage(f"argument '{key}' of '{rule_name}': {exc}", signature)) from None
    for key, default in zip(info.param_names, info.defaults):
        if key not in params and default is None:
            raise UsageError(_usage(f"'{rule_name}' needs a value for '{key}'", signature))
    return factory.from_params(rule_name, params)
