"""The library behind `flow build`: load, resolve, check outputs, plan, run, report."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from itertools import filterfalse
from operator import attrgetter

from ..limits import TaskCounter, TooManyTasks, max_tasks
from ..targets import describe
from . import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_MISSING_EXTERNAL, EXIT_OK, EXIT_USAGE, on_project

DRY_RUN_LISTED_ROOTS = 20


@dataclass
class BuildOptions:
    flowfile: str = "Flowfile"
    targets: list = field(default_factory=list)
    dry_run: bool = False
    jobs: int | None = None  # -j; else the `jobs` setting (settings.py)
    keep_going: bool | None = None  # -k / -K; else the `keep_going` setting
    force: bool = False
    force_upstream: bool = False
    wait: bool = True
    spark_master: str | None = None
    quiet: bool = False
    verbose: bool = False
    today: str | None = None  # pins the build's date (--today); else FLOW_TODAY, else the clock
    allow_open: bool = False  # build tasks whose period has not ended (--allow-open)
    max_tasks: int | None = None  # --max-tasks; else FLOW_MAX_TASKS, else limits.DEFAULT_MAX_TASKS; 0: none
    resources: str | None = None  # --resources "postgres=2,...": limits over FLOW_RESOURCES and the Flowfile's
    fmt: str = "text"  # --format: "json" prints the dry run as one JSON document (commands/jsonout.py)
    events: str | None = None  # --events FILE: the build's events as JSON lines (events.EventLog)


def run_build(options: BuildOptions) -> int:
    """Build what the options ask for; return the process exit code."""
    if not options.events:
        return on_project(options.flowfile, options.targets, options.today,
                          lambda project, roots: _build_or_refuse(project, roots, options))
    # The event log is opened first, so that a build stopped by its Flowfile does not leave the last
    # build's log behind, and a path that cannot be written stops the build before it starts.
    from ..events import EventLog

    try:
        event_log = EventLog(options.events, _command(options), os.path.dirname(os.path.abspath(options.flowfile)))
    except OSError as exc:
        print(f"error: cannot write {options.events}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    code = None
    try:
        code = on_project(options.flowfile, options.targets, options.today,
                          lambda project, roots: _build_or_refuse(project, roots, options, event_log))
    finally:  # also when interrupted or crashed: the log ends with a run-finished line
        if code is None and isinstance(sys.exc_info()[1], KeyboardInterrupt):
            code = EXIT_INTERRUPTED
        problem = event_log.close(code, _status_word(code) if code is not None else "error")
        if problem:
            print(f"warning: {problem}", file=sys.stderr)
    return code


def _build_or_refuse(project, roots: list, options: BuildOptions, event_log=None) -> int:
    if event_log is not None:
        event_log.targets = [t.id for t in roots]
    try:
        return _build(project, roots, options, event_log)
    except TooManyTasks as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def _command(options: BuildOptions) -> str:
    return " ".join(["flow", "build"] + options.targets)


def _build(project, roots: list, options: BuildOptions, event_log=None) -> int:
    options = _with_settings(options, project.settings)
    stream = sys.stdout
    complete = project.lenient_complete if options.dry_run else project.complete
    # 1. the no-op fast path: every requested output exists, and nothing is forced
    if not options.force:
        done = complete(roots)
        if len(done) == len(roots):
            if options.dry_run and options.fmt == "json":
                from .jsonout import nothing_to_do, write

                write(nothing_to_do(project, roots), stream)
                return EXIT_OK
            if options.dry_run:
                _show_clock(project, options.targets, stream)
            if not options.quiet:
                count = len(roots)
                stream.write(f"nothing to do: {'all ' if count > 1 else ''}{count} target"
                             f"{'s' if count != 1 else ''} complete\n")
                if options.dry_run:  # say where each one is, and for tables that the marker is there
                    for task in roots[:DRY_RUN_LISTED_ROOTS]:
                        target = project.targets.of(task)
                        stream.write(f"  {task.id}  {target.describe(task.output)}  ({target.present_reason})\n")
                    if count > DRY_RUN_LISTED_ROOTS:
                        stream.write(f"  ... and {count - DRY_RUN_LISTED_ROOTS:,} more\n")
            return EXIT_OK

    # 2. grow the graph, stopping at complete tasks (forced ones excepted); a no-op never gets here,
    # nor imports the reports (~10 ms)
    from flow.compiler.graph import build_graph

    from ..report import make_reporter, rule_estimates

    forced_roots = set(roots) if options.force else set()
    if options.force_upstream:
        descend = lambda task: not task.info.node.external  # noqa: E731
    else:
        descend = forced_roots.__contains__
    counter = TaskCounter(max_tasks(options.max_tasks, project.settings["max_tasks"]), roots)
    graph = build_graph(counter.factory(project.factory), roots, counter.complete(complete), descend)
    finished = graph.complete
    if options.force_upstream:
        forced = {t for t in graph.nodes if not t.info.node.external}
    else:
        forced = forced_roots
    to_run, missing = _to_run_and_missing(graph.nodes, finished, forced, project.checked.rules)
    from ..open_periods import open_tasks, refusal

    still_open = open_tasks(to_run, project.clock, options.allow_open)
    if still_open:
        raise refusal(still_open, project.clock)
    requirements = project.factory.requirements
    dependents = graph.dependents

    if options.dry_run:
        return _dry_run(project, to_run, forced, finished, missing, stream, options.targets,
                        roots if options.fmt == "json" else None)

    # 3. run (the tasks' actions and the executor make garbage: the collector runs again)
    from .. import collector

    collector.release(freeze=True)
    from ..actions.registry import ACTION_KINDS
    from ..events import Events, ReporterListener, StateRecorder
    from ..executor import Executor, ExecutorSettings
    from ..history import StateError
    from ..plan import Plan

    command = _command(options)
    notifier = _notifier(project, command)
    if not to_run:
        if missing:
            reporter = make_reporter(stream, options.quiet, options.verbose)
            _report_missing(reporter, missing)
            reporter.close()
            if notifier is not None:  # a cron build whose input never came is worth a message too
                from ..summary import Summary

                _warn(notifier.send(Summary(missing_external=list(missing), exit_code=EXIT_MISSING_EXTERNAL),
                                    EXIT_MISSING_EXTERNAL, None))
            return EXIT_MISSING_EXTERNAL
        return EXIT_OK
    if any(t.info.node.action.kind in ("sql", "load") for t in to_run):
        project.database.url()  # an embedded server starts here, before any worker connects to it
    project.targets.sweep(to_run)
    rules_to_run: dict = {}
    for task in to_run:
        rules_to_run[task.name] = rules_to_run.get(task.name, 0) + 1
    from ..resources import ResourceError

    try:
        state = project.state()  # a coordinator named by an unset variable is refused here
        pool = _resource_pool(project, [project.checked.rules[name] for name in rules_to_run], options.resources,
                              state)
    except ResourceError as exc:  # limits that cannot be read, or smaller than a task to run needs
        state.close()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (StateError, OSError) as exc:
        print(f"error: {_state_problem(exc, project.flow_dir)}", file=sys.stderr)
        return EXIT_FAILED
    plan_counts = {"tasks": len(to_run), "complete": len(finished), "jobs": options.jobs, "rules": rules_to_run}
    try:
        run_id = state.start_run(command, [t.id for t in roots], plan_counts)
    except (StateError, OSError) as exc:  # a read-only or broken .flow/: say so before anything runs
        print(f"error: {_state_problem(exc, project.flow_dir)}", file=sys.stderr)
        return EXIT_FAILED
    # runs of batched rules (`batch: N`) are scheduled as one unit each
    from ..batches import units

    scheduled, unit_requirements, unit_dependents, member_of = units(to_run, graph.requirements, dependents)
    priority = None
    if project.checked.uses_priority:  # else the plan keeps its plain deque, as fast as ever
        from ..priorities import effective_priorities

        priority = effective_priorities(scheduled, unit_requirements,
                                        _target_priorities(project, options.targets, member_of))
    if pool is not None and priority is not None:
        pool.priority = priority  # a process sharing a coordinator waits for another's higher priority
    plan = Plan(scheduled, unit_requirements, unit_dependents, missing, options.keep_going, priority)
    reporter = make_reporter(stream, options.quiet, options.verbose)
    runners = make_runners(project.checked, project.targets, options.jobs, project.root, project.tmp_dir,
                           options.spark_master)
    settings = ExecutorSettings(jobs=options.jobs, wait_for_locks=options.wait, forced=frozenset(forced),
                                workdir=project.root, log_dir=project.log_dir,
                                retry_delay=project.settings["retry_delay"])
    events = Events(ReporterListener(reporter), StateRecorder(state, run_id), *filter(None, [notifier, event_log]))
    if event_log is not None:
        event_log.run_started(run_id, plan_counts)
    executor = Executor(plan, runners, project.targets, state, events, settings, requirements=requirements,
                        resources=pool)
    # Fork the workers before the progress display starts its timer thread: a fork copies only
    # the forking thread, and a lock that thread held would stay locked in the child forever.
    in_workers = sum(1 for t in to_run if _runner_name(ACTION_KINDS, t) == "worker")
    if in_workers:
        executor.warm(runners.get("worker"), in_workers)
    rules = sorted({t.name for t in to_run})
    reporter.build_started(len(to_run), len(finished), rule_estimates(to_run, state.mean_durations(rules)),
                           options.jobs)
    _report_missing(reporter, missing)
    started = time.monotonic()
    problems: list = []
    lost = None  # the coordinator, gone for longer than its wait: the build stops
    try:
        try:
            outcome = executor.run()
        except StateError as exc:
            lost = str(exc)
            code = EXIT_FAILED
            if notifier is not None:  # the build stopped before its end: that is worth a message too
                summary, _ = _summarise(plan, executor.outcome, finished, missing, time.monotonic() - started)
                problems.extend(notifier.send(summary, code, run_id, error=_lost_text(lost)))
        else:
            summary, code = _summarise(plan, outcome, finished, missing, time.monotonic() - started)
            reporter.build_finished(summary)
            if event_log is not None:
                event_log.run_finished(code, _status_word(code), summary.counts(), plan.blocked, summary.elapsed)
            try:
                state.record_blocked(run_id, plan.blocked)
                state.finish_run(run_id, _status_word(code), summary.counts())
                state.retain(project.settings["history.keep_runs"], project.settings["history.keep_days"],
                             project.log_dir)
            except (StateError, OSError) as exc:  # a full disk must not turn a finished build into a crash
                problems.append(str(exc))
            if notifier is not None:
                problems.extend(notifier.send(summary, code, run_id))
    finally:
        reporter.close()  # also on an unexpected error: the live display must give the terminal back
        try:
            state.close()
        except StateError as exc:
            if lost is None:
                problems.append(str(exc))
        problems.extend(state.warnings())
        _warn(problems)
    if lost is not None:
        print(f"error: {_lost_text(lost)}", file=sys.stderr)
    return code


def _lost_text(problem: str) -> str:
    return f"{problem}; tasks it was running were stopped, run the build again"


def _to_run_and_missing(nodes: list, finished: set, forced: set, rules: dict) -> tuple:
    """(the tasks to run, the external inputs missing), in walk order.

    Without external rules, and without forced tasks among the complete ones (the usual case), the
    first is the nodes that are not complete, found in C: a million-task graph is walked once less.
    """
    if any(info.node.external for info in rules.values()) or (forced and finished):
        return ([t for t in nodes if not t.info.node.external and (t not in finished or t in forced)],
                [t for t in nodes if t.info.node.external and t not in finished])
    return list(filterfalse(finished.__contains__, nodes)) if finished else list(nodes), []


def _resource_pool(project, infos: list, option, state):
    """The build's ResourcePool, or None when no rule to run needs a limited resource (nothing to count)."""
    from ..resources import ResourcePool, check_needs, limits_in_force

    limits, sources = limits_in_force(project.checked.resources, os.environ, option)
    if not any(name in limits for info in infos for name, _ in info.resources):
        return None
    check_needs(infos, limits, sources)
    from ..executor import LOCK_POLL

    return ResourcePool(limits, state, LOCK_POLL)


