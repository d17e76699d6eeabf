"""The build's one stream of task events, and the listeners that read it: console, outcome, history.

The executor says what happens to each task once, as a `TaskEvent`, to `Events`; every listener
gets every event in order. The console reporter (through `ReporterListener`), the `Outcome` the
summary is made from, the history (`StateRecorder`) and the JSON-lines log of `--events FILE`
(`EventLog`) are listeners; another reader is one more (subclass `Listener`, add it to the build's
`Events`).

Statuses of a finished attempt (`TaskEvent.status`):

    done         the action ran and its output is in place
    failed       the action failed; `retry_in` is set when it will be tried again
    timeout      the attempt ran past the rule's timeout and was stopped; `retry_in` as for failed
    skipped      another flow process holds the task's lock (--no-wait): nothing ran here
    complete     another flow process made the output after this build planned it: nothing ran here
    interrupted  Ctrl-C stopped the attempt
    gave-up      a retry that was waiting ends as a failure: the build stopped for another task
    cancelled    a retry that was waiting ends unrun: the build was interrupted
"""

from __future__ import annotations

import json
import os
import time
from typing import NamedTuple, Optional

from .batches import Batch


class TaskEvent(NamedTuple):
    """One attempt of one task starting or ending."""

    status: str  # "started", or how the attempt ended (see the module docstring)
    task: object
    attempt: int  # 1 for the first try
    started: float  # wall clock when the attempt started (Unix seconds)
    duration: float = 0.0
    error: Optional[str] = None
    log_path: Optional[str] = None
    tail: Optional[list] = None  # the log's last lines, for a failure
    retry_in: Optional[float] = None  # seconds until the next attempt, when there is one
    retries: int = 0  # how many retries the rule allows


class Listener:
    """Reads the event stream; every method is optional."""

    def task_started(self, event: TaskEvent) -> None:
        pass

    def task_finished(self, event: TaskEvent) -> None:
        pass

    def tasks_started(self, events: list) -> None:
        """Several starts at once (the jobs of one message), in order; one call per event unless overridden."""
        for event in events:
            self.task_started(event)

    def tasks_finished(self, events: list) -> None:
        """Several ends at once (the results of one message), in order; one call per event unless overridden."""
        for event in events:
            self.task_finished(event)

    def message(self, text: str, level: str = "info") -> None:
        pass

    def build_interrupted(self) -> None:
        """Ctrl-C: the build stops starting tasks and stops those running."""

    def wake_at(self) -> Optional[float]:
        """A time.monotonic() by which the executor should call `tick` (buffered writes due), or None."""
        return None

    def tick(self) -> None:
        """Called from the executor's loop: write what is due."""


class Events:
    """The listeners of one build, called in order for each event."""

    def __init__(self, *listeners: Listener):
        self.listeners = list(listeners)
        # per event, only the listeners that read it: two events per task, so no call is wasted
        self._starting = [listener.task_started for listener in listeners if _reads(listener, "task_started")]
        self._finishing = [listener.task_finished for listener in listeners if _reads(listener, "task_finished")]
        self._starting_many = [listener.tasks_started for listener in listeners
                               if _reads(listener, "task_started") or _reads(listener, "tasks_started")]
        self._finishing_many = [listener.tasks_finished for listener in listeners
                                if _reads(listener, "task_finished") or _reads(listener, "tasks_finished")]
        self._ticking = [listener for listener in listeners if _reads(listener, "tick")]

    def task_started(self, event: TaskEvent) -> None:
        if event.task.__class__ is Batch:  # one event per member: listeners only ever see tasks
            for one in per_member(event):
                for call in self._starting:
                    call(one)
            return
        for call in self._starting:
            call(event)

    def task_finished(self, event: TaskEvent) -> None:
        if event.task.__class__ is Batch:
            for one in per_member(event):
                for call in self._finishing:
                    call(one)
            return
        for call in self._finishing:
            call(event)

    def tasks_started(self, events: list) -> None:
        """The starts of several attempts (the jobs of one message): each listener gets the list in one call."""
        if not events:
            return
        events = _per_task(events)
        for call in self._starting_many:
            call(events)

    def tasks_finished(self, events: list) -> None:
        """The ends of several attempts (the results of one message), as `tasks_started`."""
        if not events:
            return
        events = _per_task(events)
        for call in self._finishing_many:
            call(events)

    def message(self, text: str, level: str = "info") -> None:
        for listener in self.listeners:
            listener.message(text, level)

    def build_interrupted(self) -> None:
        for listener in self.listeners:
            listener.build_interrupted()

    def wake_at(self) -> Optional[float]:
        times = [t for t in (listener.wake_at() for listener in self._ticking) if t is not None]
        return min(times) if times else None

    def tick(self) -> None:
        for listener in self._ticking:
            listener.tick()


