"""Benchmark: what the page's questions cost when it reads a coordinator's PostgreSQL (runtime/web/coordinated.py).

Usage: python bench/serve_coordinator_bench.py [--tasks 100000] [--reps 5] [--url URL]

Writes one finished run of TASKS attempts (99% done, 1% failed) into a fresh schema of the server
(without --url or FLOW_TEST_DATABASE_URL: a throwaway PostgreSQL of tests/pg.py), then times each
reader call the page makes: the first call, and the median of the next REPS. A run that ended is
read once and kept; a run under way is asked with a query each time (the "live" lines).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def write_run(dsn: str, tasks: int) -> None:
    import psycopg2
    from flow.runtime.state.coordinator import _ensure_schema
    from psycopg2.extras import execute_values

    conn = psycopg2.connect(dsn)
    _ensure_schema(conn)
    now = time.time()
    with conn.cursor() as cursor:
        plan = {"tasks": tasks, "complete": 0, "jobs": 2, "rules": {"day": tasks}}
        cursor.execute("INSERT INTO flow_runs (started, finished, command, targets, status, counts_json, host, pid,"
                       " plan_json) VALUES (%s, %s, 'flow build all', '[\"all\"]', 'failed', '{}', 'host1', 1, %s)",
                       (now - 3600, now, json.dumps(plan)))
        rows = [(1, f"day({i:06d})", "day", "{}", f"out/day_{i:06d}.txt", "failed" if i % 100 == 0 else "done", 1,
                 now - 3600 + i * 0.01, 0.01, "host1", "RuntimeError: no data" if i % 100 == 0 else None)
                for i in range(tasks)]
        execute_values(cursor, "INSERT INTO flow_attempts VALUES %s", rows, page_size=5_000)
    conn.commit()
    conn.close()


def timed(call, reps: int) -> tuple:
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--url", default=os.environ.get("FLOW_TEST_DATABASE_URL"))
    args = parser.parse_args()
    from flow.runtime.web.coordinated import CoordinatorReader

    from bench.coordinator import fresh_database

    server = None
    url = args.url
    if not url:
        from tests.pg import Server

        server = Server().start()
        url = server.url
    try:
        dsn = fresh_database(url)
        write_run(dsn, args.tasks)
        reader = CoordinatorReader(dsn)
        run = reader.run(1)
        live = dict(run, state="running")  # the same rows, read as while a run is under way (a query each time)
        questions = {
            "runs (list)": lambda: reader.runs(0, 50),
            "ended: read once": lambda: (reader._finished.clear(), reader.run_rule_counts(run)),
            "ended: rule counts": lambda: reader.run_rule_counts(run),
            "ended: page 1": lambda: reader.run_tasks(run, limit=50),
            "ended: failed": lambda: reader.run_tasks(run, status="failed", limit=50),
            "ended: search": lambda: reader.run_tasks(run, query="0123", limit=50),
            "live: rule counts": lambda: reader.run_rule_counts(live),
            "live: page 1": lambda: reader.run_tasks(live, limit=50),
            "live: failed": lambda: reader.run_tasks(live, status="failed", limit=50),
            "live: search": lambda: reader.run_tasks(live, query="0123", limit=50),
            "task attempts": lambda: reader.attempts("day(000100)"),
            "running now": reader.running_now,
            "version": reader.version,
        }
        print(f"a run of {args.tasks:,} tasks on the coordinator, first / median of {args.reps}:")
        for name, call in questions.items():
            first, warm = timed(call, args.reps)
            print(f"  {name:18} {first * 1000:8.1f} ms {warm * 1000:8.1f} ms")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
