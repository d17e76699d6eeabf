"""The library behind `flow build`: load, resolve, check outputs, plan, run, report."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

from . import targets
from .limits import TaskCounter, TooManyTasks, max_tasks
from .session import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_MISSING_EXTERNAL,
    EXIT_OK,
    Session,
    lenient_complete,
    render_error,
)

DRY_RUN_LISTED_ROOTS = 20


@dataclass
class BuildOptions:
    flowfile: str = "Flowfile"
    targets: list = field(default_factory=list)
    dry_run: bool = False
    jobs: int = 1
    keep_going: bool = False
    force: bool = False
    force_upstream: bool = False
    wait: bool = True
    spark_master: str | None = None
    quiet: bool = False
    verbose: bool = False
    today: str | None = None  # pins the build's date (--today); else FLOW_TODAY, else the clock
    allow_open: bool = False  # build tasks whose period has not ended (--allow-open)
    max_tasks: int | None = None  # --max-tasks; else FLOW_MAX_TASKS, else limits.DEFAULT_MAX_TASKS; 0: none


def run_build(options: BuildOptions) -> int:
    """Build what the options ask for; return the process exit code."""
    from flow.compiler.errors import FlowError

    try:
        session = Session(options.flowfile, options.today)
        roots = session.roots(options.targets)
    except FlowError as exc:
        print(render_error(exc), file=sys.stderr)
        return exc.exit_code
    try:
        return _build(session, roots, options)
    except FlowError as exc:
        print(render_error(exc), file=sys.stderr)
        return exc.exit_code
    except targets.DatabaseUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except TooManyTasks as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        session.close()


def _build(session: Session, roots: list, options: BuildOptions) -> int:
    from .report import make_reporter, rule_estimates

    stream = sys.stdout
    complete = session.complete
    if options.dry_run:
        complete = lenient_complete(session)
    # 1. the no-op fast path: every requested output exists, and nothing is forced
    if not options.force:
        done = complete(roots)
        if len(done) == len(roots):
            if options.dry_run:
                _show_clock(session, options.targets, stream)
            if not options.quiet:
                count = len(roots)
                stream.write(f"nothing to do: {'all ' if count > 1 else ''}{count} target"
                             f"{'s' if count != 1 else ''} complete\n")
                if options.dry_run:  # say where each one is, and for tables that the marker is there
                    for task in roots[:DRY_RUN_LISTED_ROOTS]:
                        proof = "marker row present" if task.info.output.kind == "table" else "output exists"
                        stream.write(f"  {task.id}  {targets.describe(task)}  ({proof})\n")
                    if count > DRY_RUN_LISTED_ROOTS:
                        stream.write(f"  ... and {count - DRY_RUN_LISTED_ROOTS:,} more\n")
            return EXIT_OK

    # 2. grow the graph, stopping at complete tasks (forced ones excepted)
    from flow.compiler.graph import build_graph

    forced_roots = set(roots) if options.force else set()
    if options.force_upstream:
        descend = lambda task: not task.info.node.external  # noqa: E731
    else:
        descend = forced_roots.__contains__
    counter = TaskCounter(max_tasks(options.max_tasks), roots)
    graph = build_graph(counter.factory(session.factory), roots, counter.complete(complete), descend)
    nx_graph = graph.graph
    finished = graph.complete
    if options.force_upstream:
        forced = {t for t in nx_graph if not t.info.node.external}
    else:
        forced = forced_roots
    to_run = [t for t in nx_graph if not t.info.node.external and (t not in finished or t in forced)]
    missing = [t for t in nx_graph if t.info.node.external and t not in finished]
    from .open_periods import open_tasks, refusal

    still_open = open_tasks(to_run, session.clock, options.allow_open)
    if still_open:
        raise refusal(still_open, session.clock)
    requirements = session.factory.requirements

    def dependents(task):
        return nx_graph.pred[task]

    if options.dry_run:
        return _dry_run(session, to_run, forced, finished, missing, requirements, stream, options.targets)

    # 3. run
    from .executor import Executor
    from .history import History, StateError
    from .locks import TaskLocks
    from .plan import Plan
    from .workers import WORKER_ACTIONS

    if not to_run:
        if missing:
            reporter = make_reporter(stream, options.quiet, options.verbose)
            _report_missing(reporter, missing)
            reporter.close()
            return EXIT_MISSING_EXTERNAL
        return EXIT_OK
    if any(t.info.node.action.kind in ("sql", "load") for t in to_run):
        session.database_url()  # an embedded server starts here, before any worker connects to it
    targets.sweep({os.path.dirname(t.output) for t in to_run if t.info.output.kind != "table"})
    history = History(session.flow_dir)
    try:
        run_id = history.start_run(" ".join(["flow", "build"] + options.targets), [t.id for t in roots])
        locks = TaskLocks(session.flow_dir)
    except (StateError, OSError) as exc:  # a read-only or broken .flow/: say so before anything runs
        history.close()
        print(f"error: {_state_problem(exc, session.flow_dir)}", file=sys.stderr)
        return EXIT_FAILED
    plan = Plan(to_run, _graph_requirements(nx_graph), dependents, missing, options.keep_going)
    reporter = make_reporter(stream, options.quiet, options.verbose)
    spark = None
    if any(t.info.node.action is not None and t.info.node.action.kind.startswith("spark") for t in to_run):
        from .spark_lane import SparkLane

        spark = SparkLane(session.checked, options.jobs, options.spark_master)
    executor = Executor(
        plan, session.checked, jobs=options.jobs, flow_dir=session.flow_dir, reporter=reporter, history=history,
        run_id=run_id, locks=locks, wait_for_locks=options.wait, forced=frozenset(forced),
        requirements=requirements, spark=spark, markers=session.markers if _has_tables(to_run) else None,
    )
    # Fork the workers before the progress display starts its timer thread: a fork copies only
    # the forking thread, and a lock that thread held would stay locked in the child forever.
    executor.start_workers(sum(1 for t in to_run if t.info.node.action.kind in WORKER_ACTIONS))
    rules = sorted({t.name for t in to_run})
    reporter.build_started(len(to_run), len(finished), rule_estimates(to_run, history.mean_durations(rules)),
                           options.jobs)
    _report_missing(reporter, missing)
    started = time.monotonic()
    problems: list = []
    try:
        outcome = executor.run()
        summary, code = _summarise(plan, outcome, finished, missing, time.monotonic() - started)
        reporter.build_finished(summary)
        try:
            history.finish_run(run_id, _status_word(code), summary.counts())
        except StateError as exc:  # a full disk must not turn a finished build into a crash
            problems.append(str(exc))
    finally:
        locks.close()
        reporter.close()  # also on an unexpected error: the live display must give the terminal back
        try:
            history.close()
        except StateError as exc:
            problems.append(str(exc))
        for problem in dict.fromkeys(problems):
            print(f"warning: {problem}", file=sys.stderr)
    return code


def _state_problem(exc: Exception, flow_dir: str) -> str:
    """One line for state that cannot be written: the history's own message, or the OS error on .flow/."""
    if isinstance(exc, OSError):
        where = os.path.relpath(exc.filename, os.path.dirname(flow_dir)) if exc.filename else ".flow/"
        return f"cannot write {where}: {exc.strerror or exc}"
    return str(exc)


