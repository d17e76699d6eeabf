"""Executor tests with a fake reporter that records events (doit's FakeReporter), real workers, temp dirs."""

from __future__ import annotations

import os
import textwrap

import pytest
from flow.compiler.checks import check
from flow.compiler.graph import TaskFactory, build_graph
from flow.compiler.parser import parse
from flow.runtime.commands.build import make_runners
from flow.runtime.events import Events, ReporterListener
from flow.runtime.executor import Executor, ExecutorSettings
from flow.runtime.plan import Plan
from flow.runtime.targets import Targets

from tests.actions import action_module

ACTIONS = '''
import time

def ok(date, output):
    open(output, "w").write(str(date))

def boom(date, output):
    raise ValueError(f"boom {date}")

def quick_or_die(date, output):
    import os
    if date.day == 8:
        os._exit(5)
    open(output, "w").write(str(date))

def slow_fail(date, output):
    time.sleep(0.3)
    raise ValueError("slow failure")
'''


class FakeReporter:
    def __init__(self):
        self.events = []

    def build_started(self, *args):
        self.events.append(("build_started",))

    def task_started(self, task, attempt):
        self.events.append(("started", task.id, attempt))

    def task_finished(self, task, status, duration, error=None, log_path=None, log_tail=None):
        self.events.append(("finished", task.id, status, error))

    def message(self, text, level="info"):
        self.events.append(("message", text))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    with action_module(tmp_path, monkeypatch, ACTIONS, "exec_actions") as made:
        yield made


def settings(directory, jobs):
    return ExecutorSettings(jobs=jobs, workdir=str(directory), log_dir=str(directory / ".flow" / "logs"))


def run(workdir, flowfile, target_calls, jobs=1, keep_going=False):
    directory, module = workdir
    checked = check(parse(textwrap.dedent(flowfile).replace("ACTS", module)))
    factory = TaskFactory(checked)
    roots = [factory.from_params(name, params) for name, params in target_calls]
    outputs = Targets(str(directory))
    graph = build_graph(factory, roots, outputs.complete)
    to_run = [t for t in graph.graph if t not in graph.complete]
    plan = Plan(to_run, graph.graph.succ.__getitem__, graph.graph.pred.__getitem__, (), keep_going)
    reporter = FakeReporter()
    runners = make_runners(checked, outputs, jobs, str(directory), str(directory / ".flow" / "tmp"))
    executor = Executor(plan, runners, outputs, None, Events(ReporterListener(reporter)), settings(directory, jobs),
                        requirements=factory.requirements)
    return executor.run(), plan, reporter


def test_events_in_order_for_a_chain(workdir):
    import datetime

    outcome, plan, reporter = run(workdir, """
        rule a(date: date):
            output: "out/a_{date}"
            python: ACTS.ok
        rule b(date: date):
            requires: a(date)
            output: "out/b_{date}"
            python: ACTS.ok
    """, [("b", {"date": datetime.date(2012, 1, 1)})])
    assert reporter.events == [
        ("started", "a(2012-01-01)", 1), ("finished", "a(2012-01-01)", "done", None),
        ("started", "b(2012-01-01)", 1), ("finished", "b(2012-01-01)", "done", None),
    ]
    assert [t.id for t in outcome.ran] == ["a(2012-01-01)", "b(2012-01-01)"]
    assert open("out/b_2012-01-01").read() == "2012-01-01"


def test_a_pending_retry_ends_as_a_failure_when_another_task_stops_the_build(workdir, monkeypatch):
    import datetime

    import flow.runtime.executor as executor_module

    monkeypatch.setattr(executor_module, "RETRY_BASE_DELAY", 1.0)
    outcome, plan, reporter = run(workdir, """
        rule flaky(date: date):
            output: "out/flaky_{date}"
            python: ACTS.boom
            retries: 3
        rule broken(date: date):
            output: "out/broken_{date}"
            python: ACTS.slow_fail
    """, [("flaky", {"date": datetime.date(2012, 1, 1)}), ("broken", {"date": datetime.date(2012, 1, 1)})],
        jobs=2)
    failed = {task.id: error for task, error in outcome.failed}
    assert failed == {"broken(2012-01-01)": "ValueError: slow failure",
                      "flaky(2012-01-01)": "ValueError: boom 2012-01-01"}
    attempts = [e for e in reporter.events if e[0] == "started" and e[1] == "flaky(2012-01-01)"]
    assert attempts == [("started", "flaky(2012-01-01)", 1)]  # no retry started after the stop
    assert plan.done()


def test_keep_going_reports_blocked_dependents(workdir):
    import datetime

    day = datetime.date(2012, 1, 1)
    outcome, plan, reporter = run(workdir, """
        rule bad(date: date):
            output: "out/bad_{date}"
            python: ACTS.boom
        rule good(date: date):
            output: "out/good_{date}"
            python: ACTS.ok
        rule top(date: date):
            requires: bad(date), good(date)
            output: "out/top_{date}"
            python: ACTS.ok
    """, [("top", {"date": day})], keep_going=True)
    assert [t.id for t in outcome.ran] == ["good(2012-01-01)"]
    assert {t.id: cause.id for t, cause in plan.blocked.items()} == {"top(2012-01-01)": "bad(2012-01-01)"}


