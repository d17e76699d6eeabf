"""Run `command:` and `shell:` tasks on threads of the main process: each thread only waits for its program."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from . import targets
from .actions.base import ActionContext, ActionFailed, user_traceback

PROGRAM_ACTIONS = ("command", "shell")  # the action kinds this lane runs


class CommandLane:
    """A thread pool for program tasks. A program needs no Python worker: a thread starts it and waits."""

    def __init__(self, jobs: int):
        from .actions import command

        self._command = command
        self.flowfile_dir = os.getcwd()  # the build runs in the Flowfile's directory
        self._threads = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="flow-command")

    def submit(self, seq, task, inputs, temp, log_path, timeout, done) -> None:
        self._threads.submit(self._run, seq, task, inputs, temp, log_path, timeout, done)

    def _run(self, seq, task, inputs, temp, log_path, timeout, done) -> None:
        action = task.info.node.action
        kind = task.info.output.kind
        started = time.perf_counter()
        ctx = ActionContext(task.id, task.name, task.params, inputs, temp, task.id, self.flowfile_dir,
                            {"output_kind": kind})
        error = None
        try:
            targets.prepare(task.output)
            self._command.run_program(ctx, action, log_path, timeout)
            targets.commit(temp, task.output, kind)
        except ActionFailed as exc:
            error = str(exc)
        except BaseException as exc:  # flow's own bug, or the disk: say it in one line, the traceback in the log
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            os.makedirs(os.path.dirname(log_path), exist_ok=True)
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(user_traceback(exc))
        if error is not None:
            targets.remove_path(temp)
        has_log = os.path.exists(log_path)
        # the error already holds the last lines of standard error: no second copy from the log
        done((seq, error is None, error, log_path if has_log else None, None, time.perf_counter() - started))

    def cancel(self, task, reason: str = "timed out or interrupted") -> None:
        """Stop a task's program and every process it started."""
        self._command.cancel(task.id, reason)

    def close(self) -> None:
        self._command.cancel_all("the build is stopping")
        self._threads.shutdown(wait=True, cancel_futures=True)