def _target_priorities(project, names: list, member_of) -> dict:
    """Root unit -> the priority of the requested target that asked for it (targets with `priority:` only)."""
    priorities = project.checked.target_priorities
    found: dict = {}
    for name in names or [project.checked.default]:
        priority = priorities.get(name)
        if priority is None:
            continue
        for task in project.factory.target(name):
            unit = member_of(task)
            if found.get(unit, priority) <= priority:
                found[unit] = priority
    return found


def _notifier(project, command: str):
    """The build's notification listener, when the settings configure a channel (notify.py), else None."""
    if not project.settings.configured("notify."):
        return None
    from ..notify import make_notifier

    return make_notifier(project.settings, project.root, command, project.checked.database)


def _warn(problems: list) -> None:
    for problem in dict.fromkeys(problems):
        print(f"warning: {problem}", file=sys.stderr)


def _with_settings(options: BuildOptions, settings) -> BuildOptions:
    """The options with what the command line left open taken from the settings (files, environment, defaults)."""
    from dataclasses import replace

    return replace(options, jobs=options.jobs or settings["jobs"],
                   keep_going=settings["keep_going"] if options.keep_going is None else options.keep_going)


def _state_problem(exc: Exception, flow_dir: str) -> str:
    """One line for state that cannot be written: the history's own message, or the OS error on .flow/."""
    if isinstance(exc, OSError):
        where = os.path.relpath(exc.filename, os.path.dirname(flow_dir)) if exc.filename else ".flow/"
        return f"cannot write {where}: {exc.strerror or exc}"
    return str(exc)


