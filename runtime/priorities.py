"""Priorities (`priority: N`): each scheduled task's effective priority, and the ready queue that honours it.

A task's effective priority is the highest of: its rule's `priority:` (0 when unset), the
`priority:` of each requested target it is a root of, and the effective priority of every task
that needs it (Luigi's rule: whatever a high-priority task waits for is as urgent as that task).
Only builds whose Flowfile sets some priority use this; the others keep Plan's plain deque.
"""

from __future__ import annotations

import heapq


def effective_priorities(units: list, requirements, root_priority: dict) -> dict:
    """unit -> effective priority for every scheduled unit, in O(units + edges) at most.

    `requirements(unit)` describes the graph between units (those outside `units` are left
    alone); `root_priority` maps a root unit to the priority of the target that asked for it.
    1. Every unit starts at its rule's priority, raised by its target's.
    2. From the highest priority down, each unit above the lowest raises what it requires,
       transitively, to its own. A unit raised once is never raised again (every later level is
       lower), so each is visited at most once, and a build where only a few rules set a
       priority visits only what those rules need.
    """
    priority = {}
    for unit in units:
        own = unit.info.priority
        raised = root_priority.get(unit)
        priority[unit] = own if raised is None or raised < own else raised
    lowest = min(priority.values(), default=0)
    starts = sorted((unit for unit in units if priority[unit] > lowest), key=priority.__getitem__, reverse=True)
    for start in starts:
        level = priority[start]
        stack = [start]
        while stack:
            for requirement in requirements(stack.pop()):
                current = priority.get(requirement)
                if current is not None and current < level:
                    priority[requirement] = level
                    stack.append(requirement)
    return priority


class ReadyByPriority:
    """Ready units, the highest priority first; among equals, in the order Plan's deque would give them.

    It answers the deque calls Plan makes (append, appendleft, popleft, [0], bool, iteration):
    `appendleft` (a newly ready dependent) goes before every unit of its priority, `append` after.
    """

    __slots__ = ("_heap", "_priority", "_front", "_back")

    def __init__(self, priority: dict, units=()):
        self._priority = priority
        self._heap: list = []
        self._front = 0  # decreasing: the order of units put in front
        self._back = 0  # increasing: the order of units put at the back
        for unit in units:
            self.append(unit)

    def append(self, unit) -> None:
        self._back += 1
        heapq.heappush(self._heap, (-self._priority.get(unit, 0), self._back, unit))

    def appendleft(self, unit) -> None:
        self._front -= 1
        heapq.heappush(self._heap, (-self._priority.get(unit, 0), self._front, unit))

    def popleft(self):
        return heapq.heappop(self._heap)[2]

    def __getitem__(self, index: int):
        if index != 0:
            raise IndexError("only the first ready unit can be seen")
        return self._heap[0][2]

    def first(self, count: int) -> list:
        """The next `count` units popleft would give, left in place (taken and put back: O(count log n),
        where heapq.nsmallest would read the whole heap at every round of a coordinator's claims)."""
        heap = self._heap
        taken = [heapq.heappop(heap) for _ in range(min(count, len(heap)))]
        for entry in taken:
            heapq.heappush(heap, entry)
        return [entry[2] for entry in taken]

    def __len__(self) -> int:
        return len(self._heap)

    def __iter__(self):
        return (entry[2] for entry in self._heap)

    def without(self, dropped) -> "ReadyByPriority":
        """The same queue less the units in `dropped` (blocked by a failure)."""
        self._heap = [entry for entry in self._heap if entry[2] not in dropped]
        heapq.heapify(self._heap)
        return self
