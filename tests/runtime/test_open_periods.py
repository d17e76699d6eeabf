"""Which tasks' periods have not ended: dates and intervals compared as days, the others through period_end."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from flow.compiler import types as t
from flow.runtime.open_periods import open_tasks


def _task(*values, periods=(0,)):
    info = SimpleNamespace(periods=periods, allow_open=False, name="r")
    return SimpleNamespace(info=info, values=values, id=f"r({', '.join(map(str, values))})")


def test_a_date_or_interval_is_open_until_its_last_day_has_ended():
    clock = t.Clock.at_midnight(dt.date(2012, 6, 3))  # the moment 2012-06-03 00:00
    yesterday, today = _task(dt.date(2012, 6, 2)), _task(dt.date(2012, 6, 3))
    may, june = _task(t.parse_interval("2012-05")), _task(t.parse_interval("2012-06"))
    ended_yesterday = _task(t.custom(dt.date(2012, 5, 20), dt.date(2012, 6, 3)))  # its last day: 2012-06-02
    both = _task(dt.date(2012, 5, 1), t.parse_interval("2012-06"), periods=(0, 1))
    found = open_tasks([yesterday, today, may, ended_yesterday, june, both], clock)
    assert [(task, end) for task, end in found] == [
        (today, dt.datetime(2012, 6, 4)), (both, dt.datetime(2012, 7, 1)), (june, dt.datetime(2012, 7, 1))]


def test_an_hour_is_open_until_it_has_ended():
    clock = t.Clock(dt.date(2012, 6, 3), dt.datetime(2012, 6, 3, 13, 30), "UTC", True)
    past, current = _task(t.Hour(2012, 6, 3, 12)), _task(t.Hour(2012, 6, 3, 13))
    assert open_tasks([past, current], clock) == [(current, dt.datetime(2012, 6, 3, 14))]
