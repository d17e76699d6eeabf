"""The notification listener on its own: what it keeps from the event stream, when it sends, what it hides."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from flow.runtime.events import Events, TaskEvent
from flow.runtime.notify import Notifier
from flow.runtime.summary import Summary


def task(name: str, day: int):
    return SimpleNamespace(id=f"{name}(2012-06-{day:02d})", name=name)


def settings(on=("failure",), hook=None) -> dict:
    return {"notify.on": on, "notify.email.to": None, "notify.webhook.url": None, "notify.webhook.url_env": None,
            "notify.hook": hook, "notify.timeout": 1.0}


def notifier(on=("failure",), secrets=()) -> Notifier:
    return Notifier(settings(on), "/srv/etl", "flow build nightly", secrets)


def fail(events, t, attempt=1, error="ValueError: boom", retry_in=None, status="failed"):
    events.task_finished(TaskEvent(status, t, attempt, 0.0, 0.1, error, f"/srv/etl/.flow/logs/{t.name}/{t.id}.log",
                                   ["line 1", error], retry_in, 2))


def test_final_failures_are_kept_and_retries_counted_apart():
    listener = notifier()
    events = Events(listener)
    flaky, broken = task("load", 1), task("top", 2)
    fail(events, flaky, 1, "timeout talking to db", retry_in=0.05)
    events.task_finished(TaskEvent("done", flaky, 2, 0.0, 0.1))
    fail(events, broken, 1, "KeyError: 'x'", retry_in=0.05)
    fail(events, broken, 2, "KeyError: 'y'", status="timeout")
    assert [entry["task"] for entry in listener.failed] == [broken.id]
    assert listener.failed[0]["status"] == "timeout" and listener.failed[0]["attempts"] == 2
    assert listener.retried == {flaky.id: {"task": flaky.id, "retries": 1, "error": "timeout talking to db"},
                                broken.id: {"task": broken.id, "retries": 1, "error": "KeyError: 'x'"}}


@pytest.mark.parametrize("on, code, event", [
    (("failure",), 1, "failure"), (("failure",), 3, "failure"), (("failure",), 0, None), (("failure",), 130, None),
    (("failure", "retry"), 0, "retry"), (("success",), 0, "success"), (("success",), 2, None),
])
def test_which_builds_call_for_a_message(on, code, event):
    listener = notifier(on)
    fail(Events(listener), task("load", 1), retry_in=1.0)  # one retry happened
    assert listener.event_of(code) == event


def test_the_text_lists_twenty_failed_tasks_and_counts_the_rest():
    listener = notifier()
    events = Events(listener)
    for day in range(1, 26):
        fail(events, task("top", day), error=f"ValueError: bad row {day}\n")
    payload = listener.payload("failure", Summary(failed=[object()] * 25, elapsed=1.25), 1, 7)
    lines = payload["text"].splitlines()
    assert lines[0].startswith("flow build failed in /srv/etl on ") and lines[0].endswith(
        ": 25 failed (flow build nightly, run #7)")
    assert lines[1] == "- top(2012-06-01): ValueError: bad row 1"
    assert len(lines) == 22 and lines[-1] == "- ... and 5 more failed tasks"
    assert len(payload["failed"]) == 25 and list(payload)[0] == "text"


def test_errors_lose_their_passwords_before_they_are_kept(monkeypatch):
    monkeypatch.setenv("API_TOKEN", "tok-123456789")
    listener = notifier(secrets=("smtp-pass-42",))
    fail(Events(listener), task("load", 1),
         error="cannot connect postgresql://etl:Pw0rd-xyz@db/wh with smtp-pass-42 and tok-123456789")
    entry = listener.failed[0]
    assert entry["error"] == "cannot connect postgresql://etl:***@db/wh with *** and ***"
    assert entry["tail"][-1] == entry["error"]


def test_a_channel_that_fails_is_a_warning(tmp_path):
    (tmp_path / "hooks_that_fail.py").write_text("import sys\n\ndef send(payload):\n    sys.exit(3)\n")
    listener = Notifier(settings(hook="hooks_that_fail.send"), str(tmp_path), "flow build", ())
    fail(Events(listener), task("load", 1))
    warnings = listener.send(Summary(failed=[object()]), 1, 1)
    assert warnings == ["notification by hook hooks_that_fail.send failed: it called sys.exit(3)"]
