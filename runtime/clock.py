"""The build's clock: today and the moment in the Flowfile's time zone, read here and handed to the compiler."""

from __future__ import annotations

import datetime as _dt
import os

from flow.compiler import types as t
from flow.compiler.errors import Diagnostic, UsageError

TODAY_VARIABLE = "FLOW_TODAY"


def build_clock(timezone: str = "UTC", today: str | None = None) -> t.Clock:
    """The clock of this run: pinned by `today` (--today) or FLOW_TODAY, else the wall clock in `timezone`.

    A pinned day stands at its midnight, so a rerun with the same --today sees the same ranges and
    refuses the same open periods, whenever it runs.
    """
    pinned = today or os.environ.get(TODAY_VARIABLE) or None
    if pinned:
        try:
            day = t.parse_date(pinned.strip())
        except t.TypeError_ as exc:
            source = "--today" if today else TODAY_VARIABLE
            raise UsageError(Diagnostic("error", "E902", f"{source}: {exc}", None)) from None
        return t.Clock.at_midnight(day, timezone, pinned=True)
    import zoneinfo

    now = _dt.datetime.now(zoneinfo.ZoneInfo(timezone)).replace(tzinfo=None)
    return t.Clock(now.date(), now, timezone, pinned=False)
