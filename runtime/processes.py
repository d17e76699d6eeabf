"""Keep the processes a build starts from outliving it: parent-death signals, subreapers, killing what is left.

Linux gives a process two tools (prctl, through ctypes; elsewhere these calls do nothing):

- PR_SET_PDEATHSIG: the kernel signals a worker when the process that forked it dies, even by
  SIGKILL, so a worker never waits forever on a pipe nobody will write to.
- PR_SET_CHILD_SUBREAPER: a process whose child dies inherits that child's orphans instead of
  init. A worker that is a subreaper sees every process an action started, even one that called
  setsid() to leave the worker's process group, and can kill them all.
"""

from __future__ import annotations

import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
# Killing a tree as a subreaper: each round kills our children; their own children then become
# ours. A tree deeper than this is not something an action makes by accident.
MAX_ROUNDS = 50

_libc = None


def _prctl(option: int, value: int) -> bool:
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    try:
        if _libc is None:
            import ctypes

            _libc = ctypes.CDLL(None, use_errno=True)
        return _libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(parent_pid: int, signum: int = signal.SIGTERM) -> None:
    """Have the kernel send `signum` when the parent dies; exit now if it already has (it died before the call)."""
    _prctl(_PR_SET_PDEATHSIG, int(signum))
    if os.getppid() != parent_pid:
        os._exit(1)


def become_subreaper() -> bool:
    """Adopt the orphans of our descendants (so kill_children reaches processes that left our group)."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def children(pid: int | None = None) -> list[int]:
    """The live direct children of a process (ours by default), from /proc."""
    pid = os.getpid() if pid is None else pid
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.extend(int(child) for child in handle.read().split())
        except OSError:
            continue
    return found


def kill_children(exclude=()) -> int:
    """SIGKILL every child of this process but `exclude`, and, as a subreaper, their orphans after them.

    Reaps what it kills (a zombie child would otherwise count as alive). Returns how many it killed.
    """
    killed = 0
    exclude = set(exclude)
    for _ in range(MAX_ROUNDS):
        targets = [pid for pid in children() if pid not in exclude]
        if not targets:
            break
        for pid in targets:
            for kill in (os.killpg, os.kill):  # its whole group if it leads one, then itself
                try:
                    kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            killed += 1
        for pid in targets:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    return killed
