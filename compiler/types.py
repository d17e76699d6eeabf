"""Parameter types: dates, hours, minutes and Luigi's date intervals, plus int, str and bool; parsing and text."""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from itertools import repeat
from operator import add

ONE_DAY = _dt.timedelta(days=1)
ONE_HOUR = _dt.timedelta(hours=1)
ONE_MINUTE = _dt.timedelta(minutes=1)

TYPE_NAMES = ("date", "hour", "minute", "interval", "int", "str", "bool")


class TypeError_(ValueError):
    """A value does not parse as the type asked for; the message says what was expected."""


# ---------------------------------------------------------------------------- hours and minutes


class Hour(_dt.datetime):
    """One hour, [start, start + 1h), written as Luigi's DateHourParameter: 2012-06-01T13.

    A naive datetime (the Flowfile's time zone gives it a place on the clock); arithmetic with
    timedeltas keeps the class, so `hour + ONE_HOUR` is an Hour.
    """

    __slots__ = ()

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}T{self.hour:02d}"

    def __repr__(self) -> str:
        return f"Hour({str(self)!r})"

    @property
    def end(self) -> _dt.datetime:
        return self + ONE_HOUR


class Minute(_dt.datetime):
    """One minute, written as Luigi's DateMinuteParameter: 2012-06-01T1305."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}T{self.hour:02d}{self.minute:02d}"

    def __repr__(self) -> str:
        return f"Minute({str(self)!r})"

    @property
    def end(self) -> _dt.datetime:
        return self + ONE_MINUTE


def hours_between(first: Hour, last: Hour) -> list:
    """Every hour from first to last, both included."""
    count = int((last - first) / ONE_HOUR) + 1
    return [first + ONE_HOUR * i for i in range(count)]


def minutes_between(first: Minute, last: Minute) -> list:
    """Every minute from first to last, both included."""
    count = int((last - first) / ONE_MINUTE) + 1
    return [first + ONE_MINUTE * i for i in range(count)]


def hours_within(period) -> list:
    """The hours of a day (a date) or of an interval: 24 a day, 23 or 25 never (hours are naive)."""
    start, end = _day_bounds(period)
    first = Hour(start.year, start.month, start.day)
    return [first + ONE_HOUR * i for i in range((end - start).days * 24)]


def minutes_within(period) -> list:
    """The minutes of a day (a date), an interval or an hour."""
    if isinstance(period, Hour):
        first = Minute(period.year, period.month, period.day, period.hour)
        return [first + ONE_MINUTE * i for i in range(60)]
    start, end = _day_bounds(period)
    first = Minute(start.year, start.month, start.day)
    return [first + ONE_MINUTE * i for i in range((end - start).days * 1440)]


def _day_bounds(period) -> tuple:
    if isinstance(period, Interval):
        return period.start, period.end
    return period, period + ONE_DAY


# ---------------------------------------------------------------------------- intervals


class Interval:
    """A half-open range of days [start, end) of one of Luigi's kinds: year, month, week, day, custom."""

    __slots__ = ("kind", "start", "end", "_text", "_hash")

    def __init__(self, kind: str, start: _dt.date, end: _dt.date, text: str | None = None):
        self.kind = kind
        self.start = start
        self.end = end
        self._text = text
        self._hash = None

    # Luigi's text forms: 2012, 2012-06, 2012-W23, 2012-06-03, 2012-06-01-2012-06-15
    def __str__(self) -> str:
        text = self._text
        if text is None:
            start = self.start
            kind = self.kind
            if kind == "year":
                text = f"{start.year:04d}"
            elif kind == "month":
                text = f"{start.year:04d}-{start.month:02d}"
            elif kind == "week":
                year, week, _ = start.isocalendar()
                text = f"{year:04d}-W{week:02d}"
            elif kind == "day":
                text = start.isoformat()
            else:
                text = f"{start.isoformat()}-{self.end.isoformat()}"
            self._text = text
        return text

    def __repr__(self) -> str:
        return f"Interval({str(self)!r})"

    # Two intervals that print differently are different (2012-06 is not 2012-06-01-2012-07-01:
    # they name different files), so equality, hashing and order all include the kind. Order is
    # by start, then end, then kind, and is total: <, <=, >, >= all work.
    def __eq__(self, other) -> bool:
        return (isinstance(other, Interval) and self.start == other.start and self.end == other.end
                and self.kind == other.kind)

    def __ne__(self, other) -> bool:
        return not self == other

    def _key(self) -> tuple:
        return (self.start, self.end, self.kind)

    def __lt__(self, other: "Interval") -> bool:
        if not isinstance(other, Interval):
            return NotImplemented
        return self._key() < other._key()

    def __le__(self, other: "Interval") -> bool:
        if not isinstance(other, Interval):
            return NotImplemented
        return self._key() <= other._key()

    def __gt__(self, other: "Interval") -> bool:
        if not isinstance(other, Interval):
            return NotImplemented
        return self._key() > other._key()

    def __ge__(self, other: "Interval") -> bool:
        if not isinstance(other, Interval):
            return NotImplemented
        return self._key() >= other._key()

    def __hash__(self) -> int:
        value = self._hash
        if value is None:
            value = self._hash = hash((self.start, self.end, self.kind))
        return value

    def __reduce__(self):
        return (Interval, (self.kind, self.start, self.end))

    def __iter__(self):
        return iter(self.days)

    def __len__(self) -> int:
        return (self.end - self.start).days

    def __contains__(self, day) -> bool:
        return self.start <= day < self.end

    @property
    def days(self) -> list:
        # Made from day numbers in C (no timedelta per day): 4x faster, and a backfill's aggregates
        # ask each month for its days (938,000 of them for a million tasks).
        return list(map(_dt.date.fromordinal, range(self.start.toordinal(), self.end.toordinal())))

    @property
    def next(self) -> "Interval":
        return shift(self, 1)

    @property
    def prev(self) -> "Interval":
        return shift(self, -1)


