"""Which runner runs each kind of action, and the one function that runs it: the only place action kinds are told apart.

An action kind is a `ActionKind(runner, run)`: `runner` names the Runner its attempts go to
("worker": a forked worker process; "spark": a thread beside the build's SparkSession; "program":
a thread that starts the program and waits for it), and
`run(ctx, action, job, lane)` does the work and returns a one-line status or None, raising
ActionFailed with a one-line message when it fails. `lane` is what the runner offers its actions
(`lane.database()` in workers; `lane.holder`, `lane.settings`, `lane.cli_master` on the Spark lane).
A new kind of action is one function here and one entry in ACTION_KINDS.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from .base import call_with_injection, resolve_function


class ActionKind(NamedTuple):
    """How one kind of action runs."""

    runner: str  # "worker", "spark" or "program": the Runner its attempts go to
    run: Callable  # (ctx, action, job, lane) -> status line or None


def run_python(ctx, action, job, lane):
    call_with_injection(resolve_function(action.target), ctx)
    return None


def run_sql(ctx, action, job, lane):
    from .sql import run_sql as run

    return run(ctx, action, lane.database())


def run_load(ctx, action, job, lane):
    from .sql import run_load as run

    return run(ctx, action, lane.database())


def run_spark_function(ctx, action, job, lane):
    from .spark import run_spark_function as run

    run(ctx, action, lane.holder, job.log_path, job.timeout)
    return None


def run_spark_submit(ctx, action, job, lane):
    from .spark import effective_master
    from .spark import run_spark_submit as run

    master = effective_master(lane.cli_master, lane.settings, rule=action.settings.get("master"))
    run(ctx, action, lane.settings, master, job.log_path, job.timeout)
    return None


def run_program(ctx, action, job, lane):
    from .command import run_program as run

    run(ctx, action, job.log_path, job.timeout)
    return None


ACTION_KINDS = {
    "python": ActionKind("worker", run_python),
    "sql": ActionKind("worker", run_sql),
    "load": ActionKind("worker", run_load),
    "spark": ActionKind("spark", run_spark_function),
    "spark-submit": ActionKind("spark", run_spark_submit),
    "command": ActionKind("program", run_program),
    "shell": ActionKind("program", run_program),
}
