"""A test's own module of actions, importable under a name no other test has used in this process."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager


@contextmanager
def action_module(tmp_path, monkeypatch, source: str, prefix: str):
    """Write `source` as a module beside the test's project, run there, and yield (directory, module name).

    The name is new for every test (the process imports each one once), and the module is forgotten after.
    """
    module = f"{prefix}_{os.getpid()}_{len(os.listdir(tmp_path))}"
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield tmp_path, module
    finally:
        sys.modules.pop(module, None)