def make_runners(checked, targets, jobs: int, root: str, tmp_dir: str, spark_master=None):
    """The runners of a build, each made when its first task starts: worker processes, the Spark lane, programs.

    The Spark lane is made here only, with `--spark-master`: nothing else makes one.
    """
    from ..runners import Runners

    def workers():
        from ..runners.workers import WorkerPool

        return WorkerPool(jobs, checked, targets, tmp_dir)

    def spark():
        from ..runners.spark import SparkLane

        return SparkLane(checked, jobs, targets, root, spark_master)

    def programs():
        from ..runners.programs import ProgramLane

        return ProgramLane(checked, jobs, targets)

    return Runners({"worker": workers, "spark": spark, "program": programs})


def _runner_name(action_kinds: dict, task):
    kind = action_kinds.get(task.info.node.action.kind)
    return kind.runner if kind is not None else None


def _dry_run(project, to_run, forced, finished, missing, stream, names, json_roots=None) -> int:
    """Print what would run, in order, with reasons: as text, or as JSON when `json_roots` (the targets) are given."""
    from flow.compiler.graph import walked_requirements

    from ..plan import run_order
    from ..summary import dry_run_chunks

    if json_roots is None:
        _show_clock(project, names, stream)
    # every task to run was expanded by the walk; with nothing complete or missing, all it met are to run
    order = run_order(to_run, walked_requirements, closed=not finished and not missing)
    rule_names = list(map(_RULE_NAME, order))  # each task's rule, for the reasons and the text
    reasons = _reasons(project, order, forced, finished, rule_names)
    if json_roots is not None:
        from .jsonout import dry_run, write

        write(dry_run(project, json_roots, list(zip(order, reasons)), finished, missing), stream)
        return EXIT_MISSING_EXTERNAL if missing else EXIT_OK
    for chunk in dry_run_chunks(order, reasons, len(finished), missing, names=rule_names):  # never all in one string
        stream.write(chunk)
    text = _batch_note(to_run) if any(info.batch for info in project.checked.rules.values()) else ""
    for note in project.notes():
        text += f"\n{note}\n"
    stream.write(text)
    return EXIT_MISSING_EXTERNAL if missing else EXIT_OK


