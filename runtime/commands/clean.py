"""`flow clean`: delete the outputs of targets (and what they require) so the next build makes them again."""

from __future__ import annotations

import sys

from . import EXIT_OK, EXIT_USAGE, on_project


def run_clean(flowfile: str, names: list, upstream: bool, assume_yes: bool, today: str | None = None) -> int:
    """Delete the outputs of the named targets (and, with upstream, of what they require)."""
    return on_project(flowfile, names, today, lambda project, roots: _clean(project, roots, upstream, assume_yes))


def _clean(project, roots: list, upstream: bool, assume_yes: bool) -> int:
    from flow.compiler.graph import walk

    tasks = list(roots)
    if upstream:  # everything the roots require, whether complete or not; external rules are never cleaned
        for depth, (level, _, _, _) in enumerate(walk(project.factory, roots)):
            if depth:
                tasks.extend(task for task in level if not task.info.node.external)
    present = []  # (task, its Target)
    kept: dict = {}  # Target that flow does not delete from -> its tasks
    for task in tasks:
        target = project.targets.of(task)
        if not target.removable:
            kept.setdefault(target, []).append(task)
        elif not task.info.node.external and target.exists(task.output):
            present.append((task, target))
    for target, left in kept.items():
        print(f"note: {len(left)} {target.noun}{'s' if len(left) != 1 else ''} left alone "
              f"({target.removal_hint})", file=sys.stderr)
    if not present:
        print("nothing to clean")
        return EXIT_OK
    for task, target in present[:20]:
        print(f"  {target.describe(task.output)}")
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
    for task, target in present:
        target.remove(task.output)
    print(f"deleted {len(present)} output{'s' if len(present) != 1 else ''}")
    return EXIT_OK
