"""Processes a build starts end with it: a subreaper kills even descendants that left its process group."""

from __future__ import annotations

import subprocess
import sys

from tests.reliability.helpers import ROOT

# Run in a process of its own: pytest itself must not become a subreaper.
SCRIPT = r'''
import os, subprocess, sys, time
from flow.runtime import processes
from tests.processes import alive

assert processes.become_subreaper()
# a shell that starts a grandchild in a new session (as a daemon would) and exits at once
out = subprocess.run(["sh", "-c", "setsid sleep 300 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True)
grandchild = int(out.stdout)
deadline = time.monotonic() + 30
while grandchild not in processes.children() and time.monotonic() < deadline:
    time.sleep(0.01)  # the orphan comes to us, its subreaper, when the shell exits
assert grandchild in processes.children(), "the orphan was not adopted"
child = subprocess.Popen(["sleep", "300"])
assert processes.kill_children() == 2
assert not alive(grandchild) and not alive(child.pid) and processes.children() == []
print("ok")
'''


def test_a_subreaper_kills_its_children_and_the_orphans_that_left_its_group():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stdout + result.stderr
