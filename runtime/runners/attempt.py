"""One attempt of one task, the same for every runner: prepare, run the action, publish or discard, log."""

from __future__ import annotations

import os
import time

from .. import tasklog
from ..actions.base import ActionContext, ActionFailed, user_traceback
from ..batches import member_ids
from . import Job, Result

LOG_TAIL_LINES = 20


def run_attempt(job: Job, info, kind, lane, target, log) -> Result:
    """Run `job` of the rule `info` with its ActionKind `kind` on `lane`, writing through `target`.

    1. `log.begin()`; the Target prepares the output's place (its directory, say).
    2. The action runs with the temporary (or, for a transactional target, the output) as `output`.
    3. The Target publishes the temporary; after any failure it discards it instead.
    4. `log.end(error, traceback)` keeps what the task printed and gives the log's path and tail.
    """
    started = time.perf_counter()
    log.begin()
    error = trace = status = None
    temp = job.temp
    # A batch (`batch: N`) has a tuple of outputs and temporaries, one per partition, all or nothing.
    batch = job.output.__class__ is tuple
    outputs = job.output if batch else (job.output,)
    temps = (temp if batch else (temp,)) if temp is not None else None
    try:
        for output in outputs:
            target.prepare(output)
        extra = {"output_kind": job.kind, "force": True} if job.forced else {"output_kind": job.kind}
        if batch:
            extra["batch"] = True
            extra["partitions"] = list(job.values[info.batch_index])
            if temps is None:  # a table written in place: one table, a marker row per partition
                extra["update_ids"] = member_ids(info, job.values)
        written = list(temps if temps is not None else outputs)
        ctx = ActionContext(job.task_id, job.rule, dict(zip(info.param_names, job.values)), job.inputs,
                            written if batch and temps is not None else written[0], job.task_id, job.workdir,
                            extra)
        status = kind.run(ctx, info.node.action, job, lane)
        if temps is not None:
            for one_temp, output in zip(temps, outputs):
                target.publish(one_temp, output, replace=job.forced)
    except ActionFailed as exc:
        error = str(exc)
    except BaseException as exc:  # the user's code may raise anything, SystemExit included
        error = f"{type(exc).__name__}: {exc}".strip().splitlines()[0] if str(exc) else type(exc).__name__
        trace = user_traceback(exc)
    duration = time.perf_counter() - started
    if error is not None and temps is not None:
        for one_temp in temps:  # those published already stay: each partition is complete on its own
            target.discard(one_temp)
    log_path, tail = log.end(error, trace)
    return Result(job.seq, error is None, status if error is None else error, log_path, tail, duration)


class FileLog:
    """The log of an attempt whose action writes to the log file itself (Spark): kept only if not empty.

    A traceback is appended; a one-line ActionFailed is not (the action has said it in the log).
    """

    __slots__ = ("path",)

    def __init__(self, path: str):
        self.path = path

    def begin(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)

    def end(self, error, trace):
        path = self.path
        if trace:
            with open(path, "a", encoding="utf-8") as log:
                log.write(trace)
        tasklog.cap_file(path)
        has_log = os.path.exists(path) and os.path.getsize(path) > 0
        if not has_log and os.path.exists(path):
            os.unlink(path)  # nothing was printed: no empty log files
        return (path if has_log else None), (tail(path) if error is not None and has_log else None)


def tail(path: str, lines: int = LOG_TAIL_LINES) -> list:
    """The last lines of a log file (read from its end: a log may be large)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16384))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]