class OutOfCalendar(TypeError_):
    """An interval would end after 9999-12-31, the last day Python's dates (and so flow) can count."""


def _beyond(kind: str, start: _dt.date) -> OutOfCalendar:
    return OutOfCalendar(f"the {kind} starting {start.isoformat()} holds days after 9999-12-30, "
                         "the last day an interval can hold")


def year(y: int) -> Interval:
    if y == _dt.MAXYEAR:
        raise _beyond("year", _dt.date(y, 1, 1))
    return Interval("year", _dt.date(y, 1, 1), _dt.date(y + 1, 1, 1))


def month(y: int, m: int) -> Interval:
    if y == _dt.MAXYEAR and m == 12:
        raise _beyond("month", _dt.date(y, m, 1))
    end = _dt.date(y + 1, 1, 1) if m == 12 else _dt.date(y, m + 1, 1)
    return Interval("month", _dt.date(y, m, 1), end)


def week(y: int, w: int) -> Interval:
    start = _dt.date.fromisocalendar(y, w, 1)
    if start > _LAST_WEEK_START:
        raise _beyond("week", start)
    return Interval("week", start, start + _dt.timedelta(days=7))


def day(d: _dt.date) -> Interval:
    if d == _dt.date.max:
        raise _beyond("day", d)
    return Interval("day", d, d + ONE_DAY)


# An interval's end is the day after its last: the last one flow can hold ends on 9999-12-31.
_LAST_WEEK_START = _dt.date.max - _dt.timedelta(days=7)


def custom(start: _dt.date, end: _dt.date) -> Interval:
    if end <= start:
        raise TypeError_(f"interval end {end.isoformat()} is not after its start {start.isoformat()}")
    return Interval("custom", start, end)


def shift(interval: Interval, steps: int) -> Interval:
    """The interval `steps` places after (or before, when negative) this one, of the same kind."""
    try:
        return _shift(interval, steps)
    except (ValueError, OverflowError):
        raise TypeError_(f"{interval} shifted by {steps} leaves the calendar (years 1 to 9999)") from None


