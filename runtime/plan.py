"""Plan stores what a build intends to run and answers "what is ready?"; it never touches the disk."""

from __future__ import annotations

from collections import deque
from itertools import islice, repeat


class Plan:
    """The tasks to run, how many of each one's requirements are still unfinished, and what is ready.

    `requirements(task)` and `dependents(task)` describe the graph; only tasks in `to_run` are
    scheduled. A task whose requirement is missing (an absent external output) is blocked from the
    start; a failure blocks every task that needs it, transitively. `priority` (task -> effective
    priority, from priorities.effective_priorities) makes higher priorities start first; without
    it, the ready tasks are a plain deque.
    """

    def __init__(self, to_run, requirements, dependents, missing=(), keep_going: bool = False, priority=None):
        self.keep_going = keep_going
        self._dependents = dependents
        self.to_run = list(to_run)
        wanted = set(self.to_run)
        self._wanted = wanted
        self._waiting: dict = {}
        if priority is None:
            self._ready = deque()
        else:
            from .priorities import ReadyByPriority

            self._ready = ReadyByPriority(priority)
        self.blocked: dict = {}  # task -> the failed or missing task that blocks it
        self.failed: list = []
        self.finished_ok: list = []
        self._stopped = False
        self._running = 0
        missing = set(missing)
        for task in self.to_run:
            count = 0
            for requirement in requirements(task):
                if requirement in wanted:
                    count += 1
                elif requirement in missing:
                    self._block_from(task, requirement)
            if task in self.blocked:
                continue
            if count:
                self._waiting[task] = count
            else:
                self._ready.append(task)
        # a task blocked by a missing input blocks its dependents too
        for task in list(self.blocked):
            self._block_dependents(task, self.blocked[task])

    def _block_from(self, task, cause) -> None:
        if task not in self.blocked:
            self.blocked[task] = cause
            self._waiting.pop(task, None)

    def _block_dependents(self, task, cause) -> None:
        stack = [task]
        while stack:
            current = stack.pop()
            for dependent in self._dependents(current):
                if dependent in self._wanted and dependent not in self.blocked:
                    self._block_from(dependent, cause)
                    stack.append(dependent)
        if self._ready:
            ready, blocked = self._ready, self.blocked
            if ready.__class__ is deque:
                self._ready = deque(t for t in ready if t not in blocked)
            else:
                self._ready = ready.without(blocked)

    def next_ready(self):
        """The next task that can start now, or None."""
        if self._stopped or not self._ready:
            return None
        self._running += 1
        return self._ready.popleft()

    def take_while(self, count: int, accept) -> list:
        """Up to `count` tasks next_ready would give, one after the other, as long as `accept(task)` says yes."""
        ready = self._ready
        taken = []
        if self._stopped:
            return taken
        while ready and len(taken) < count and accept(ready[0]):
            taken.append(ready.popleft())
        self._running += len(taken)
        return taken

    def peek(self):
        """The task next_ready would give, without taking it."""
        return self._ready[0]

    def first_ready(self, count: int) -> list:
        """The next `count` tasks next_ready would give (fewer when fewer are ready), without taking them."""
        ready = self._ready
        if self._stopped or not ready:
            return []
        if ready.__class__ is deque:
            return list(islice(ready, count))
        return ready.first(count)

    def has_ready(self) -> bool:
        return bool(self._ready) and not self._stopped

    def put_back(self, task) -> None:
        """A task that could not start yet (another flow holds its lock): try it again later."""
        self._running -= 1
        self._ready.append(task)

    def finished(self, task, ok: bool) -> None:
        """Record the end of a task; its dependents may become ready, or blocked when it failed."""
        self._running -= 1
        if ok:
            self.finished_ok.append(task)
            waiting = self._waiting
            for dependent in self._dependents(task):
                count = waiting.get(dependent)
                if count is None:
                    continue
                if count == 1:
                    del waiting[dependent]
                    # to the front: finish chains before starting new leaves, so that whole
                    # months complete early (and a stopped build leaves fewer half-done months)
                    self._ready.appendleft(dependent)
                else:
                    waiting[dependent] = count - 1
            return
        self.failed.append(task)
        self._block_dependents(task, task)
        if not self.keep_going:
            self._stopped = True

    def stop(self) -> None:
        """Start nothing more (Ctrl-C, or a failure without --keep-going)."""
        self._stopped = True

    @property
    def stopped(self) -> bool:
        return self._stopped

    def done(self) -> bool:
        """Nothing runs and nothing more can start."""
        return self._running == 0 and (self._stopped or not self._ready)

    def not_started(self) -> list:
        """Tasks that were neither run nor blocked (after a stop)."""
        ended = set(self.finished_ok) | set(self.failed) | set(self.blocked)
        return [t for t in self.to_run if t not in ended]


def run_order(to_run, requirements, closed: bool = False) -> list:
    """A valid order to run `to_run` in (requirements first), for dry runs; stable and linear.

    `requirements(task)` may answer None for a task without requirements. A requirement without
    requirements of its own is ordered where it is met, without a frame on the stack, and a task whose
    requirements are all such leaves not ordered yet is ordered with them in C: most tasks of a big
    graph are leaves (a million-task dry run's days, 31 to each month). `closed` says that every
    requirement of a task to run is to run too (nothing is complete): the table of the tasks to
    run is then not made first, a task not visited yet is one to order.
    """
    # task -> True once visited; False (or, when closed, absent) for a task to order not visited yet
    visited = {} if closed else dict.fromkeys(to_run, False)
    pending = False if closed else None  # what visited.get answers for a task it does not hold
    order = []
    append = order.append

    def at_once(task, below) -> bool:
        if any(map(requirements, below)):
            return False
        if closed:  # not visited yet: not in the table at all (one probe each in C, no list)
            if not visited.keys().isdisjoint(below):
                return False
        elif list(map(visited.get, below, repeat(pending))).count(False) != len(below):
            return False
        fresh = dict.fromkeys(below, True)
        if len(fresh) != len(below):  # a requirement listed twice: the general way orders it once
            return False
        visited.update(fresh)
        order.extend(below)
        append(task)
        return True

    for root in to_run:
        if visited.get(root):
            continue
        visited[root] = True
        below = requirements(root)
        if not below:
            append(root)
            continue
        if at_once(root, below):
            continue
        stack = [(root, iter(below))]
        while stack:
            task, children = stack[-1]
            for child in children:
                if visited.get(child, pending) is False:
                    visited[child] = True
                    below = requirements(child)
                    if not below:
                        append(child)
                        continue
                    if at_once(child, below):
                        continue
                    stack.append((child, iter(below)))
                    break
            else:
                stack.pop()
                append(task)
    return order
