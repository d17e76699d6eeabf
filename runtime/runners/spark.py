"""Run Spark tasks on threads of the main process, so that every task of a build shares one SparkSession."""

from __future__ import annotations

import os
import sys

from .. import processes
from .attempt import FileLog
from .threads import ThreadRunner


class SparkLane(ThreadRunner):
    """A thread pool for `spark:` and `spark-submit:` tasks; the session starts with the first function task.

    `cli_master` is `--spark-master`; with the Flowfile's `spark:` block it decides the master
    (actions.spark.effective_master).
    """

    name = "spark"

    def __init__(self, flowfile, jobs: int, targets, workdir: str, cli_master: str | None = None):
        from ..actions import spark

        # Spark actions run on threads of the main process, beside the build's one SparkSession, so
        # the actions' contract (run in the Flowfile's directory, import its modules) can only be
        # kept by the process itself: the lane takes it on when the build's first Spark task starts.
        if workdir not in sys.path:
            sys.path.insert(0, workdir)
        os.chdir(workdir)
        super().__init__(flowfile, jobs, targets, "spark")
        self._spark = spark
        self.settings = flowfile.spark or {}
        self.cli_master = cli_master
        self.master = spark.effective_master(cli_master, self.settings)
        self.holder = spark.SparkSessionHolder.from_settings(self.settings, self.master)

    def log(self, job):
        return FileLog(job.log_path)

    def cancel(self, handle, task) -> list:
        """Stop a task's Spark jobs (function form) or its spark-submit process group."""
        self._spark.cancel(task.id, self.holder, "timed out or interrupted")
        return []

    def close(self) -> None:
        self._spark.cancel_all(self.holder, "the build is stopping")
        super().close()
        processes.end_programs()  # what its programs left running (daemons too) ends with the build
        self.holder.stop()
