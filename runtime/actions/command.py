"""Run `command:` and `shell:` actions: one program in its own process group, logged, stoppable, failures explained.

1. expand the patterns: `{output}`, `{input}`, `{inputs}` and parameters (`{interval.start}`);
   a `shell:` line gets every value quoted for /bin/sh, a `command:` none (no shell reads it);
2. start the program in a new session, so that it and every child it starts form one process
   group, which Ctrl-C at the terminal does not reach (flow decides what to stop) and which a
   timeout or an interrupt kills as a whole: SIGTERM, then SIGKILL after a grace period;
3. standard output goes to the task's log (or, with `stdout: output`, to the output file);
   standard error goes to the log too, and its last lines into the failure's message.
"""

from __future__ import annotations

import collections
import os
import shlex
import signal
import subprocess
import threading
from typing import Optional

from flow.compiler import nodes as n
from flow.compiler import types as t
from flow.compiler.commands import Placeholder, settings, split
from flow.compiler.expressions import ATTRIBUTES
from flow.runtime import processes
from flow.runtime.actions.base import ActionContext, ActionFailed

SHELL = "/bin/sh"
STDERR_TAIL = 20
GRACE = 5.0  # seconds between SIGTERM and SIGKILL when a program is stopped
READER_WAIT = 5.0  # after exit, how long to wait for a child that left the group but holds stderr open


# ---------------------------------------------------------------------------- patterns -> words


def expand(pattern: str, ctx: ActionContext, quote: bool, paths=None) -> list:
    """The words a pattern becomes: one, or one per input for a `command:` argument that is exactly `{inputs}`.

    With `quote`, every substituted value is quoted for the shell (and `{inputs}` becomes quoted
    words separated by spaces) while the pattern's own text is kept as written.
    """
    parts, problems = split(pattern)
    if problems:  # the checks report these before any build: only a Flowfile that skipped them gets here
        raise ActionFailed(f"bad pattern '{pattern}': {problems[0][2]}")
    paths = paths or (lambda path: path)
    if not quote and len(parts) == 1 and isinstance(parts[0], Placeholder):
        value = _value(parts[0], ctx, paths)
        if isinstance(value, list):
            return [_text(item) for item in value]
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = _value(part, ctx, paths)
        if isinstance(value, list):
            words = [_text(item) for item in value]
            out.append(" ".join(shlex.quote(w) for w in words) if quote else ",".join(words))
        else:
            out.append(shlex.quote(_text(value)) if quote else _text(value))
    return ["".join(out)]


def _value(part: Placeholder, ctx: ActionContext, paths):
    name = part.name
    if name == "output":
        return paths(ctx.output)
    if name == "inputs":
        return [paths(path) for path in ctx.inputs]
    if name == "input":
        if len(ctx.inputs) != 1:
            raise ActionFailed(f"'{{input}}' needs exactly one input, and the task has {len(ctx.inputs)}: "
                               "use '{inputs}'")
        return paths(ctx.inputs[0])
    if name not in ctx.params:
        raise ActionFailed(f"unknown placeholder '{part.text}'")
    value = ctx.params[name]
    for attr in part.attrs:
        getter = ATTRIBUTES.get(t.type_of(value), {}).get(attr)
        if getter is None:
            raise ActionFailed(f"'{part.text}': a {t.type_of(value)} has no attribute '{attr}'")
        value = getter[1](value)
    if part.format is not None:
        return value.strftime(part.format)
    return value


def _text(value) -> str:
    return t.format_value(value)


def command_line(action, ctx: ActionContext) -> tuple[list, dict, str]:
    """(argv, environment additions, working directory) for a command: or shell: task."""
    options = settings(action)
    base = ctx.flowfile_dir or os.getcwd()
    cwd = os.path.normpath(os.path.join(base, options["cwd"])) if options.get("cwd") else base
    paths = None
    if os.path.realpath(cwd) != os.path.realpath(base):
        # outputs and inputs are named relative to the Flowfile: elsewhere they need their full path
        paths = lambda path: path if os.path.isabs(path) else os.path.join(base, path)  # noqa: E731
    if isinstance(action, n.ShellAction):
        argv = [SHELL, "-c", "".join(expand(action.script, ctx, True, paths))]
    else:
        argv = [word for arg in action.args for word in expand(arg, ctx, False, paths)]
    env = {name: "".join(expand(str(value), ctx, False, paths)) for name, value in (options.get("env") or {}).items()}
    return argv, env, cwd


# ---------------------------------------------------------------------------- running

_running: dict = {}  # task id -> _Program
_running_lock = threading.Lock()


