"""Refuse tasks whose date, hour or interval has not ended: their output would be partial, yet look complete."""

from __future__ import annotations

import datetime as _dt

from flow.compiler import types as t
from flow.compiler.errors import Diagnostic, UsageError

LISTED = 5


def open_tasks(tasks, clock: t.Clock, allow_open: bool = False) -> list:
    """(task, when its period ends) for each task not yet closed by the clock, soonest first.

    A rule with `allow_open: true`, or --allow-open for the whole build, lets them through. A task
    whose periods are several (a date and an interval) is open until the last of them ends.
    """
    if allow_open:
        return []
    moment = clock.moment
    # A date or interval ending on day E (its last day + 1, at midnight) has ended by the moment
    # exactly when E <= the moment's day: compared as dates, no datetime made per task (a
    # million-day backfill asks this of every day). Other periods (hours, minutes) take period_end.
    last_closed_end = moment.date()
    date, interval = _dt.date, t.Interval
    found = []
    for task in tasks:
        info = task.info
        periods = info.periods
        if not periods or info.allow_open:
            continue
        values = task.values
        if len(periods) == 1:
            value = values[periods[0]]
            kind = value.__class__
            if kind is date:
                if value < last_closed_end:
                    continue
            elif kind is interval:
                if value.end <= last_closed_end:
                    continue
        end = max(t.period_end(values[index]) for index in periods)
        if end > moment:
            found.append((task, end))
    found.sort(key=lambda pair: (pair[1], pair[0].id))
    return found


def refusal(found: list, clock: t.Clock) -> UsageError:
    """The error that stops a build with open tasks: which, and from when each can be built."""
    from .summary import group_tasks

    by_rule: dict = {}
    for task, end in found:
        by_rule.setdefault(task.name, []).append((task, end))
    lines = []
    for pairs in list(by_rule.values())[:LISTED]:
        [(_, text)] = group_tasks([task for task, _ in pairs])
        first, last = pairs[0][1], max(end for _, end in pairs)
        when = _when(first, clock) + (f", all of them from {_when(last, clock)}" if last != first else "")
        lines.append(f"{text} can be built from {when}")
    count = len(found)
    subject = f"{found[0][0].id} covers a period that has" if count == 1 else \
        f"{count:,} tasks cover periods that have"
    pinned = " (pinned by --today or FLOW_TODAY)" if clock.pinned else ""
    message = (f"{subject} not ended by {_when(clock.moment, clock)}{pinned}: a build now would write "
               "partial outputs that look complete\n  " + "\n  ".join(lines))
    hint = ("to build a partial output on purpose: flow build --allow-open, or `allow_open: true` in the rule; "
            "ranges relative to today stop at the last closed period by themselves")
    return UsageError(Diagnostic("error", "E904", message, None, hint))


def _when(moment: _dt.datetime, clock: t.Clock) -> str:
    text = moment.strftime("%Y-%m-%d %H:%M")
    return f"{text} {clock.zone}"