def _reasons(project, order: list, forced: set, finished: set, names: list) -> list:
    """Why each task of `order` (of the rules `names`) would run: forced, or its Target's reason (its output
    missing, or unknown)."""
    targets = project.targets
    unreachable = project.unreachable
    reason_of: dict = {}  # rule name -> the reason, for rules whose tasks share one Target
    for name in dict.fromkeys(names):
        target = targets.of_rule(name) or targets.of(order[names.index(name)])
        if targets.of_rule(name) is not target:  # its tasks' places differ: asked per task below
            break
        reason_of[name] = target.unknown_reason if target in unreachable else target.missing_reason
    else:
        if not (forced and finished):  # the usual case: one reason per rule, spread in C
            return list(map(reason_of.__getitem__, names))
    reasons = []
    for task in order:
        if task in forced and task in finished:
            reason = "forced"
        else:
            reason = reason_of.get(task.info.name)
            if reason is None:
                target = targets.of(task)
                reason = target.unknown_reason if target in unreachable else target.missing_reason
        reasons.append(reason)
    return reasons


_RULE_NAME = attrgetter("info.name")


def _batch_note(to_run: list) -> str:
    """For rules with `batch: N`: how many action runs their partitions make."""
    from ..batches import group_runs

    per_rule: dict = {}
    for run in group_runs([t for t in to_run if t.info.batch]):
        counts = per_rule.setdefault(run[0].name, [0, 0, run[0].info.batch])
        counts[0] += len(run)
        counts[1] += 1
    if not per_rule:
        return ""
    lines = [f"    {name}: {tasks:,} partitions in {runs:,} run{'s' * (runs != 1)} (batch: {size})"
             for name, (tasks, runs, size) in per_rule.items()]
    return "\nbatched:\n" + "\n".join(lines) + "\n"


