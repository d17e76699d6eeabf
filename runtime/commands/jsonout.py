"""The JSON documents of `--format json` (dry run, status, log, list), built from what each command found.

Every document is one JSON object with `"version"` (SCHEMA_VERSION) and `"command"`; their
JSON Schemas are docs/schemas/*.json and docs/machine-output.md says what each field means and
what "stable" promises. Parameter values are their text form, as in task ids (`2012-06`, `42`,
`true`); times are Unix seconds. Errors from the history go through `db.redact_text`.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator

from flow.compiler.types import format_value

SCHEMA_VERSION = 1


def dumps(document: dict) -> str:
    """One document as one line of JSON."""
    return json.dumps(document)  # ASCII with \u escapes: safe whatever the terminal's encoding


def write(document: dict, stream=None) -> None:
    """Print one document, alone on stdout; its `notes` also go to stderr, where a person reads warnings.

    A top-level value that is an iterator (a dry run's 100,000 tasks) is written item by item, so
    the whole list never sits in memory as objects; the text is what `dumps` would give.
    """
    stream = stream or sys.stdout
    separator = "{"
    for key, value in document.items():
        stream.write(f"{separator}{json.dumps(key)}: ")
        separator = ", "
        if isinstance(value, Iterator):  # 1,000 items per dumps: a call per item takes 1.8 times as long
            stream.write("[")
            first = True
            while True:
                chunk = list(itertools.islice(value, 1000))
                if not chunk:
                    break
                stream.write(("" if first else ", ") + json.dumps(chunk)[1:-1])
                first = False
            stream.write("]")
        else:
            stream.write(json.dumps(value))
    stream.write("}\n" if document else "{}\n")
    for note in document.get("notes", ()):
        print(note, file=sys.stderr)


def head(command: str) -> dict:
    return {"version": SCHEMA_VERSION, "command": command}


def task_fields(task) -> dict:
    """What names a task: id, rule, every parameter in its text form, and its output's kind and location."""
    info = task.info
    return {"id": task.id, "rule": info.name,
            "params": {name: format_value(value) for name, value in zip(info.param_names, task.values)},
            "output": {"kind": info.output.kind, "location": task.output}}


def clock_fields(project) -> dict:
    """`today` and the ranges relative to it, when the Flowfile reads the clock (null and [] otherwise)."""
    checked = project.checked
    if not checked.uses_clock:
        return {"today": None, "ranges": []}
    clock = project.clock
    return {"today": {"date": clock.today.isoformat(), "pinned": clock.pinned, "zone": clock.zone},
            "ranges": [_range(name, project.factory.relative_range(name)) for name in checked.relative_ranges]}


def _range(name: str, values: list) -> dict:
    return {"name": name, "first": format_value(values[0]) if values else None,
            "last": format_value(values[-1]) if values else None, "count": len(values)}


# ---------------------------------------------------------------------------- dry run


def dry_run(project, roots: list, reasons: list, finished: set, missing: list) -> dict:
    """`flow --dry-run --format json`: the targets, the tasks that would run (in order, with reasons), what is missing.

    `reasons` is [(task, reason)] in run order; `finished` the tasks found complete (forced ones
    run again all the same). `exists` is null where the output's place could not be reached.
    """
    unreachable = project.unreachable
    of = project.targets.of

    def tasks():  # written one by one (see write)
        for task, reason in reasons:
            entry = task_fields(task)
            entry["reason"] = reason
            yield _existence(entry, None if of(task) in unreachable else task in finished)

    document = head("dry-run")
    document.update(clock_fields(project))
    document["targets"] = (_existence(task_fields(t), None if of(t) in unreachable else t in finished) for t in roots)
    document["tasks"] = tasks()
    document["complete"] = len(finished)
    document["missing_external"] = [task_fields(t) for t in missing]
    document["notes"] = project.notes()
    return document


def nothing_to_do(project, roots: list) -> dict:
    """The dry run's document when every target is complete: no task would run."""
    document = head("dry-run")
    document.update(clock_fields(project))
    document["targets"] = (_existence(task_fields(task), True) for task in roots)
    document.update(tasks=[], complete=len(roots), missing_external=[], notes=project.notes())
    return document


def _existence(entry: dict, exists) -> dict:
    """Add whether the output exists (and, for a table, whether its marker row does: the same thing)."""
    entry["exists"] = exists
    if entry["output"]["kind"] == "table":
        entry["marker"] = exists
    return entry


# ---------------------------------------------------------------------------- status


def status(project, roots: list, order: list, done: set, last: dict, truncated: bool) -> dict:
    """`flow status --format json`: every task of the tree once, with its state and what it requires.

    `order` is the tasks breadth first from the roots; complete and external tasks are leaves
    (their requirements are never looked at); `last` is task id -> (status, started, error) of
    the last attempt of tasks that are not complete.
    """
    from flow.runtime.db import redact_text

    requirements = project.factory.requirements
    unreachable = project.unreachable
    of = project.targets.of
    tasks = []
    for task in order:
        entry = task_fields(task)
        external = task.info.node.external
        if task in done:
            state = "complete"
        elif of(task) in unreachable:
            state = "unknown"
        elif external:
            state = "missing-external"
        else:
            state = "missing"
        attempt = last.get(task.id)
        if attempt and state == "missing" and attempt[0] in ("failed", "timeout"):
            state = "failed"
        entry["status"] = state
        entry["last_attempt"] = None if not attempt else {
            "status": attempt[0], "started": attempt[1], "error": redact_text(attempt[2]) if attempt[2] else None}
        entry["requires"] = [] if task in done or external else [child.id for child in requirements(task)]
        tasks.append(entry)
    document = head("status")
    document.update(clock_fields(project))
    document.update(targets=[task.id for task in roots], tasks=tasks, truncated=truncated, notes=project.notes())
    return document


# ---------------------------------------------------------------------------- log


def runs(history_runs: list, failed_attempts, run_state) -> dict:
    """`flow log --format json`: recent runs, newest first, each with every failed attempt (errors redacted)."""
    from flow.runtime.db import redact_text

    out = []
    for run in history_runs:
        state = run_state(run)
        entry = {key: run.get(key) for key in ("id", "started", "finished", "command", "targets", "host", "pid")}
        entry["status"] = "died" if state.startswith("died") else state
        entry["counts"] = run.get("counts") or {}
        entry["failed"] = [
            {"task": a["task_id"], "rule": a["rule"], "params": a["params"], "status": a["status"],
             "attempt": a["attempt"], "started": a["started"], "duration": a["duration"],
             "error": redact_text(a["error"]) if a["error"] else None}
            for a in failed_attempts(run["id"])]
        out.append(entry)
    document = head("log")
    document["runs"] = out
    return document


# ---------------------------------------------------------------------------- list


def listing(checked, clock=None) -> dict:
    """`flow list --format json`: rules, targets (with their task counts), ranges and the default target."""
    from flow.compiler.graph import TaskFactory

    source = checked.text.splitlines()
    factory = TaskFactory(checked, clock)
    rules = []
    for rule in checked.ast.rules:
        rules.append({
            "name": rule.name,
            "doc": _doc(rule.doc),
            "params": [{"name": p.name, "type": p.type, "significant": p.significant,
                        "default": _source_text(source, p.default.span) if p.default is not None else None}
                       for p in rule.params],
            "output": {"kind": rule.output.kind, "pattern": rule.output.pattern} if rule.output else None,
            "action": "external" if rule.external else (rule.action.kind if rule.action else None),
            "retries": rule.retries,
            "timeout": rule.timeout,
        })
    targets = [{"name": decl.name, "doc": _doc(decl.doc), "tasks": len(factory.target(decl.name))}
               for decl in checked.ast.targets]
    ranges = []
    for decl in checked.ast.ranges:
        if decl.name in checked.ranges:
            ranges.append({**_range(decl.name, checked.ranges[decl.name]), "relative": False, "doc": _doc(decl.doc)})
        elif decl.name in checked.relative_ranges:
            values = factory.relative_range(decl.name)
            ranges.append({**_range(decl.name, values), "relative": True, "doc": _doc(decl.doc)})
    document = head("list")
    document["today"] = None if clock is None else {"date": clock.today.isoformat(), "pinned": clock.pinned,
                                                    "zone": clock.zone}
    document.update(rules=rules, targets=targets, ranges=ranges, default=checked.default)
    return document


def _doc(text) -> str | None:
    return text.strip() if text and text.strip() else None


def _source_text(source: list, span) -> str:
    """The text a span covers, when it is on one line (a default value as written)."""
    if span.line != span.end_line or not 0 < span.line <= len(source):
        return "..."
    return source[span.line - 1][span.column - 1:span.end_column - 1]
