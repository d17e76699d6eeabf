#!/usr/bin/env python3
"""What a coordinator costs: claims and releases per task in-process, and a backfill with and without one.

Usage: python bench/coordinator.py [--tasks 10000] [--jobs 2] [--processes 1 ...] [--wait SECONDS] [--url URL]
       [--skip-store] [--skip-backfill]

Without --url (or FLOW_TEST_DATABASE_URL) it starts a throwaway PostgreSQL with tests/pg.py on this
machine, which is what "the local database" means below. Two figures:

1. store: claim + release of TASKS keys through `PostgresState` (what the executor does per task:
   one try_lock, one unlock, the releases written in batches) beside `LocalState`'s fcntl locks;
   then the same with the claims taken 256 at a time (`claim_ahead`, as the executor does for the
   rounds of a quick rule's tasks).
2. backfill: a cold `flow build -j JOBS` of TASKS independent tasks (each writes a small file,
   after sleeping --wait seconds as an I/O-bound task would), through the real CLI, without a
   coordinator (local locks) and with one, for each P of --processes: P `flow build` processes in
   their own copies of the project, sharing the output directory, started together (wall time until
   the last ends).
3. retention: `PostgresState.retain` after a build, beside TASKS released claims: when none is due
   yet (every build pays this) and when all are (a first build after they aged).

    python bench/coordinator.py                                  # 10,000 tasks: the coordinator's overhead
    python bench/coordinator.py --tasks 400 --wait 0.05 --jobs 1 --processes 1 2 4   # spreading I/O-bound work
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

FLOWFILE = '''\
# bench/coordinator.py: {tasks} independent tasks writing into one shared directory
rule day(date: date):
    output: "{shared}/day_{{date}}.txt"
    python: flow_actions.{action}

target all: day(d) for d in days({first} .. {last})

default: all
'''


def store_costs(url: str, tasks: int) -> dict:
    sys.path.insert(0, ROOT)
    from flow.runtime.state.coordinator import PostgresState
    from flow.runtime.state.local import LocalState

    keys = [f"path:/shared/day_{n}.txt" for n in range(tasks)]
    figures = {}
    with tempfile.TemporaryDirectory() as flow_dir:
        local = LocalState(flow_dir)
        started = time.perf_counter()
        for key in keys:
            local.try_lock(key)
            local.unlock(key)
        figures["local locks"] = time.perf_counter() - started
        local.close()
    store = PostgresState(url)
    store.try_lock("warm-up")  # tables, owner and lease registered once per process
    store.unlock("warm-up")
    started = time.perf_counter()
    for n, key in enumerate(keys, 1):
        store.try_lock(key)
        store.unlock(key)
        if n % 1000 == 0:
            store._flush()  # what the executor's tick does once a second
    store._flush()
    figures["coordinator"] = time.perf_counter() - started
    store.close()
    # as the executor claims a quick rule's tasks: a round of up to 256 in one statement (claim_ahead)
    store = PostgresState(url)
    store.try_lock("warm-up 2")
    store.unlock("warm-up 2")
    keys = [key + ".ahead" for key in keys]
    started = time.perf_counter()
    for first in range(0, tasks, 256):
        round_keys = keys[first:first + 256]
        store.claim_ahead(round_keys)
        for key in round_keys:
            store.try_lock(key)
            store.unlock(key)
        if (first // 256) % 4 == 3:
            store._flush()
    store._flush()
    figures["coordinator, 256 a round"] = time.perf_counter() - started
    store.close()
    return figures


def retention_costs(url: str, tasks: int) -> dict:
    """What the coordinator's retention at the end of a build costs beside TASKS released claims."""
    from flow.runtime.state.coordinator import PostgresState

    store = PostgresState(url)
    for n in range(tasks):
        store.try_lock(f"path:/shared/day_{n}.txt")
        store.unlock(f"path:/shared/day_{n}.txt")
    store._flush()
    figures = {}
    with tempfile.TemporaryDirectory() as log_dir:
        started = time.perf_counter()
        store.retain(1000, 90, log_dir)
        figures["nothing due (every build)"] = time.perf_counter() - started
        store._do(lambda cursor: cursor.execute("UPDATE flow_claims SET released = now() - interval '2 hours'"))
        started = time.perf_counter()
        store.retain(1000, 90, log_dir)
        figures[f"{tasks:,} released claims due"] = time.perf_counter() - started
    store.close()
    return figures


