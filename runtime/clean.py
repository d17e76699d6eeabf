"""`flow clean`: delete the outputs of targets (and what they require) so the next build makes them again."""

from __future__ import annotations

import os
import sys

from . import targets
from .session import EXIT_OK, EXIT_USAGE, Session, render_error


def run_clean(flowfile: str, names: list, upstream: bool, assume_yes: bool, today: str | None = None) -> int:
    """Delete the outputs of the named targets (and, with upstream, of what they require)."""
    from flow.compiler.errors import FlowError

    try:
        session = Session(flowfile, today)
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
        print(render_error(exc), file=sys.stderr)
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
