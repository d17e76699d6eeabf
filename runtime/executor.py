"""Run a plan: hand ready tasks to workers, take locks, honour retries and timeouts, stop cleanly on Ctrl-C."""

from __future__ import annotations

import os
import queue
import re
import socket
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait

from . import targets
from .command_lane import PROGRAM_ACTIONS, CommandLane
from .plan import Plan
from .workers import WORKER_ACTIONS, Job, WorkerPool

RETRY_BASE_DELAY = float(os.environ.get("FLOW_RETRY_DELAY", "1.0"))
RETRY_MAX_DELAY = 60.0
LOCK_POLL = 0.2
# A rule whose tasks took less than this on average (over at least QUICK_AFTER of them in this
# build) is quick: one more job may be queued on a worker running such a task.
QUICK_TASK = 0.05
QUICK_AFTER = 3

_UNSAFE = re.compile(r"[^A-Za-z0-9_.,()=+-]")


@dataclass
class Outcome:
    """What happened to every task the plan held."""

    ran: list = field(default_factory=list)
    failed: list = field(default_factory=list)  # (task, error)
    skipped_locked: list = field(default_factory=list)
    done_elsewhere: list = field(default_factory=list)
    interrupted: list = field(default_factory=list)
    was_interrupted: bool = False


@dataclass
class Running:
    task: object
    attempt: int
    started: float  # wall clock, for history
    deadline: float | None
    temp: str | None
    worker: object = None  # the worker process, or None for thread tasks
    queued: bool = False  # sent to a worker behind another job, not started yet


