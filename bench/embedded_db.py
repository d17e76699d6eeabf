#!/usr/bin/env python3
"""What the embedded PostgreSQL costs: a fresh clone to the loaded table, no-op builds, server start and stop.

Usage: python bench/embedded_db.py [--runs 10] [--skip-clone]

1. Fresh clone (unless --skip-clone): `git clone` of this repository into a temp dir, a new venv,
   `pip install -e .` (pip's cache as this machine has it), then `flow` (the README's first command:
   the whole pipeline, initdb of the embedded server included); each step timed once, and the
   loaded rows counted with `flow db shell -c`.
2. No-op builds, through the installed `flow` script, median and min of RUNS after one build:
   the default target (toplists_db_2012: 12 tables, the server started and stopped inside the run),
   the same while `flow db start` keeps the server up, and the file target toplists_2012 (no server).
3. The server alone, in-process (EmbeddedServer): cold start (initdb + start on an empty .flow/db),
   warm start (an existing cluster), stop (fast shutdown: a checkpoint), median of RUNS.

Everything runs in temp dirs under /tmp (mode 0755, so the root path works as well).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)
FLOW = os.environ.get("FLOW_BIN") or os.path.join(os.path.dirname(sys.executable), "flow")


def environment() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "FLOW_DATABASE_URL"}


def timed(args, cwd, env=None) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env or environment(), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{done.stdout}{done.stderr}")
    return elapsed


def workdir(prefix: str) -> str:
    directory = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(directory, 0o755)
    return directory


def fresh_clone() -> None:
    base = workdir("flow-bench-clone-")
    try:
        clone = os.path.join(base, "flow")
        venv = os.path.join(base, "venv")
        steps = [
            ("git clone", ["git", "clone", "-q", PROJECT, clone], base),
            ("python3 -m venv", [sys.executable, "-m", "venv", venv], base),
            ("pip install -e .", [os.path.join(venv, "bin", "pip"), "install", "-q", "-e", "."], clone),
            ("flow (the whole pipeline, initdb included)", [os.path.join(venv, "bin", "flow")], clone),
        ]
        total = 0.0
        print("fresh clone to the loaded table:")
        for name, args, cwd in steps:
            seconds = timed(args, cwd)
            total += seconds
            print(f"  {name:45s} {seconds:7.2f} s")
        print(f"  {'total':45s} {total:7.2f} s")
        rows = subprocess.run([os.path.join(venv, "bin", "flow"), "db", "shell", "-A", "-t", "-c",
                               "SELECT (SELECT count(*) FROM top10) || ' rows, ' || "
                               "(SELECT count(*) FROM flow_table_updates) || ' markers'"],
                              cwd=clone, env=environment(), capture_output=True, text=True)
        print(f"  loaded: {rows.stdout.strip()}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def copy_project(directory: str) -> None:
    shutil.copy(os.path.join(PROJECT, "Flowfile"), directory)
    shutil.copytree(os.path.join(PROJECT, "examples"), os.path.join(directory, "examples"),
                    ignore=shutil.ignore_patterns("__pycache__"))


def summary(samples: list) -> str:
    return f"median {statistics.median(samples) * 1000:6.0f} ms   min {min(samples) * 1000:6.0f} ms"


def noop_builds(runs: int) -> None:
    directory = workdir("flow-bench-noop-")
    try:
        copy_project(directory)
        timed([FLOW], directory)
        print(f"no-op builds ({runs} runs each, {FLOW}):")
        rows = [("flow toplists_db_2012 (embedded server started and stopped)", ["toplists_db_2012"]),
                ("flow toplists_2012 (file target, no server)", ["toplists_2012"])]
        for name, args in rows:
            print(f"  {name:62s} {summary([timed([FLOW, *args], directory) for _ in range(runs)])}")
        timed([FLOW, "db", "start"], directory)
        try:
            samples = [timed([FLOW, "toplists_db_2012"], directory) for _ in range(runs)]
            print(f"  {'flow toplists_db_2012 (server kept up by flow db start)':62s} {summary(samples)}")
        finally:
            timed([FLOW, "db", "stop"], directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def server_alone(runs: int) -> None:
    sys.path.insert(0, PROJECT)
    from flow.runtime.embedded_db import EmbeddedServer

    cold, warm, stop = [], [], []
    for _ in range(max(3, runs // 3)):
        directory = workdir("flow-bench-server-")
        try:
            server = EmbeddedServer(os.path.join(directory, ".flow"))
            started = time.perf_counter()
            server.acquire()
            cold.append(time.perf_counter() - started)
            server.release()
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    directory = workdir("flow-bench-server-")
    try:
        server = EmbeddedServer(os.path.join(directory, ".flow"))
        server.acquire()
        server.release()
        for _ in range(runs):
            started = time.perf_counter()
            server.acquire()
            warm.append(time.perf_counter() - started)
            started = time.perf_counter()
            server.release()
            stop.append(time.perf_counter() - started)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print("the server alone (in-process):")
    print(f"  {'cold start (initdb + start)':62s} {summary(cold)}")
    print(f"  {'warm start (existing cluster, until ready)':62s} {summary(warm)}")
    print(f"  {'stop (fast shutdown, waited for)':62s} {summary(stop)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--skip-clone", action="store_true")
    options = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} cores")
    if not options.skip_clone:
        fresh_clone()
    noop_builds(options.runs)
    server_alone(options.runs)


if __name__ == "__main__":
    main()