def _has_tables(tasks) -> bool:
    return any(t.info.output.kind == "table" for t in tasks)


def _graph_requirements(nx_graph):
    successors = nx_graph.succ
    return lambda task: successors[task]


def _dry_run(session, to_run, forced, finished, missing, requirements, stream, names) -> int:
    from .plan import run_order
    from .report import render_dry_run

    _show_clock(session, names, stream)
    order = run_order(to_run, requirements)
    reasons = []
    for task in order:
        if task in forced and task in finished:
            reason = "forced"
        elif task.info.output.kind == "table":
            reason = "marker unknown: database unreachable" if session.database_error else "marker row missing"
        else:
            reason = "output missing"
        reasons.append((task, reason))
    text = render_dry_run(reasons, len(finished), missing)
    if session.database_error:
        text += f"\nnote: cannot check table outputs: {session.database_error}\n"
    stream.write(text if text.endswith("\n") else text + "\n")
    return EXIT_MISSING_EXTERNAL if missing else EXIT_OK


def _show_clock(session, names: list, stream) -> None:
    """When the Flowfile reads today: the date used and what each relative range resolved to."""
    from flow.compiler.export import resolved_ranges

    if not session.checked.uses_clock:
        return
    stream.write(f"today: {session.clock.describe()}\n")
    for name, shown, count in resolved_ranges(session.factory):
        stream.write(f"  range {name} = {shown} ({count})\n")
    for name in names or [session.checked.default]:
        if name in session.checked.targets:
            tasks = session.factory.target(name)
            stream.write(f"  target {name} = {describe_tasks(tasks)}\n")
    stream.write("\n")


def describe_tasks(tasks: list) -> str:
    from .summary import group_tasks

    if not tasks:
        return "(no tasks)"
    return ", ".join(text for _, text in group_tasks(tasks))


def _report_missing(reporter, missing) -> None:
    for task in missing:
        reporter.message(f"missing external input: {task.id} at {targets.describe(task)}", "error")


def _summarise(plan, outcome, finished, missing, elapsed):
    from .report import Summary

    blocked = dict(plan.blocked)
    failed = [task for task, _ in outcome.failed]
    not_started = [t for t in plan.not_started() if t not in set(outcome.interrupted)]
    if outcome.was_interrupted:
        code = EXIT_INTERRUPTED
    elif failed or outcome.skipped_locked:
        code = EXIT_FAILED
    elif missing and blocked:
        code = EXIT_MISSING_EXTERNAL
    elif not_started:
        code = EXIT_FAILED
    else:
        code = EXIT_OK
    summary = Summary(
        ran=list(outcome.ran),
        already_complete=len(finished) + len(outcome.done_elsewhere),
        failed=failed,
        blocked=blocked,
        missing_external=list(missing),
        skipped_locked=list(outcome.skipped_locked),
        interrupted=list(outcome.interrupted) + (not_started if outcome.was_interrupted else []),
        elapsed=elapsed,
        exit_code=code,
    )
    return summary, code


def _status_word(code: int) -> str:
    return {EXIT_OK: "success", EXIT_FAILED: "failed", EXIT_MISSING_EXTERNAL: "missing-external",
            EXIT_INTERRUPTED: "interrupted"}.get(code, "error")


# ---------------------------------------------------------------------------- clean, status, log
