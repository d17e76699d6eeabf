"""Reporters and summaries: range compression, summary and dry-run texts, plain lines, NO_COLOR, the live display."""

from __future__ import annotations

import datetime
import io
import re
import time

import pytest
from flow.compiler import types as T
from flow.compiler.checks import check
from flow.compiler.graph import TaskFactory
from flow.compiler.parser import parse
from flow.runtime.report import (
    PlainReporter,
    Progress,
    RichReporter,
    Summary,
    make_reporter,
    render_dry_run,
    render_summary,
    rule_estimates,
)
from flow.runtime.summary import group_tasks

FLOWFILE = """
rule streams(date: date):
    output: "data/streams/{date}.tsv"
    python: examples.top_artists.fake_streams

rule artist_streams(interval: interval):
    requires: streams(day) for day in interval
    output: "data/artist_streams_{interval}.tsv"
    python: examples.top_artists.aggregate

rule rollup(region: str, date: date, sample: int = 3 insignificant):
    output: "data/rollup/{region}/{date}.tsv"
    python: examples.top_artists.aggregate

rule shard(n: int):
    output: "data/shard/{n}.tsv"
    python: examples.top_artists.aggregate

rule country(name: str):
    output: "data/country/{name}.tsv"
    python: examples.top_artists.aggregate

external rule raw_logs(date: date):
    output: "/mnt/logs/{date}.tsv"
"""

JUNE_1 = datetime.date(2012, 6, 1)
SGR = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def factory():
    return TaskFactory(check(parse(FLOWFILE), FLOWFILE))


def days(n, first=JUNE_1):
    return [first + datetime.timedelta(days=i) for i in range(n)]


def streams(factory, dates):
    return [factory.task("streams", (d,)) for d in dates]


# ---------------------------------------------------------------------------- compression


def test_consecutive_days_become_one_range(factory):
    assert group_tasks(streams(factory, days(30))) == [(30, "streams(2012-06-01 .. 2012-06-30)")]


def test_order_of_the_tasks_does_not_matter(factory):
    tasks = streams(factory, days(30))[::-1]
    assert group_tasks(tasks) == [(30, "streams(2012-06-01 .. 2012-06-30)")]


def test_gaps_split_ranges(factory):
    tasks = [t for t in streams(factory, days(30)) if t.values[0].day not in (11, 20)]
    assert group_tasks(tasks) == [
        (28, "streams(2012-06-01 .. 2012-06-10, 2012-06-12 .. 2012-06-19, 2012-06-21 .. 2012-06-30)")]


def test_many_gaps_show_three_then_count_the_rest(factory):
    tasks = streams(factory, days(30)[::2])  # 15 single days
    assert group_tasks(tasks) == [(15, "streams(2012-06-01, 2012-06-03, 2012-06-05 and 12 more)")]


def test_months_and_weeks(factory):
    months = [factory.task("artist_streams", (T.month(2012, m),)) for m in range(1, 13)]
    weeks = [factory.task("artist_streams", (T.week(2012, w),)) for w in range(1, 11)]
    assert group_tasks(months) == [(12, "artist_streams(2012-01 .. 2012-12)")]
    assert group_tasks(weeks) == [(10, "artist_streams(2012-W01 .. 2012-W10)")]
    # two kinds of one rule: two ranges, not an alternation
    assert group_tasks(weeks + months) == [(22, "artist_streams(2012-01 .. 2012-12, 2012-W01 .. 2012-W10)")]


def test_a_year_boundary_is_consecutive(factory):
    months = [factory.task("artist_streams", (T.month(y, m),)) for y, m in ((2011, 11), (2011, 12), (2012, 1))]
    assert group_tasks(months) == [(3, "artist_streams(2011-11 .. 2012-01)")]


def test_ints_compress_and_strings_are_listed(factory):
    shards = [factory.task("shard", (n,)) for n in (1, 2, 3, 4, 7)]
    assert group_tasks(shards) == [(5, "shard(1 .. 4, 7)")]
    countries = [factory.task("country", (c,)) for c in ("se", "dk", "no", "fi", "is")]
    assert group_tasks(countries) == [(5, "country(dk), country(fi), country(is) and 2 more")]


