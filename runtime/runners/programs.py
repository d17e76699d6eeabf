"""Run `command:` and `shell:` tasks on threads of the main process: each thread only starts its program and waits."""

from __future__ import annotations

import os

from .. import processes
from .threads import ThreadRunner


class ProgramLog:
    """The log of a program: run_program writes it; a traceback of flow's own is appended; no tail is sent
    back (the failure's message already holds the last lines of standard error)."""

    __slots__ = ("path",)

    def __init__(self, path: str):
        self.path = path

    def begin(self) -> None:
        pass

    def end(self, error, trace):
        if trace:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as log:
                log.write(trace)
        return (self.path if os.path.exists(self.path) else None), None


class ProgramLane(ThreadRunner):
    """A thread pool for program tasks. A program needs no Python worker: a thread starts it and waits."""

    name = "program"

    def __init__(self, flowfile, jobs: int, targets):
        from ..actions import command

        super().__init__(flowfile, jobs, targets, "command")
        self._command = command

    def log(self, job):
        return ProgramLog(job.log_path)

    def cancel(self, handle, task) -> list:
        """Stop a task's program and every process it started."""
        self._command.cancel(task.id, "timed out or interrupted")
        return []

    def close(self) -> None:
        self._command.cancel_all("the build is stopping")
        super().close()
        processes.end_programs()  # what its programs left running (daemons too) ends with the build
