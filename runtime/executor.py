"""Run a plan: hand ready tasks to runners, take locks, honour retries and timeouts, stop cleanly on Ctrl-C."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from multiprocessing.connection import wait

from .batches import Batch
from .events import Events, Outcome, TaskEvent, seconds_text
from .plan import Plan
from .runners import Job, Runners, job_of
from .runners.quick import DONE, Handover, QuickEnded, QuickMessage
from .tasklog import LogPaths

RETRY_BASE_DELAY = float(os.environ.get("FLOW_RETRY_DELAY", "1.0"))
RETRY_MAX_DELAY = 60.0
LOCK_POLL = 0.2
# At most this many tasks are claimed ahead from a coordinator in one round trip (two messages of a quick rule).
CLAIM_AHEAD = 512


@dataclass(frozen=True)
class ExecutorSettings:
    """How a build runs, as the user asked: `-j`, `--no-wait`, what `--force` forces, and where logs go."""

    jobs: int = 1
    wait_for_locks: bool = True
    forced: frozenset = frozenset()
    workdir: str = "."  # the Flowfile's directory: actions run there, relative outputs start there
    log_dir: str = ".flow/logs"
    retry_delay: float | None = None  # seconds before the first retry (`retry_delay` setting); None: the default


class Running:
    """An attempt handed to a runner (queued behind another job, or running)."""

    __slots__ = ("task", "attempt", "started", "deadline", "temp", "target", "runner", "handle", "queued")

    def __init__(self, task, attempt, started, deadline, temp, target, runner, handle=None, queued=False):
        self.task = task
        self.attempt = attempt
        self.started = started  # wall clock, for history
        self.deadline = deadline
        self.temp = temp
        self.target = target  # the Target of the task's output
        self.runner = runner
        self.handle = handle  # what the runner needs to stop it (a worker), or None
        self.queued = queued  # sent to a worker behind another job, not started yet


class QuickRun:
    """A quick message handed to a worker: tasks it runs from their numbers (runners/quick.py)."""

    __slots__ = ("tasks", "started", "runner", "handle", "queued")
    deadline = None  # quick rules have no timeout

    def __init__(self, tasks, started, runner, handle, queued):
        self.tasks = tasks
        self.started = started
        self.runner = runner
        self.handle = handle
        self.queued = queued


class Executor:
    """Drives a Plan: one event loop in the main process; attempts run on the runners it is handed.

    Collaborators, all explicit (Ninja's Builder): the `plan` (what is ready), the `runners` (where
    attempts run), the project's `targets` (where outputs live), the `state` store (task locks;
    None: take none), the `events` every task event goes to (console, history, ...) and the
    `settings`. `requirements(task)` gives a task's requirements, whose outputs are its inputs.
    `resources` (a resources.ResourcePool, or None when nothing is limited) holds back a task whose
    resources are not free, and the loop takes the next ready one meanwhile.
    `run()` returns the `Outcome`, itself a listener of the events.
    """

    def __init__(self, plan: Plan, runners: Runners, targets, state, events: Events, settings: ExecutorSettings,
                 *, requirements, resources=None):
        self.plan = plan
        self.runners = runners
        self.targets = targets
        self.state = state
        self.outcome = Outcome()
        self.events = Events(self.outcome, *events.listeners)
        self.settings = settings
        self.requirements = requirements
        self.resources = resources
        self.jobs = settings.jobs
        self.forced = settings.forced
        self._made = runners.made()  # the runners made so far: this list grows as runners are made
        self._rule_runners: dict = {}  # rule name -> its Runner (or None)
        self._keys: dict = {}  # task -> the key of the lock it holds
        self._running: dict = {}  # seq -> Running (queued jobs included)
        self._previous_sigint = None  # the SIGINT handler while Ctrl-C's clean-up runs
        self._seq = 0
        self._retries: list = []  # (due time, task, next attempt, last error)
        self._lock_waiting: list = []  # tasks another process holds
        self._log_paths = LogPaths(settings.log_dir)
        self._handover = None  # quick.Handover, once `warm` gave one to a runner that takes quick messages
        self._quick_runner = None  # that runner
        # a coordinator's claims cost a round trip each: the tasks of a round are claimed in one
        self._claims_ahead = state is not None and state.shared
        self._starts: list = []  # TaskEvents of attempts submitted since the last flush, told in one call

    def warm(self, runner, count: int) -> None:
        """Let `runner` get ready for `count` attempts, handing it what it needs to run quick tasks from their numbers.

        Not when resources are limited: they are counted here task by task, and such tasks start one by one.
        """
        handover = None
        if self.resources is None:
            handover = Handover(self.plan.to_run, self.requirements, self.targets, self.settings.log_dir,
                                self.settings.workdir)
        if runner.warm(count, handover) and handover is not None:
            self._handover, self._quick_runner = handover, runner

    # ------------------------------------------------------------------ main loop

    def run(self) -> Outcome:
        try:
            self._loop()
        except KeyboardInterrupt:
            self._interrupt()
        finally:
            self.runners.close()
            self._restore_interrupts()
        return self.outcome

    def _loop(self) -> None:
        plan = self.plan
        while True:
            self._start_ready()
            if not self._running and not self._retries and not self._lock_waiting and not plan.has_ready() \
                    and not (self.resources is not None and self.resources.waiting):
                break
            self._wait_and_handle()
            self._check_timeouts()
            self.events.tick()

    def _capacity(self) -> int:
        """How many more tasks may start executing now (-j minus the attempts running)."""
        capacity = self.jobs
        for runner in self._made:
            capacity -= runner.busy
        return capacity

    def _runner_of(self, task):
        """The runner of the task's action kind (None: no runner runs it), asked once per rule."""
        name = task.info.name
        runner = self._rule_runners.get(name, False)
        if runner is False:
            action = task.info.node.action
            runner = self._rule_runners[name] = self.runners.for_kind(action.kind) if action is not None else None
        return runner

    def _start_ready(self) -> None:
        plan = self.plan
        now = time.monotonic()
        if self._retries:
            due = [r for r in self._retries if r[0] <= now]
            if due:
                self._retries = [r for r in self._retries if r[0] > now]
                for _, task, attempt, error in due:
                    if plan.stopped:  # another task failed meanwhile: this one's failure stands
                        self._finished_event(TaskEvent("gave-up", task, attempt - 1, time.time(), error=error))
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
        pool = self.resources
        if pool is not None and pool.waiting:
            if plan.stopped:
                for task in pool.drain():
                    plan.put_back(task)  # never started: the summary counts it as not run
            elif self._capacity() > 0:
                for task in pool.retry(self._capacity()):
                    self._try_start(task, has_resources=True)
        # Fill, send, and fill again: a quick rule's worker takes a second message behind the one
        # it runs, so it starts on that one while this process handles the first one's results
        # (filling once per wake-up sent every message to an idle worker: the two took turns).
        while True:
            started = False
            if self._claims_ahead and plan.has_ready():
                self._claim_ahead()
            quick = self._quick_runner
            while plan.has_ready():
                task = plan.peek()
                runner = self._runner_of(task)
                if self._capacity() <= 0:  # every slot is busy: a task may still wait behind a quick one
                    if runner is None or not runner.can_queue(task):
                        break
                    if runner is quick and self._is_quick(task) and runner.can_queue_quick():
                        self._start_quick(runner, True)
                    else:
                        self._try_start(plan.next_ready())
                elif runner is quick and runner is not None and self._is_quick(task):
                    self._start_quick(runner, False)
                else:
                    self._try_start(plan.next_ready())
                started = True
            if self._starts:
                self._tell_starts()
            for runner in self._made:
                runner.flush()
            if not started:
                break

    def _claim_ahead(self) -> None:
        """Claim, in one round trip to a coordinator, the tasks this round will start.

        As many as the free slots take (a quick rule's message each: up to hundreds), or, when every
        slot is busy, one message queued behind a quick one; never more, since a task claimed here
        waits for this process and another process could have run it.
        """
        plan = self.plan
        first = plan.peek()
        runner = self._runner_of(first)
        per_slot = runner.message_size(first) if runner is not None else 1
        capacity = self._capacity()
        if capacity > 0:
            count = capacity * per_slot
        elif per_slot > 1 and runner.can_queue(first):
            count = per_slot
        else:
            return
        if count < 2:
            return  # one claim: try_lock's own round trip
        targets = self.targets
        keys = []
        for unit in plan.first_ready(min(count, CLAIM_AHEAD)):
            for task in unit.members if unit.__class__ is Batch else (unit,):
                keys.append(targets.of(task).lock_key(task))
        self.state.claim_ahead(keys)

    def _is_quick(self, task) -> bool:
        """Whether the task may travel in a quick message: its rule is known to be quick, and it is not forced."""
        return not self._travels_alone(task) and self._quick_runner.message_size(task) > 1

    def _travels_alone(self, task) -> bool:
        """Whether the task goes as a job whatever its rule: a batch, or forced (asked per task)."""
        return task.__class__ is Batch or bool(self.forced and task in self.forced)

    def _start_quick(self, runner, queue: bool) -> None:
        """Send the next ready tasks of quick rules in one quick message, which a worker runs from their numbers.

        Their locks are taken here, then the disk is asked once which of them another flow made
        after this one planned (as `_try_start` asks of one task).
        """
        plan = self.plan
        first = plan.peek()
        quick_rules: dict = {}  # rule name -> whether its tasks may join: asked once per rule, not per task

        def joins(task) -> bool:
            if self._travels_alone(task):
                return False
            name = task.info.name
            verdict = quick_rules.get(name)
            if verdict is None:  # asked per message: a rule whose message killed a worker is quick no more
                verdict = quick_rules[name] = self._runner_of(task) is runner and runner.message_size(task) > 1
            return verdict

        tasks = plan.take_while(runner.message_size(first), joins)
        if self.state is not None:
            tasks = self._lock_and_check(tasks)
            if not tasks:
                return
        self._seq += 1
        seq = self._seq
        now = time.time()
        self._starts.extend([TaskEvent("started", task, 1, now) for task in tasks])  # told before it is sent
        handle, queued = runner.submit_quick(QuickMessage(seq, self._handover.numbers(tasks)), queue)
        self._running[seq] = QuickRun(tasks, now, runner, handle, queued)

    def _lock_and_check(self, tasks: list) -> list:
        """Of these tasks, those whose lock this process took and whose output nobody made meanwhile."""
        locks, targets, keys = self.state, self.targets, self._keys
        locked = []
        check = []  # those another flow may have completed between our plan and our lock
        for task in tasks:
            target = targets.of(task)
            key = target.lock_key(task)
            if not locks.try_lock(key):
                self._lock_refused(task)
                continue
            keys[task] = key
            locked.append(task)
            if self._may_be_made(target, key):
                check.append(task)
        made = targets.complete(check) if check else None
        if not made:
            return locked
        for task in locked:
            if task in made:
                self._unlock(task)
                self._finished_event(TaskEvent("complete", task, 1, time.time()))
                self.plan.finished(task, True)
        return [task for task in locked if task not in made]

    def _quick_ended(self, ended: QuickEnded, done: list) -> None:
        """The outcomes of a quick message's tasks: successes join `done`; a failure is told at once, in order."""
        running = self._running.pop(ended.seq, None)
        if running is None:
            return  # given up on already (Ctrl-C)
        plan, keys, unlock = self.plan, self._keys, self.state.unlock if self.state is not None else None
        for task, outcome in zip(running.tasks, ended.outcomes):
            if outcome[0] == DONE:
                done.append(TaskEvent("done", task, 1, outcome[1], outcome[2]))
                if unlock is not None:
                    unlock(keys.pop(task))
                plan.finished(task, True)
                continue
            if done:  # each end in order: the successes before this one first
                self.events.tasks_finished(done[:])
                done.clear()
            _, started, duration, error, log_path, tail = outcome
            self._finish(task, 1, False, error, log_path, tail, duration, started)

    def _may_be_made(self, target, key) -> bool:
        """Whether another flow may have completed a task between our plan and our lock, so its output is
        asked again (a transactional target's action re-checks under its own lock; a coordinator knows
        when another process held the lock)."""
        return not target.transactional and (target.recheck_after_lock or self.state.taken_over(key))

    def _lock_refused(self, task) -> None:
        """Another flow holds the task's lock: wait for it (`--wait`, the default), or skip the task."""
        self._give_back(task)  # to whoever can run meanwhile; taken again when the lock is
        if self.settings.wait_for_locks:
            self._lock_waiting.append(task)
        else:
            self._finished_event(TaskEvent("skipped", task, 1, time.time()))
            self.plan.finished(task, False)

    def _try_start(self, task, has_resources: bool = False) -> None:
        """Take the task's resources and lock, check nobody finished it meanwhile, then start its first attempt."""
        if not has_resources and self.resources is not None and not self.resources.take(task):
            return  # parked in the pool until its resources are given back
        locks = self.state
        if locks is not None and task.__class__ is Batch:
            self._try_start_batch(task)
            return
        if locks is not None:
            target = self.targets.of(task)
            key = target.lock_key(task)
            if not locks.try_lock(key):
                self._lock_refused(task)
                return
            self._keys[task] = key
            if task not in self.forced and self._may_be_made(target, key):
                if target.complete([task]):
                    self._unlock(task)
                    self._finished_event(TaskEvent("complete", task, 1, time.time()))
                    self.plan.finished(task, True)
                    return
            self._start(task, 1, target)
            return
        self._start(task, 1)

    def _try_start_batch(self, batch: Batch) -> None:
        """A batch takes every member's lock (or none), and leaves out members another flow finished meanwhile."""
        locks = self.state
        target = self.targets.of(batch.members[0])
        taken = []
        for member in batch.members:
            key = target.lock_key(member)
            if not locks.try_lock(key):
                for held in taken:
                    locks.unlock(held)
                self._lock_refused(batch)
                return
            taken.append(key)
        self._keys[batch] = taken
        if batch not in self.forced and not target.transactional:
            done = target.complete(list(batch.members))
            if done:
                for member in batch.members:
                    if member in done:
                        key = target.lock_key(member)
                        taken.remove(key)
                        locks.unlock(key)
                        self._finished_event(TaskEvent("complete", member, 1, time.time()))
                batch.keep([member for member in batch.members if member not in done])
                if not batch.members:
                    del self._keys[batch]
                    self.plan.finished(batch, True)
                    return
        self._start(batch, 1)

    def _job(self, seq: int, task, target) -> Job:
        """The job of one attempt: a task's, or a batch's with one output, temporary and input list per partition."""
        timeout = task.info.node.timeout
        has_requires = task.info.has_requires
        if task.__class__ is Batch:
            members = task.members
            temps = tuple(target.stage(m.output) for m in members)
            inputs = [[r.output for r in self.requirements(m)] if has_requires else [] for m in members]
            return Job(seq, task.name, task.values, inputs, None if temps[0] is None else temps, tuple(task.outputs),
                       target.kind, task.id, self._log_paths.of(task), self.settings.workdir, task in self.forced,
                       timeout)
        return job_of(seq, task, target, self.requirements, self._log_paths.of(task), self.settings.workdir,
                      task in self.forced)

    def _start(self, task, attempt: int, target=None) -> None:
        action = task.info.node.action
        if action is None:  # an external rule reached the run queue: nothing can make it
            self._finish(task, attempt, False, f"external rule '{task.name}' is never run", None, None, 0.0,
                         time.time())
            return
        runner = self._runner_of(task)
        if runner is None:
            self._starts.append(TaskEvent("started", task, attempt, time.time()))
            self._tell_starts()
            self._finish(task, attempt, False, f"{action.kind} actions are not supported yet", None, None, 0.0,
                         time.time())
            return
        self._seq += 1
        seq = self._seq
        if target is None:
            target = self.targets.of(task.members[0] if task.__class__ is Batch else task)
        timeout = task.info.node.timeout
        job = self._job(seq, task, target)
        temp = job.temp
        queue = self._capacity() <= 0
        started = time.time()
        self._starts.append(TaskEvent("started", task, attempt, started))  # told before the job is sent
        handle, queued = runner.submit(job, task, queue)
        deadline = time.monotonic() + timeout if timeout and not queued else None  # a queued job's clock starts later
        self._running[seq] = Running(task, attempt, started, deadline, temp, target, runner, handle, queued)

    def _wait_and_handle(self) -> None:
        collected = []
        runners = self._made
        for runner in runners:
            collected.extend(runner.collect(None))  # ended without our waiting (threads)
        if not collected:
            owner = {}
            for runner in runners:
                for source in runner.sources():
                    owner[source] = runner
            for source in wait(list(owner), self._next_wakeup()):
                collected.extend(owner[source].collect(source))
        done = []  # the successes among the results, told to the listeners in one call
        try:
            for result, started, resend in collected:
                if result is not None:
                    if result.__class__ is QuickEnded:
                        self._quick_ended(result, done)
                    elif result.ok:
                        self._done(result, done)
                    else:
                        if done:
                            self.events.tasks_finished(done)
                            done = []
                        self._handle(result)
                if started is not None:
                    self._started_now(started)
                self._send_again(resend)
        finally:
            if done:
                self.events.tasks_finished(done)

    def _done(self, result, done: list) -> None:
        """A success: release the task, let its dependents start, and add its event to `done`."""
        running = self._running.pop(result.seq, None)
        if running is None:
            return  # a task we already gave up on (timed out)
        task = running.task
        done.append(TaskEvent("done", task, running.attempt, running.started, result.duration))
        self._unlock(task)
        self.plan.finished(task, True)

    def _started_now(self, seq) -> None:
        running = self._running.get(seq)
        if running is not None and running.queued:
            running.queued = False
            running.started = time.time()
            if running.__class__ is QuickRun:
                return
            timeout = running.task.info.node.timeout
            running.deadline = time.monotonic() + timeout if timeout else None

    def _send_again(self, jobs) -> None:
        """Jobs that were queued behind a task whose worker died or was killed: they never started."""
        for job in jobs:
            running = self._running.pop(job.seq, None)
            if running.__class__ is QuickRun:
                self._quick_again(running)
            elif running is not None:
                # The main process had not heard that it started, but the worker may have begun it
                # before it was stopped: its temporary goes too (the worker is gone by now).
                if running.temp:
                    _discard(running)
                self._give_back(running.task)
                self.plan.put_back(running.task)

    def _quick_again(self, running: QuickRun) -> None:
        """A quick message whose worker died or was stopped: its tasks go back to the plan, their locks kept.

        The worker may have left a temporary: the temporaries of dead processes beside their outputs
        are swept. Tasks it finished are found complete when they start again.
        """
        self.targets.sweep(running.tasks)
        for task in running.tasks:
            self.plan.put_back(task)

    def _next_wakeup(self):
        times = [r.deadline for r in self._running.values() if r.deadline is not None]
        times.extend(r[0] for r in self._retries)
        if self._lock_waiting:
            times.append(time.monotonic() + LOCK_POLL)
        if self.resources is not None and self._capacity() > 0:  # when full, an ending task wakes the loop
            poll = self.resources.wake_at()
            if poll is not None:
                times.append(poll)
        due = self.events.wake_at()
        if due is not None:
            times.append(due)
        if not times:
            return None
        return max(0.0, min(times) - time.monotonic())

    def _handle(self, result) -> None:
        seq, ok, message, log_path, tail, duration = result
        running = self._running.pop(seq, None)
        if running is None:
            return  # a task we already gave up on (timed out)
        if not ok and running.temp:
            _discard(running)  # a worker that died could not clean up after itself
        self._finish(running.task, running.attempt, ok, None if ok else message, log_path, tail, duration,
                     running.started)

    def _tell_starts(self) -> None:
        starts, self._starts = self._starts, []
        self.events.tasks_started(starts)

    def _finished_event(self, event: TaskEvent) -> None:
        """Tell the listeners an attempt ended, after the starts not told yet (each start before its end)."""
        if self._starts:
            self._tell_starts()
        self.events.task_finished(event)

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        for seq, running in list(self._running.items()):
            if running.deadline is not None and now >= running.deadline:
                del self._running[seq]
                self._stop_running(running)
                timeout = running.task.info.node.timeout
                self._finish(running.task, running.attempt, False, f"timed out after {seconds_text(timeout)}", None,
                             None, now - (running.deadline - timeout), running.started, status="timeout")

    def _stop_running(self, running) -> None:
        if running.queued:  # never started: the worker ahead of it is stopped on its own account
            return
        if running.__class__ is QuickRun:
            self._send_again(running.runner.cancel(running.handle, None))
            self.targets.sweep(running.tasks)  # what the stopped worker was writing
            return
        self._send_again(running.runner.cancel(running.handle, running.task))
        if running.temp:
            _discard(running)

    # ------------------------------------------------------------------ endings

    def _finish(self, task, attempt, ok, error, log_path, tail, duration, started, status=None) -> None:
        if ok:
            self._finished_event(TaskEvent("done", task, attempt, started, duration))
            self._unlock(task)
            self.plan.finished(task, True)
            return
        status = status or "failed"
        # Once, here, so that the console, the history, the page and every listener get the same
        # text: an action's error may quote a connection string or a secret variable's value.
        error, tail = _redacted(error), [_redacted(line) for line in tail] if tail else tail
        retries = task.info.node.retries
        if attempt <= retries and not self.plan.stopped:
            base = RETRY_BASE_DELAY if self.settings.retry_delay is None else self.settings.retry_delay
            delay = min(base * 2 ** (attempt - 1), RETRY_MAX_DELAY)
            self._finished_event(TaskEvent(status, task, attempt, started, duration, error, log_path, tail,
                                                delay, retries))
            self._retries.append((time.monotonic() + delay, task, attempt + 1, error))
            return
        self._finished_event(TaskEvent(status, task, attempt, started, duration, error, log_path, tail))
        self._unlock(task)
        self.plan.finished(task, False)

    def _unlock(self, task) -> None:
        """Release the task's lock and its resources: it ended, or will not start."""
        self._give_back(task)
        key = self._keys.pop(task, None)
        if key is None:
            return
        if key.__class__ is list:  # a batch holds the lock of every member
            for one in key:
                self.state.unlock(one)
        else:
            self.state.unlock(key)

    def _ignore_further_interrupts(self) -> None:
        """Ignore Ctrl-C while the clean-up runs (restored when run() returns), so it is never left half done."""
        import signal
        import threading

        if threading.current_thread() is threading.main_thread() and self._previous_sigint is None:
            self._previous_sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def _restore_interrupts(self) -> None:
        if self._previous_sigint is not None:
            import signal

            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None

    def _interrupt(self) -> None:
        """Ctrl-C: start nothing more, stop what runs, remove its temporaries."""
        self._ignore_further_interrupts()
        self.plan.stop()
        if self._starts:
            self._tell_starts()
        self.events.build_interrupted()
        for seq in list(self._running):
            running = self._running.pop(seq, None)
            if running is None:  # a queued job, already given back when the worker ahead was stopped
                continue
            self._stop_running(running)
            if running.__class__ is QuickRun:
                for task in running.tasks:
                    if not running.queued:
                        self._finished_event(TaskEvent("interrupted", task, 1, running.started,
                                                       time.time() - running.started))
                    self._unlock(task)
                continue
            if running.queued:  # never started: nothing to stop or record
                self._unlock(running.task)
                continue
            self._finished_event(TaskEvent("interrupted", running.task, running.attempt, running.started,
                                                time.time() - running.started))
            self._unlock(running.task)
        for _, task, attempt, error in self._retries:
            self._finished_event(TaskEvent("cancelled", task, attempt - 1, time.time(), error=error))
            self._give_back(task)  # a task waiting to retry keeps its resources until then
        self._retries = []
        self._lock_waiting = []
        if self.resources is not None:
            self.resources.drain()

    def _give_back(self, task) -> None:
        if self.resources is not None:
            self.resources.give_back(task)


def _redacted(text):
    if not text:
        return text
    from .db import redact_text

    return redact_text(text)


def _discard(running: Running) -> None:
    temp = running.temp
    for one in temp if temp.__class__ is tuple else (temp,):
        running.target.discard(one)

