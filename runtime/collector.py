"""Python's garbage collector held off while a command builds its task graph, which makes no cyclic garbage.

Growing a graph allocates objects and frees almost none, and CPython's collector runs a pass every
700 net allocations; the passes of the oldest generation walk every object already made. For a
30,000-month no-op the passes were ~40% of making the root tasks; the larger the graph, the more of
it each pass walks again. Reference counting still frees everything that is not a cycle.
"""

from __future__ import annotations

import gc


def hold() -> None:
    """Stop automatic collection (planning: loading, resolving, growing the graph, the dry run)."""
    gc.disable()


def release(freeze: bool = False) -> None:
    """Collect automatically again; with `freeze`, what exists now (the graph, the plan) is left out of
    every future pass (a build about to run its tasks: what planning made lives until it ends anyway)."""
    if not gc.isenabled():
        if freeze:
            gc.freeze()
        gc.enable()
