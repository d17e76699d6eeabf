"""A pool of persistent worker processes that run Python, SQL and load actions, one task at a time each.

Workers are forked once per build (never one interpreter per task) and inherit the checked
Flowfile, so a job is only a rule name, parameter values and paths. Each worker is the leader of
its own process group: a timeout kills the action with all its children, and Ctrl-C in the
terminal reaches only the main flow process, which decides what to stop.

A worker sends its stdout and stderr (file descriptors 1 and 2, so subprocesses too) into one
spool file; after each task it copies what the task printed into the task's log file, which is
created only when there is something to write.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections import deque

from . import targets
from .actions.base import ActionContext, ActionFailed, call_with_injection, resolve_function, user_traceback

LOG_TAIL_LINES = 20
WORKER_ACTIONS = ("python", "sql", "load")  # the action kinds that run in worker processes


class Job(tuple):
    """(seq, rule name, values, inputs, temp path, final output, output kind, task id, log path, flowfile dir,
    forced)."""

    __slots__ = ()


class Worker:
    """The main process's handle on one worker: its process, its pipe, and the jobs sent to it.

    `jobs[0]` is running; a second job may wait behind it in the pipe (see WorkerPool.submit).
    """

    __slots__ = ("process", "conn", "jobs")

    def __init__(self, process, conn):
        self.process = process
        self.conn = conn
        self.jobs: deque = deque()

    @property
    def pid(self) -> int:
        return self.process.pid


class WorkerPool:
    """Up to `size` worker processes, started on demand and kept for the whole build.

    A job normally goes to an idle worker. When every worker is busy with a task of a rule known
    to be quick, one more job may be queued behind it: while the worker runs the next task, the
    main process handles the last result, so neither waits for the other (worth ~40% on builds of
    tiny tasks). Never behind a slow task: an idle worker could otherwise sit beside a queued job.
    """

    def __init__(self, size: int, flowfile, spool_dir: str):
        self.size = size
        self.flowfile = flowfile
        self.spool_dir = spool_dir
        self.idle: list = []
        self.busy: dict = {}  # conn -> Worker with at least one job
        self._count = 0
        self._context = multiprocessing.get_context("fork")

    def _spawn(self) -> Worker:
        parent, child = self._context.Pipe()
        spool = os.path.join(self.spool_dir, f"spool-{os.getpid()}-{self._count}")
        self._count += 1
        process = self._context.Process(target=_worker_main, args=(child, self.flowfile, spool), daemon=True)
        process.start()
        child.close()
        try:
            os.setpgid(process.pid, process.pid)  # also done in the child; whichever runs first wins
        except (PermissionError, ProcessLookupError):
            pass
        return Worker(process, parent)

    def start(self, count: int) -> None:
        """Fork up to `count` idle workers now (at most the pool's size)."""
        while len(self.idle) + len(self.busy) < min(count, self.size):
            self.idle.append(self._spawn())

    def queue_slot(self, quick) -> "Worker | None":
        """A busy worker whose running job `quick(job)` says ends soon and has nothing queued yet."""
        for worker in self.busy.values():
            if len(worker.jobs) == 1 and quick(worker.jobs[0]):
                return worker
        return None

    def submit(self, job: Job, behind: "Worker | None" = None) -> Worker:
        """Send a job to an idle (or new) worker, or queue it behind the running job of `behind`."""
        if behind is not None:
            worker = behind
        else:
            worker = self.idle.pop() if self.idle else self._spawn()
        worker.jobs.append(job)
        try:
            worker.conn.send(job)
        except OSError:
            if behind is None:
                raise
            # The worker ahead died just now: receive() reads its end and gives this job (never
            # started) back to be sent again, as for any job queued behind a worker that dies.
        self.busy[worker.conn] = worker
        return worker

    def connections(self) -> list:
        return list(self.busy)

    def receive(self, conn):
        """(worker, result, jobs to send again) for a worker that answered.

        The result is that of the worker's running job; a dead worker gives a failure for it, and
        the job queued behind it (never started) comes back to be sent again.
        """
        worker = self.busy[conn]
        try:
            result = conn.recv()
        except (EOFError, OSError):
            worker.process.join(0.5)
            code = worker.process.exitcode
            job = worker.jobs.popleft()
            result = (job[0], False, f"the worker process died (exit code {code})", None, None, 0.0)
            orphans = list(worker.jobs)
            worker.jobs.clear()
            del self.busy[conn]
            self._discard(worker)
            return worker, result, orphans
        worker.jobs.popleft()
        if not worker.jobs:
            del self.busy[conn]
            self.idle.append(worker)
        return worker, result, []

    def kill(self, worker: Worker) -> list:
        """Kill a worker and everything it started (timeouts, Ctrl-C); return the jobs queued behind."""
        self.busy.pop(worker.conn, None)
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                worker.process.kill()
            except Exception:
                pass
        worker.process.join(2)
        orphans = list(worker.jobs)[1:]
        worker.jobs.clear()
        self._discard(worker)
        return orphans

    def _discard(self, worker: Worker) -> None:
        try:
            worker.conn.close()
        except OSError:
            pass
        if worker in self.idle:
            self.idle.remove(worker)

    def close(self) -> None:
        for worker in list(self.busy.values()):
            self.kill(worker)
        for worker in self.idle:
            try:
                worker.conn.send(None)
                worker.conn.close()
            except OSError:
                pass
        for worker in self.idle:
            worker.process.join(2)
            if worker.process.is_alive():
                worker.process.kill()
        self.idle.clear()


# ---------------------------------------------------------------------------- inside the worker


def _worker_main(conn, flowfile, spool_path: str) -> None:
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C
    spool_fd = os.open(spool_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    os.unlink(spool_path)  # nobody else needs its name; it disappears with the worker
    os.dup2(spool_fd, 1)
    os.dup2(spool_fd, 2)
    # fresh stream objects: the parent's may have been locked by another thread at fork time
    sys.stdout = open(1, "w", closefd=False, buffering=1 << 16, encoding="utf-8", errors="replace")
    sys.stderr = open(2, "w", closefd=False, buffering=1 << 16, encoding="utf-8", errors="replace")
    connections = None
    try:
        while True:
            try:
                job = conn.recv()
            except (EOFError, OSError):
                break
            if job is None:
                break
            if connections is None and _needs_database(flowfile, job[1]):
                from .db import ConnectionCache

                connections = ConnectionCache()  # one connection per worker, reused across tasks
            conn.send(_run_job(job, flowfile, spool_fd, connections))
    finally:
        if connections is not None:
            connections.close_all()
        os._exit(0)


def _needs_database(flowfile, rule_name: str) -> bool:
    action = flowfile.rules[rule_name].node.action
    return action is not None and action.kind in ("sql", "load")


def _run_job(job, flowfile, spool_fd: int, connections):
    seq, rule_name, values, inputs, temp, output, kind, task_id, log_path, flowfile_dir, forced = job
    info = flowfile.rules[rule_name]
    action = info.node.action
    if os.getcwd() != flowfile_dir:  # an earlier action changed directory: paths are relative to the Flowfile
        os.chdir(flowfile_dir)
    before = os.fstat(spool_fd).st_size
    started = time.perf_counter()
    error = None
    error_text = None
    try:
        if kind != "table":
            targets.prepare(output)
        ctx = ActionContext(task_id, rule_name, dict(zip(info.param_names, values)), inputs,
                            temp if kind != "table" else output, task_id, flowfile_dir,
                            {"force": True} if forced else {})
        status = _run_action(action, ctx, flowfile, connections)
        if kind != "table":
            targets.commit(temp, output, kind)
    except ActionFailed as exc:
        error = str(exc)
        error_text = f"error: {error}\n"
    except BaseException as exc:  # the user's code may raise anything, SystemExit included
        error = f"{type(exc).__name__}: {exc}".strip().splitlines()[0] if str(exc) else type(exc).__name__
        error_text = user_traceback(exc)
    else:
        error = None
    duration = time.perf_counter() - started
    if error is not None and kind != "table":
        targets.remove_path(temp)
    _flush_streams()
    written_log = _save_log(spool_fd, before, log_path, error_text)
    tail = _tail(log_path) if error is not None and written_log else None
    return (seq, error is None, error if error is not None else status, written_log and log_path, tail, duration)


def _run_action(action, ctx: ActionContext, flowfile, connections):
    kind = action.kind
    if kind == "python":
        function = resolve_function(action.target)
        call_with_injection(function, ctx)
        return None
    if kind in ("sql", "load"):
        from .actions import sql as sql_actions
        from .db import resolve_dsn

        connection = connections.get(resolve_dsn(flowfile.database, os.path.join(ctx.flowfile_dir, ".flow")))
        if kind == "load":
            return sql_actions.run_load(ctx, action, connection)
        return sql_actions.run_sql(ctx, action, connection)
    raise ActionFailed(f"{kind} actions do not run in worker processes")


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _save_log(spool_fd: int, before: int, log_path: str, error_text) -> bool:
    """Copy what the task printed (and its error) into its log; no file when there is nothing."""
    after = os.fstat(spool_fd).st_size
    if after == before and not error_text:
        return False
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "wb") as log:
        position = before
        while position < after:
            chunk = os.pread(spool_fd, min(1 << 20, after - position), position)
            if not chunk:
                break
            log.write(chunk)
            position += len(chunk)
        if error_text:
            log.write(error_text.encode("utf-8", "replace"))
    if after > 64 << 20:
        os.ftruncate(spool_fd, 0)  # keep the spool small over a long build
    return True


def _tail(path: str, lines: int = LOG_TAIL_LINES) -> list:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16384))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]
