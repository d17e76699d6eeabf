"""Tests of compiler/types.py: Luigi's interval text forms, shifting, iteration, and value parsing."""

import datetime as dt

import pytest
from flow.compiler import types as t
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.mark.parametrize(
    "text, kind, start, end",
    [
        ("2012", "year", dt.date(2012, 1, 1), dt.date(2013, 1, 1)),
        ("2012-06", "month", dt.date(2012, 6, 1), dt.date(2012, 7, 1)),
        ("2012-12", "month", dt.date(2012, 12, 1), dt.date(2013, 1, 1)),
        ("2012-W23", "week", dt.date(2012, 6, 4), dt.date(2012, 6, 11)),
        ("2012-06-03", "day", dt.date(2012, 6, 3), dt.date(2012, 6, 4)),
        ("2012-06-01-2012-06-15", "custom", dt.date(2012, 6, 1), dt.date(2012, 6, 15)),
    ],
)
def test_interval_formats(text, kind, start, end):
    interval = t.parse_interval(text)
    assert (interval.kind, interval.start, interval.end) == (kind, start, end)
    assert str(interval) == text


@pytest.mark.parametrize(
    "text, message",
    [
        ("2012-13", "'2012-13' is not an interval: month must be in 1..12"),
        ("2012-W60", "'2012-W60' is not an interval: Invalid week: 60"),
        ("2012-06-15-2012-06-01",
         "'2012-06-15-2012-06-01' is not an interval: interval end 2012-06-01 is not after its start 2012-06-15"),
        ("2012-06-01-2012-06-01",
         "'2012-06-01-2012-06-01' is not an interval: interval end 2012-06-01 is not after its start 2012-06-01"),
        ("2012-02-30", "'2012-02-30' is not an interval: day is out of range for month"),
        ("june", "'june' is not an interval (expected 2012, 2012-06, 2012-W23, 2012-06-03 or 2012-06-01-2012-06-15)"),
    ],
)
def test_invalid_intervals(text, message):
    with pytest.raises(t.TypeError_) as caught:
        t.parse_interval(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "text, prev, next_",
    [
        ("2012", "2011", "2013"),
        ("2012-01", "2011-12", "2012-02"),
        ("2012-12", "2012-11", "2013-01"),
        ("2012-W01", "2011-W52", "2012-W02"),
        ("2015-W53", "2015-W52", "2016-W01"),
        ("2012-03-01", "2012-02-29", "2012-03-02"),
        ("2012-06-01-2012-06-15", "2012-05-18-2012-06-01", "2012-06-15-2012-06-29"),
    ],
)
def test_prev_and_next(text, prev, next_):
    interval = t.parse_interval(text)
    assert str(interval.prev) == prev
    assert str(interval.next) == next_
    assert interval.next.prev == interval


def test_iteration_yields_days():
    june = t.parse_interval("2012-06")
    days = list(june)
    assert len(days) == len(june) == 30
    assert days[0] == dt.date(2012, 6, 1) and days[-1] == dt.date(2012, 6, 30)
    assert dt.date(2012, 6, 30) in june and dt.date(2012, 7, 1) not in june
    assert len(t.parse_interval("2012")) == 366


def test_ordering_equality_and_hash():
    # issue 11 item 3: same days, different kinds print differently, so they are different tasks
    a, b = t.parse_interval("2012-06"), t.parse_interval("2012-06-01-2012-07-01")
    assert a != b and not a == b and len({a, b}) == 2
    assert t.parse_interval("2012-06-03") != t.parse_interval("2012-06-03-2012-06-04")
    assert a == t.month(2012, 6) and hash(a) == hash(t.month(2012, 6))
    assert sorted([t.parse_interval("2012-07"), a]) == [a, t.parse_interval("2012-07")]
    assert sorted([a, b]) == sorted([b, a])  # a total order: same days sort by kind


def test_every_comparison_works_on_intervals():
    # issue 11 item 9: the docs list six comparisons; <= and >= used to raise TypeError
    june, july = t.parse_interval("2012-06"), t.parse_interval("2012-07")
    assert june < july and june <= july and july > june and july >= june and june != july
    assert june <= t.month(2012, 6) and june >= t.month(2012, 6)
    assert not (june >= july) and not (july <= june)