def _reads(listener, method: str) -> bool:
    return getattr(type(listener), method) is not getattr(Listener, method)


def _per_task(events: list) -> list:
    """The events with each batch's event made one per member: listeners only ever see tasks."""
    for event in events:
        if event.task.__class__ is Batch:
            break
    else:
        return events
    flat = []
    for event in events:
        if event.task.__class__ is Batch:
            flat.extend(per_member(event))
        else:
            flat.append(event)
    return flat


class Outcome(Listener):
    """What happened to every task the plan held: what the summary and the exit code are made from."""

    def __init__(self):
        self.ran: list = []
        self.failed: list = []  # (task, error)
        self.skipped_locked: list = []
        self.done_elsewhere: list = []
        self.interrupted: list = []
        self.was_interrupted = False

    def build_interrupted(self) -> None:
        self.was_interrupted = True

    def tasks_finished(self, events: list) -> None:
        ran = self.ran
        for event in events:
            if event.status == "done":
                ran.append(event.task)
            else:
                self.task_finished(event)

    def task_finished(self, event: TaskEvent) -> None:
        status = event.status
        if status == "done":
            self.ran.append(event.task)
        elif status in ("failed", "timeout", "gave-up"):
            if event.retry_in is None:
                self.failed.append((event.task, event.error))
        elif status == "skipped":
            self.skipped_locked.append(event.task)
        elif status == "complete":
            self.done_elsewhere.append(event.task)
        elif status in ("interrupted", "cancelled"):
            self.interrupted.append(event.task)


class ReporterListener(Listener):
    """The console reporter (report.py) as a listener: what a person reads while the build runs."""

    def __init__(self, reporter):
        self.reporter = reporter

    def task_started(self, event: TaskEvent) -> None:
        self.reporter.task_started(event.task, event.attempt)

    def task_finished(self, event: TaskEvent) -> None:
        status = event.status
        reporter = self.reporter
        if event.retry_in is not None:
            reporter.task_finished(event.task, "retry", event.duration,
                                   f"{event.error} (retry {event.attempt} of {event.retries} in "
                                   f"{seconds_text(event.retry_in)})", event.log_path, event.tail)
        elif status == "complete":
            reporter.task_finished(event.task, "done", 0.0, "made by another flow process meanwhile")
        elif status == "skipped":
            reporter.task_finished(event.task, "skipped", 0.0, "another flow process is running it")
        elif status in ("gave-up", "cancelled"):
            return  # it never started again: its last failure was shown when it happened
        else:
            reporter.task_finished(event.task, status, event.duration, event.error, event.log_path, event.tail)

    def tasks_started(self, events: list) -> None:
        tasks_started = getattr(self.reporter, "tasks_started", None)
        if tasks_started is not None and all(event.attempt == 1 for event in events):
            tasks_started([event.task for event in events])  # the plain reporter: one update of its counters
            return
        for event in events:
            self.task_started(event)

    def tasks_finished(self, events: list) -> None:
        tasks_done = getattr(self.reporter, "tasks_done", None)
        if tasks_done is not None and all(event.status == "done" for event in events):
            tasks_done([(event.task, event.duration) for event in events])  # the plain reporter: one write
            return
        for event in events:
            self.task_finished(event)

    def message(self, text: str, level: str = "info") -> None:
        self.reporter.message(text, level)

    def build_interrupted(self) -> None:
        self.reporter.message("interrupted: stopping running tasks", "warning")