class _Program:
    """A program (leader of its own process group once started) and why it was stopped, if it was."""

    def __init__(self):
        self.process: Optional[subprocess.Popen] = None
        self.reason: Optional[str] = None
        self._killer: Optional[threading.Timer] = None
        self._finished = False
        self._lock = threading.Lock()

    def attach(self, process) -> None:
        """The program has started: if it was stopped while starting, its group is signalled now."""
        with self._lock:
            self.process = process
            if self.reason is not None:
                self._signal_later()

    def stop(self, reason: str) -> None:
        """SIGTERM to the whole group now, SIGKILL after GRACE seconds; returns at once.

        Before the program has started, only the reason is kept: attach() signals it, and
        run_program does not start a program that was stopped already.
        """
        with self._lock:
            if self.reason is not None or self._finished:
                return
            self.reason = reason
            if self.process is not None:
                self._signal_later()

    def _signal_later(self) -> None:
        _signal_group(self.process.pid, signal.SIGTERM)
        self._killer = threading.Timer(GRACE, _signal_group, (self.process.pid, signal.SIGKILL))
        self._killer.daemon = True
        self._killer.start()

    def finish(self) -> None:
        """After the leader exited: if it was stopped, make sure nothing of its group is left."""
        with self._lock:
            self._finished = True
            if self.reason is not None and self.process is not None:
                self._killer.cancel()
                # children that outlived their stopped parent (or ignored SIGTERM) go too
                _signal_group(self.process.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_program(ctx: ActionContext, action, log_path: str, timeout: Optional[float] = None) -> None:
    """Run the task's program; raise ActionFailed on a failed start, a non-zero exit, a timeout or a stop."""
    argv, env_additions, cwd = command_line(action, ctx)
    capture = settings(action).get("stdout") == "output"
    env = dict(os.environ)
    env.update(env_additions)
    marks = processes.program_environment()  # it and all it starts end with the build, even a daemon
    env.update(marks)
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    out_fd = None
    # Registered before it starts, so that a stop (Ctrl-C, a timeout) that comes while it is starting
    # is not lost: the program is then signalled as soon as it exists, or never started.
    program = _Program()
    with _running_lock:
        _running[ctx.task_id] = program
    try:
        if program.reason:
            raise ActionFailed(program.reason)
        shown = argv[2] if isinstance(action, n.ShellAction) else shlex.join(argv)
        os.write(log_fd, f"$ {shown}\n".encode())
        if capture:
            # relative to the Flowfile: the main process, where this runs, stays where it was started
            out_fd = os.open(os.path.join(ctx.flowfile_dir, ctx.output), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out_fd if capture else log_fd,
                                   stderr=subprocess.PIPE, cwd=cwd, env=env, start_new_session=True)
    except BaseException as exc:
        os.close(log_fd)
        with _running_lock:
            _running.pop(ctx.task_id, None)
        raise _start_failure(exc, argv, cwd) from None
    finally:
        if out_fd is not None:
            os.close(out_fd)  # the child has its own copy
    program.attach(process)
    tail: collections.deque = collections.deque(maxlen=STDERR_TAIL)
    reader = threading.Thread(target=_tee, args=(process.stderr, log_fd, tail), name=f"flow-stderr-{ctx.task_id}",
                              daemon=True)
    reader.start()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        program.stop(f"timed out after {timeout:g}s")
        process.wait()
    finally:
        if process.poll() is None:  # interrupted while waiting (KeyboardInterrupt): leave nothing running
            program.stop("interrupted")
            process.wait()
        program.finish()
        with _running_lock:
            _running.pop(ctx.task_id, None)
        reader.join(READER_WAIT)  # the reader closes the log when it is done
    if program.reason:
        processes.end_program(marks)  # and what left its group (setsid) goes now, not at the build's end
        raise ActionFailed(program.reason)
    if process.returncode != 0:
        raise ActionFailed(failure_message(_name(action, argv), process.returncode, tail))


def _start_failure(exc: BaseException, argv: list, cwd: str) -> BaseException:
    """What to say when the program could not even start."""
    if not isinstance(exc, OSError):
        return exc
    if not os.path.isdir(cwd):
        return ActionFailed(f"cannot run '{argv[0]}': its working directory '{cwd}' does not exist")
    if isinstance(exc, FileNotFoundError):
        where = "" if "/" in argv[0] else " on PATH"
        return ActionFailed(f"cannot run '{argv[0]}': not found{where}")
    if isinstance(exc, PermissionError):
        return ActionFailed(f"cannot run '{argv[0]}': it is not executable")
    return ActionFailed(f"cannot run '{argv[0]}': {(exc.strerror or str(exc)).lower()}")


def _name(action, argv) -> str:
    return "the shell command" if isinstance(action, n.ShellAction) else f"'{argv[0]}'"


def _tee(stream, log_fd: int, tail) -> None:
    """Copy standard error into the log, keeping its last lines; closes the log when the stream ends."""
    try:
        with stream:
            for line in stream:
                os.write(log_fd, line)
                tail.append(line.decode("utf-8", "replace").rstrip("\n"))
    finally:
        os.close(log_fd)


def failure_message(name: str, code: int, tail, stream: str = "standard error") -> str:
    """`'prog' exited with code 3` or `was killed by SIGKILL`, then the last lines of its `stream`."""
    if code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with code {code}"
    lines = [line for line in tail if line.strip()]
    if not lines:
        return f"{name} {how}"
    return f"{name} {how}; last lines of its {stream}:\n" + "\n".join("  " + line for line in lines)


def cancel(task_id: str, reason: str = "cancelled") -> bool:
    """Stop a running task's program and all its children; its runner then raises ActionFailed(reason)."""
    with _running_lock:
        program = _running.get(task_id)
    if program is None:
        return False
    program.stop(reason)
    return True


def cancel_all(reason: str = "cancelled") -> None:
    with _running_lock:
        programs = list(_running.values())
    for program in programs:
        program.stop(reason)