class Executor:
    """Drives a Plan: one event loop in the main process; actions run in workers or threads."""

    def __init__(self, plan: Plan, flowfile, *, jobs: int, flow_dir: str, reporter, history=None, run_id=None,
                 locks=None, wait_for_locks: bool = True, forced=frozenset(), requirements=None, spark=None,
                 markers=None):
        self.plan = plan
        self.flowfile = flowfile
        self.jobs = jobs
        self.flow_dir = flow_dir
        self.log_dir = os.path.join(flow_dir, "logs")
        self.reporter = reporter
        self.history = history
        self.run_id = run_id
        self.locks = locks
        self.wait_for_locks = wait_for_locks
        self.forced = forced
        self.requirements = requirements
        self.spark = spark  # SparkLane or None, made on the first Spark task
        self.markers = markers
        self.commands = None  # CommandLane, made on the first command: or shell: task
        self.outcome = Outcome()
        self.flowfile_dir = os.getcwd()
        self._pool = None
        self._running: dict = {}  # seq -> Running (queued jobs included)
        self._threads_running = 0  # Spark tasks on threads
        self._durations: dict = {}  # rule -> [finished tasks, their total seconds], for quick rules
        self._seq = 0
        self._retries: list = []  # (due time, task, next attempt, last error)
        self._lock_waiting: list = []  # tasks another process holds
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._thread_results: queue.SimpleQueue = queue.SimpleQueue()

    # ------------------------------------------------------------------ main loop

    def run(self) -> Outcome:
        try:
            self._loop()
        except KeyboardInterrupt:
            self._interrupt()
        finally:
            self._shutdown()
        return self.outcome

    def _loop(self) -> None:
        plan = self.plan
        while True:
            self._start_ready()
            if not self._running and not self._retries and not self._lock_waiting and not plan.has_ready():
                break
            self._wait_and_handle()
            self._check_timeouts()
            if self.history is not None:
                self.history.flush_if_due()  # finished rows reach the disk within a second

    def start_workers(self, tasks: int) -> None:
        """Fork the worker processes the plan will need (up to -j) before anything else starts threads."""
        if tasks:
            self._pool = WorkerPool(self.jobs, self.flowfile, self._spool_dir())
            self._pool.start(tasks)

    def _capacity(self) -> int:
        """How many more tasks may start executing now (-j minus busy workers and Spark threads)."""
        busy = len(self._pool.busy) if self._pool is not None else 0
        return self.jobs - busy - self._threads_running

    def _can_start(self, task) -> bool:
        if self._capacity() > 0:
            return True
        # every slot is busy: a worker task may still wait in the pipe behind a quick one
        action = task.info.node.action
        return (action is not None and action.kind in WORKER_ACTIONS and self._pool is not None
                and self._pool.queue_slot(self._quick) is not None)

    def _quick(self, job) -> bool:
        stats = self._durations.get(job[1])
        return stats is not None and stats[0] >= QUICK_AFTER and stats[1] < QUICK_TASK * stats[0]

    def _start_ready(self) -> None:
        plan = self.plan
        now = time.monotonic()
        if self._retries:
            due = [r for r in self._retries if r[0] <= now]
            if due:
                self._retries = [r for r in self._retries if r[0] > now]
                for _, task, attempt, error in due:
                    if plan.stopped:  # another task failed meanwhile: this one's failure stands
                        self.outcome.failed.append((task, error))
                        self._unlock(task)
                        plan.finished(task, False)
                    else:
                        self._start(task, attempt)
        if self._lock_waiting and self._capacity() > 0:
            waiting, self._lock_waiting = self._lock_waiting, []
            for task in waiting:
                if plan.stopped:
                    plan.put_back(task)  # never started: the summary counts it as not run
                else:
                    self._try_start(task)
        while plan.has_ready() and self._can_start(plan.peek()):
            task = plan.next_ready()
            self._try_start(task)

    def _try_start(self, task) -> None:
        """Lock the task, check nobody finished it meanwhile, then start its first attempt."""
        locks = self.locks
        if locks is not None:
            if not locks.try_lock(_lock_key(task, self.flowfile_dir)):
                if self.wait_for_locks:
                    self._lock_waiting.append(task)
                else:
                    self.outcome.skipped_locked.append(task)
                    self._record(task, "skipped", 1, time.time(), 0.0, "another flow process was running it")
                    self.reporter.task_finished(task, "skipped", 0.0, "another flow process is running it")
                    self.plan.finished(task, False)
                return
            # another flow may have completed it between our plan and our lock
            if task not in self.forced and task.info.output.kind != "table":
                if targets.complete([task], self.markers):
                    locks.unlock(_lock_key(task, self.flowfile_dir))
                    self.outcome.done_elsewhere.append(task)
                    self.reporter.task_finished(task, "done", 0.0, "made by another flow process meanwhile")
                    self.plan.finished(task, True)
                    return
        self._start(task, 1)

    def _start(self, task, attempt: int) -> None:
        kind = task.info.output.kind
        action = task.info.node.action
        if action is None:  # an external rule reached the run queue: nothing can make it
            self._finish(task, attempt, False, f"external rule '{task.name}' is never run", None, None, 0.0,
                         time.time())
            return
        self._seq += 1
        seq = self._seq
        temp = targets.temp_path(task.output) if kind != "table" else None
        timeout = task.info.node.timeout
        deadline = time.monotonic() + timeout if timeout else None
        running = Running(task, attempt, time.time(), deadline, temp)
        self._running[seq] = running
        self.reporter.task_started(task, attempt)
        inputs = [r.output for r in self.requirements(task)] if task.info.has_requires else []
        if action.kind in WORKER_ACTIONS:
            if self._pool is None:
                self._pool = WorkerPool(self.jobs, self.flowfile, self._spool_dir())
            job = Job((seq, task.name, task.values, inputs, temp, task.output, kind, task.id, self._log_path(task),
                       self.flowfile_dir, task in self.forced))
            behind = self._pool.queue_slot(self._quick) if self._capacity() <= 0 else None
            running.worker = self._pool.submit(job, behind)
            if behind is not None:
                running.queued = True
                running.deadline = None  # its clock starts when the job ahead of it ends
        elif action.kind in ("spark", "spark-submit"):
            if self.spark is None:
                from .spark_lane import SparkLane

                self.spark = SparkLane(self.flowfile, self.jobs)
            self._threads_running += 1
            self.spark.submit(seq, task, inputs, temp, self._log_path(task), timeout, self._thread_done)
        elif action.kind in PROGRAM_ACTIONS:
            if self.commands is None:
                self.commands = CommandLane(self.jobs)
            self._threads_running += 1
            self.commands.submit(seq, task, inputs, temp, self._log_path(task), timeout, self._thread_done)
        else:
            del self._running[seq]
            self._finish(task, attempt, False, f"{action.kind} actions are not supported yet", None, None, 0.0,
                         running.started)

    def _thread_done(self, result) -> None:
        # called from a Spark thread: hand the result to the loop and wake it up
        self._thread_results.put(result)
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _wait_and_handle(self) -> None:
        timeout = self._next_wakeup()
        sources = [self._wake_r]
        if self._pool is not None:
            sources.extend(self._pool.connections())
        for source in wait(sources, timeout):
            if source is self._wake_r:
                try:
                    self._wake_r.recv(4096)
                except BlockingIOError:
                    pass
                continue
            worker, result, orphans = self._pool.receive(source)
            self._handle(result)
            if worker.jobs:  # the job queued behind has started now
                self._started_now(worker.jobs[0][0])
            self._send_again(orphans)
        while True:
            try:
                result = self._thread_results.get_nowait()
            except queue.Empty:
                break
            self._threads_running -= 1
            self._handle(result)

    def _started_now(self, seq) -> None:
        running = self._running.get(seq)
        if running is not None and running.queued:
            running.queued = False
            running.started = time.time()
            timeout = running.task.info.node.timeout
            running.deadline = time.monotonic() + timeout if timeout else None

    def _send_again(self, jobs) -> None:
        """Jobs that were queued behind a task whose worker died or was killed: they never started."""
        for job in jobs:
            running = self._running.pop(job[0], None)
            if running is not None:
                self.plan.put_back(running.task)

    def _next_wakeup(self):
        times = [r.deadline for r in self._running.values() if r.deadline is not None]
        times.extend(r[0] for r in self._retries)
        if self._lock_waiting:
            times.append(time.monotonic() + LOCK_POLL)
        if not times:
            return None
        return max(0.0, min(times) - time.monotonic())

    def _handle(self, result) -> None:
        seq, ok, message, log_path, tail, duration = result
        running = self._running.pop(seq, None)
        if running is None:
            return  # a task we already gave up on (timed out)
        if not ok and running.temp:
            targets.remove_path(running.temp)  # a worker that died could not clean up after itself
        self._finish(running.task, running.attempt, ok, None if ok else message, log_path, tail, duration,
                     running.started)

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        for seq, running in list(self._running.items()):
            if running.deadline is not None and now >= running.deadline:
                del self._running[seq]
                self._stop_running(running)
                timeout = running.task.info.node.timeout
                self._finish(running.task, running.attempt, False, f"timed out after {_seconds(timeout)}", None,
                             None, now - (running.deadline - timeout), running.started, status="timeout")

    def _stop_running(self, running: Running) -> None:
        if running.worker is not None and self._pool is not None:
            if running.queued:  # never started: the worker ahead of it is stopped on its own account
                return
            self._send_again(self._pool.kill(running.worker))
        elif self.commands is not None and running.task.info.node.action.kind in PROGRAM_ACTIONS:
            self.commands.cancel(running.task)
        elif self.spark is not None:
            self.spark.cancel(running.task)
        if running.temp:
            targets.remove_path(running.temp)

    # ------------------------------------------------------------------ endings

    def _finish(self, task, attempt, ok, error, log_path, tail, duration, started, status=None) -> None:
        retries = task.info.node.retries
        if ok:
            stats = self._durations.get(task.name)
            if stats is None:
                self._durations[task.name] = [1, duration]
            else:
                stats[0] += 1
                stats[1] += duration
            self._record(task, "done", attempt, started, duration, None)
            self.outcome.ran.append(task)
            self.reporter.task_finished(task, "done", duration)
            self._unlock(task)
            self.plan.finished(task, True)
            return
        status = status or "failed"
        self._record(task, status, attempt, started, duration, error)
        if attempt <= retries and not self.plan.stopped:
            delay = min(RETRY_BASE_DELAY * 2 ** (attempt - 1), RETRY_MAX_DELAY)
            self.reporter.task_finished(task, "retry", duration, f"{error} (retry {attempt} of {retries} in "
                                        f"{_seconds(delay)})", log_path, tail)
            self._retries.append((time.monotonic() + delay, task, attempt + 1, error))
            return
        self.reporter.task_finished(task, status, duration, error, log_path, tail)
        self.outcome.failed.append((task, error))
        self._unlock(task)
        self.plan.finished(task, False)

    def _record(self, task, status, attempt, started, duration, error) -> None:
        if self.history is not None:
            self.history.record(self.run_id, task, status, attempt, started, duration, error)

    def _unlock(self, task) -> None:
        if self.locks is not None:
            self.locks.unlock(_lock_key(task, self.flowfile_dir))

    def _interrupt(self) -> None:
        """Ctrl-C: start nothing more, stop what runs, remove its temporaries."""
        self.outcome.was_interrupted = True
        self.plan.stop()
        self.reporter.message("interrupted: stopping running tasks", "warning")
        for seq in list(self._running):
            running = self._running.pop(seq, None)
            if running is None:  # a queued job, already given back when the worker ahead was stopped
                continue
            self._stop_running(running)
            if running.queued:  # never started: nothing to stop or record
                self._unlock(running.task)
                continue
            self.outcome.interrupted.append(running.task)
            self._record(running.task, "interrupted", running.attempt, running.started,
                         time.time() - running.started, "interrupted")
            self.reporter.task_finished(running.task, "interrupted", time.time() - running.started)
            self._unlock(running.task)
        for _, task, _, _ in self._retries:
            self.outcome.interrupted.append(task)
        self._retries = []
        self._lock_waiting = []

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.close()
        if self.spark is not None:
            self.spark.close()
        if self.commands is not None:
            self.commands.close()
        self._wake_r.close()
        self._wake_w.close()

    # ------------------------------------------------------------------ paths

    def _spool_dir(self) -> str:
        path = os.path.join(self.flow_dir, "tmp")
        os.makedirs(path, exist_ok=True)
        return path

    def _log_path(self, task) -> str:
        return os.path.join(self.log_dir, task.name, _UNSAFE.sub("_", task.id) + ".log")


def _lock_key(task, cwd: str) -> str:
    # Files and directories are locked by location (builds run in the Flowfile's directory, so
    # the location is relative to it); many tasks load one table, so those are locked by id.
    if task.info.output.kind == "table":
        return task.id
    output = task.output
    return "path:" + (output if output.startswith("/") else os.path.join(cwd, output))


def _seconds(value: float) -> str:
    if value >= 60 and value % 60 == 0:
        return f"{int(value // 60)}m"
    return f"{value:g}s"
