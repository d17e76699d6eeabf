"""Quick messages: workers forked after planning run tasks from their numbers alone; the main process locks them."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import textwrap

import pytest
from flow.compiler.checks import check
from flow.compiler.graph import TaskFactory
from flow.compiler.parser import parse
from flow.runtime.commands.build import make_runners
from flow.runtime.events import Events, Listener
from flow.runtime.executor import Executor, ExecutorSettings
from flow.runtime.plan import Plan
from flow.runtime.runners import workers
from flow.runtime.runners.quick import QuickMessage
from flow.runtime.runners.workers import WorkerPool
from flow.runtime.state.local import LocalState
from flow.runtime.targets import Targets

from tests.actions import action_module

ACTIONS = '''
import os

def ok(date, output):
    open(output, "w").write(str(date))

def die_on_the_8th(date, output):
    if date.day == 8:
        os._exit(5)
    open(output, "w").write(str(date))

def fail_once_on_the_20th(date, output):
    if date.day == 20 and not os.path.exists("failed-once"):
        open("failed-once", "w").close()
        raise ValueError("the first try fails")
    open(output, "w").write(str(date))

def noisy_failure_on_the_9th(date, output):
    print(f"working on {date}")
    if date.day == 9:
        raise ValueError("no data")
    open(output, "w").write(str(date))
'''


class Recorder(Listener):
    """Every event as (status, task id), in the order the listeners are told."""

    def __init__(self):
        self.events = []

    def task_started(self, event):
        self.events.append(("started", event.task.id))

    def task_finished(self, event):
        self.events.append((event.status, event.task.id, event.error, event.log_path))


@pytest.fixture
def project(tmp_path, monkeypatch):
    with action_module(tmp_path, monkeypatch, ACTIONS, "quick_actions") as made:
        yield made


@pytest.fixture(autouse=True)
def quick_after_three_tasks(monkeypatch):
    """A rule is quick after its first three tasks however loaded the machine is (the first one imports the
    actions, which on a busy machine took long enough to keep the rule's mean above the threshold)."""
    monkeypatch.setattr(workers, "QUICK_TASK", 60.0)
    monkeypatch.setattr(workers, "MESSAGE_SECONDS", 60.0)


@pytest.fixture
def quick_messages(monkeypatch) -> list:
    """The task numbers of every quick message the worker pool sends."""
    sent = []
    submit_quick = WorkerPool.submit_quick

    def recording(self, message, queue=False):
        sent.append(list(message.numbers))
        return submit_quick(self, message, queue)

    monkeypatch.setattr(WorkerPool, "submit_quick", recording)
    return sent


def build(project, action: str, days: int, *, jobs: int = 1, wait: bool = True, retries: int = 0):
    """Run `days` tasks of one rule through an executor whose workers were handed the plan, as `flow build` does."""
    directory, module = project
    retry_line = f"\n    retries: {retries}" if retries else ""
    checked = check(parse(textwrap.dedent(f"""
        rule q(date: date):
            output: "out/q_{{date}}"
            python: {module}.{action}""") + retry_line + "\n"))
    factory = TaskFactory(checked)
    tasks = [factory.from_params("q", {"date": datetime.date(2012, 1, 1) + datetime.timedelta(days=n)})
             for n in range(days)]
    plan = Plan(tasks, lambda t: [], lambda t: [], (), True)
    targets = Targets(str(directory))
    state = LocalState(str(directory / ".flow"))
    state.start_run("flow build", [], None)
    recorder = Recorder()
    runners = make_runners(checked, targets, jobs, str(directory), str(directory / ".flow" / "tmp"))
    settings = ExecutorSettings(jobs=jobs, wait_for_locks=wait, workdir=str(directory),
                                log_dir=str(directory / ".flow" / "logs"), retry_delay=0.01)
    executor = Executor(plan, runners, targets, state, Events(recorder), settings, requirements=factory.requirements)
    executor.warm(runners.get("worker"), jobs)
    outcome = executor.run()
    return tasks, plan, outcome, recorder, state


def written(directory) -> list:
    return sorted(os.listdir(directory / "out"))


def test_quick_tasks_travel_as_numbers_many_to_a_message(project, quick_messages):
    directory, _ = project
    tasks, plan, outcome, recorder, state = build(project, "ok", 400)
    assert not outcome.failed and plan.done()
    assert written(directory) == sorted(os.path.basename(t.output) for t in tasks)
    assert open(directory / "out" / "q_2012-02-01").read() == "2012-02-01"
    numbers = [n for message in quick_messages for n in message]
    assert len(numbers) > 300 and len(set(numbers)) == len(numbers)  # most tasks, each once
    assert len(quick_messages) < 100 and max(map(len, quick_messages)) > 10  # far fewer round trips than tasks
    assert state._locks._held == {}  # every lock was released
    statuses = [e[0] for e in recorder.events]
    assert statuses.count("started") == statuses.count("done") == 400


def test_a_task_another_flow_made_after_planning_is_not_run_again(project, quick_messages):
    directory, module = project
    (directory / "out").mkdir()
    (directory / "out" / "q_2012-01-20").write_text("made by another flow")  # after our plan, before our run
    tasks, plan, outcome, recorder, state = build(project, "ok", 40)
    # day 20 was found made under its lock, among days that travelled in quick messages
    sent = set().union(*quick_messages)
    assert {18, 20} <= sent and 19 not in sent
    assert ("complete", "q(2012-01-20)", None, None) in recorder.events
    assert (directory / "out" / "q_2012-01-20").read_text() == "made by another flow"
    assert len(written(directory)) == 40 and not outcome.failed and plan.done()


def _hold_lock(directory, task) -> subprocess.Popen:
    """Another process holding the task's lock, as another flow running it would, until its stdin closes."""
    key = Targets(str(directory)).of(task).lock_key(task)
    program = textwrap.dedent(f"""
        import sys
        from flow.runtime.locks import TaskLocks
        locks = TaskLocks({str(directory / ".flow")!r})
        assert locks.try_lock({key!r})
        print("held", flush=True)
        sys.stdin.read()
    """)
    holder = subprocess.Popen([sys.executable, "-c", program], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_task_another_flow_holds_is_skipped_without_wait(project, quick_messages):
    directory, module = project
    day = datetime.date(2012, 1, 25)
    held_task = TaskFactory(check(parse(textwrap.dedent(f"""
        rule q(date: date):
            output: "out/q_{{date}}"
            python: {module}.ok
    """)))).from_params("q", {"date": day})
    holder = _hold_lock(directory, held_task)
    try:
        tasks, plan, outcome, recorder, state = build(project, "ok", 40, wait=False)
    finally:
        holder.stdin.close()
        holder.wait(60)
    assert ("skipped", "q(2012-01-25)", None, None) in recorder.events
    # day 25's lock was refused among days that travelled in quick messages
    sent = set().union(*quick_messages)
    assert {23, 25} <= sent and 24 not in sent
    assert "q_2012-01-25" not in written(directory) and len(written(directory)) == 39


def test_a_failed_quick_task_is_retried_under_the_lock_it_kept(project, quick_messages):
    directory, _ = project
    tasks, plan, outcome, recorder, state = build(project, "fail_once_on_the_20th", 40, retries=1)
    failed = [e for e in recorder.events if e[0] == "failed"]
    assert [(e[1], e[2]) for e in failed] == [("q(2012-01-20)", "ValueError: the first try fails")]
    assert any(19 in m for m in quick_messages)  # the failure came from a quick message
    assert not outcome.failed and plan.done() and len(written(directory)) == 40
    assert state._locks._held == {}  # released after the retry


def test_a_failure_keeps_what_the_task_printed_in_its_log(project, quick_messages):
    directory, _ = project
    tasks, plan, outcome, recorder, state = build(project, "noisy_failure_on_the_9th", 20)
    [failure] = [e for e in recorder.events if e[0] == "failed"]
    assert failure[1:3] == ("q(2012-01-09)", "ValueError: no data")
    assert any(8 in m for m in quick_messages)
    log = open(failure[3]).read()
    assert "working on 2012-01-09" in log and "working on 2012-01-10" not in log
    assert failure[3] == str(directory / ".flow" / "logs" / "q" / "q(2012-01-09).log")


def test_a_worker_that_dies_in_a_quick_message_fails_only_the_task_that_killed_it(project, quick_messages):
    # days 1-3 make the rule quick, so day 8 travels in a quick message; which task killed the worker
    # is unknown then, so they all go back and run one to a message: day 8 fails alone
    directory, _ = project
    tasks, plan, outcome, recorder, state = build(project, "die_on_the_8th", 31)
    assert any(7 in m and len(m) > 1 for m in quick_messages), "day 8 never travelled in a quick message"
    assert [(t.id, e) for t, e in outcome.failed] == [("q(2012-01-08)", "the worker process died (exit code 5)")]
    assert written(directory) == sorted(f"q_{datetime.date(2012, 1, d)}" for d in range(1, 32) if d != 8)
    assert plan.done()


def test_two_workers_share_the_quick_messages(project, monkeypatch):
    directory, _ = project
    pids = set()
    submit_quick = WorkerPool.submit_quick

    def recording(self, message: QuickMessage, queue=False):
        worker, queued = submit_quick(self, message, queue)
        pids.add(worker.pid)
        return worker, queued

    monkeypatch.setattr(WorkerPool, "submit_quick", recording)
    tasks, plan, outcome, recorder, state = build(project, "ok", 2000, jobs=2)
    assert not outcome.failed and len(written(directory)) == 2000
    assert len(pids) == 2
