"""Running the real `flow` command on a project and waiting for conditions, for the reliability suite."""

from __future__ import annotations

import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLOW = [sys.executable, "-m", "flow.runtime.cli"]


def environment(env: dict | None = None) -> dict:
    """The test's environment without the developer's PG* settings, with flow importable."""
    result = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "FLOW_DATABASE_URL"}
    result["PYTHONPATH"] = ROOT
    result.update(env or {})
    return result


def flow(directory, *args, env=None, timeout=300) -> subprocess.CompletedProcess:
    """Run `flow ARGS...` in the directory to the end."""
    return subprocess.run([*FLOW, *args], cwd=directory, env=environment(env), capture_output=True, text=True,
                          timeout=timeout)


def start_flow(directory, *args, env=None, **kwargs) -> subprocess.Popen:
    """Start `flow ARGS...` in a session of its own (so the test can signal its whole process group)."""
    return subprocess.Popen([*FLOW, *args], cwd=directory, env=environment(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs)


def wait_for(condition, what: str, timeout: float = 120.0, interval: float = 0.005):
    """Poll until condition() is truthy and return its value; fail saying what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