def _shift(interval: Interval, steps: int) -> Interval:
    kind = interval.kind
    start = interval.start
    if kind == "year":
        return year(start.year + steps)
    if kind == "month":
        index = start.year * 12 + start.month - 1 + steps
        return month(index // 12, index % 12 + 1)
    if kind == "week":
        new_start = start + _dt.timedelta(weeks=steps)
        y, w, _ = new_start.isocalendar()
        return week(y, w)
    if kind == "day":
        return day(start + _dt.timedelta(days=steps))
    length = interval.end - start
    return custom(start + length * steps, interval.end + length * steps)


# Digits are ASCII only: Python's \d also matches '٢٠١٢', which must not read as 2012.
_YEAR = re.compile(r"([0-9]{4})")
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_CUSTOM = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})-([0-9]{4}-[0-9]{2}-[0-9]{2})")
_HOUR = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2})")
_MINUTE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2})([0-9]{2})")
_INT = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*")

# Regular expressions for output patterns: what a placeholder of each type may match.
PATTERN_REGEX = {
    "date": r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
    "hour": r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}",
    "minute": r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{4}",
    "interval": r"[0-9]{4}(?:-W[0-9]{2}|-[0-9]{2}(?:-[0-9]{2}(?:-[0-9]{4}-[0-9]{2}-[0-9]{2})?)?)?",
    "int": r"-?[0-9]+",
    "str": r"[^/]+?",
    "bool": r"true|false",
}


def parse_date(text: str) -> _dt.date:
    match = _DATE.fullmatch(text)
    if not match:
        raise TypeError_(f"'{text}' is not a date (expected YYYY-MM-DD)")
    try:
        return _dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError as exc:
        raise TypeError_(f"'{text}' is not a date: {exc}") from None


def parse_hour(text: str) -> Hour:
    match = _HOUR.fullmatch(text)
    if not match:
        raise TypeError_(f"'{text}' is not an hour (expected YYYY-MM-DDTHH, such as 2012-06-01T13)")
    try:
        return Hour(int(match[1]), int(match[2]), int(match[3]), int(match[4]))
    except ValueError as exc:
        raise TypeError_(f"'{text}' is not an hour: {exc}") from None


def parse_minute(text: str) -> Minute:
    match = _MINUTE.fullmatch(text)
    if not match:
        raise TypeError_(f"'{text}' is not a minute (expected YYYY-MM-DDTHHMM, such as 2012-06-01T1305)")
    try:
        return Minute(int(match[1]), int(match[2]), int(match[3]), int(match[4]), int(match[5]))
    except ValueError as exc:
        raise TypeError_(f"'{text}' is not a minute: {exc}") from None


def parse_interval(text: str) -> Interval:
    """Parse Luigi's DateInterval text forms."""
    try:
        if _YEAR.fullmatch(text):
            return year(int(text))
        match = _MONTH.fullmatch(text)
        if match:
            return month(int(match[1]), int(match[2]))
        match = _WEEK.fullmatch(text)
        if match:
            return week(int(match[1]), int(match[2]))
        if _DATE.fullmatch(text):
            return day(parse_date(text))
        match = _CUSTOM.fullmatch(text)
        if match:
            return custom(parse_date(match[1]), parse_date(match[2]))
    except OutOfCalendar:
        raise TypeError_(f"'{text}' is out of range: the last day an interval can hold is 9999-12-30") from None
    except ValueError as exc:
        # datetime's messages ("month must be in 1..12") are clear enough once we name the text
        reason = str(exc)
        if reason.startswith("'"):  # already names a part of the text: keep only the reason
            reason = reason.split(": ", 1)[-1]
        raise TypeError_(f"'{text}' is not an interval: {reason}") from None
    raise TypeError_(
        f"'{text}' is not an interval (expected 2012, 2012-06, 2012-W23, 2012-06-03 or 2012-06-01-2012-06-15)"
    )


def parse_bool(text: str) -> bool:
    if text in ("true", "True", "yes", "1"):
        return True
    if text in ("false", "False", "no", "0"):
        return False
    raise TypeError_(f"'{text}' is not a bool (expected true or false)")


