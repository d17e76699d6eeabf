"""Python's garbage collector held off while flow starts and while a command builds its task graph.

Importing modules and growing a graph allocate objects and free almost none, and CPython's collector
runs a pass every 700 net allocations; the passes of the oldest generation walk every object already
made. For a 30,000-month no-op the passes were ~40% of making the root tasks; the larger the graph,
the more of it each pass walks again. Importing click and a build's ~60 modules cost ~20 passes
(~7 ms of every start). Reference counting still frees everything that is not a cycle.
"""

from __future__ import annotations

import gc


def hold() -> bool:
    """Stop automatic collection (start-up, planning: loading, resolving, growing the graph, the dry run);
    True when it was on, so that a caller that must give it back knows whether to."""
    was_on = gc.isenabled()
    gc.disable()
    return was_on


def release(freeze: bool = False) -> None:
    """Collect automatically again; with `freeze`, what exists now (the graph, the plan) is left out of
    every future pass (a build about to run its tasks: what planning made lives until it ends anyway)."""
    if not gc.isenabled():
        if freeze:
            gc.freeze()
        gc.enable()