def test_ranges_of_intervals():
    months = t.intervals_between("month", t.parse_interval("2012-11"), t.parse_interval("2013-02"))
    assert [str(m) for m in months] == ["2012-11", "2012-12", "2013-01", "2013-02"]
    weeks = t.intervals_within("week", t.parse_interval("2012-06"))
    assert [str(w) for w in weeks] == ["2012-W23", "2012-W24", "2012-W25", "2012-W26"]
    assert len(t.days_between(dt.date(2012, 2, 28), dt.date(2012, 3, 1))) == 3


@pytest.mark.parametrize(
    "type_name, text, value",
    [("int", "42", 42), ("bool", "true", True), ("bool", "false", False), ("str", "eu", "eu"),
     ("date", "2012-06-01", dt.date(2012, 6, 1))],
)
def test_parse_and_format_values(type_name, text, value):
    assert t.parse_value(type_name, text) == value
    assert t.format_value(value) == text


@pytest.mark.parametrize("type_name, text", [("int", "4.2"), ("bool", "maybe"), ("date", "2012-06")])
def test_bad_values(type_name, text):
    with pytest.raises(t.TypeError_):
        t.parse_value(type_name, text)


days = st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9000, 12, 31))  # room to shift


@st.composite
def intervals(draw):
    day = draw(days)
    kind = draw(st.sampled_from(["year", "month", "week", "day", "custom"]))
    if kind == "custom":
        return t.custom(day, day + dt.timedelta(days=draw(st.integers(1, 400))))
    return t.interval_containing(kind, day)


@settings(max_examples=300, derandomize=True)
@given(intervals())
def test_interval_text_round_trips(interval):
    text = str(interval)
    again = t.parse_interval(text)
    assert again == interval and again.kind == interval.kind and str(again) == text
    assert t.PATTERN_REGEX["interval"] and __import__("re").fullmatch(t.PATTERN_REGEX["interval"], text)


@settings(max_examples=200, derandomize=True)
@given(intervals(), st.integers(-30, 30))
def test_shift_is_invertible(interval, steps):
    moved = t.shift(interval, steps)
    assert moved.kind == interval.kind
    assert t.shift(moved, -steps) == interval


@settings(max_examples=200, derandomize=True)
@given(days)
def test_date_text_round_trips(day):
    assert t.parse_date(t.format_value(day)) == day


def test_a_range_of_months_is_the_months_shifted_one_by_one():
    # intervals_between makes months in one loop (a 30,000-month range at every command): the same
    # months, ends and names as shifting one at a time, across years and at both ends of the calendar
    for first, last in [("2012-11", "2014-02"), ("0001-01", "0002-03"), ("9998-11", "9999-11")]:
        made = t.intervals_between("month", t.parse_interval(first), t.parse_interval(last))
        shifted = [t.parse_interval(first)]
        while shifted[-1] != t.parse_interval(last):
            shifted.append(t.shift(shifted[-1], 1))
        assert made == shifted
        assert [(str(m), m.end) for m in made] == [(str(m), m.end) for m in shifted]
    with pytest.raises(t.TypeError_, match="9999-12"):
        t.intervals_between("month", t.parse_interval("9999-10"), t.parse_interval("9999-12-05"))


@settings(max_examples=300, derandomize=True)
@given(intervals(), st.booleans())
def test_iso_texts_are_each_days_isoformat(interval, shuffled):
    # iso_texts writes days that run one after another a month at a time (a backfill's outputs):
    # the same text as isoformat, across months, leap days and years, and for days out of order
    days = interval.days
    if shuffled:
        days = days[::2] + days[1::2]
    assert t.iso_texts(days, "data/s_", ".tsv") == [f"data/s_{day.isoformat()}.tsv" for day in days]
    assert t.iso_texts(days) == [day.isoformat() for day in days]


def test_iso_texts_at_the_ends_of_the_calendar():
    for first, last in [(dt.date(1, 1, 1), dt.date(1, 3, 2)), (dt.date(9999, 11, 20), dt.date(9999, 12, 31)),
                        (dt.date(2000, 2, 27), dt.date(2000, 3, 1)), (dt.date(1900, 2, 27), dt.date(1900, 3, 1))]:
        days = t.days_between(first, last)
        assert t.iso_texts(days, "x") == ["x" + day.isoformat() for day in days]
