"""`flow graph` and `flow list`: print the task or rule graph (dot, mermaid, JSON), or a listing of the Flowfile."""

from __future__ import annotations

import sys

from . import EXIT_OK, EXIT_USAGE


def run_graph(path: str, targets: list, fmt: str = "dot", out=None, err=None, make_clock=None) -> int:
    """Print the task graph of `targets`, or the rule graph when there are none; 2 on a Flowfile error.

    `make_clock(timezone)` gives the build's clock for ranges relative to today.
    """
    from flow.compiler.errors import FlowError, render_all
    from flow.compiler.export import WRITERS, rule_graph, task_graph
    from flow.compiler.loader import load

    out = out or sys.stdout
    try:
        checked = load(path)
        clock = make_clock(checked.timezone) if make_clock and checked.uses_clock else None
        graph = task_graph(checked, targets, clock) if targets else rule_graph(checked.ast)
    except FlowError as exc:
        print(render_all(exc.diagnostics), file=err or sys.stderr)
        return exc.exit_code if exc.exit_code != 1 else EXIT_USAGE
    print(WRITERS[fmt](graph), file=out)
    return EXIT_OK


def run_list(path: str, out=None, err=None, make_clock=None, fmt: str = "text") -> int:
    """Print the rules, targets, ranges and default of a Flowfile (as text or JSON); 2 on a Flowfile error."""
    from flow.compiler.errors import FlowError, render_all
    from flow.compiler.export import listing
    from flow.compiler.loader import load

    out = out or sys.stdout
    try:
        checked = load(path)
        clock = make_clock(checked.timezone) if make_clock and checked.uses_clock else None
        if fmt == "json":
            from . import jsonout

            text = jsonout.dumps(jsonout.listing(checked, clock))
        else:
            text = listing(checked, clock)
    except FlowError as exc:
        print(render_all(exc.diagnostics), file=err or sys.stderr)
        return EXIT_USAGE
    print(text, file=out)
    return EXIT_OK
