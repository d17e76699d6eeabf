"""Keep the processes a build starts from outliving it: parent-death signals, subreapers, killing what is left.

Linux gives a process two tools (prctl, through ctypes; elsewhere these calls do nothing):

- PR_SET_PDEATHSIG: the kernel signals a worker when the process that forked it dies, even by
  SIGKILL, so a worker never waits forever on a pipe nobody will write to.
- PR_SET_CHILD_SUBREAPER: a process whose child dies inherits that child's orphans instead of
  init. A worker that is a subreaper sees every process an action started, even one that called
  setsid() to leave the worker's process group, and can kill them all.

Programs (command and spark-submit actions) run on threads of the main process, which no parent
watches: each gets a mark in its environment (`FLOW_BUILD=TOKEN`, inherited by all it starts),
and a watchdog process (runtime/watchdog.py) kills every marked process when the build ends or
its main process dies, even by SIGKILL, and even a daemon that called setsid().
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
# Killing a tree as a subreaper: each round kills our children; their own children then become
# ours. A tree deeper than this is not something an action makes by accident.
MAX_ROUNDS = 50

_libc = None

# The variables that mark a process as started by one build's programs, and by which of them (see
# program_environment).
MARK = "FLOW_BUILD"
PROGRAM_MARK = "FLOW_BUILD_PROGRAM"
WATCHDOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "watchdog.py")
_watchdog = None  # (the watchdog's Popen, the mark) while this build has started programs
_watchdog_lock = threading.Lock()
_programs = 0  # programs started in this build: each gets its number in PROGRAM_MARK


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


def program_environment() -> dict:
    """What to add to a program's environment so that it and all it starts end with the build (or with
    end_program, when it is stopped).

    Starts the build's watchdog with the first program: one process per build, none for a build
    that runs no program.
    """
    global _watchdog, _programs
    if not sys.platform.startswith("linux"):
        return {}  # the watchdog finds marked processes in /proc
    with _watchdog_lock:
        if _watchdog is None:
            mark = f"{MARK}={os.getpid()}-{os.urandom(8).hex()}"
            process = subprocess.Popen([sys.executable, "-S", "-E", WATCHDOG, mark, PROGRAM_MARK],
                                       stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       cwd="/", start_new_session=True)  # Ctrl-C at the terminal must not reach it
            _watchdog = (process, mark)
        _programs += 1
        name, value = _watchdog[1].split("=", 1)
        return {name: value, PROGRAM_MARK: str(_programs)}


def end_program(environment: dict) -> None:
    """Kill, in a moment, what a stopped program (a timeout, Ctrl-C) left running outside its process group.

    `environment` is what program_environment gave it: the watchdog kills the processes marked
    with its number, daemons that called setsid included.
    """
    number = environment.get(PROGRAM_MARK)
    with _watchdog_lock:
        if _watchdog is None or number is None or _watchdog[1] != f"{MARK}={environment.get(MARK)}":
            return  # its build has ended: everything marked has been killed already
        try:
            _watchdog[0].stdin.write(f"{number}\n".encode())
            _watchdog[0].stdin.flush()
        except OSError:  # the watchdog is gone; nothing more can be done from here
            pass


def end_programs(timeout: float = 60.0) -> None:
    """Kill every process this build's programs left running (daemons too), and wait until they are gone."""
    global _watchdog
    with _watchdog_lock:
        watchdog, _watchdog = _watchdog, None
    if watchdog is None:
        return
    process = watchdog[0]
    process.stdin.close()  # the watchdog's signal: it kills what carries the mark, then exits
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _forget_watchdog_in_child() -> None:
    # A forked worker must not hold the watchdog's pipe open: its end of file is what says the main
    # process died. The worker's copy is closed; the main process's stays.
    global _watchdog, _watchdog_lock
    _watchdog_lock = threading.Lock()  # another thread may have held it at the fork
    if _watchdog is not None:
        try:
            _watchdog[0].stdin.close()
        except OSError:
            pass
        _watchdog = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_watchdog_in_child)
