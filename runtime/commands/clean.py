"""`flow clean`: delete outputs, with what they require or what was built from them, to build them again."""

from __future__ import annotations

import sys

from . import EXIT_OK, EXIT_USAGE, on_project

SHOWN = 20  # outputs listed before "... and N more"


def run_clean(flowfile: str, names: list, upstream: bool, assume_yes: bool, today: str | None = None,
              downstream: bool = False, table_markers: bool = False) -> int:
    """Delete the outputs of the named targets: with upstream, also of what they require; with downstream,
    also of everything built from them (within the Flowfile's named targets). Table outputs: their
    marker rows, only with table_markers."""
    return on_project(flowfile, names, today, lambda project, roots: _clean(
        project, roots, upstream, downstream, table_markers, assume_yes))


def _clean(project, roots: list, upstream: bool, downstream: bool, table_markers: bool, assume_yes: bool) -> int:
    from flow.compiler.graph import walk

    tasks = list(roots)
    if upstream:  # everything the roots require, whether complete or not; external rules are never cleaned
        for depth, (level, _, _, _) in enumerate(walk(project.factory, roots)):
            if depth:
                tasks.extend(task for task in level if not task.info.node.external)
    if downstream:
        tasks.extend(downstream_of(project, roots))
    files = []  # (task, its Target): outputs that exist
    tables: dict = {}  # TableTarget -> its tasks, whose marker rows go with --table-markers
    kept: dict = {}  # Target that flow does not delete from -> its tasks
    for task in dict.fromkeys(tasks):
        if task.info.node.external:
            continue
        target = project.targets.of(task)
        if target.removable:
            if target.exists(task.output):
                files.append((task, target))
        elif table_markers and target.kind == "table":
            tables.setdefault(target, []).append(task)
        else:
            kept.setdefault(target, []).append(task)
    for target, left in kept.items():
        print(f"note: {len(left)} {target.noun}{'s' if len(left) != 1 else ''} kept ({target.removal_hint}):",
              file=sys.stderr)
        _list((f"{task.id}  {target.describe(task.output)}" for task in left), len(left), sys.stderr)
    markers = []  # (task, its TableTarget) whose marker row exists: one query per table target
    for target, group in tables.items():
        present = target.complete(group)
        markers.extend((task, target) for task in group if task in present)
    if not files and not markers:
        print("nothing to clean")
        return EXIT_OK
    _list((target.describe(task.output) for task, target in files), len(files), sys.stdout)
    _list((f"marker row of {task.id}  ({target.describe(task.output)})" for task, target in markers), len(markers),
          sys.stdout)
    what = _count(len(files), "output") if files else ""
    if markers:
        what += (" and " if what else "") + _count(len(markers), "marker row")
    if not assume_yes:
        if not sys.stdin.isatty():
            print("error: refusing to delete without a terminal to ask on; pass --yes", file=sys.stderr)
            return EXIT_USAGE
        answer = input(f"delete {what}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return EXIT_OK
    for task, target in files:
        target.remove(task.output)
    for target in tables:
        target.remove_markers([task for task, of in markers if of is target])
    print(f"deleted {what}")
    if markers:
        print("note: the rows those tasks wrote are still in their tables; the next build runs them again")
    return EXIT_OK


def downstream_of(project, cleaned: list) -> list:
    """Every task built from the cleaned ones (their transitive dependents), among the Flowfile's named targets' tasks.

    The task graph is only known from roots downwards, so the roots are the tasks of every named
    target; a task needed by no named target (one only ever built by naming it) is not found.
    1. At rule level, find the rules whose requirements can reach a cleaned task's rule.
    2. Walk down from the named targets' tasks of those rules, expanding only tasks of those rules
       (no other task can lead to a cleaned one), and record who requires whom.
    3. Go up from the cleaned tasks along the recorded edges.
    """
    from flow.compiler.errors import FlowError
    from flow.compiler.graph import walk
    from flow.compiler.visitor import calls

    checked = project.checked
    rules = checked.ast.rules
    names = {rule.name for rule in rules}
    callers: dict = {}  # rule -> the rules whose requires call it
    for rule in rules:
        for callee, _ in calls(rule.requires, names):
            callers.setdefault(callee, set()).add(rule.name)
    reaching = {task.name for task in cleaned}  # 1.
    stack = list(reaching)
    while stack:
        for caller in callers.get(stack.pop(), ()):
            if caller not in reaching:
                reaching.add(caller)
                stack.append(caller)
    roots = []
    for name in checked.targets:
        try:
            roots.extend(task for task in project.factory.target(name) if task.name in reaching)
        except FlowError:  # a target that cannot be expanded today (a range relative to it, no date): skip it
            continue
    required_by: dict = {}  # 2. task -> the tasks that require it
    leaf = lambda level: {task for task in level if task.name not in reaching}  # noqa: E731
    for _, _, _, edges in walk(project.factory, roots, leaf):
        for parent, child in edges:
            required_by.setdefault(child, []).append(parent)
    found: dict = {}  # 3. in the order they are reached: nearest first
    stack = list(cleaned)
    while stack:
        for parent in required_by.get(stack.pop(), ()):
            if parent not in found:
                found[parent] = None
                stack.append(parent)
    cleaned = set(cleaned)
    return [task for task in found if task not in cleaned]


def _list(lines, count: int, stream) -> None:
    for index, line in enumerate(lines):
        if index == SHOWN:
            print(f"  ... and {count - SHOWN} more", file=stream)
            break
        print(f"  {line}", file=stream)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"