def parse_int(text: str) -> int:
    stripped = text.strip()
    if not _INT.fullmatch(stripped):
        raise TypeError_(f"'{text}' is not an int")
    try:
        return int(stripped)
    except ValueError:  # more digits than Python converts (4,300)
        raise TypeError_(f"'{text[:20]}...' is not an int flow can use: it has {len(stripped)} digits") from None


PARSERS = {
    "date": parse_date,
    "hour": parse_hour,
    "minute": parse_minute,
    "interval": parse_interval,
    "int": parse_int,
    "str": str,
    "bool": parse_bool,
}


def parse_value(type_name: str, text: str):
    """Parse user text (CLI, file names, temporal literals) as a value of the given type."""
    return PARSERS[type_name](text)


def format_value(value) -> str:
    """The text form of a value, as it appears in outputs, task ids and on the command line."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, _dt.datetime):  # Hour and Minute print Luigi's forms
        return str(value)
    if isinstance(value, _dt.date):
        return value.isoformat()
    return str(value)


# The days of each month, January first (February's 29th is allowed for by _days_in_month).
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DAY_TAILS: dict = {}  # text after a date -> ["01" + text, ..., "31" + text]


def _days_in_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month - 1]


def iso_texts(days: list, before: str = "", after: str = "") -> list:
    """`before + day.isoformat() + after` for each day; days that run one after another are written
    a month at a time, from the month's text and the day numbers' (`isoformat` per day was a third of
    making a million-task backfill's days)."""
    count = len(days)
    if count > 2:
        try:
            start = _dt.date.toordinal(days[0])
            consecutive = list(map(_dt.date.toordinal, days)) == list(range(start, start + count))
        except TypeError:  # not dates: the general way says so
            consecutive = False
        if consecutive:
            tails = _DAY_TAILS.get(after)
            if tails is None:
                tails = _DAY_TAILS[after] = [f"{day:02d}{after}" for day in range(1, 32)]
            first = days[0]
            year, month, day = first.year, first.month, first.day
            texts: list = []
            while count:
                take = min(count, _days_in_month(year, month) - day + 1)
                texts += map(f"{before}{year:04d}-{month:02d}-".__add__, tails[day - 1:day - 1 + take])
                count -= take
                year, month, day = (year + 1, 1, 1) if month == 12 else (year, month + 1, 1)
            return texts
    return list(map(add, map(before.__add__, map(_dt.date.isoformat, days)), repeat(after)))


# The text form by type, without format_value's checks: output patterns format one value per task.
FORMATTERS = {
    "date": _dt.date.isoformat,
    "hour": Hour.__str__,
    "minute": Minute.__str__,
    "interval": str,
    "int": str,
    "str": str,
    "bool": format_value,
}


def type_of(value) -> str:
    """The Flowfile type name of a Python value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "str"
    if isinstance(value, Interval):
        return "interval"
    if isinstance(value, Hour):
        return "hour"
    if isinstance(value, Minute):
        return "minute"
    if isinstance(value, _dt.date):
        return "date"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


# ---------------------------------------------------------------------------- the build's clock

# Keys of an expression environment that hold the clock; '@' keeps them apart from parameter names.
TODAY = "@today"
NOW = "@now"  # the hour the moment falls in
MOMENT = "@moment"


@dataclass(frozen=True)
class Clock:
    """The moment a build happens on the Flowfile's clock: given to the compiler, never read by it.

    `moment` is naive, in the Flowfile's time zone (`zone`); `today` is its date. A pinned clock
    (--today, FLOW_TODAY) stands at midnight of the pinned day, so reruns see the same world.
    """

    today: _dt.date
    moment: _dt.datetime
    zone: str = "UTC"
    pinned: bool = False

    @classmethod
    def at_midnight(cls, today: _dt.date, zone: str = "UTC", pinned: bool = True) -> "Clock":
        return cls(today, _dt.datetime(today.year, today.month, today.day), zone, pinned)

    def env(self) -> dict:
        moment = self.moment
        return {TODAY: self.today, NOW: Hour(moment.year, moment.month, moment.day, moment.hour), MOMENT: moment}

    def describe(self) -> str:
        return f"{self.today.isoformat()}{' (pinned)' if self.pinned else ''}, {self.zone}"


def period_end(value) -> _dt.datetime | None:
    """When a date, hour, minute or interval ends (naive, exclusive); None for values that are not periods."""
    if isinstance(value, Interval):
        end = value.end
    elif isinstance(value, _dt.datetime):
        return value.end if isinstance(value, (Hour, Minute)) else None
    elif isinstance(value, _dt.date):
        end = value + ONE_DAY
    else:
        return None
    return _dt.datetime(end.year, end.month, end.day)


def closed_prefix(values: list, moment: _dt.datetime) -> list:
    """The values (in order) that have ended by `moment`: a range relative to today stops at the last closed one."""
    count = len(values)
    while count and period_end(values[count - 1]) > moment:
        count -= 1
    return values[:count] if count < len(values) else values


# ---------------------------------------------------------------------------- ranges


def days_between(first: _dt.date, last: _dt.date) -> list:
    """Every day from first to last, both included."""
    return list(map(_dt.date.fromordinal, range(first.toordinal(), last.toordinal() + 1)))


def intervals_between(kind: str, first: Interval, last: Interval) -> list:
    """Every interval of `kind` from the one containing first's start through the one holding last's last day."""
    current = interval_containing(kind, first.start)
    stop = last.end - ONE_DAY
    if kind == "month":
        return _months_from(current.start, stop)
    result = []
    while current.start <= stop:
        result.append(current)
        current = shift(current, 1)
    return result


def _months_from(start: _dt.date, stop: _dt.date) -> list:
    """The months from the one starting at `start` through the one holding `stop`, each end the next's start.

    What shifting a month by one at a time gives, without its checks per month: a range of 30,000
    months (a million-task backfill) is made at every command, a no-op included.
    """
    first = start.year * 12 + start.month - 1
    last = stop.year * 12 + stop.month - 1
    if last >= _dt.MAXYEAR * 12 + 11:  # December 9999 ends past the calendar: shift says so
        return [month(index // 12, index % 12 + 1) for index in range(first, last + 1)]
    result = []
    add = result.append
    begin = start
    first_year, last_year = start.year, stop.year
    for y in range(first_year, last_year + 1):
        prefix = f"{y:04d}-"  # each name written here, where its year is known: every month's name is asked for
        # each end is the start plus the month's length (a third of the cost of a date made from its parts)
        lengths = _LEAP_MONTH_LENGTHS if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else _MONTH_LENGTHS
        for m in range(start.month - 1 if y == first_year else 0, stop.month if y == last_year else 12):
            end = begin + lengths[m]
            add(Interval("month", begin, end, prefix + _MONTH_NUMBERS[m]))
            begin = end
    return result


_MONTH_NUMBERS = tuple(f"{m:02d}" for m in range(1, 13))
_MONTH_LENGTHS = tuple(_dt.timedelta(days=n) for n in (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31))
_LEAP_MONTH_LENGTHS = _MONTH_LENGTHS[:1] + (_dt.timedelta(days=29),) + _MONTH_LENGTHS[2:]


def interval_containing(kind: str, d: _dt.date) -> Interval:
    if kind == "year":
        return year(d.year)
    if kind == "month":
        return month(d.year, d.month)
    if kind == "week":
        y, w, _ = d.isocalendar()
        return week(y, w)
    return day(d)


def intervals_within(kind: str, outer: Interval) -> list:
    """The intervals of `kind` that start inside `outer` (months of a year, weeks of a month, ...)."""
    if kind == "day":
        return [day(d) for d in outer.days]
    current = interval_containing(kind, outer.start)
    if current.start < outer.start:
        current = shift(current, 1)
    result = []
    while current.start < outer.end:
        result.append(current)
        current = shift(current, 1)
    return result
