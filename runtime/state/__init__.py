"""Where a project's shared state lives: the history of runs and attempts, and the per-task locks.

`StateStore` is the interface the executor and the commands use; `LocalState` (local.py: SQLite
history in `.flow/history.sqlite`, fcntl byte-range locks in `.flow/task-locks/`) is the first
implementation, for flow processes on one host; `PostgresState` (coordinator.py: claims with
leases, resources and history in one PostgreSQL database) is shared by flow processes on many
hosts. `open_state(flow_dir, coordinator)` picks the store.
"""

from __future__ import annotations

import os
from typing import Optional


class StateStore:
    """Runs, attempts and task locks of one project. Writes of attempts may be buffered."""

    shared = False  # True when flow processes on other hosts share it (their runs show in the history)

    # ------------------------------------------------------------------ locks

    def try_lock(self, key: str) -> bool:
        """Take the lock of a task (Target.lock_key) if no other flow process holds it; never waits."""
        raise NotImplementedError

    def unlock(self, key: str) -> None:
        """Release a lock this process holds."""
        raise NotImplementedError

    def claim_ahead(self, keys: list) -> None:
        """The locks of tasks about to be tried (`keys`, in the order they will be): a store whose every
        lock costs a round trip takes them all in one now, so that try_lock answers from memory. Nothing
        here: local locks cost a system call each, whenever they are taken."""

    def taken_over(self, key: str) -> bool:
        """Whether another process held this lock before this one took it, so it may have finished the task.

        The executor then re-checks the output even for a Target that skips the re-check after a
        lock (object stores). False here: local locks leave no trace.
        """
        return False

    # ------------------------------------------------------------------ resources

    def try_take_resources(self, holder: str, amounts: dict, limits: dict, priority: int = 0) -> bool:
        """Take `amounts` (resource -> units) for `holder` if, with what other processes hold, no limit is passed.

        `priority` is the holder's: a shared store refuses it while another process asks for one
        of the resources at a higher priority. Never waits. Here: True, since within one process
        the executor does the counting; a store shared by several processes counts what they all hold.
        """
        return True

    def give_back_resources(self, holder: str) -> None:
        """Give back everything `holder` took."""

    # ------------------------------------------------------------------ writing

    def start_run(self, command: str, targets: list, plan: Optional[dict] = None) -> int:
        """Record a run as started, at once, and return its id; `plan` is what it intends (tasks per rule, jobs)."""
        raise NotImplementedError

    def record_start(self, run_id: int, task, attempt: int, started: float) -> None:
        """Record that an attempt is under way (buffered; its `record` ends it), for a live page."""

    def record_starts(self, run_id: int, starts: list) -> None:
        """`record_start` of several attempts at once: (task, attempt, started) each."""
        for task, attempt, started in starts:
            self.record_start(run_id, task, attempt, started)

    def record_blocked(self, run_id: int, blocked: dict) -> None:
        """Record the tasks a failed or missing requirement kept from running: task -> that requirement."""

    def due_at(self) -> Optional[float]:
        """A time.monotonic() by which flush_if_due should be called (something buffered), or None."""
        return None

    def record(self, run_id: int, task, status: str, attempt: int, started: float, duration: float,
               error: Optional[str] = None) -> None:
        """Record one ended attempt (buffered: see flush_if_due)."""
        raise NotImplementedError

    def record_many(self, run_id: int, attempts: list) -> None:
        """`record` of several ended attempts at once: (task, status, attempt, started, duration, error) each."""
        for task, status, attempt, started, duration, error in attempts:
            self.record(run_id, task, status, attempt, started, duration, error)

    def flush_if_due(self) -> None:
        """Write buffered attempts that have waited long enough (called from the executor's loop)."""

    def finish_run(self, run_id: int, status: str, counts: dict) -> None:
        """Write everything buffered, then the run's end: its status and its counts per outcome."""
        raise NotImplementedError

    def prune(self, keep_runs: int) -> int:
        """Delete all but the newest `keep_runs` runs; return how many went."""
        raise NotImplementedError

    def retain(self, keep_runs: int, keep_days: float, log_dir: str) -> int:
        """Delete runs beyond the newest `keep_runs` or older than `keep_days` (0: no such limit), and the
        task logs under `log_dir` that only they explain; return how many runs went. Cheap: run after every build."""
        return 0

    # ------------------------------------------------------------------ reading

    def exists(self) -> bool:
        """Whether any run has been recorded."""
        return True

    def mean_durations(self, rules: list) -> dict:
        """rule -> mean seconds of its recent successful attempts (for the ETA)."""
        return {}

    def last_status(self, task_ids: list) -> dict:
        """task_id -> (status, started, error) of its latest attempt."""
        return {}

    def recent_runs(self, limit: int = 10) -> list:
        """The latest runs, newest first, as dicts."""
        return []

    def failed_attempts(self, run_id: int) -> list:
        """The failed and timed-out attempts of a run, as dicts."""
        return []

    def running_now(self) -> list:
        """The attempts under way in every live process, as dicts (run_id, task_id, host, started)."""
        return []

    def built_by(self, task_ids: list) -> dict:
        """task_id -> the host of its latest attempt (only a shared store has more than one host)."""
        return {}

    def warnings(self) -> list:
        """Problems worth a line after the build (a lost lease), as text."""
        return []

    def close(self) -> None:
        """Write what is buffered, release every lock, close files and connections."""


def open_state(flow_dir: str, coordinator: Optional[str] = None, planned: Optional[float] = None,
               reading: bool = False) -> StateStore:
    """The state store of the project whose state directory is `flow_dir` (nothing is created until written).

    With a coordinator (FLOW_COORDINATOR_URL, or the Flowfile's `coordinator:` setting given
    here) it is the shared PostgreSQL store; StateError when the setting names an unset variable.
    `planned`: when the command began to look at outputs (time.monotonic()), for the coordinator's retention.
    `reading`: for a command that only shows the history (`flow log`, `flow status`): a coordinator that
    cannot be reached is said at once, not after a build's wait for it to come back.
    """
    from .coordinator import coordinator_dsn

    dsn = coordinator_dsn(coordinator)
    if dsn is not None:
        from .coordinator import PostgresState

        return PostgresState(dsn, planned=planned, wait=0.0 if reading else None)
    from .local import LocalState

    return LocalState(flow_dir)


def remove_task_logs(log_dir: str, stale) -> None:
    """Delete the logs of `stale` (rule, task id) pairs that retention left without an attempt, and rule
    directories left empty."""
    if not stale:
        return
    from ..tasklog import log_file

    rules = set()
    for rule, task_id in stale:
        rules.add(rule)
        try:
            os.unlink(log_file(log_dir, rule, task_id))
        except FileNotFoundError:  # a task that printed nothing and succeeded has no log
            pass
    for rule in rules:
        try:
            os.rmdir(os.path.join(log_dir, rule))  # only when its last log went
        except OSError:
            pass