def test_more_parameters_write_each_range_out(factory):
    tasks = [factory.task("rollup", (region, d, 3)) for region in ("us", "eu") for d in days(30)]
    assert group_tasks(tasks) == [
        (60, "rollup(eu, 2012-06-01 .. 2012-06-30), rollup(us, 2012-06-01 .. 2012-06-30)")]
    gappy = [factory.task("rollup", ("eu", d, 3)) for d in days(30) if d.day % 10]
    assert group_tasks(gappy) == [
        (27, "rollup(eu, 2012-06-01 .. 2012-06-09), rollup(eu, 2012-06-11 .. 2012-06-19),"
             " rollup(eu, 2012-06-21 .. 2012-06-29)")]
    gappier = [factory.task("rollup", ("eu", d, 3)) for d in days(30)[::2]]
    assert group_tasks(gappier)[0][1] == (
        "rollup(eu, 2012-06-01), rollup(eu, 2012-06-03), rollup(eu, 2012-06-05) and 12 more")


def test_one_task_is_its_id_and_rules_keep_first_seen_order(factory):
    month = factory.task("artist_streams", (T.month(2012, 6),))
    assert group_tasks(streams(factory, days(2)) + [month]) == [
        (2, "streams(2012-06-01 .. 2012-06-02)"), (1, "artist_streams(2012-06)")]


# ---------------------------------------------------------------------------- summary


def test_summary_in_luigis_spirit(factory):
    june = streams(factory, days(30))
    month = factory.task("artist_streams", (T.month(2012, 6),))
    summary = Summary(ran=june + [month], already_complete=12, elapsed=2.5)
    assert render_summary(summary) == (
        "Scheduled 43 tasks of which:\n"
        "* 31 ran:\n"
        "    - 30 streams(2012-06-01 .. 2012-06-30)\n"
        "    - 1 artist_streams(2012-06)\n"
        "* 12 were already complete\n"
        "\n"
        "this build was successful (2.50s)\n")


def test_summary_of_a_failed_build(factory):
    june = streams(factory, days(5))
    bad = june[2]
    months = [factory.task("artist_streams", (T.month(2012, m),)) for m in (6, 7, 8)]
    summary = Summary(ran=june[:2] + june[3:], already_complete=june[:1], failed=[bad],
                      blocked={m: bad for m in months}, exit_code=1)
    assert render_summary(summary) == (
        "Scheduled 9 tasks of which:\n"
        "* 4 ran:\n"
        "    - 4 streams(2012-06-01 .. 2012-06-02, 2012-06-04 .. 2012-06-05)\n"
        "* 1 was already complete:\n"
        "    - 1 streams(2012-06-01)\n"
        "* 1 failed:\n"
        "    - 1 streams(2012-06-03)\n"
        "* 3 were blocked by a failed or missing dependency:\n"
        "    - 3 artist_streams(2012-06 .. 2012-08)\n"
        "      blocked by: streams(2012-06-03)\n"
        "\n"
        "this build failed: 1 task failed, 3 blocked\n")


def test_summary_of_a_missing_external_input(factory):
    raw = factory.task("raw_logs", (datetime.date(2012, 6, 3),))
    month = factory.task("artist_streams", (T.month(2012, 6),))
    summary = Summary(blocked={month: raw}, missing_external=[raw], exit_code=3)
    text = render_summary(summary)
    assert "* 1 external input was missing:\n    - 1 raw_logs(2012-06-03)\n" in text
    assert text.endswith("\nmissing external input: raw_logs(2012-06-03) at /mnt/logs/2012-06-03.tsv\n")


def test_summary_verdicts(factory):
    june = streams(factory, days(3))
    assert render_summary(Summary(interrupted=june[:1], exit_code=130)).endswith(
        "this build was interrupted: 1 task interrupted\n")
    assert render_summary(Summary(ran=june[:1], skipped_locked=june[1:], exit_code=1)).endswith(
        "this build is incomplete: 2 tasks were running in another flow\n")
    assert render_summary(Summary(already_complete=3)).endswith("this build was successful\n")
    counts = Summary(ran=june, failed=[], blocked={}).counts()
    assert counts["ran"] == 3 and counts["failed"] == 0 and set(counts) >= {"blocked", "missing_external"}


