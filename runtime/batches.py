"""Group the missing partitions of a batched rule into runs: up to N contiguous partitions per action call."""

from __future__ import annotations

import datetime as _dt

from flow.compiler import types as t


def follows(previous, value) -> bool:
    """Whether `value` is the partition right after `previous` (the next day, hour, minute or interval)."""
    if isinstance(previous, t.Interval):
        return previous.kind == value.kind and previous.end == value.start
    if isinstance(previous, _dt.datetime):
        return value - previous == (t.ONE_HOUR if isinstance(previous, t.Hour) else t.ONE_MINUTE)
    return value - previous == t.ONE_DAY


def group_runs(tasks: list) -> list:
    """Cut the tasks of batched rules into runs, each a list of tasks in partition order.

    1. Tasks of one rule with the same values for every other parameter go together.
    2. Sorted by the batched partition, they are cut where a partition does not follow the one
       before it (a gap: a day already complete, say) and after every `batch` partitions.
    Tasks of rules without `batch:` come back as runs of one.
    """
    groups: dict = {}
    runs = []
    for task in tasks:
        info = task.info
        if not info.batch:
            runs.append([task])
            continue
        index = info.batch_index
        values = task.values
        key = (info.name, tuple(v for i, v in enumerate(values) if i != index and i in info.significant))
        groups.setdefault(key, []).append(task)
    for members in groups.values():
        info = members[0].info
        index, size = info.batch_index, info.batch
        members.sort(key=lambda task: _order(task.values[index]))
        run = [members[0]]
        for task in members[1:]:
            if len(run) < size and follows(run[-1].values[index], task.values[index]):
                run.append(task)
            else:
                runs.append(run)
                run = [task]
        runs.append(run)
    return runs


def _order(value):
    return (value.start, value.end) if isinstance(value, t.Interval) else value


class Batch:
    """One run of a batched rule's action over contiguous partitions: the plan schedules it as one unit.

    It answers like a Task where the build loop asks (id, name, info, key); `members` are the tasks
    it stands for, each published, recorded and reported on its own.
    """

    __slots__ = ("members", "info", "key", "_id")

    def __init__(self, members: list):
        self.members = members
        self.info = members[0].info
        self.key = ("batch",) + tuple(m.key for m in members)
        self._id = None

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def rule(self):
        return self.info.node

    @property
    def external(self) -> bool:
        return False

    @property
    def id(self) -> str:
        text = self._id
        if text is None:
            from .summary import group_tasks

            [(_, text)] = group_tasks(self.members)
            self._id = text
        return text

    def keep(self, members: list) -> None:
        """Narrow the batch to `members` (others were finished by another flow meanwhile)."""
        self.members = members
        self._id = None

    @property
    def values(self) -> tuple:
        """The members' parameter values, the partition parameter holding the list of partitions."""
        values = list(self.members[0].values)
        values[self.info.batch_index] = self.partitions
        return tuple(values)

    @property
    def partitions(self) -> list:
        index = self.info.batch_index
        return [member.values[index] for member in self.members]

    @property
    def outputs(self) -> list:
        return [member.output for member in self.members]

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return f"Batch({self.id})"

    def __lt__(self, other) -> bool:
        return self.id < other.id


def member_ids(info, values: tuple) -> list:
    """The task ids of a batch's members, from the batch's values (the partition parameter a list).

    Workers get values, not tasks; a table's marker rows are keyed by these ids, exactly as
    `Task.id` writes them.
    """
    index = info.batch_index
    ids = []
    for partition in values[index]:
        shown = ", ".join(t.format_value(partition if i == index else values[i]) for i in info.significant)
        ids.append(f"{info.name}({shown})")
    return ids


def each_task(unit) -> list:
    """The tasks a plan unit stands for: a Batch's members, or the task itself."""
    return unit.members if unit.__class__ is Batch else (unit,)


def units(to_run: list, requirements, dependents) -> tuple:
    """The units a plan schedules: runs of batched rules become Batches, other tasks stay themselves.

    Returns (units, unit_requirements, unit_dependents, member_of): the two functions describe the
    graph between units (a Batch requires what any member requires, outside itself), and
    `member_of(task)` maps a task to the unit that runs it.
    """
    unit_of: dict = {}
    result = []
    for run in group_runs(to_run):
        if not run[0].info.batch:
            result.append(run[0])
            continue
        batch = Batch(run)
        result.append(batch)
        for member in run:
            unit_of[member] = batch
    if not unit_of:
        return to_run, requirements, dependents, lambda task: task

    def member_of(task):
        return unit_of.get(task, task)

    def unit_requirements(unit):
        if unit.__class__ is not Batch:
            return list(dict.fromkeys(member_of(r) for r in requirements(unit)))
        found = dict.fromkeys(member_of(r) for m in unit.members for r in requirements(m))
        found.pop(unit, None)
        return list(found)

    def unit_dependents(unit):
        if unit.__class__ is not Batch:
            return list(dict.fromkeys(member_of(d) for d in dependents(unit)))
        found = dict.fromkeys(member_of(d) for m in unit.members for d in dependents(m))
        found.pop(unit, None)
        return list(found)

    return result, unit_requirements, unit_dependents, member_of
