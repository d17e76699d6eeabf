"""How attempts run: the Runner interface the executor drives, and the small records runners exchange.

A Runner takes `Job`s and gives back `Result`s; the executor never knows whether an attempt runs
in a forked worker (`workers.WorkerPool`) or on a thread beside the build's SparkSession
(`spark.SparkLane`); another host would be one more Runner. Every runner goes through the same
attempt sequence (`attempt.py`: prepare, run the action, publish or discard, log). Which runner an
action goes to is said once, in `actions.registry.ACTION_KINDS`.

The dry run is not a Runner: `flow --dry-run` lists tasks requirements first (`plan.run_order`),
which the event loop's order is not, and at 100,000 tasks the loop would double its time.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from ..actions.registry import ACTION_KINDS


class Job(NamedTuple):
    """One attempt of one task, as sent to a runner (a tuple underneath: cheap to pickle through a pipe)."""

    seq: int  # the executor's number for this attempt
    rule: str
    values: tuple  # the task's parameter values, in the rule's order
    inputs: list  # the locations of what the task requires, in requires order
    temp: Optional[str]  # where the action writes; None when it writes the output itself (tables); a tuple for a batch
    output: str  # the final location (a tuple of one per partition for a batch of `batch: N`)
    kind: str  # the output's kind: the runner picks the Target with it and the location
    task_id: str
    log_path: str
    workdir: str  # the Flowfile's directory: actions run there
    forced: bool  # `--force`: a transactional action redoes work its marker says is done
    timeout: Optional[float]  # seconds, for runners that enforce it themselves (Spark)

    @property
    def location(self) -> str:
        """An output the runner picks the Target by: a batch's outputs (a tuple) all live in one place."""
        output = self.output
        return output[0] if output.__class__ is tuple else output


def job_of(seq: int, task, target, requirements, log_path: str, workdir: str, forced: bool = False) -> Job:
    """The Job of one attempt of a task (a batch's is the executor's own), wherever it is made.

    The executor makes it for a job it sends; a worker running quick tasks from their numbers
    (quick.py) makes the same one itself.
    """
    info = task.info
    output = task.output
    inputs = [r.output for r in requirements(task)] if info.has_requires else []
    return Job(seq, info.name, task.values, inputs, target.stage(output), output, target.kind, task.id, log_path,
               workdir, forced, info.node.timeout)


class Result(NamedTuple):
    """How an attempt ended."""

    seq: int
    ok: bool
    message: Optional[str]  # the error, or the action's own status line (for example "loaded 3 rows")
    log_path: Optional[str]  # the task's log, when it printed something or failed
    tail: Optional[list]  # the log's last lines, for a failure
    duration: float


class Runner:
    """Runs attempts for the executor. One instance per kind of runner per build, made on first use.

    The executor counts `busy` against `-j`, waits on `sources()` with the other runners' sources,
    and hands each ready source back to `collect`.
    """

    name = ""

    def warm(self, count: int, handover=None) -> bool:
        """Get ready for `count` attempts before the build starts any thread (the pool forks its workers).

        `handover` (quick.Handover, or None) is what a forked process needs to run planned tasks
        from their numbers; a runner that can returns True, and takes `submit_quick` from then on.
        """
        return False

    @property
    def busy(self) -> int:
        """Attempts running now (each holds one of the build's `-j` slots)."""
        return 0

    def can_queue(self, task=None) -> bool:
        """Whether one more job (of `task`, when given) may wait behind a running one although every slot is taken."""
        return False

    def message_size(self, task) -> int:
        """How many jobs of `task`'s rule one slot may start at once (a worker's message of quick jobs); 1 here."""
        return 1

    def submit(self, job: Job, task, queue: bool = False):
        """Start an attempt (or, with `queue`, let it wait behind a running one); return a handle or None.

        A handle whose `queued` attribute is true is waiting: its clock has not started.
        """
        raise NotImplementedError

    def submit_quick(self, message, queue: bool = False):
        """Start a quick.QuickMessage (or, with `queue`, let it wait behind a running one); as `submit`.

        Its reply comes back from `collect` as one quick.QuickEnded. Only after `warm` returned True.
        """
        raise NotImplementedError

    def flush(self) -> None:
        """Send what `submit` has gathered (a runner may send several jobs in one message); called before waiting."""

    def sources(self) -> list:
        """Objects `multiprocessing.connection.wait` can watch; one becomes ready when an attempt ends."""
        return []

    def collect(self, source) -> list:
        """What ended, for a source that became ready (None: what ended without waiting, if the runner knows).

        One `(result, started, resend)` tuple per ended attempt (a plain tuple: one per task;
        `result` is None when only jobs to send again come back, a quick.QuickEnded for a quick message):
        `started` is the seq of a job that waited behind it and has started now, or None;
        `resend` lists the jobs (and quick messages) that waited behind one that died, never started,
        to send again.
        """
        return []

    def cancel(self, handle, task) -> list:
        """Stop an attempt (timeout, Ctrl-C); return the jobs that waited behind it, never started."""
        return []

    def close(self) -> None:
        """Stop everything still running and release the runner's processes and threads."""


class Runners:
    """The runners of one build, each made on first use from its factory: "worker" -> WorkerPool, ...

    `for_kind(action_kind)` is the Runner an action's attempts go to (actions.registry says which).
    """

    def __init__(self, factories: dict):
        self._factories = factories
        self._made: dict = {}
        self._list: list = []  # the runners made so far, asked per task

    def get(self, name: str) -> "Runner | None":
        """The runner of that name, made now if it was not; None when the build has no such runner."""
        runner = self._made.get(name)
        if runner is None:
            factory = self._factories.get(name)
            if factory is None:
                return None
            runner = self._made[name] = factory()
            self._list.append(runner)
        return runner

    def for_kind(self, action_kind: str) -> "Runner | None":
        """The runner for an action kind, or None when no runner runs that kind."""
        kind = ACTION_KINDS.get(action_kind)
        return None if kind is None else self.get(kind.runner)

    def made(self) -> list:
        """The runners made so far (do not change the list)."""
        return self._list

    def close(self) -> None:
        for runner in self.made():
            runner.close()