def test_dry_run(factory):
    june = streams(factory, days(2))
    month = factory.task("artist_streams", (T.month(2012, 6),))
    raw = factory.task("raw_logs", (datetime.date(2012, 6, 3),))
    order = [(june[0], "output missing"), (june[1], "output missing"), (month, "forced")]
    assert render_dry_run(order, 1200, [raw]) == (
        "streams(2012-06-01)      data/streams/2012-06-01.tsv  (output missing)\n"
        "streams(2012-06-02)      data/streams/2012-06-02.tsv  (output missing)\n"
        "artist_streams(2012-06)  data/artist_streams_2012-06.tsv  (forced)\n"
        "\n"
        "3 tasks would run:\n"
        "    2 streams\n"
        "    1 artist_streams\n"
        "1,200 tasks are already complete\n"
        "1 external input is missing:\n"
        "    raw_logs(2012-06-03)  /mnt/logs/2012-06-03.tsv\n")
    assert render_dry_run([], 5, []) == "nothing would run\n5 tasks are already complete\n"


def test_the_dry_run_text_comes_in_chunks_that_add_up_to_the_whole(factory):
    from flow.runtime.summary import dry_run_chunks

    tasks = streams(factory, days(5, datetime.date(2012, 6, 1)))
    whole = render_dry_run([(t, "output missing") for t in tasks], 2, [])
    chunks = list(dry_run_chunks(tasks, ["output missing"] * 5, 2, [], lines_per_chunk=2))
    assert "".join(chunks) == whole
    assert [chunk.count("(output missing)") for chunk in chunks] == [2, 2, 1, 0]  # then the counts
    assert whole.splitlines()[0] == "streams(2012-06-01)  data/streams/2012-06-01.tsv  (output missing)"


def test_dry_run_lines_of_every_kind_of_id_output_and_reason():
    text = """
rule day(date: date):
    output: "out/{date}.tsv"
    python: m.f

rule month(interval: interval):
    requires: day(d) for d in interval
    output: "out/m_{interval}.tsv"
    python: m.f

rule dated(date: date):
    output: "out/{date:%Y/%m/%d}.tsv"
    python: m.f

rule pair(region: str, n: int):
    output: "out/{region}/{n}.tsv"
    python: m.f

rule shard(n: int):
    output: "s3://bucket/shards/{n}.bin"
    python: m.f

rule load(date: date):
    requires: day(date)
    output: table "loads_{date}"
    load:
        columns: line text
"""
    made = TaskFactory(check(parse(text), text))
    june = days(2)
    order = ([made.task("day", (d,)) for d in june] + [made.task("month", (T.month(2012, 6),))]
             + [made.task("dated", (june[0],)), made.task("pair", ("eu", 7)), made.task("pair", ("us", 12))]
             + [made.task("shard", (n,)) for n in (9, 10)] + [made.task("load", (june[1],))])
    reasons = ["output missing", "forced", "output missing", "output missing", "forced", "output missing",
               "output missing", "output missing", "table missing"]
    assert render_dry_run(list(zip(order, reasons)), 0, []) == (
        "day(2012-06-01)    out/2012-06-01.tsv  (output missing)\n"
        "day(2012-06-02)    out/2012-06-02.tsv  (forced)\n"
        "month(2012-06)     out/m_2012-06.tsv  (output missing)\n"
        "dated(2012-06-01)  out/2012/06/01.tsv  (output missing)\n"
        "pair(eu, 7)        out/eu/7.tsv  (forced)\n"
        "pair(us, 12)       out/us/12.tsv  (output missing)\n"
        "shard(9)           s3://bucket/shards/9.bin  (output missing)\n"
        "shard(10)          s3://bucket/shards/10.bin  (output missing)\n"
        "load(2012-06-02)   table loads_2012-06-02  (table missing)\n"
        "\n"
        "9 tasks would run:\n"
        "    2 day\n"
        "    1 month\n"
        "    1 dated\n"
        "    2 pair\n"
        "    2 shard\n"
        "    1 load\n")


def test_large_summaries_are_fast(factory):
    tasks = streams(factory, days(100_000, datetime.date(1800, 1, 1)))
    began = time.perf_counter()
    text = render_summary(Summary(ran=tasks))
    dry = render_dry_run([(t, "output missing") for t in tasks], 0, [])
    # A guard against quadratic work, not a benchmark (bench/history_bench.py measures).
    assert time.perf_counter() - began < 5
    assert "100,000 streams(1800-01-01 .. 2073-10-15)" in text
    assert dry.count("\n") == 100_000 + 3


# ---------------------------------------------------------------------------- plain reporter


