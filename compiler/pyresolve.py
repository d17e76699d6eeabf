"""Find a Python action's function and its parameter names by reading source, never by importing it."""

from __future__ import annotations

import ast
import importlib.machinery
import os
import sys
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Signature:
    """What a function asks for: names it needs, names it may take, and whether **kwargs takes all."""

    required: tuple[str, ...]
    optional: tuple[str, ...]
    takes_anything: bool
    positional_only: tuple[str, ...] = ()  # required but never passed: flow passes by name


@dataclass(frozen=True)
class Lookup:
    """The answer for `module.function`: at most one of `problem` or `signature` is set.

    problem is (kind, detail): kind 'form', 'module', 'function' or 'source'. Neither set means
    the function exists but its signature cannot be known from source (a re-export, say).
    """

    problem: Optional[tuple[str, str]] = None
    signature: Optional[Signature] = None
    candidates: tuple[str, ...] = ()


def lookup(target: str, directory: str) -> Lookup:
    """Resolve `package.module.function` against `directory` (the Flowfile's) and then sys.path.

    1. Find each package and then the module with importlib's PathFinder, one dotted part at a
       time, so no package __init__ runs (importlib.util.find_spec would import the parents).
    2. Parse the module source with ast and look for the function among top-level statements.
    """
    module_name, _, function = target.rpartition(".")
    if not module_name or not function:
        return Lookup(problem=("form", target))
    origin = _find_module(module_name, directory)
    if origin is None:
        return Lookup(problem=("module", module_name))
    if origin == "":
        return Lookup()  # a built-in or namespace module: nothing to read
    try:
        with open(origin, "rb") as handle:
            tree = ast.parse(handle.read(), filename=origin)
    except (OSError, ValueError):
        return Lookup()  # a compiled module or an unreadable file: cannot tell, do not guess
    except SyntaxError as exc:
        return Lookup(problem=("source", f"{os.path.relpath(origin)}:{exc.lineno}: {exc.msg}"))
    return _find_function(tree, function)


def _find_module(name: str, directory: str) -> Optional[str]:
    """The source file of a module ('' when it exists without a readable source), or None."""
    parts = name.split(".")
    search = [os.path.abspath(directory)] + [p for p in sys.path if p != ""]
    spec = None
    for index in range(len(parts)):
        dotted = ".".join(parts[: index + 1])
        if index == 0:
            if parts[0] in sys.builtin_module_names:
                return "" if len(parts) == 1 else None
            spec = importlib.machinery.PathFinder.find_spec(dotted, search)
        else:
            locations = spec.submodule_search_locations if spec is not None else None
            if not locations:
                return ""  # a module, not a package, may make submodules when run (os.path)
            spec = importlib.machinery.PathFinder.find_spec(dotted, list(locations))
        if spec is None:
            return None
    if spec.origin in (None, "namespace") or not spec.has_location:
        return ""
    return spec.origin if spec.origin.endswith(".py") else ""


def _find_function(tree: ast.Module, name: str) -> Lookup:
    names: list[str] = []
    unknowable = False
    for node in _top_level(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name == name:
                return Lookup(signature=_signature(node.args))
            names.append(node.name)
        elif isinstance(node, ast.ClassDef):
            if node.name == name:
                return Lookup()  # a callable class: its __init__ decides, do not guess
            names.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    unknowable = True
                elif (alias.asname or alias.name.split(".")[0]) == name:
                    return Lookup()
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Name) and leaf.id == name:
                        return Lookup()  # `name = decorator(other)`: exists, signature unknown
    if unknowable or "__getattr__" in names:
        return Lookup()
    return Lookup(problem=("function", name), candidates=tuple(names))


def _top_level(body):
    """Statements at module level, looking into if/try/with blocks (conditional definitions)."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            yield from _top_level(node.body)
            yield from _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _top_level(block)
            for handler in node.handlers:
                yield from _top_level(handler.body)
        elif isinstance(node, ast.With):
            yield from _top_level(node.body)


def _signature(args: ast.arguments) -> Signature:
    # Arguments are passed by keyword, so positional-only ones and *args are never filled.
    named = list(args.args)
    defaults = [None] * (len(named) - len(args.defaults)) + list(args.defaults)
    required, optional = [], []
    for arg, default in zip(named, defaults, strict=True):
        (optional if default is not None else required).append(arg.arg)
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        (optional if default is not None else required).append(arg.arg)
    posonly_defaults = max(len(args.defaults) - len(args.args), 0)
    positional_only = [a.arg for a in args.posonlyargs][: len(args.posonlyargs) - posonly_defaults]
    return Signature(tuple(required), tuple(optional), args.kwarg is not None, tuple(positional_only))
