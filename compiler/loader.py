"""Read a Flowfile from disk and run it through parser and checks: the compiler's front door."""

from __future__ import annotations

import hashlib
import os
import pickle

from .checks import CheckedFlowfile, check
from .errors import Diagnostic, UsageError

_HERE = os.path.dirname(os.path.abspath(__file__))
# A change to any of these makes every cached parse stale.
_PARSER_FILES = ("flowfile.lark", "parser.py", "nodes.py")


def load(path: str = "Flowfile") -> CheckedFlowfile:
    """Parse and check the Flowfile at `path`; raise a FlowError (exit code 2) on any problem."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise UsageError(Diagnostic("error", "E000", f"no Flowfile at '{path}'", None,
                                    "run flow where your Flowfile is, or pass -f PATH")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read '{path}': {exc}") from None
    display = display_path(path)
    return check(parse_cached(text, display), text)


def parse_cached(text: str, path: str):
    """Parse, or reuse the nodes of an earlier parse of the same text (kept in the user's cache dir).

    Parsing costs lark's import and its lexer set-up (tens of milliseconds); a user runs the same
    Flowfile many times, and start-up is what they feel. Errors are never cached: bad input is
    parsed again, so its message is always fresh.
    """
    key = _cache_key(text, path)
    cache_file = os.path.join(_cache_dir(), f"ast-{key}.pickle") if key else None
    if cache_file:
        try:
            with open(cache_file, "rb") as handle:
                return pickle.load(handle)
        except Exception:  # missing, truncated or from another version: parse afresh
            pass
    from .parser import parse

    flowfile = parse(text, path)
    if cache_file:
        _store(cache_file, flowfile)
    return flowfile


def _cache_dir() -> str:
    base = os.environ.get("FLOW_CACHE_DIR")
    if base:
        return base
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "flow")


def _cache_key(text: str, path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        for name in _PARSER_FILES:
            stat = os.stat(os.path.join(_HERE, name))
            digest.update(f"{name}:{stat.st_mtime_ns}:{stat.st_size};".encode())
    except OSError:
        return None
    digest.update(path.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(text.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:32]


def _store(cache_file: str, flowfile) -> None:
    try:
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        temp = f"{cache_file}.{os.getpid()}.tmp"
        with open(temp, "wb") as handle:
            pickle.dump(flowfile, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temp, cache_file)
    except OSError:
        pass  # a read-only home is no reason to fail a build


def display_path(path: str) -> str:
    # diagnostics name the file as the user would type it
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else path