def _show_clock(project, names: list, stream) -> None:
    """When the Flowfile reads today: the date used and what each relative range resolved to."""
    from flow.compiler.export import resolved_ranges

    if not project.checked.uses_clock:
        return
    stream.write(f"today: {project.clock.describe()}\n")
    for name, shown, count in resolved_ranges(project.factory):
        stream.write(f"  range {name} = {shown} ({count})\n")
    for name in names or [project.checked.default]:
        if name in project.checked.targets:
            tasks = project.factory.target(name)
            stream.write(f"  target {name} = {describe_tasks(tasks)}\n")
    stream.write("\n")


def describe_tasks(tasks: list) -> str:
    from ..summary import group_tasks

    if not tasks:
        return "(no tasks)"
    return ", ".join(text for _, text in group_tasks(tasks))


def _report_missing(reporter, missing) -> None:
    for task in missing:
        reporter.message(f"missing external input: {task.id} at {describe(task)}", "error")


def _summarise(plan, outcome, finished, missing, elapsed):
    from ..batches import each_task
    from ..report import Summary

    blocked = {task: cause for unit, cause in plan.blocked.items() for task in each_task(unit)}
    failed = [task for task, _ in outcome.failed]
    interrupted = set(outcome.interrupted)
    not_started = [t for unit in plan.not_started() for t in each_task(unit) if t not in interrupted]
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
        already_complete=len(finished),
        done_elsewhere=list(outcome.done_elsewhere),
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
