"""Read a Flowfile from disk and run it through parser and checks: the compiler's front door."""

from __future__ import annotations

import hashlib
import os
import pickle
import stat

from .checks import CheckedFlowfile, check
from .errors import Diagnostic, UsageError, error
from .nodes import Span

_HERE = os.path.dirname(os.path.abspath(__file__))
# A change to any of these makes every cached parse stale.
_PARSER_FILES = ("flowfile.lark", "parser.py", "nodes.py")


def load(path: str = "Flowfile") -> CheckedFlowfile:
    """Parse and check the Flowfile at `path`; raise a FlowError (exit code 2) on any problem."""
    text = read_flowfile(path)
    display = display_path(path)
    return check(parse_cached(text, display), text)


def read_flowfile(path: str, hint: str = "run flow where your Flowfile is, or pass -f PATH") -> str:
    """The Flowfile's text. UsageError when it is missing or not a regular file (a FIFO would block
    forever), or not UTF-8 (then at Flowfile:L:C)."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise UsageError(Diagnostic("error", "E000", f"no Flowfile at '{path}'", None, hint)) from None
    except OSError as exc:
        raise UsageError(f"cannot read '{path}': {(exc.strerror or str(exc)).lower()}") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise UsageError(f"cannot read '{path}': it is a directory")
        if not stat.S_ISREG(mode):
            raise UsageError(f"cannot read '{path}': it is not a regular file")
        chunks = []
        while True:
            chunk = os.read(descriptor, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise UsageError(f"cannot read '{path}': {(exc.strerror or str(exc)).lower()}") from None
    finally:
        os.close(descriptor)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(_not_utf8(display_path(path), data, exc)) from None


def _not_utf8(display: str, data: bytes, exc: UnicodeDecodeError) -> Diagnostic:
    line = data.count(b"\n", 0, exc.start) + 1
    line_start = data.rfind(b"\n", 0, exc.start) + 1
    column = len(data[line_start:exc.start].decode("utf-8", "replace")) + 1
    return error("E010", f"the Flowfile is not UTF-8 text: {exc.reason} 0x{data[exc.start]:02x}",
                 Span(display, line, column, line, column + 1), hint="save the file as UTF-8")


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
    """Write the cache entry whole or not at all: pickle to memory, write a temporary, rename it."""
    try:
        data = pickle.dumps(flowfile, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - a cache is an optimisation: never fail a build for it
        return
    temp = None
    try:
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        temp = f"{cache_file}.{os.getpid()}.tmp"
        with open(temp, "wb") as handle:
            handle.write(data)
        os.replace(temp, cache_file)
        temp = None
    except OSError:
        pass  # a read-only home or a full disk is no reason to fail a build
    finally:
        if temp is not None:
            try:
                os.unlink(temp)
            except OSError:
                pass


def display_path(path: str) -> str:
    # diagnostics name the file as the user would type it
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else path