def test_a_job_queued_behind_a_worker_that_dies_is_sent_again(workdir, monkeypatch):
    import datetime

    from flow.runtime.runners.workers import WorkerPool

    queued = []
    submit = WorkerPool.submit

    def counting_submit(self, job, task, queue=False):
        handle, behind = submit(self, job, task, queue)
        if behind:
            queued.append(job.task_id)
        return handle, behind

    monkeypatch.setattr(WorkerPool, "submit", counting_submit)
    days = [datetime.date(2012, 1, d) for d in range(1, 13)]
    directory, module = workdir
    checked = check(parse(textwrap.dedent("""
        rule q(date: date):
            output: "out/q_{date}"
            python: ACTS.quick_or_die
    """).replace("ACTS", module)))
    factory = TaskFactory(checked)
    tasks = [factory.from_params("q", {"date": d}) for d in days]
    plan = Plan(tasks, lambda t: [], lambda t: [], (), True)
    outputs = Targets(str(directory))
    runners = make_runners(checked, outputs, 1, str(directory), str(directory / ".flow" / "tmp"))
    outcome = Executor(plan, runners, outputs, None, Events(ReporterListener(FakeReporter())), settings(directory, 1),
                       requirements=factory.requirements).run()
    assert queued, "no job was ever queued behind a quick one: the test does not test what it says"
    assert [(t.id, e) for t, e in outcome.failed] == [("q(2012-01-08)", "the worker process died (exit code 5)")]
    assert sorted(os.listdir("out")) == sorted(f"q_{d}" for d in days if d.day != 8)
    assert plan.done()


def _record_messages(monkeypatch) -> list:
    """The jobs of every message the worker pool sends, as lists of task ids."""
    from flow.runtime.runners.workers import WorkerPool

    messages = []
    flush = WorkerPool.flush

    def recording_flush(self):
        messages.extend([job.task_id for job in worker.pending] for worker in self.busy_workers.values()
                        if worker.pending)
        flush(self)

    monkeypatch.setattr(WorkerPool, "flush", recording_flush)
    return messages


def _quick_days(workdir, action: str, count: int):
    import datetime

    directory, module = workdir
    checked = check(parse(textwrap.dedent(f"""
        rule q(date: date):
            output: "out/q_{{date}}"
            python: {module}.{action}
    """)))
    factory = TaskFactory(checked)
    days = [datetime.date(2012, 1, 1) + datetime.timedelta(days=n) for n in range(count)]
    tasks = [factory.from_params("q", {"date": d}) for d in days]
    plan = Plan(tasks, lambda t: [], lambda t: [], (), True)
    outputs = Targets(str(directory))
    executor = Executor(plan, make_runners(checked, outputs, 1, str(directory), str(directory / ".flow" / "tmp")),
                        outputs, None, Events(ReporterListener(FakeReporter())), settings(directory, 1),
                        requirements=factory.requirements)
    return days, plan, executor


def test_quick_tasks_travel_to_the_worker_many_to_a_message(workdir, monkeypatch):
    messages = _record_messages(monkeypatch)
    days, plan, executor = _quick_days(workdir, "ok", 400)
    outcome = executor.run()
    assert not outcome.failed and plan.done()
    assert sorted(os.listdir("out")) == sorted(f"q_{d}" for d in days)
    assert sum(len(m) for m in messages) == 400  # every job sent once
    assert max(len(m) for m in messages) > 10, [len(m) for m in messages]
    assert len(messages) < 100  # far fewer round trips than tasks


def test_a_worker_that_dies_inside_a_message_of_many_fails_only_the_job_that_killed_it(workdir, monkeypatch):
    # days 1-3 make the rule known to be quick, so day 8 travels among others; which job killed the
    # worker is unknown then, so they all come back and run one to a message: day 8 fails alone
    messages = _record_messages(monkeypatch)
    days, plan, executor = _quick_days(workdir, "quick_or_die", 31)
    outcome = executor.run()
    assert any("q(2012-01-08)" in m and len(m) > 1 for m in messages), "day 8 never travelled with others"
    assert [(t.id, e) for t, e in outcome.failed] == [("q(2012-01-08)", "the worker process died (exit code 5)")]
    assert sorted(os.listdir("out")) == sorted(f"q_{d}" for d in days if d.day != 8)
    assert plan.done()


def test_a_quick_rules_worker_gets_its_next_message_before_it_answers_the_one_it_runs(workdir, monkeypatch):
    # Two messages in the pipe: the worker starts on the second while the main process handles the
    # results of the first. With one message at a time, the two processes took turns.
    from flow.runtime.runners.workers import WorkerPool

    in_flight = []
    start_ready = Executor._start_ready

    def recording_start_ready(self):
        start_ready(self)
        pools = [runner for runner in self._made if isinstance(runner, WorkerPool)]
        in_flight.append(max((len(w.sent) for pool in pools for w in pool.busy_workers.values()), default=0))

    monkeypatch.setattr(Executor, "_start_ready", recording_start_ready)
    days, plan, executor = _quick_days(workdir, "ok", 600)
    outcome = executor.run()
    assert not outcome.failed and plan.done()
    assert sorted(os.listdir("out")) == sorted(f"q_{d}" for d in days)
    assert max(in_flight) == 2, in_flight  # never more: at most one message waits behind the running one
