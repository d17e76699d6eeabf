"""The library behind `flow build`, `clean`, `status` and `log`: load, resolve, check outputs, plan, run, report."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

from . import targets

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_MISSING_EXTERNAL = 3
EXIT_INTERRUPTED = 130
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


class Session:
    """A loaded Flowfile, its task factory, and where its state lives (.flow/ next to the Flowfile)."""

    def __init__(self, flowfile_path: str):
        from compiler.graph import TaskFactory
        from compiler.loader import load

        self.checked = load(flowfile_path)
        self.directory = os.path.dirname(os.path.abspath(flowfile_path))
        # Outputs and module names are relative to the Flowfile, as make -C would have it.
        os.chdir(self.directory)
        if self.directory not in sys.path:
            sys.path.insert(0, self.directory)
        self.flow_dir = os.path.join(self.directory, ".flow")
        self.factory = TaskFactory(self.checked)
        self._markers = None
        self.database_error = None

    def roots(self, names: list) -> list:
        from compiler.errors import Diagnostic, UsageError
        from compiler.resolve import resolve

        if not names:
            if self.checked.default is None:
                raise UsageError(Diagnostic("error", "E901", "no target given and the Flowfile has no default",
                                            None, "name a target, or add a line like: default: all_months"))
            names = [self.checked.default]
        roots = []
        for name in names:
            roots.extend(resolve(self.factory, name))
        return list(dict.fromkeys(roots))

    def markers(self, update_ids: list) -> set:
        """Marker rows present for table outputs (one query); raises DatabaseUnavailable."""
        from .db import DatabaseError, connections, resolve_dsn
        from .tables import existing_markers

        try:
            connection = connections.get(resolve_dsn(self.checked.database))
            return existing_markers(connection, update_ids)
        except DatabaseError as exc:
            raise targets.DatabaseUnavailable(str(exc)) from None

    def complete(self, tasks) -> set:
        return targets.complete(tasks, self.markers)

    def close(self) -> None:
        """Close the database connection the marker checks opened, if any (workers close their own)."""
        if "runtime.db" in sys.modules:
            sys.modules["runtime.db"].close_all()


def _render_error(exc) -> str:
    from compiler.errors import SourceCache, render_all

    return render_all(exc.diagnostics, SourceCache())


def run_build(options: BuildOptions) -> int:
    """Build what the options ask for; return the process exit code."""
    from compiler.errors import FlowError

    try:
        session = Session(options.flowfile)
        roots = session.roots(options.targets)
    except FlowError as exc:
        print(_render_error(exc), file=sys.stderr)
        return exc.exit_code
    try:
        return _build(session, roots, options)
    except FlowError as exc:
        print(_render_error(exc), file=sys.stderr)
        return exc.exit_code
    except targets.DatabaseUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        session.close()


def _build(session: Session, roots: list, options: BuildOptions) -> int:
    from .report import make_reporter, rule_estimates

    stream = sys.stdout
    complete = session.complete
    if options.dry_run:
        complete = _lenient(session)
    # 1. the no-op fast path: every requested output exists, and nothing is forced
    if not options.force:
        done = complete(roots)
        if len(done) == len(roots):
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
    from compiler.graph import build_graph

    forced_roots = set(roots) if options.force else set()
    if options.force_upstream:
        descend = lambda task: not task.info.node.external  # noqa: E731
    else:
        descend = forced_roots.__contains__
    graph = build_graph(session.factory, roots, complete, descend)
    nx_graph = graph.graph
    finished = graph.complete
    if options.force_upstream:
        forced = {t for t in nx_graph if not t.info.node.external}
    else:
        forced = forced_roots
    to_run = [t for t in nx_graph if not t.info.node.external and (t not in finished or t in forced)]
    missing = [t for t in nx_graph if t.info.node.external and t not in finished]
    requirements = session.factory.requirements

    def dependents(task):
        return nx_graph.pred[task]

    if options.dry_run:
        return _dry_run(session, to_run, forced, finished, missing, requirements, stream)

    # 3. run
    from .executor import Executor
    from .history import History
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
    targets.sweep({os.path.dirname(t.output) for t in to_run if t.info.output.kind != "table"})
    history = History(session.flow_dir)
    run_id = history.start_run(" ".join(["flow", "build"] + options.targets), [t.id for t in roots])
    locks = TaskLocks(session.flow_dir)
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
    try:
        outcome = executor.run()
        summary, code = _summarise(plan, outcome, finished, missing, time.monotonic() - started, roots)
        reporter.build_finished(summary)
        history.finish_run(run_id, _status_word(code), summary.counts())
    finally:
        locks.close()
        reporter.close()  # also on an unexpected error: the live display must give the terminal back
        history.close()
    return code


def _has_tables(tasks) -> bool:
    return any(t.info.output.kind == "table" for t in tasks)


def _graph_requirements(nx_graph):
    successors = nx_graph.succ
    return lambda task: successors[task]


def _lenient(session: Session):
    """For dry runs: a database that cannot be reached makes its tables look missing, and says so."""

    def complete(tasks):
        try:
            return session.complete(tasks)
        except targets.DatabaseUnavailable as exc:
            if session.database_error is None:
                session.database_error = str(exc)
            return targets.complete([t for t in tasks if t.info.output.kind != "table"], None)

    return complete


def _dry_run(session, to_run, forced, finished, missing, requirements, stream) -> int:
    from .plan import run_order
    from .report import render_dry_run

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


def _report_missing(reporter, missing) -> None:
    for task in missing:
        reporter.message(f"missing external input: {task.id} at {targets.describe(task)}", "error")


def _summarise(plan, outcome, finished, missing, elapsed, roots):
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


def run_clean(flowfile: str, names: list, upstream: bool, assume_yes: bool) -> int:
    """Delete the outputs of the named targets (and, with upstream, of what they require)."""
    from compiler.errors import FlowError

    try:
        session = Session(flowfile)
        roots = session.roots(names)
        tasks = list(roots)
        if upstream:
            seen = set(tasks)
            index = 0
            while index < len(tasks):
                for child in session.factory.requirements(tasks[index]):
                    if child not in seen and not child.info.node.external:
                        seen.add(child)
                        tasks.append(child)
                index += 1
        present = [t for t in tasks if not t.info.node.external and t.info.output.kind != "table"
                   and os.path.lexists(t.output)]
        tables = [t for t in tasks if t.info.output.kind == "table"]
    except FlowError as exc:
        print(_render_error(exc), file=sys.stderr)
        return exc.exit_code
    if tables:
        print(f"note: {len(tables)} table output{'s' if len(tables) != 1 else ''} left alone "
              "(delete rows and marker rows in the database)", file=sys.stderr)
    if not present:
        print("nothing to clean")
        return EXIT_OK
    for task in present[:20]:
        print(f"  {targets.describe(task)}")
    if len(present) > 20:
        print(f"  ... and {len(present) - 20} more")
    if not assume_yes:
        if not sys.stdin.isatty():
            print("error: refusing to delete without a terminal to ask on; pass --yes", file=sys.stderr)
            return EXIT_USAGE
        answer = input(f"delete {len(present)} output{'s' if len(present) != 1 else ''}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return EXIT_OK
    for task in present:
        targets.remove_path(task.output)
    print(f"deleted {len(present)} output{'s' if len(present) != 1 else ''}")
    return EXIT_OK


def run_status(flowfile: str, names: list) -> int:
    """Print the dependency tree of the targets with complete / missing / failed-last-time marks."""
    from compiler.errors import FlowError

    from .history import History

    try:
        session = Session(flowfile)
        roots = session.roots(names)
    except FlowError as exc:
        print(_render_error(exc), file=sys.stderr)
        return exc.exit_code
    complete = _lenient(session)
    requirements = session.factory.requirements
    # 1. what the tree shows, level by level with one bulk check each (complete tasks are leaves)
    done: set = set()
    seen = set(roots)
    level = list(roots)
    while level and len(seen) < STATUS_MAX_TASKS:
        done |= complete(level)
        next_level = []
        for task in level:
            if task not in done and not task.info.node.external:
                for child in requirements(task):
                    if child not in seen:
                        seen.add(child)
                        next_level.append(child)
        level = next_level
    # 2. failures of the last attempts, in one query
    last = {}
    if os.path.isdir(session.flow_dir):
        history = History(session.flow_dir)
        last = history.last_status([t.id for t in seen if t not in done])
        history.close()
    # 3. print depth first, each task's requirements once
    lines: list = []
    expanded: set = set()
    stack = [(root, "", True, 0) for root in reversed(roots)]
    while stack and len(lines) < STATUS_MAX_LINES:
        task, prefix, is_last, depth = stack.pop()
        lines.append(f"{prefix}{'' if depth == 0 else ('└── ' if is_last else '├── ')}{task.id}  "
                     f"[{_status_mark(task, done, last)}]  {targets.describe(task)}")
        if task in done or task in expanded or task.info.node.external:
            continue
        expanded.add(task)
        children = requirements(task)
        child_prefix = prefix if depth == 0 else prefix + ("    " if is_last else "│   ")
        for index in range(len(children) - 1, -1, -1):
            stack.append((children[index], child_prefix, index == len(children) - 1, depth + 1))
    if stack:
        lines.append(f"... (stopped after {STATUS_MAX_LINES} lines)")
    print("\n".join(lines))
    if session.database_error:
        print(f"note: cannot check table outputs: {session.database_error}")
    return EXIT_OK


STATUS_MAX_LINES = 2000
STATUS_MAX_TASKS = 200_000


def _status_mark(task, done: set, last: dict) -> str:
    if task in done:
        return "complete"
    state = last.get(task.id)
    if state and state[0] in ("failed", "timeout"):
        return f"FAILED last time: {state[2] or state[0]}"
    return "MISSING (external)" if task.info.node.external else "missing"


def _run_state(run: dict) -> str:
    """A run's status; one that never finished is 'running' only while its process lives."""
    if run["status"] not in (None, "", "running"):
        return run["status"]
    import socket

    if run.get("host") == socket.gethostname() and run.get("pid") and not targets.process_alive(run["pid"]):
        return "died (killed or crashed before finishing)"
    return "running"


def run_log(flowfile: str, limit: int) -> int:
    """Print recent runs, newest first, with their failed tasks."""
    from .history import History

    directory = os.path.dirname(os.path.abspath(flowfile))
    flow_dir = os.path.join(directory, ".flow")
    if not os.path.exists(os.path.join(flow_dir, "history.sqlite")):
        print("no runs recorded yet")
        return EXIT_OK
    history = History(flow_dir)
    for run in history.recent_runs(limit):
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["started"]))
        counts = run.get("counts") or {}
        summary = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v)
        print(f"#{run['id']}  {started}  {_run_state(run)}  {run['command']}  {summary}")
        for attempt in history.failed_attempts(run["id"])[:10]:
            print(f"    {attempt['status']}: {attempt['task_id']}: {attempt['error']}")
    history.close()
    return EXIT_OK