class StateRecorder(Listener):
    """Records every attempt's start and end in the project's state store (history), buffered."""

    def __init__(self, state, run_id):
        self.state = state
        self.run_id = run_id

    def task_started(self, event: TaskEvent) -> None:
        self.state.record_start(self.run_id, event.task, event.attempt, event.started)  # what a live page shows

    def tasks_started(self, events: list) -> None:
        self.state.record_starts(self.run_id, [(event.task, event.attempt, event.started) for event in events])

    def tasks_finished(self, events: list) -> None:
        attempts = []
        for event in events:
            status = event.status
            if status == "done":
                attempts.append((event.task, status, event.attempt, event.started, event.duration, None))
            elif status not in ("complete", "gave-up", "cancelled"):  # else nothing ran here
                attempts.append((event.task, status, event.attempt, event.started, event.duration,
                                 _recorded_error(event)))
        if attempts:
            self.state.record_many(self.run_id, attempts)

    def task_finished(self, event: TaskEvent) -> None:
        status = event.status
        if status in ("complete", "gave-up", "cancelled"):
            return  # nothing ran here
        self.state.record(self.run_id, event.task, status, event.attempt, event.started, event.duration,
                          _recorded_error(event))

    def wake_at(self) -> Optional[float]:
        return self.state.due_at()  # a long task shows as running within a second, even if nothing ends

    def tick(self) -> None:
        self.state.flush_if_due()  # finished rows reach the disk within a second


def _recorded_error(event: TaskEvent) -> Optional[str]:
    """The error the history keeps for an ended attempt."""
    status = event.status
    if status == "skipped":
        return "another flow process was running it"
    if status == "interrupted":
        return "interrupted"
    return event.error


def per_member(event: TaskEvent) -> list:
    """An event of a batch (`batch: N`) as one event per member.

    Each member gets an equal share of the run's duration (so per-task estimates stay right); a
    failure's log and tail go with the first member, the others point to it.
    """
    members = event.task.members
    share = event.duration / len(members)
    first = members[0]
    events = [event._replace(task=first, duration=share)]
    for member in members[1:]:
        error = event.error
        if error is not None:
            error = f"the batch run of {event.task.id} failed: see {first.id}"
        events.append(event._replace(task=member, duration=share, error=error, log_path=None, tail=None))
    return events


def seconds_text(value: float) -> str:
    """A delay as a person writes it: 2s, 0.5s, 1m."""
    if value >= 60 and value % 60 == 0:
        return f"{int(value // 60)}m"
    return f"{value:g}s"