class Stream(io.StringIO):
    """A StringIO that counts flushes and can pretend to be a terminal."""

    def __init__(self, tty=False):
        super().__init__()
        self.tty = tty
        self.flushes = 0

    def isatty(self):
        return self.tty

    def flush(self):
        self.flushes += 1


def test_plain_lines(factory):
    june = streams(factory, days(12))
    out = Stream()
    reporter = PlainReporter(out)
    reporter.build_started(12, 3, {})
    for task in june[:11]:
        reporter.task_started(task, 1)
        reporter.task_finished(task, "done", 0.01)
    reporter.task_started(june[11], 1)
    reporter.task_finished(june[11], "retry", 0.5, error="boom")
    reporter.task_started(june[11], 2)
    reporter.task_finished(june[11], "failed", 1.25, error="ValueError: bad line 3",
                           log_path=".flow/logs/x.log", log_tail=["reading", "parsing\n"])
    lines = out.getvalue().splitlines()
    assert lines[0] == "12 tasks to run, 3 already complete"
    assert lines[1] == "[ 1/12] done streams(2012-06-01) 0.01s"
    assert lines[11] == "[11/12] done streams(2012-06-11) 0.01s"
    assert lines[12:] == [
        "        retry streams(2012-06-12) 0.50s",
        "    boom",
        "[12/12] FAILED streams(2012-06-12) 1.25s",
        "    ValueError: bad line 3",
        "    | reading",
        "    | parsing",
        "    log: .flow/logs/x.log",
    ]


def test_the_successes_of_one_message_read_as_one_line_each(factory):
    # the executor hands the plain reporter a worker message's successes at once: the same lines,
    # the same counts and estimates as one call per task
    june = streams(factory, days(12))
    one_by_one, at_once = Stream(), Stream()
    each, bulk = PlainReporter(one_by_one), PlainReporter(at_once)
    for reporter in (each, bulk):
        reporter.build_started(12, 0, {"streams": (12, None)})
    for task in june:
        each.task_started(task, 1)
    bulk.tasks_started(june)
    for task in june[:5]:
        each.task_finished(task, "done", 0.01 * june.index(task))
    bulk.tasks_done([(task, 0.01 * june.index(task)) for task in june[:5]])
    assert at_once.getvalue() == one_by_one.getvalue()
    assert at_once.getvalue().splitlines()[-1] == "[ 5/12] done streams(2012-06-05) 0.04s"
    assert (bulk.progress.finished, bulk.progress.remaining, bulk.progress.means, list(bulk.progress.running)) == \
        (each.progress.finished, each.progress.remaining, each.progress.means, list(each.progress.running))


def test_plain_writes_are_buffered_except_failures_and_terminals(factory):
    june = streams(factory, days(100))
    out = Stream()
    reporter = PlainReporter(out)
    reporter.build_started(100, 0, {})
    for task in june[:99]:
        reporter.task_finished(task, "done", 0.01)
    assert out.flushes == 0
    reporter.task_finished(june[99], "timeout", 60.0, error="timed out after 60s")
    assert out.flushes == 1
    tty = Stream(tty=True)
    reporter = PlainReporter(tty)
    reporter.task_finished(june[0], "done", 0.01)
    assert tty.flushes == 1


def test_plain_quiet_and_verbose(factory):
    june = streams(factory, days(3))
    quiet = Stream()
    reporter = PlainReporter(quiet, quiet=True)
    reporter.build_started(3, 0, {})
    reporter.message("waiting for a lock")
    reporter.task_finished(june[0], "done", 0.01)
    reporter.task_finished(june[1], "failed", 0.01, error="boom")
    reporter.message("disk nearly full", "warning")
    assert quiet.getvalue() == "[2/3] FAILED streams(2012-06-02) 0.01s\n    boom\nwarning: disk nearly full\n"
    loud = Stream()
    reporter = PlainReporter(loud, verbose=True)
    reporter.build_started(3, 0, {})
    reporter.task_started(june[0], 2)
    assert loud.getvalue().splitlines()[1] == "      start streams(2012-06-01) (attempt 2)"


