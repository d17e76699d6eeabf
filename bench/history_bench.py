"""Benchmark: the per-task costs of the run history and the reporters, for a build of 100,000 tasks.

Usage: python bench/history_bench.py [--tasks N] [--dir DIR]
Prints one line per measurement: total seconds and microseconds per task. The goals: every
per-task cost in microseconds (record, reporter events), and whole-build texts (summary, dry run)
well under a second. DIR (default: a temporary directory) should be on the disk builds use.
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flow.compiler import types as T  # noqa: E402
from flow.compiler.checks import check  # noqa: E402
from flow.compiler.graph import TaskFactory  # noqa: E402
from flow.compiler.parser import parse  # noqa: E402
from flow.runtime.history import History  # noqa: E402
from flow.runtime.report import PlainReporter, RichReporter, Summary, render_dry_run, render_summary  # noqa: E402

FLOWFILE = """
rule streams(date: date):
    output: "data/streams/{date}.tsv"
    python: examples.top_artists.fake_streams

rule artist_streams(interval: interval):
    output: "data/artist_streams_{interval}.tsv"
    python: examples.top_artists.aggregate
"""


def make_tasks(n: int) -> list:
    factory = TaskFactory(check(parse(FLOWFILE), FLOWFILE))
    first = datetime.date(1800, 1, 1)
    days = [factory.task("streams", (first + datetime.timedelta(days=i),)) for i in range(n - n // 10)]
    weeks = [factory.task("artist_streams", (T.week(1800, 1),))]
    while len(days) + len(weeks) < n:
        weeks.append(factory.task("artist_streams", (weeks[-1].values[0].next,)))
    tasks = days + weeks
    for task in tasks:
        task.id  # noqa: B018 (ids are cached on first use; a build computes them long before reporting)
    return tasks


def show(label: str, seconds: float, n: int) -> None:
    print(f"{label:<52} {seconds:8.3f} s  {seconds / n * 1e6:8.2f} us/task")


def bench_history(tasks: list, folder: str) -> None:
    n = len(tasks)
    history = History(os.path.join(folder, "a"))
    run = history.start_run("bench", [])
    began = time.perf_counter()
    for task in tasks:
        history.record(run, task, "done", 1, 1.0e9, 0.01)
    history.flush()
    show(f"History.record x{n:,} + flush (5,000-row batches)", time.perf_counter() - began, n)

    history = History(os.path.join(folder, "b"), max_rows=10 * n, max_age=3600)
    run = history.start_run("bench", [])
    began = time.perf_counter()
    for task in tasks:
        history.record(run, task, "done", 1, 1.0e9, 0.01)
    recorded = time.perf_counter()
    history.flush()
    flushed = time.perf_counter()
    show("  of which record() alone (buffering, params JSON)", recorded - began, n)
    show("  of which one flush of every row", flushed - recorded, n)
    history.finish_run(run, "done", {"ran": n})

    ids = [task.id for task in tasks]
    began = time.perf_counter()
    status = history.last_status(ids)
    show(f"History.last_status of {n:,} ids (900 per query)", time.perf_counter() - began, n)
    assert len(status) == n
    began = time.perf_counter()
    means = history.mean_durations(["streams", "artist_streams"])
    print(f"{'History.mean_durations of 2 rules':<52} {time.perf_counter() - began:8.3f} s  {means}")
    history.close()
    size = os.path.getsize(os.path.join(folder, "b", "history.sqlite"))
    print(f"{'history.sqlite after one run':<52} {size / 1e6:8.1f} MB")


def bench_texts(tasks: list) -> None:
    n = len(tasks)
    began = time.perf_counter()
    text = render_summary(Summary(ran=tasks, already_complete=5000, elapsed=12.0))
    show(f"render_summary of {n:,} tasks", time.perf_counter() - began, n)
    gappy = [task for i, task in enumerate(tasks) if i % 7]
    began = time.perf_counter()
    render_summary(Summary(ran=gappy, failed=tasks[::7], exit_code=1))
    show(f"render_summary of {n:,} tasks, a gap every 7th", time.perf_counter() - began, n)
    order = [(task, "output missing") for task in tasks]
    began = time.perf_counter()
    dry = render_dry_run(order, 5000, [])
    show(f"render_dry_run of {n:,} tasks", time.perf_counter() - began, n)
    print(f"  ({len(text.splitlines())} summary lines, {len(dry) / 1e6:.1f} MB of dry run)")


def bench_reporters(tasks: list, folder: str) -> None:
    n = len(tasks)
    with open(os.path.join(folder, "plain.log"), "w", encoding="utf-8") as out:
        reporter = PlainReporter(out)
        began = time.perf_counter()
        reporter.build_started(n, 0, {})
        for task in tasks:
            reporter.task_started(task, 1)
            reporter.task_finished(task, "done", 0.01)
        reporter.close()
        show("PlainReporter start+finish events, to a file", time.perf_counter() - began, n)

    from rich.console import Console

    reporter = RichReporter(Console(file=io.StringIO(), force_terminal=True, width=100))
    began = time.perf_counter()
    reporter.build_started(n, 0, {"streams": (n, 0.01)}, jobs=8)
    for task in tasks:
        reporter.task_started(task, 1)
        reporter.task_finished(task, "done", 0.01)
    seconds = time.perf_counter() - began
    reporter.close()  # print only now: the live display redirects sys.stdout while it runs
    show("RichReporter start+finish events (5 Hz redraws)", seconds, n)


def bench_import() -> None:
    code = "import time; t = time.perf_counter(); import flow.runtime.report, runtime.history; " \
           "import sys; print(time.perf_counter() - t, 'rich' in sys.modules)"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True).stdout
    seconds, rich_loaded = out.split()
    label = "import flow.runtime.report, runtime.history"
    print(f"{label:<52} {float(seconds):8.3f} s  (rich imported: {rich_loaded})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--dir", default=None, help="where to put the history files (default: a temporary dir)")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="flow-history-bench-", dir=args.dir)
    try:
        tasks = make_tasks(args.tasks)
        bench_history(tasks, folder)
        bench_texts(tasks)
        bench_reporters(tasks, folder)
        bench_import()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