class EventLog(Listener):
    """The build's events as JSON lines in a file (`flow build --events FILE`); docs/machine-output.md.

    One line per event: the run's start, every attempt's start and end (finished, failed, retried,
    skipped, interrupted), each blocked task, the run's end. Lines are buffered and written whole
    with one `write` each second, when 64 KiB are waiting, after a failure and at the end (never an
    fsync), so a killed build leaves complete lines only; a write that fails (a full disk) is cut
    back to the last whole line and the log stops, which `close` reports. Errors and log tails
    go through `db.redact_text`.
    """

    FLUSH_AFTER = 1.0  # seconds an event may wait in the buffer
    FLUSH_SIZE = 64 * 1024  # bytes that make a write at once

    def __init__(self, path: str, command: str, root: str, clock=time.monotonic):
        self.path = path
        self.root = root  # the Flowfile's directory: log paths are shown relative to it
        self.targets: list = []  # ids of the tasks the command's names stand for, once resolved
        self._command = command
        self._clock = clock
        # opened at once: a path that cannot be written is an error before anything runs
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
        self._lines: list = []
        self._size = 0
        self._first_at = 0.0
        self._written = 0  # bytes of whole lines in the file
        self._run_started = False
        self._run_finished = False
        self.problem: Optional[str] = None  # why the log stopped, when it did

    # ------------------------------------------------------------------ the run

    def run_started(self, run_id, plan: Optional[dict] = None) -> None:
        """The run's first line: its id in the history (null when nothing ran), command, targets and plan."""
        plan = plan or {}
        self._run_started = True
        self._add({"event": "run-started", "time": time.time(), "version": EVENTS_VERSION, "run": run_id,
                   "command": self._command, "targets": self.targets, "tasks": plan.get("tasks", 0),
                   "complete": plan.get("complete"), "jobs": plan.get("jobs"), "pid": os.getpid()})

    def run_finished(self, exit_code: Optional[int], status: str, counts: Optional[dict] = None,
                     blocked: Optional[dict] = None, elapsed: Optional[float] = None) -> None:
        """A `task-blocked` line per task that could not run (task -> the task it needed), then the run's last line."""
        if self._run_finished:
            return
        if not self._run_started:
            self.run_started(None)
        now = time.time()
        for task, cause in (blocked or {}).items():
            self._add({"event": "task-blocked", "time": now, **_task_fields(task), "status": "blocked",
                       "blocked_by": cause.id})
        self._run_finished = True
        self._add({"event": "run-finished", "time": now, "status": status, "exit_code": exit_code,
                   "counts": counts, "elapsed": elapsed})

    def close(self, exit_code: Optional[int] = None, status: str = "error") -> Optional[str]:
        """End the log (a `run-finished` line if the build did not write one), write it out; the problem, if any."""
        if self._fd is None:
            return self.problem
        try:
            self.run_finished(exit_code, status)
            self._flush()
        finally:
            os.close(self._fd)
            self._fd = None
        return self.problem

    # ------------------------------------------------------------------ the tasks

    def task_started(self, event: TaskEvent) -> None:
        self._add({"event": "task-started", "time": event.started, **_task_fields(event.task),
                   "attempt": event.attempt})

    def task_finished(self, event: TaskEvent) -> None:
        task = event.task
        status = event.status
        line = {"event": _FINISHED.get(status, "task-failed"), "time": time.time(), "task": task.id,
                "rule": task.name, "status": status, "attempt": event.attempt, "started": event.started,
                "duration": event.duration}
        if status in ("failed", "timeout", "gave-up"):
            from .db import redact_text

            if event.retry_in is not None:
                line["event"] = "task-retried"
                line.update(retry_in=event.retry_in, retries=event.retries)
            line["error"] = redact_text(event.error) if event.error else None
            line["log"] = self._shown(event.log_path)
            line["tail"] = [redact_text(text) for text in event.tail] if event.tail else []
        elif status == "skipped":
            line["reason"] = "another flow process was running it"
        elif status == "complete":
            line["reason"] = "made by another flow process meanwhile"
        self._add(line, soon=line["event"] == "task-failed")

    def wake_at(self) -> Optional[float]:
        return self._first_at + self.FLUSH_AFTER if self._lines else None

    def tick(self) -> None:
        if self._lines and self._clock() - self._first_at >= self.FLUSH_AFTER:
            self._flush()

    # ------------------------------------------------------------------ writing

    def _shown(self, path: Optional[str]) -> Optional[str]:
        if not path:
            return None
        relative = os.path.relpath(path, self.root)
        return path if relative.startswith("..") else relative

    def _add(self, line: dict, soon: bool = False) -> None:
        if self._fd is None or self.problem is not None:
            return
        data = (json.dumps(line) + "\n").encode()
        if not self._lines:
            self._first_at = self._clock()
        self._lines.append(data)
        self._size += len(data)
        if soon or self._size >= self.FLUSH_SIZE or self._clock() - self._first_at >= self.FLUSH_AFTER:
            self._flush()

    def _flush(self) -> None:
        """Write the buffered lines; on an error, cut the file back to its last whole line and stop logging."""
        if not self._lines or self.problem is not None:
            return
        data = b"".join(self._lines)
        self._lines, self._size = [], 0
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            self.problem = f"cannot write {self.path}: {exc.strerror or exc}; the event log stops here"
            try:
                os.ftruncate(self._fd, self._written)
            except OSError:
                pass  # nothing more can be done for a file that takes no writes
            return
        self._written += len(data)


EVENTS_VERSION = 1  # the version of the --events lines (docs/schemas/events.v1.json)

# TaskEvent status -> the event line it becomes (failures are "task-failed", or "task-retried")
_FINISHED = {"done": "task-finished", "skipped": "task-skipped", "complete": "task-skipped",
             "interrupted": "task-interrupted", "cancelled": "task-interrupted"}


def _task_fields(task) -> dict:
    """What names a task in a started or blocked line: id, rule, parameters as text, output."""
    from flow.compiler.types import format_value

    info = task.info
    return {"task": task.id, "rule": info.name,
            "params": {name: format_value(value) for name, value in zip(info.param_names, task.values)},
            "output": {"kind": info.output.kind, "location": task.output}}