def test_plain_summary_and_no_escape_codes(factory, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Stream()
    reporter = make_reporter(out)
    assert isinstance(reporter, PlainReporter)
    june = streams(factory, days(2))
    reporter.build_started(2, 0, {})
    reporter.task_finished(june[0], "done", 0.01)
    reporter.task_finished(june[1], "failed", 0.01, error="boom")
    reporter.build_finished(Summary(ran=june[:1], failed=june[1:], exit_code=1))
    reporter.close()
    assert "\x1b" not in out.getvalue()
    assert out.getvalue().endswith("this build failed: 1 task failed\n")


# ---------------------------------------------------------------------------- choosing a reporter


def test_make_reporter_chooses(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    assert isinstance(make_reporter(Stream(tty=True)), RichReporter)
    assert isinstance(make_reporter(Stream(tty=False)), PlainReporter)
    assert isinstance(make_reporter(Stream(tty=True), quiet=True), PlainReporter)
    monkeypatch.setenv("TERM", "dumb")
    assert isinstance(make_reporter(Stream(tty=True)), PlainReporter)


def run_rich(reporter, factory):
    june = streams(factory, days(4))
    reporter.build_started(4, 2, rule_estimates(june, {"streams": 0.1}), jobs=2)
    for task in june[:3]:
        reporter.task_started(task, 1)
    time.sleep(0.15)
    reporter.task_finished(june[0], "done", 0.1)
    reporter.task_finished(june[1], "done", 0.1)
    reporter.task_finished(june[2], "failed", 0.1, error="ValueError: bad [red]line[/red]",
                           log_path=".flow/logs/streams(2012-06-03).log", log_tail=["last words"])
    reporter.message("something to know", "warning")
    time.sleep(0.15)
    reporter.build_finished(Summary(ran=june[:2], failed=june[2:3], blocked={june[3]: june[2]}, exit_code=1))
    reporter.close()


def test_rich_display_shows_progress_and_failures(factory):
    from rich.console import Console

    out = io.StringIO()
    run_rich(RichReporter(Console(file=out, force_terminal=True, width=120), refresh_per_second=20), factory)
    text = SGR.sub("", out.getvalue())
    assert "0/4 tasks" in text and "3/4 tasks" in text
    assert "running streams(2012-06-01)" in text
    assert "ETA" in text
    assert "FAILED streams(2012-06-03) 0.10s\n    ValueError: bad [red]line[/red]\n    | last words\n" in text
    assert "    log: .flow/logs/streams(2012-06-03).log\n" in text
    assert "warning: something to know" in text
    assert text.endswith("this build failed: 1 task failed, 1 blocked\n")
    assert SGR.search(out.getvalue())  # colour when allowed


def test_no_color_means_no_colour_codes(factory, monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("NO_COLOR", "1")
    out = Stream(tty=True)
    reporter = make_reporter(out)
    assert isinstance(reporter, RichReporter)
    reporter._interval = 0.05
    run_rich(reporter, factory)
    assert "3/4 tasks" in out.getvalue()
    assert "━" * 15 + "─────" in out.getvalue()  # the bar shows without colour
    assert not SGR.search(out.getvalue())


# ---------------------------------------------------------------------------- estimates


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_eta_from_history_means(factory):
    june = streams(factory, days(10))
    month = factory.task("artist_streams", (T.month(2012, 6),))
    clock = Clock()
    progress = Progress(clock)
    progress.start(11, 0, rule_estimates(june + [month], {"streams": 2.0, "artist_streams": 6.0}), jobs=2)
    assert progress.eta() == (10 * 2.0 + 6.0) / 2
    progress.task_started(june[0])
    clock.now = 1.5
    assert progress.eta() == (10 * 2.0 + 6.0 - 1.5) / 2  # the running task is three quarters done
    progress.task_finished(june[0], "done", 1.5)
    assert progress.eta() == (9 * 2.0 + 6.0) / 2


def test_eta_falls_back_to_the_observed_rate(factory):
    june = streams(factory, days(10))
    clock = Clock()
    progress = Progress(clock)
    progress.start(10, 0, rule_estimates(june, {}), jobs=4)
    assert progress.eta() is None
    clock.now = 4.0
    for task in june[:4]:
        progress.task_finished(task, "done", 4.0)
    # no history: the four tasks just finished give streams a mean of 4 s; six left over four jobs
    assert progress.eta() == 6 * 4.0 / 4
    # a rule the estimates do not name: the observed rate stands in (1 task per second here)
    clock.now = 0.0
    other = Progress(clock)
    other.start(10, 0, {}, jobs=4)
    clock.now = 4.0
    for task in june[:4]:
        other.task_finished(task, "done", 4.0)
    assert other.eta() == pytest.approx(6 * (4.0 / 4))
