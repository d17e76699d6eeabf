"""Run Spark tasks on threads of the main process, so that every task of a build shares one SparkSession."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from . import targets
from .actions.base import ActionContext, ActionFailed, user_traceback
from .workers import _tail


class SparkLane:
    """A thread pool for `spark:` and `spark-submit:` tasks; the session starts with the first function task."""

    def __init__(self, flowfile, jobs: int, cli_master: str | None = None):
        from .actions import spark

        self._spark = spark
        self.flowfile = flowfile
        self.settings = flowfile.spark or {}
        self.cli_master = cli_master
        self.master = spark.effective_master(cli_master, self.settings)
        self.holder = spark.SparkSessionHolder.from_settings(self.settings, self.master)
        self.flowfile_dir = os.getcwd()  # the build runs in the Flowfile's directory
        self._threads = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="flow-spark")

    def submit(self, seq, task, inputs, temp, log_path, timeout, done) -> None:
        self._threads.submit(self._run, seq, task, inputs, temp, log_path, timeout, done)

    def _run(self, seq, task, inputs, temp, log_path, timeout, done) -> None:
        spark = self._spark
        action = task.info.node.action
        kind = task.info.output.kind
        started = time.perf_counter()
        ctx = ActionContext(task.id, task.name, task.params, inputs, temp if kind != "table" else task.output,
                            task.id, self.flowfile_dir, {"output_kind": kind})
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        error = None
        try:
            targets.prepare(task.output)
            if action.kind == "spark":
                spark.run_spark_function(ctx, action, self.holder, log_path, timeout)
            else:
                master = spark.effective_master(self.cli_master, self.settings, rule=action.settings.get("master"))
                spark.run_spark_submit(ctx, action, self.settings, master, log_path, timeout)
            if kind != "table":
                targets.commit(temp, task.output, kind)
        except ActionFailed as exc:
            error = str(exc)
        except BaseException as exc:  # the user's function may raise anything
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(user_traceback(exc))
        if error is not None and temp:
            targets.remove_path(temp)
        has_log = os.path.exists(log_path) and os.path.getsize(log_path) > 0
        if not has_log and os.path.exists(log_path):
            os.unlink(log_path)  # nothing was printed: no empty log files
        tail = _tail(log_path) if error is not None and has_log else None
        done((seq, error is None, error, log_path if has_log else None, tail, time.perf_counter() - started))

    def cancel(self, task) -> None:
        """Stop a task's Spark jobs (function form) or its spark-submit process group."""
        self._spark.cancel(task.id, self.holder, "timed out or interrupted")

    def close(self) -> None:
        self._spark.cancel_all(self.holder, "the build is stopping")
        self._threads.shutdown(wait=True, cancel_futures=True)
        self.holder.stop()
