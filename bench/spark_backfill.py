"""Time a 12-month artist_streams backfill: Spark functions on one shared session versus one spark-submit per task.

    python bench/spark_backfill.py [--days-per-month 3] [--lines-per-day 1000] [--workdir DIR]

Each way runs in a fresh Python process, so every row pays its own interpreter and JVM start as a
real `flow build` would; the outputs of all ways are checked against a plain Python count.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flow.compiler.nodes import NO_SPAN, SparkAction, SparkSubmitAction  # noqa: E402
from flow.runtime.actions import spark as sp  # noqa: E402
from flow.runtime.actions.base import ActionContext  # noqa: E402

from examples.counts import read_counts  # noqa: E402

MONTHS = [f"2012-{m:02d}" for m in range(1, 13)]
CONF = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"}
MASTER = "local[2]"
APP = "examples/top_artists_spark_app.py"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAYS = [("function", 1), ("function", 2), ("submit", 1), ("submit", 2)]


def generate(data: str, days_per_month: int, lines_per_day: int) -> dict:
    """Write the daily stream files; return month -> its input paths."""
    artists = [f"Artist {i}" for i in range(200)]
    inputs = {}
    for month in MONTHS:
        year, number = map(int, month.split("-"))
        inputs[month] = []
        for day in range(1, days_per_month + 1):
            date = datetime.date(year, number, day)
            rng = random.Random(date.toordinal())
            path = os.path.join(data, f"{date}.tsv")
            with open(path, "w", encoding="utf-8") as out:
                for _ in range(lines_per_day):
                    stamp = datetime.datetime.combine(date, datetime.time()) + datetime.timedelta(
                        seconds=rng.randrange(86400)
                    )
                    out.write(f"{stamp.isoformat()}\t{rng.choice(artists)}\ttrack {rng.randrange(30)}\n")
            inputs[month].append(path)
    return inputs


def task(out: str, month: str, inputs: list) -> ActionContext:
    final = os.path.join(out, f"artist_streams_{month}")
    temporary = os.path.join(out, f".artist_streams_{month}.flow-tmp-bench")
    return ActionContext(
        f"artist_streams({month})",
        "artist_streams",
        {"interval": month},
        inputs,
        temporary,
        f"artist_streams({month})",
        flowfile_dir=REPO,
        extra={"output_kind": "dir", "final": final},
    )


def run_way(way: str, jobs: int, inputs: dict, out: str) -> None:
    """Run the whole backfill one way (in this process), renaming each finished output into place."""
    os.makedirs(out, exist_ok=True)
    holder = sp.SparkSessionHolder(MASTER, CONF) if way == "function" else None

    def one(month):
        ctx = task(out, month, inputs[month])
        if way == "function":
            sp.run_spark_function(ctx, SparkAction("examples.top_artists_spark.aggregate", NO_SPAN), holder)
        else:
            action = SparkSubmitAction(APP, {"conf": CONF}, NO_SPAN)
            sp.run_spark_submit(ctx, action, {}, MASTER, os.path.join(out, f"{month}.log"))
        os.rename(ctx.output, ctx.extra["final"])

    try:
        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(one, MONTHS))
    finally:
        if holder is not None:
            holder.stop()


def python_counts(paths: list) -> dict:
    counts: dict = {}
    for path in paths:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                artist = line.rstrip("\n").split("\t")[1]
                counts[artist] = counts.get(artist, 0) + 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days-per-month", type=int, default=3)
    parser.add_argument("--lines-per-day", type=int, default=1000)
    parser.add_argument("--workdir")
    parser.add_argument("--way", help=argparse.SUPPRESS)  # internal: run one way in this process
    parser.add_argument("--jobs", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="flow-spark-bench-")
    data = os.path.join(workdir, "data")
    os.makedirs(data, exist_ok=True)
    inputs = generate(data, args.days_per_month, args.lines_per_day)
    if args.way:
        run_way(args.way, args.jobs, inputs, os.path.join(workdir, f"{args.way}-j{args.jobs}"))
        return 0

    env = dict(os.environ, PYSPARK_PYTHON=os.environ.get("PYSPARK_PYTHON", sys.executable))
    print(
        f"12 monthly tasks, {args.days_per_month} days x {args.lines_per_day} lines each, "
        f"master {MASTER}, workdir {workdir}"
    )
    seconds = {}
    for way, jobs in WAYS:
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--way",
            way,
            "--jobs",
            str(jobs),
            "--workdir",
            workdir,
            "--days-per-month",
            str(args.days_per_month),
            "--lines-per-day",
            str(args.lines_per_day),
        ]
        started = time.perf_counter()
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds[(way, jobs)] = time.perf_counter() - started
        out = os.path.join(workdir, f"{way}-j{jobs}")
        for month in MONTHS:  # a fast wrong answer is no answer
            assert read_counts(os.path.join(out, f"artist_streams_{month}")) == python_counts(inputs[month]), (
                way,
                jobs,
                month,
            )
        print(f"  {way + ' form':15} -j{jobs}: {seconds[(way, jobs)]:6.1f} s wall")
    for jobs in (1, 2):
        ratio = seconds[("submit", jobs)] / seconds[("function", jobs)]
        print(f"  -j{jobs}: one spark-submit per task takes {ratio:.1f}x the shared session's time")
    print("  all outputs equal the plain Python counts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
