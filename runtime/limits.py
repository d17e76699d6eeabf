"""Refuse to plan more tasks than a limit, so a typo in an interval fails in a second instead of eating the memory."""

from __future__ import annotations

import os

from flow.compiler.expressions import TooManyRequirements

ENV_VAR = "FLOW_MAX_TASKS"
# Ten times the largest benchmark (100k tasks) and far below what a typo such as
# top_artists_0001-01-01-9999-12-31.tsv asks for (3.65 million tasks, 5.6 GB).
DEFAULT_MAX_TASKS = 1_000_000


class TooManyTasks(Exception):
    """The targets need more tasks than the limit; the message says how many and how to lift it."""

    exit_code = 2


def max_tasks(option: int | None, configured: int | None = None) -> int:
    """The limit: --max-tasks, else FLOW_MAX_TASKS, else `configured` (the settings), else the default; 0: none."""
    if option is not None:
        return option
    text = os.environ.get(ENV_VAR, "").strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            raise TooManyTasks(f"{ENV_VAR}={text!r} is not a whole number of tasks") from None
        if value >= 0:
            return value
        raise TooManyTasks(f"{ENV_VAR}={text!r} must be 0 (no limit) or more")
    return DEFAULT_MAX_TASKS if configured is None else configured


class TaskCounter:
    """Counts the tasks a graph walk meets and raises TooManyTasks as soon as they pass the limit.

    `complete` sees each level of the walk once (the walk only passes tasks it has not seen), so
    the sum of its levels is the exact count so far. `requirements` catches the one task that
    requires more than the limit by itself: the factory stops making its requirements at the
    limit (an interval's day count is known before any is made), before the walk stores any.
    """

    def __init__(self, limit: int, roots: list):
        self.limit = limit
        self.roots = roots
        self.seen = 0

    def complete(self, complete):
        def counted(tasks):
            self.seen += len(tasks)
            self._check(self.seen)
            return complete(tasks)

        return counted if self.limit else complete

    def factory(self, factory):
        """The task factory with its `requirements` counted (everything else passes through)."""
        return _CountingFactory(factory, self) if self.limit else factory

    def _check(self, count: int) -> None:
        if count > self.limit:
            names = ", ".join(task.id for task in self.roots[:3]) + (" ..." if len(self.roots) > 3 else "")
            raise TooManyTasks(
                f"{names} would need at least {count:,} tasks, more than the limit of {self.limit:,}"
                f" (a typo in an interval?); raise it with --max-tasks N or {ENV_VAR}=N, or lift it with"
                " --max-tasks 0")


class _CountingFactory:
    __slots__ = ("_factory", "_counter")

    def __init__(self, factory, counter: TaskCounter):
        self._factory = factory
        self._counter = counter
        factory.max_requirements = counter.limit  # a typo's requirements stop at the limit, before they are all made

    def __getattr__(self, name):
        return getattr(self._factory, name)

    def requirements(self, task) -> list:
        try:
            children = self._factory.requirements(task)
        except TooManyRequirements as exc:
            self._counter._check(max(self._counter.seen, exc.count + 1))
            raise
        if len(children) > self._counter.limit:  # distinct by themselves: refuse before the walk stores them
            self._counter._check(max(self._counter.seen, len(children) + 1))
        return children
