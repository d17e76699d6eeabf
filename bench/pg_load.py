"""Benchmark: load 1,000,000 rows with flow's load action vs `psql -c "\\copy ..."` of the same file, same server.

Usage: python bench/pg_load.py [--rows N] [--repeat K] [--url URL]
Without --url (or FLOW_TEST_DATABASE_URL) it starts a throwaway server with tests/pg.py.
Both sides are timed from process/connection start to commit, alternating, and the medians compared;
the goal is flow within 1.25x of psql.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flow.compiler.nodes import NO_SPAN, Column, LoadAction  # noqa: E402
from flow.runtime import db, tsv  # noqa: E402
from flow.runtime.actions.base import ActionContext  # noqa: E402
from flow.runtime.actions.sql import run_load  # noqa: E402

COLUMNS = (("date_from", "date"), ("date_to", "date"), ("artist", "text"), ("streams", "int"))


def make_file(path: str, rows: int) -> None:
    start, end = datetime.date(2012, 6, 1), datetime.date(2012, 7, 1)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        tsv.write_rows(f, ((start, end, f"artist {i} \u00e9\t\\", i) for i in range(rows)))


def time_flow(url: str, path: str, table: str) -> float:
    action = LoadAction(tuple(Column(n, t, NO_SPAN) for n, t in COLUMNS), NO_SPAN)
    ctx = ActionContext(f"bench({table})", "bench", {}, [path], table, f"bench({table})")
    began = time.perf_counter()
    conn = db.connect(url)
    status = run_load(ctx, action, conn)
    elapsed = time.perf_counter() - began
    conn.close()
    assert status.startswith("loaded"), status
    return elapsed


def time_psql(psql: str, url: str, path: str, table: str) -> float:
    conn = db.connect(url)
    with conn.cursor() as cur:
        from psycopg2 import sql

        cur.execute(
            sql.SQL("CREATE TABLE {} ({})").format(
                sql.Identifier(table),
                sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in COLUMNS),
            )
        )
    conn.commit()
    conn.close()
    # A psql meta-command, not SQL sent by flow; the table name is one of ours and the data comes on stdin.
    command = f"\\copy {table} ({', '.join(n for n, _ in COLUMNS)}) FROM pstdin"
    with open(path, "rb") as data:
        began = time.perf_counter()
        subprocess.run([psql, url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command], stdin=data, check=True)
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", default=os.environ.get("FLOW_TEST_DATABASE_URL"))
    args = parser.parse_args()

    server = None
    if not args.url:
        from tests.pg import Server

        server = Server().start()
        args.url = server.url
    psql = shutil.which("psql") or os.path.join(server.bin_dir if server else "", "psql")
    workdir = tempfile.mkdtemp(prefix="flow-bench-")
    try:
        path = os.path.join(workdir, "rows.tsv")
        make_file(path, args.rows)
        size = os.path.getsize(path) / 1e6
        flow_times, psql_times = [], []
        for i in range(args.repeat):
            psql_times.append(time_psql(psql, args.url, path, f"bench_psql_{i}"))
            flow_times.append(time_flow(args.url, path, f"bench_flow_{i}"))
        flow, psql_median = statistics.median(flow_times), statistics.median(psql_times)
        print(f"rows: {args.rows:,}  file: {size:.1f} MB  repeats: {args.repeat}")
        print(f"flow load: median {flow:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in flow_times)})")
        print(f"psql copy: median {psql_median:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in psql_times)})")
        print(f"ratio flow/psql: {flow / psql_median:.2f}x  (goal <= 1.25x)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if server:
            server.stop()


if __name__ == "__main__":
    main()
