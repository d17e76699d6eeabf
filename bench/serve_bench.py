"""Benchmark: flow serve's time to first view and payload sizes for runs of 1,000 and 100,000 tasks.

Usage: python bench/serve_bench.py [--tasks 1000 100000] [--dir DIR] [--reps 5]

For each size it writes a project (a Flowfile of days and months) and a history of one run of
that size through the real History class (99% done, 0.5% failed, 0.5% upstream failed), starts
the real `flow serve --port 0`, then measures:

- HTTP: the first request to each page and endpoint (cold: the server's first read of the
  history) and the median of the next REPS (warm), with the bytes sent;
- a real browser: the system's headless Chromium (Selenium) opens the run's page, and the
  Navigation Timing API gives the time from the request to the page drawn (loadEventEnd).

Needs `pip install -e '.[web]'`, selenium, /usr/bin/chromium and /usr/bin/chromedriver.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from flow.compiler import types as T  # noqa: E402
from flow.compiler.graph import TaskFactory  # noqa: E402
from flow.compiler.loader import load  # noqa: E402
from flow.runtime.history import History  # noqa: E402

FLOWFILE = """
rule day(date: date):
    output: "data/day_{date}.txt"
    python: acts.day

rule month(interval: interval):
    requires: day(d) for d in interval
    output: "data/month_{interval}.txt"
    python: acts.month

range all_months = months(1800-01 .. {last})

target all: month(m) for m in all_months
"""


def write_history(directory: str, n: int) -> int:
    """One run of `n` tasks (days, then their months) written the way a build writes it; return its id.

    The Flowfile's target `all` covers the same months, so the target page has about `n` tasks too.
    """
    months = max(round(n / 31.4), 1)
    last = T.month(1800, 1)
    for _ in range(months - 1):
        last = last.next
    with open(os.path.join(directory, "Flowfile"), "w") as handle:
        handle.write(FLOWFILE.replace("{last}", T.format_value(last)))
    factory = TaskFactory(load(os.path.join(directory, "Flowfile")))
    days = n - months
    first = datetime.date(1800, 1, 1)
    tasks = [factory.task("day", (first + datetime.timedelta(days=i),)) for i in range(days)]
    month = T.month(1800, 1)
    while len(tasks) < n:
        tasks.append(factory.task("month", (month,)))
        month = month.next
    rules: dict = {}
    for task in tasks:
        rules[task.name] = rules.get(task.name, 0) + 1
    history = History(os.path.join(directory, ".flow"))
    run = history.start_run(f"flow build -j 2 all  # {n:,} tasks", ["all"],
                            {"tasks": n, "complete": 0, "jobs": 2, "rules": rules})
    clock = time.time() - n * 0.01
    blocked = {}
    for i, task in enumerate(tasks):
        if i % 200 == 7:
            history.record(run, task, "failed", 1, clock, 0.02, f"RuntimeError: no data for {task.id}")
        elif i % 200 == 8:
            blocked[task] = tasks[i - 1]
        else:
            history.record(run, task, "done", 1, clock, 0.01)
        clock += 0.01
    history.record_blocked(run, blocked)
    history.finish_run(run, "failed", {"ran": n - 2 * len(blocked), "failed": len(blocked), "blocked": len(blocked)})
    history.close()
    return run


class Server:
    def __init__(self, directory: str):
        self.process = subprocess.Popen([sys.executable, "-m", "flow.runtime.cli", "serve", "--port", "0"],
                                        cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.url = self.process.stdout.readline().split()[2].rstrip("/")

    def get(self, path: str) -> tuple:
        began = time.perf_counter()
        with urllib.request.urlopen(self.url + path, timeout=300) as response:
            body = response.read()
        return time.perf_counter() - began, len(body)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def browser_first_view(url: str, reps: int) -> list:
    """Seconds from the request to the loaded page (Navigation Timing), one per fresh page load."""
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="flow-bench-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    times = []
    try:
        for _ in range(reps):
            driver.get("about:blank")
            driver.get(url)
            timing = driver.execute_script(
                "const t = performance.getEntriesByType('navigation')[0];"
                "return [t.requestStart, t.responseEnd, t.domContentLoadedEventEnd, t.loadEventEnd];")
            times.append(timing[3] / 1000.0)
    finally:
        driver.quit()
    return times


def measure(n: int, base: str, reps: int) -> list:
    directory = tempfile.mkdtemp(prefix=f"flow-serve-{n}-", dir=base)
    began = time.perf_counter()
    run = write_history(directory, n)
    written = time.perf_counter() - began
    size = os.path.getsize(os.path.join(directory, ".flow", "history.sqlite"))
    print(f"# {n:,} tasks: history written in {written:.1f} s, {size / 1e6:.1f} MB", flush=True)
    server = Server(directory)
    rows = []
    try:
        paths = [("runs page", "/"), ("run page", f"/runs/{run}"), ("run JSON", f"/api/runs/{run}"),
                 ("run tasks JSON (first 50)", f"/api/runs/{run}/tasks"),
                 ("run tasks, search", f"/api/runs/{run}/tasks?q=1800-02-1"),
                 ("run tasks, failed", f"/api/runs/{run}/tasks?status=failed"),
                 ("run tasks, page 1000", f"/api/runs/{run}/tasks?offset={max(n - 100, 0)}"),
                 ("task page", "/task?id=day(1800-01-08)")]
        for name, path in paths:
            cold, size = server.get(path)
            warm = statistics.median(server.get(path)[0] for _ in range(reps))
            rows.append((n, name, cold, warm, size))
        if n <= 200_000:  # the target view checks every output: it is not a first view
            cold, size = server.get("/target?name=all")
            rows.append((n, "target page (all)", cold, server.get("/target?name=all")[0], size))
        shown = browser_first_view(f"{server.url}/runs/{run}", reps)
        rows.append((n, "run page in Chromium (load)", shown[0], statistics.median(shown[1:] or shown), None))
    finally:
        server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--dir", default=None)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    base = args.dir or tempfile.gettempdir()
    rows = []
    for n in args.tasks:
        rows.extend(measure(n, base, args.reps))
    print("| tasks | view | first (s) | warm median (s) | bytes |")
    print("|---:|---|---:|---:|---:|")
    for n, name, cold, warm, size in rows:
        print(f"| {n:,} | {name} | {cold:.3f} | {warm:.3f} | {'' if size is None else f'{size:,}'} |")
    print(f"load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
