"""Kill every process that carries one build's mark once the build's main process closes our standard input or dies.

Run by runtime/processes.py as `python -S -E watchdog.py NAME=TOKEN PROGRAM`, in a session of its
own, with the write end of a pipe held by flow's main process as standard input. End of file on
that pipe means the build is over or its main process died (even by SIGKILL): either way, every
process whose environment holds NAME=TOKEN (the programs of command and spark-submit actions and
all they started, daemons that called setsid included) is killed. A line N before that kills the
marked processes whose PROGRAM variable is N: what one stopped program (a timeout) left behind.
Standard library only, so it starts fast.
"""

import os
import signal
import sys
import time

# Killed processes leave /proc (or lose their environment) within moments; a process that keeps
# forking marked children is not something an action does by accident.
DEADLINE = 30.0


def marked(*marks: bytes) -> list:
    """The pids of live processes whose environment holds every one of `marks` exactly (readable ones: our user's)."""
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                environment = handle.read()
        except OSError:  # gone, or another user's
            continue
        entries = environment.split(b"\0")
        if all(mark in entries for mark in marks):
            found.append(int(name))
    return found


def kill_marked(*marks: bytes) -> int:
    """SIGKILL the processes that carry every one of `marks` until none is left (or DEADLINE passes).

    Returns how many were found.
    """
    killed = set()
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        pids = marked(*marks)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        killed.update(pids)
        time.sleep(0.01)  # a killed process keeps its environment until it has exited
    return len(killed)


def main() -> None:
    mark, program = sys.argv[1].encode(), sys.argv[2].encode()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    for line in sys.stdin.buffer:  # a stopped program's number, until the end of the build
        number = line.strip()
        if number.isdigit():
            kill_marked(mark, program + b"=" + number)
    kill_marked(mark)


if __name__ == "__main__":
    main()
