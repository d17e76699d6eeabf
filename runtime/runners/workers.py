"""A pool of persistent worker processes that run Python, SQL and load actions, one task at a time each.

Workers are forked once per build (never one interpreter per task) and inherit the checked
Flowfile, so a job is only a rule name, parameter values and paths. Jobs travel in messages: a
list of jobs one way, the list of their results the other, so that a build of many quick tasks
pays one round trip per few hundred tasks instead of one per task. Each worker is the leader of
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
from collections import deque
from functools import partial

from .. import processes, tasklog
from ..actions.registry import ACTION_KINDS
from . import Job, Result, Runner
from .attempt import run_attempt, tail
from .quick import QuickMessage

# How long a cancelled worker gets to kill what its task started before it is killed with its group.
STOP_GRACE = 2.0
# A rule whose tasks took less than this on average (over at least QUICK_AFTER of them in this
# build) is quick: more jobs may be queued on a worker running such a task.
QUICK_TASK = 0.05
QUICK_AFTER = 3
# Quick jobs go to a worker in messages of up to this many seconds of work (by the rule's mean),
# and at most MAX_MESSAGE jobs: a round trip costs ~50-100 us, a quick task may cost 20 us.
MESSAGE_SECONDS = 0.02
MAX_MESSAGE = 256


class Worker:
    """The main process's handle on one worker: its process, its pipe, and the jobs given to it.

    `sent` holds the messages in the pipe (lists of jobs, or quick.QuickMessages), in order: the
    worker runs the first one; a second may wait behind it. `pending` is the next list of jobs,
    sent by `WorkerPool.flush`.
    """

    __slots__ = ("process", "conn", "sent", "pending")

    def __init__(self, process, conn):
        self.process = process
        self.conn = conn
        self.sent: deque = deque()
        self.pending: list = []

    @property
    def pid(self) -> int:
        return self.process.pid


class WorkerPool(Runner):
    """Up to `size` worker processes, started on demand and kept for the whole build.

    A job normally goes to an idle worker. When every worker is busy with a task of a rule known
    to be quick, more jobs of quick rules may be queued behind it: while the worker runs its
    message, the main process handles the last results and fills the next message, so neither
    waits for the other, and a message carries up to MESSAGE_SECONDS of work (one round trip for
    hundreds of tiny tasks). Never behind a slow task: an idle worker could otherwise sit beside a
    queued job. A job with a timeout travels alone, so its clock starts when it starts.
    """

    name = "worker"

    def __init__(self, size: int, flowfile, targets, spool_dir: str):
        self.size = size
        self.flowfile = flowfile
        self.targets = targets
        self.spool_dir = spool_dir
        self.idle: list = []
        self.busy_workers: dict = {}  # conn -> Worker with at least one job
        self._durations: dict = {}  # rule -> [finished tasks, their total seconds], for quick rules
        self._never_quick: set = set()  # rules whose message killed its worker: one job per message from then on
        self._sizes: dict = {}  # rule -> _message_size, kept current as results come in (asked per task)
        self._slot = self._slot_for = None  # the worker can_queue found, and for which task
        self._count = 0
        self._context = multiprocessing.get_context("fork")
        self.handover = None  # quick.Handover: what a worker needs to run planned tasks from their numbers

    def _spawn(self) -> Worker:
        parent, child = self._context.Pipe()
        os.makedirs(self.spool_dir, exist_ok=True)
        spool = os.path.join(self.spool_dir, f"spool-{os.getpid()}-{self._count}")
        self._count += 1
        # The child must not keep the main process's ends of any worker's pipe (its own included):
        # while one copy is open, a worker whose main process died never sees its pipe close.
        inherited = [parent, *(w.conn for w in self.idle), *(w.conn for w in self.busy_workers.values())]
        process = self._context.Process(target=_worker_main, daemon=True,
                                        args=(child, self.flowfile, self.targets, spool, inherited, os.getpid(),
                                              self.handover))
        process.start()
        child.close()
        try:
            os.setpgid(process.pid, process.pid)  # also done in the child; whichever runs first wins
        except (PermissionError, ProcessLookupError):
            pass
        return Worker(process, parent)

    def warm(self, count: int, handover=None) -> bool:
        """Fork up to `count` idle workers now (at most the pool's size), each with the handover, if any."""
        if handover is not None:
            self.handover = handover
        while len(self.idle) + len(self.busy_workers) < min(count, self.size):
            self.idle.append(self._spawn())
        return self.handover is not None

    @property
    def busy(self) -> int:
        return len(self.busy_workers)

    def can_queue(self, task=None) -> bool:
        self._slot = slot = self._queue_slot(task)  # submit(queue=True) of the same task takes it
        self._slot_for = task
        return slot is not None

    def message_size(self, task) -> int:
        return 1 if task.info.node.timeout else self._message_size(task.info.name)  # a timed job travels alone

    def _message_size(self, rule: str) -> int:
        """How many jobs of a rule one message may carry (1 for a rule not known to be quick)."""
        size = self._sizes.get(rule)
        return size if size is not None else 1

    def _size_from_durations(self, rule: str) -> int:
        stats = self._durations.get(rule)
        if stats is None or stats[0] < QUICK_AFTER or stats[1] >= QUICK_TASK * stats[0] or rule in self._never_quick:
            return 1
        mean = stats[1] / stats[0]
        return max(1, min(MAX_MESSAGE, int(MESSAGE_SECONDS / mean) if mean > 0 else MAX_MESSAGE))

    def _queue_slot(self, task=None) -> "Worker | None":
        """A busy worker running a quick rule's job with room for one more job (of `task`, when given).

        Behind a running message, the next message may start with any job, as its only job or as
        the first of up to `_message_size` jobs of quick rules without a timeout. At most one
        message waits in the pipe.
        """
        sizes = self._sizes  # asked once per task: dictionary lookups only
        for worker in self.busy_workers.values():
            sent = worker.sent
            pending = worker.pending
            if len(sent) > 1 or sizes.get(self._rule_of(sent[0]) if sent else pending[0].rule, 1) == 1:
                continue
            if not pending:
                return worker  # sent holds the running message: the next one starts with this job
            first = pending[0]
            if first.timeout or len(pending) >= sizes.get(first.rule, 1):
                continue
            if task is None:
                return worker
            info = task.info
            if not info.node.timeout and sizes.get(info.name, 1) > 1:
                return worker
        return None

    def _rule_of(self, message) -> str:
        """The rule of a message's first job or task."""
        if message.__class__ is QuickMessage:
            return self.handover.tasks[message.numbers[0]].info.name
        return message[0].rule

    def submit_quick(self, message: QuickMessage, queue: bool = False):
        """Send a quick message at once to an idle (or new) worker, or with `queue` behind a busy quick one.

        Behind a worker only when nothing else waits there: at most one message waits in a pipe.
        """
        worker = None
        if queue:
            slot = self._slot if self._slot is not None else self._queue_slot()
            if slot is not None and not slot.pending:
                worker = slot
        self._slot = self._slot_for = None
        if worker is None:
            if queue:
                raise RuntimeError("no worker can take a quick message now")  # the executor asks can_queue first
            worker = self.idle.pop() if self.idle else self._spawn()
        queued = bool(worker.sent)
        worker.sent.append(message)
        self.busy_workers[worker.conn] = worker
        try:
            worker.conn.send(message)
        except OSError:
            if not queued:
                raise
            # The worker died just now: collect() gives the message back to be sent again.
        return worker, queued

    def can_queue_quick(self) -> bool:
        """Whether can_queue's worker may take a quick message: nothing of its own waits to be sent."""
        return self._slot is not None and not self._slot.pending

    def submit(self, job: Job, task, queue: bool = False):
        """Give a job to an idle (or new) worker, or with `queue` to the next message of a busy quick one.

        The job is sent by the next `flush`.
        """
        behind = None
        if queue:
            behind = self._slot if self._slot_for is task and self._slot is not None else self._queue_slot(task)
        self._slot = self._slot_for = None
        if behind is not None:
            worker = behind
        else:
            worker = self.idle.pop() if self.idle else self._spawn()
        queued = behind is not None and bool(worker.sent or worker.pending)
        worker.pending.append(job)
        self.busy_workers[worker.conn] = worker
        return worker, queued

    def flush(self) -> None:
        """Send every worker its next message."""
        for worker in list(self.busy_workers.values()):
            message = worker.pending
            if not message:
                continue
            worker.pending = []
            alone = not worker.sent
            worker.sent.append(message)
            try:
                worker.conn.send(message)
            except OSError:
                if alone:
                    raise
                # The worker died just now: collect() reads its end and gives these jobs (never
                # started) back to be sent again, as for any job queued behind a worker that dies.

    def sources(self) -> list:
        return list(self.busy_workers)

    def collect(self, source) -> list:
        """The results of the message the worker that answered has run.

        A dead worker gives a failure for the job it ran, and the jobs queued behind it (never
        started) come back to be sent again. When the message held several jobs, which one was
        running is unknown: they all come back (with no result), and their rules go one job per
        message for the rest of the build, so a job that kills its worker fails on its own.
        """
        if source is None:
            return []
        worker = self.busy_workers[source]
        try:
            results = source.recv()
        except (EOFError, OSError):
            worker.process.join(0.5)
            code = worker.process.exitcode
            message = worker.sent.popleft()
            orphans = self._never_started(worker)
            del self.busy_workers[source]
            self._discard(worker)
            if message.__class__ is QuickMessage or len(message) > 1:
                # which task killed it is unknown: its rule goes one job per message, and each
                # task of the message starts again (those it finished are found complete)
                for rule in self._rules_in(message):
                    self._never_quick.add(rule)
                    self._sizes[rule] = 1
                return [(None, None, ([message] if message.__class__ is QuickMessage else message) + orphans)]
            result = Result(message[0].seq, False, f"the worker process died (exit code {code})", None, None, 0.0)
            return [(result, None, orphans)]
        message = worker.sent.popleft()
        if message.__class__ is QuickMessage:
            for rule, (count, seconds) in results.seconds.items():
                self._observe(rule, count, seconds)
            ended = [(results, None, ())]
            self._next_or_idle(worker, ended)
            return ended
        ended = []
        for job, result in zip(message, results):
            if result.ok:
                self._observe(job.rule, 1, result.duration)
            ended.append((result, None, ()))
        self._next_or_idle(worker, ended)
        return ended

    def _observe(self, rule: str, count: int, seconds: float) -> None:
        """`count` more tasks of the rule ended well in `seconds` together: how many one message may carry now."""
        stats = self._durations.get(rule)
        if stats is None:
            self._durations[rule] = [count, seconds]
        else:
            stats[0] += count
            stats[1] += seconds
        self._sizes[rule] = self._size_from_durations(rule)

    def _next_or_idle(self, worker: Worker, ended: list) -> None:
        """After a reply: say which message started behind it (in the last entry), or make the worker idle."""
        if worker.sent:  # the next message has started now
            following = worker.sent[0]
            ended[-1] = (ended[-1][0], following.seq if following.__class__ is QuickMessage else following[0].seq, ())
        elif not worker.pending:
            del self.busy_workers[worker.conn]
            self.idle.append(worker)

    def _never_started(self, worker: Worker) -> list:
        """The jobs and quick messages queued behind a worker's running message (taken off it)."""
        orphans = []
        for later in worker.sent:
            orphans.extend([later] if later.__class__ is QuickMessage else later)
        orphans.extend(worker.pending)
        worker.sent.clear()
        worker.pending = []
        return orphans

    def _rules_in(self, message) -> set:
        if message.__class__ is QuickMessage:
            return {task.info.name for task in self.handover.tasks_of(message)}
        return {job.rule for job in message}

    def cancel(self, handle, task) -> list:
        """Kill a worker and everything it started (timeouts, Ctrl-C); return the jobs queued behind.

        SIGTERM first: the worker kills every process its actions started, even those that left its
        process group (it is their subreaper), then exits. Whatever is left after STOP_GRACE
        seconds goes with a SIGKILL of the group.
        """
        worker = handle
        self.busy_workers.pop(worker.conn, None)
        try:
            os.kill(worker.pid, signal.SIGTERM)
            worker.process.join(STOP_GRACE)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                worker.process.kill()
            except Exception:
                pass
        worker.process.join(2)
        running = worker.sent.popleft() if worker.sent else None
        orphans = self._never_started(worker)
        if running is not None and running.__class__ is not QuickMessage:
            orphans[:0] = running[1:]  # a list of jobs: the first one was stopped, the others never ran
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
        for worker in list(self.busy_workers.values()):
            self.cancel(worker, None)
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


class WorkerLane:
    """What a worker offers the actions it runs: the Flowfile, and one database connection kept across tasks."""

    def __init__(self, flowfile):
        self.flowfile = flowfile
        self.workdir = None  # the Flowfile's directory, from the jobs
        self._connections = None

    def database(self):
        """The worker's connection to the project's database (the embedded one when none is configured)."""
        from ..db import ConnectionCache, resolve_dsn

        if self._connections is None:
            self._connections = ConnectionCache()
        return self._connections.get(resolve_dsn(self.flowfile.database, os.path.join(self.workdir, ".flow")))

    def close(self) -> None:
        if self._connections is not None:
            self._connections.close_all()


class SpoolLog:
    """The log of an attempt in a worker: what the task printed into the spool, then its error.

    `path` is the log's path, or a function that names it: most quick tasks print nothing, and
    their log is then never named.
    """

    __slots__ = ("fd", "path", "before")

    def __init__(self, fd: int, path):
        self.fd = fd
        self.path = path
        self.before = 0

    def begin(self) -> None:
        self.before = os.lseek(self.fd, 0, os.SEEK_END)  # the spool's size: one call, no stat result

    def end(self, error, trace):
        _flush_streams()
        error_text = trace or (f"error: {error}\n" if error is not None else None)
        fd = self.fd
        after = os.lseek(fd, 0, os.SEEK_END)
        if after == self.before and not error_text:
            return None, None
        path = self.path
        if path.__class__ is not str:
            path = self.path = path()
        _save_log(fd, self.before, after, path, error_text)
        return path, (tail(path) if error is not None else None)


def _worker_main(conn, flowfile, targets, spool_path: str, inherited=(), parent_pid: int = 0, handover=None) -> None:
    for other in inherited:
        other.close()
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C
    signal.signal(signal.SIGTERM, _stop)  # cancelled, or the main process died: take the task's processes along
    processes.become_subreaper()
    if parent_pid:
        processes.die_with_parent(parent_pid, signal.SIGTERM)
    spool_fd = os.open(spool_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    os.unlink(spool_path)  # nobody else needs its name; it disappears with the worker
    os.dup2(spool_fd, 1)
    os.dup2(spool_fd, 2)
    # fresh stream objects: the parent's may have been locked by another thread at fork time
    sys.stdout = open(1, "w", closefd=False, buffering=1 << 16, encoding="utf-8", errors="replace")
    sys.stderr = open(2, "w", closefd=False, buffering=1 << 16, encoding="utf-8", errors="replace")
    lane = WorkerLane(flowfile)
    rules = flowfile.rules
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            if message is None:
                break
            if message.__class__ is QuickMessage:
                _enter(handover.workdir, lane)
                conn.send(handover.run(message, lane, partial(SpoolLog, spool_fd)))
                continue
            results = []
            for job in message:
                _enter(job.workdir, lane)
                info = rules[job.rule]
                kind = ACTION_KINDS[info.node.action.kind]
                target = targets.pick(job.kind, job.location)
                results.append(run_attempt(job, info, kind, lane, target, SpoolLog(spool_fd, job.log_path)))
            conn.send(results)
    finally:
        lane.close()
        processes.kill_children()  # what actions left running does not outlive the build
        os._exit(0)


def _enter(workdir: str, lane: WorkerLane) -> None:
    """Actions run in the Flowfile's directory (an action may leave it) and import the modules beside it."""
    if os.getcwd() != workdir:
        os.chdir(workdir)
    lane.workdir = workdir
    if workdir not in sys.path:
        sys.path.insert(0, workdir)


def _stop(signum, frame) -> None:
    processes.kill_children()
    os._exit(128 + signum)


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _save_log(spool_fd: int, before: int, after: int, log_path: str, error_text) -> None:
    """Copy what the task printed (bytes `before` to `after` of the spool) and its error into its log."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    tasklog.copy_tail(spool_fd, before, after, log_path, error_text)  # capped: the tail explains a failure
    if after > 64 << 20:
        os.ftruncate(spool_fd, 0)  # keep the spool small over a long build
