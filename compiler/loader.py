"""Read a Flowfile from disk and run it through parser and checks: the compiler's front door."""

from __future__ import annotations

import os

from .checks import CheckedFlowfile, check
from .errors import Diagnostic, UsageError
from .parser import parse


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
    return check(parse(text, _display_path(path)), text)


def _display_path(path: str) -> str:
    # diagnostics name the file as the user would type it
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else path
