"""The build's one stream of task events, and the listeners that read it: console, outcome, history.

The executor says what happens to each task once, as a `TaskEvent`, to `Events`; every listener
gets every event in order. The console reporter (through `ReporterListener`), the `Outcome` the
summary is made from, and the history (`StateRecorder`) are listeners today; a JSON event log or
the web page is one more (subclass `Listener`, add it to the build's `Events`).

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

    def task_finished(self, event: TaskEvent) -> None:
        status = event.status
        if status in ("complete", "gave-up", "cancelled"):
            return  # nothing ran here
        error = event.error
        if status == "skipped":
            error = "another flow process was running it"
        elif status == "interrupted":
            error = "interrupted"
        self.state.record(self.run_id, event.task, status, event.attempt, event.started, event.duration, error)

    def wake_at(self) -> Optional[float]:
        return self.state.due_at()  # a long task shows as running within a second, even if nothing ends

    def tick(self) -> None:
        self.state.flush_if_due()  # finished rows reach the disk within a second


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
