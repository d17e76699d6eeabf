"""The event stream: one TaskEvent per start and end, read by the outcome, the console and the history alike."""

from __future__ import annotations

from flow.runtime.events import Events, Listener, Outcome, ReporterListener, StateRecorder, TaskEvent


class Recorder(Listener):
    def __init__(self):
        self.seen = []

    def task_started(self, event):
        self.seen.append(("started", event.task, event.attempt))

    def task_finished(self, event):
        self.seen.append((event.status, event.task, event.attempt))


class FakeReporter:
    def __init__(self):
        self.calls = []

    def task_started(self, task, attempt):
        self.calls.append(("started", task, attempt))

    def task_finished(self, task, status, duration, error=None, log_path=None, log_tail=None):
        self.calls.append((status, task, error))

    def message(self, text, level="info"):
        self.calls.append(("message", level, text))


class FakeState:
    def __init__(self):
        self.rows = []
        self.starts = []
        self.flushes = 0

    def record_start(self, run_id, task, attempt, started):
        self.starts.append((run_id, task, attempt))

    def due_at(self):
        return None

    def record(self, run_id, task, status, attempt, started, duration, error=None):
        self.rows.append((run_id, task, status, attempt, error))

    def flush_if_due(self):
        self.flushes += 1


def a_retry_then_success(events):
    events.task_started(TaskEvent("started", "t", 1, 100.0))
    events.task_finished(TaskEvent("failed", "t", 1, 100.0, 0.5, "boom", None, None, 2.0, 3))
    events.task_started(TaskEvent("started", "t", 2, 103.0))
    events.task_finished(TaskEvent("done", "t", 2, 103.0, 0.25))
    events.task_finished(TaskEvent("complete", "u", 1, 104.0))
    events.task_finished(TaskEvent("skipped", "v", 1, 104.0))


def test_every_listener_sees_every_event_in_order():
    first, second = Recorder(), Recorder()
    a_retry_then_success(Events(first, second))
    assert first.seen == second.seen == [("started", "t", 1), ("failed", "t", 1), ("started", "t", 2),
                                         ("done", "t", 2), ("complete", "u", 1), ("skipped", "v", 1)]


def test_the_outcome_counts_final_results_only():
    outcome = Outcome()
    a_retry_then_success(Events(outcome))
    outcome.task_finished(TaskEvent("gave-up", "w", 1, 105.0, error="boom"))
    assert outcome.ran == ["t"] and outcome.done_elsewhere == ["u"] and outcome.skipped_locked == ["v"]
    assert outcome.failed == [("w", "boom")]  # the retried failure of t is not a final one


def test_the_console_sees_a_retry_and_what_another_flow_did():
    reporter = FakeReporter()
    a_retry_then_success(Events(ReporterListener(reporter)))
    assert reporter.calls == [
        ("started", "t", 1), ("retry", "t", "boom (retry 1 of 3 in 2s)"), ("started", "t", 2), ("done", "t", None),
        ("done", "u", "made by another flow process meanwhile"), ("skipped", "v", "another flow process is running it"),
    ]


def test_history_records_attempts_that_ran_or_were_skipped_and_flushes_on_tick():
    state = FakeState()
    events = Events(StateRecorder(state, 7))
    a_retry_then_success(events)
    events.tick()
    assert state.rows == [(7, "t", "failed", 1, "boom"), (7, "t", "done", 2, None),
                          (7, "v", "skipped", 1, "another flow process was running it")]
    assert state.flushes == 1


def the_same_told_together(events):
    """a_retry_then_success, with the events of one message told in one call each (as the executor does)."""
    events.tasks_started([TaskEvent("started", "t", 1, 100.0)])
    events.tasks_finished([TaskEvent("failed", "t", 1, 100.0, 0.5, "boom", None, None, 2.0, 3)])
    events.tasks_started([TaskEvent("started", "t", 2, 103.0)])
    events.tasks_finished([TaskEvent("done", "t", 2, 103.0, 0.25), TaskEvent("complete", "u", 1, 104.0),
                           TaskEvent("skipped", "v", 1, 104.0)])


def test_events_told_together_reach_every_listener_as_if_told_one_by_one():
    from flow.runtime.state import StateStore

    class BulkState(FakeState, StateStore):  # the base's record_starts and record_many, over FakeState's rows
        pass

    one_by_one = [Recorder(), Outcome(), FakeReporter(), FakeState()]
    together = [Recorder(), Outcome(), FakeReporter(), BulkState()]
    for listeners, tell in ((one_by_one, a_retry_then_success), (together, the_same_told_together)):
        recorder, outcome, reporter, state = listeners
        tell(Events(recorder, outcome, ReporterListener(reporter), StateRecorder(state, 7)))
    assert together[0].seen == one_by_one[0].seen
    assert (together[1].ran, together[1].done_elsewhere, together[1].skipped_locked) == (["t"], ["u"], ["v"])
    assert together[2].calls == one_by_one[2].calls
    assert together[3].rows == one_by_one[3].rows and together[3].starts == one_by_one[3].starts