def make_project(directory: str, shared: str, tasks: int, action: str) -> None:
    first = datetime.date(1980, 1, 1)  # 10,000+ days, all in the past
    last = first + datetime.timedelta(days=tasks - 1)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "Flowfile"), "w") as handle:
        handle.write(FLOWFILE.format(tasks=tasks, shared=shared, first=first, last=last, action=action))
    shutil.copy(os.path.join(HERE, "flow_actions.py"), directory)


def backfill(base: str, tasks: int, jobs: int, processes: int, coordinator: str | None, wait: float) -> float:
    shared = os.path.join(base, "shared")
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(shared)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("FLOW_COORDINATOR_URL", None)
    env["FLOW_WAIT_SECONDS"] = str(wait)
    if coordinator:
        env["FLOW_COORDINATOR_URL"] = coordinator
    projects = [os.path.join(base, f"host{n}") for n in range(processes)]
    for project in projects:
        make_project(project, shared, tasks, "wait_then_write" if wait else "write_fixed")
        subprocess.run([sys.executable, "-m", "flow.runtime.cli", "list"], cwd=project, env=env, check=True,
                       capture_output=True)  # the parse cache is warm for every run alike
    started = time.perf_counter()
    running = [subprocess.Popen([sys.executable, "-m", "flow.runtime.cli", "build", "-q", "-j", str(jobs)],
                                cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for project in projects]
    for process in running:
        _, err = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"flow build failed ({process.returncode}): {err.decode()[-2000:]}")
    elapsed = time.perf_counter() - started
    made = len(os.listdir(shared))
    if made != tasks:
        raise SystemExit(f"{made} outputs, expected {tasks}")
    return elapsed


def fresh_database(url: str) -> str:
    """A new schema on the server for one run, so no claims or history of an earlier run are read."""
    import uuid

    import psycopg2

    sys.path.insert(0, ROOT)
    from tests.pg import with_options

    schema = "bench_" + uuid.uuid4().hex[:8]
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {schema}")
    conn.close()
    return with_options(url, options=f"-csearch_path={schema}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--processes", type=int, nargs="+", default=[1])
    parser.add_argument("--wait", type=float, default=0.0, help="seconds each task sleeps (0: none)")
    parser.add_argument("--skip-store", action="store_true", help="only the backfills")
    parser.add_argument("--skip-backfill", action="store_true", help="only the store's figures")
    parser.add_argument("--url", default=os.environ.get("FLOW_TEST_DATABASE_URL"))
    args = parser.parse_args()
    server = None
    url = args.url
    if not url:
        sys.path.insert(0, ROOT)
        from tests.pg import Server

        server = Server().start()
        url = server.url
    try:
        if not args.skip_store:
            costs = store_costs(fresh_database(url), args.tasks)
            print(f"store, {args.tasks:,} claims + releases:")
            for name, seconds in costs.items():
                print(f"  {name:26} {seconds:7.2f} s  {seconds / args.tasks * 1e6:7.0f} us/task")
            print("retention at the end of a build (PostgresState.retain):")
            for name, seconds in retention_costs(fresh_database(url), args.tasks).items():
                print(f"  {name:30} {seconds * 1000:8.1f} ms")
        if args.skip_backfill:
            return
        base = tempfile.mkdtemp(prefix="flow-coord-bench-")
        try:
            local = backfill(os.path.join(base, "local"), args.tasks, args.jobs, 1, None, args.wait)
            print(f"backfill of {args.tasks:,} tasks{f' of {args.wait:g} s' if args.wait else ''},"
                  f" flow build -j {args.jobs}:")
            print(f"  local locks, 1 process   {local:7.2f} s")
            for processes in args.processes:
                shared = backfill(os.path.join(base, f"coord{processes}"), args.tasks, args.jobs, processes,
                                  fresh_database(url), args.wait)
                print(f"  coordinator, {processes} process{'es' if processes > 1 else '  '} {shared:7.2f} s"
                      f"  ({(shared - local) / args.tasks * 1e6:+.0f} us/task, {local / shared:.2f}x)")
        finally:
            shutil.rmtree(base, ignore_errors=True)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
