"""Helpers for the tests of `flow serve`: a project with real builds, a running server, HTTP reads, waits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEADLINE = 120.0  # generous: CI is a loaded 2-core machine

ACTIONS = '''
import os, time

def day(date, output):
    with open(output, "w") as f:
        f.write(f"day {date}\\n")

def month(inputs, output, interval):
    with open(output, "w") as f:
        for path in inputs:
            f.write(open(path).read())

def bad(date, output):
    raise RuntimeError(f"no data for {date} at postgresql://loader:hunter2secret@db.example/warehouse")

def held(date, output):
    # runs until the test creates the file "release", so it is surely under way meanwhile
    deadline = time.monotonic() + 120
    while not os.path.exists("release") and time.monotonic() < deadline:
        time.sleep(0.01)
    with open(output, "w") as f:
        f.write(f"held {date}\\n")
'''

FLOWFILE = '''
rule day(date: date):
    """One day of data."""
    output: "out/day_{date}.txt"
    python: acts.day

rule month(interval: interval):
    """The days of a month, together."""
    requires: day(d) for d in interval
    output: "out/month_{interval}.txt"
    python: acts.month

rule bad(date: date):
    """Always fails."""
    output: "out/bad_{date}.txt"
    python: acts.bad

rule after_bad(date: date):
    """Needs bad: never runs."""
    requires: bad(date)
    output: "out/after_bad_{date}.txt"
    python: acts.day

rule held(date: date):
    """Waits for the test to release it."""
    requires: day(date)
    output: "out/held_{date}.txt"
    python: acts.held

target good: month(m) for m in months(2012-01 .. 2012-02)
target broken: after_bad(d) for d in days(2012-03-01 .. 2012-03-03)
target live: held(d) for d in days(2012-04-01 .. 2012-04-02)

default: good
'''

# What `flow build -k good broken` does to FLOWFILE: 60 days and 2 months done, 3 bad failed,
# 3 after_bad upstream failed.
BUILT = {"done": 62, "failed": 3, "upstream_failed": 3}


def make_project(directory) -> str:
    """Write the test Flowfile and its actions into `directory`; return the directory as a string."""
    directory = str(directory)
    with open(os.path.join(directory, "acts.py"), "w") as handle:
        handle.write(ACTIONS)
    with open(os.path.join(directory, "Flowfile"), "w") as handle:
        handle.write(textwrap.dedent(FLOWFILE))
    return directory


def environment() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["FLOW_RETRY_DELAY"] = "0.05"
    from flow.runtime.db import ENV_VAR, LIBPQ_SERVER_VARIABLES

    for name in (ENV_VAR, *LIBPQ_SERVER_VARIABLES):  # no database unless a test configures one
        env.pop(name, None)
    return env


def flow(directory, *args, timeout=300, env=None):
    """Run the real `flow` command in `directory`, as a user types it (with `env` added to its environment)."""
    return subprocess.run([sys.executable, "-m", "flow.runtime.cli", *args], cwd=directory,
                          env={**environment(), **(env or {})}, capture_output=True, text=True, timeout=timeout)


def clone_root_project(directory) -> str:
    """The repository's Flowfile and examples copied into `directory`, as a fresh clone has them."""
    import shutil

    shutil.copy(os.path.join(ROOT, "Flowfile"), os.path.join(directory, "Flowfile"))
    shutil.copytree(os.path.join(ROOT, "examples"), os.path.join(directory, "examples"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    return str(directory)


# The start of a coordinator test's actions: `_note(name, text)` appends to a file every host shares,
# with O_APPEND, so that side effects of all processes can be counted.
SHARED_NOTES = '''
import os, time

SHARED = os.environ["FLOW_TEST_SHARED"]


def _note(name, text):
    fd = os.open(os.path.join(SHARED, name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
'''


def coordinated_hosts(tmp_path, monkeypatch, coordinator_url: str, actions: str, flowfile: str):
    """A function making the n-th 'host' of a coordinator test: its own copy of the project (`flowfile`
    formatted with `shared`), all sharing tmp_path/shared (outputs, logs of side effects) and one coordinator."""
    shared = tmp_path / "shared"
    (shared / "out").mkdir(parents=True)
    monkeypatch.setenv("FLOW_TEST_SHARED", str(shared))
    monkeypatch.setenv("FLOW_COORDINATOR_URL", coordinator_url)
    monkeypatch.setenv("FLOW_CACHE_DIR", str(tmp_path / "cache"))

    def host(n: int) -> str:
        directory = tmp_path / f"host{n}"
        directory.mkdir()
        (directory / "acts.py").write_text(actions)
        (directory / "Flowfile").write_text(textwrap.dedent(flowfile.format(shared=shared)))
        return str(directory)

    host.shared = str(shared)
    return host


def start_flow(directory, *args):
    return subprocess.Popen([sys.executable, "-m", "flow.runtime.cli", *args], cwd=directory, env=environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(process, timeout: float = 300) -> tuple:
    """Wait for a process start_flow began; (exit code, stdout, stderr)."""
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def table_rows(dsn: str, table: str) -> int:
    """How many rows a coordinator table holds (0 before flow has created it)."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
            if not cursor.fetchone()[0]:
                return 0
            cursor.execute(f"SELECT count(*) FROM {table}")
            return cursor.fetchone()[0]
    finally:
        conn.close()


class Server:
    """`flow serve --port 0` in a project, stopped by `stop()`; `url` is where it listens."""

    def __init__(self, directory, *args):
        self.errors = os.path.join(str(directory), "serve.err")  # the server's stderr, for failure messages
        with open(self.errors, "w") as errors:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flow.runtime.cli", "serve", "--port", "0", *args], cwd=directory,
                env=environment(), stdout=subprocess.PIPE, stderr=errors, text=True, start_new_session=True)
        line = self.process.stdout.readline()  # the server prints its address once it listens
        if "http://" not in line:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"flow serve did not start: {line}{self.stderr()}")
        self.url = line.split()[2].rstrip("/")

    def stderr(self) -> str:
        with open(self.errors) as errors:
            return errors.read()

    def get(self, path: str):
        """(status code, body text) of a GET."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def json(self, path: str, expect: int = 200):
        status, body = self.get(path)
        assert status == expect, f"{path}: {status} {body[:500]}\n{self.stderr()[-3000:]}"
        return json.loads(body)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


def wait_for(condition, what: str, deadline: float = DEADLINE):
    """Poll `condition()` until it returns something true; fail naming `what` after `deadline` seconds."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
