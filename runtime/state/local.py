"""State on one host: run history in SQLite (history.py) and task locks as fcntl byte ranges (locks.py)."""

from __future__ import annotations

import os

from ..history import FILE_NAME, History
from . import StateStore, remove_task_logs


class LocalState(StateStore):
    """`.flow/history.sqlite` and `.flow/task-locks/` of one project; shared by the flow processes of one host."""

    def __init__(self, flow_dir: str):
        self.flow_dir = flow_dir
        self.history = History(flow_dir)
        self._locks = None  # opened on the first lock: reading history never creates .flow/task-locks

    def exists(self) -> bool:
        """Whether any history has been written (flow log says so when none has)."""
        return os.path.exists(os.path.join(self.flow_dir, FILE_NAME))

    def try_lock(self, key: str) -> bool:
        return self._open_locks().try_lock(key)

    def unlock(self, key: str) -> None:
        if self._locks is not None:
            self._locks.unlock(key)

    def start_run(self, command: str, targets: list, plan=None) -> int:
        """Record the run, and open the locks file: a read-only or broken .flow/ shows before anything runs."""
        run_id = self.history.start_run(command, targets, plan)
        self._open_locks()
        return run_id

    def _open_locks(self):
        locks = self._locks
        if locks is None:
            from ..locks import TaskLocks

            locks = self._locks = TaskLocks(self.flow_dir)
            # asked twice per task by the executor: the locks' own methods, without this class's forwarding
            self.try_lock, self.unlock = locks.try_lock, locks.unlock
        return locks

    def record(self, run_id, task, status, attempt, started, duration, error=None) -> None:
        self.history.record(run_id, task, status, attempt, started, duration, error)

    def record_start(self, run_id, task, attempt, started) -> None:
        self.history.record_start(run_id, task, attempt, started)

    def record_starts(self, run_id, starts) -> None:
        self.history.record_starts(run_id, starts)

    def record_many(self, run_id, attempts) -> None:
        self.history.record_many(run_id, attempts)

    def record_blocked(self, run_id, blocked) -> None:
        self.history.record_blocked(run_id, blocked)

    def due_at(self):
        return self.history.due_at()

    def flush_if_due(self) -> None:
        self.history.flush_if_due()

    def finish_run(self, run_id: int, status: str, counts: dict) -> None:
        self.history.finish_run(run_id, status, counts)

    def prune(self, keep_runs: int) -> int:
        return self.history.prune(keep_runs)

    def retain(self, keep_runs: int, keep_days: float, log_dir: str) -> int:
        """History retention: the history's rows in one transaction, then the logs of tasks no kept run attempted."""
        removed, stale = self.history.retain(keep_runs, keep_days)
        remove_task_logs(log_dir, stale)
        return removed

    def mean_durations(self, rules: list) -> dict:
        return self.history.mean_durations(rules)

    def last_status(self, task_ids: list) -> dict:
        return self.history.last_status(task_ids)

    def recent_runs(self, limit: int = 10) -> list:
        return self.history.recent_runs(limit)

    def failed_attempts(self, run_id: int) -> list:
        return self.history.failed_attempts(run_id)

    def close(self) -> None:
        try:
            if self._locks is not None:
                self._locks.close()
                self._locks = None
                del self.try_lock, self.unlock  # the class's methods again: a later lock opens the file anew
        finally:
            self.history.close()
