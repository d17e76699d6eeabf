"""Quick messages: a worker forked after planning runs planned tasks from their numbers in the plan's list.

A build of many tasks that take microseconds was paced by the main process, which named every
task's inputs, temporary and log and pickled them into a Job; with two workers it was the
bottleneck, so `-j2` was no faster than `-j1`. The workers are forked after planning and hold the
same list of tasks, so for the tasks of quick rules the main process sends only their numbers and
gets back one short outcome per task: what a Job says is worked out by the workers, side by side.
The main process keeps what must be decided in one place: the plan, the locks, the events and the
history.
"""

from __future__ import annotations

import time
from functools import partial
from typing import NamedTuple

from ..actions.registry import ACTION_KINDS
from ..tasklog import LogPaths
from . import job_of
from .attempt import run_attempt

# The first field of a task's outcome in a quick message's reply.
DONE = 0  # (DONE, started, duration): ran and published
FAILED = 1  # (FAILED, started, duration, error, log path, log tail)


class QuickMessage(NamedTuple):
    """Tasks for one worker to run in order, by their numbers in the plan's list (`Handover.tasks`)."""

    seq: int  # the executor's number for the message
    numbers: list


class QuickEnded(NamedTuple):
    """A worker's reply to a QuickMessage: one outcome per task, in order, and the seconds per rule of those done."""

    seq: int
    outcomes: list
    seconds: dict  # rule -> (tasks done, their total seconds): how quick each rule is


class Handover:
    """What the executor hands a worker pool before it forks, so that a worker can run a planned task from its number.

    `tasks` is the plan's list (the same in every process forked after planning), `requirements`
    gives a task's requirements (their outputs are its inputs).
    """

    def __init__(self, tasks: list, requirements, targets, log_dir: str, workdir: str):
        self.tasks = tasks
        self.requirements = requirements
        self.targets = targets
        self.log_dir = log_dir
        self.workdir = workdir
        self._numbers = None  # task -> its number, made in the main process on first use

    def numbers(self, tasks: list) -> list:
        """The numbers of `tasks` in the plan's list (in the main process)."""
        index = self._numbers
        if index is None:
            index = self._numbers = {task: number for number, task in enumerate(self.tasks)}
        return list(map(index.__getitem__, tasks))

    def tasks_of(self, message: QuickMessage) -> list:
        return [self.tasks[number] for number in message.numbers]

    def run(self, message: QuickMessage, lane, new_log) -> QuickEnded:
        """In a worker: the message's tasks in turn, each as a job is run (the main process holds their locks).

        `lane` is the worker's WorkerLane, `new_log(path)` the log of one attempt (`path` may be a
        function: a log is named only when there is something to write).
        """
        tasks, targets, requirements, workdir = self.tasks, self.targets, self.requirements, self.workdir
        seq = message.seq
        name_log = LogPaths(self.log_dir).of
        outcomes = []
        seconds: dict = {}
        for number in message.numbers:
            task = tasks[number]
            info = task.info
            target = targets.of(task)
            job = job_of(seq, task, target, requirements, None, workdir)
            started = time.time()
            result = run_attempt(job, info, ACTION_KINDS[info.node.action.kind], lane, target,
                                 new_log(partial(name_log, task)))
            duration = result.duration
            if result.ok:
                outcomes.append((DONE, started, duration))
                total = seconds.get(info.name)
                seconds[info.name] = (1, duration) if total is None else (total[0] + 1, total[1] + duration)
            else:
                outcomes.append((FAILED, started, duration, result.message, result.log_path, result.tail))
        return QuickEnded(seq, outcomes, seconds)
