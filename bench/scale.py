"""A million tasks (issue 19): flow's dry run, peak memory, cold builds and no-op beside make and the floor.

Usage: python bench/scale.py [N ...] [--no-make] [--rounds R] [--keep] [--work DIR]

For each N (default 100000) the shared harness's workload is generated (gen_workload.py: a task
per day, an aggregate and a top 10 per month) in a work folder on tmpfs (/dev/shm when there is
one, so the disk does not hide the orchestration), and these run one after the other through the
command line, as a user types them, each timed from outside with its peak RSS (the
largest single process of the tree, from /usr/bin/time):

    flow dry run    flow build -j1 --dry-run, from the cold state (nothing built)
    flow -j1        flow build -j1, cold (data/ and .flow/ removed first)
    flow no-op      flow build -j1 again, everything complete
    flow -j2        flow build -j2, cold
    make -n / make / make no-op   the harness's Makefile (skipped with --no-make)
    floor           bench/floor.py: one Python process writing the same files atomically, nothing else
                    (its own figures: the time to write, without reading the 110 MB manifest)

Then R rounds (--rounds, default 3) of the three cold builds again, interleaved (flow -j1, flow -j2,
the floor), and their medians: on this shared VM identical cold builds differ by a second or more,
so "-j2 faster than -j1" and "within 3x the floor" are judged on the medians of neighbouring runs.

Every step checks what it should have left behind (N files after a cold build, none touched by a
no-op), and the 1-minute load average when it started is printed with it: the machine is shared.
The workload's months reach far into the future, so the build's date is pinned past them
(FLOW_TODAY=9999-12-31), as a backfill of closed periods would be.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.environ.get("BENCH_HARNESS", "/work/shared/bench")
FLOW = [sys.executable, "-m", "flow.runtime.cli"]
# The build date past the last month; no task limit (the default stops at 1,000,000, the 1M workload has 1,000,028).
ENV = {**os.environ, "FLOW_TODAY": "9999-12-31", "FLOW_MAX_TASKS": "0"}


def run(command: list, cwd: str, log: str) -> tuple:
    """Run `command` in `cwd` with its output in `log`; return (wall s, CPU s, peak RSS MB); fail loudly.

    CPU is user + system time of the command and the children it waited for (flow's workers): on a
    shared machine the wall time is mostly the queue for a core, the CPU time is the work done.

    The peak comes from /usr/bin/time (a small C program), because a process forked from this
    Python would report this Python's own RSS as its peak when it is smaller.
    """
    peak_file = log + ".rss"
    with open(log, "wb") as out:
        started = time.perf_counter()
        code = subprocess.call(["/usr/bin/time", "-f", "%M %U %S", "-o", peak_file] + command, cwd=cwd, stdout=out,
                               stderr=subprocess.STDOUT, env=ENV)
        seconds = time.perf_counter() - started
    if code != 0:
        with open(log, encoding="utf-8", errors="replace") as text:
            tail = text.read()[-2000:]
        raise SystemExit(f"{' '.join(command)} exited {code} in {cwd}:\n{tail}")
    with open(peak_file, encoding="utf-8") as text:
        peak, user, system = text.read().split()[-3:]
    return seconds, float(user) + float(system), int(peak) / 1024


def count_files(directory: str) -> int:
    return sum(len(files) for _, _, files in os.walk(directory))


def newest_mtime(directory: str) -> float:
    newest = 0.0
    for head, _, files in os.walk(directory):
        for name in files:
            newest = max(newest, os.stat(os.path.join(head, name)).st_mtime)
    return newest


def work_folder(given: "str | None") -> str:
    if given:
        return given
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else "/tmp"
    return os.path.join(base, f"flow-scale-{os.getpid()}")


def generate(n: int, work: str) -> tuple:
    """The harness's workload for flow (Flowfile + actions) and for make, under work/; (flow dir, make dir, tasks)."""
    flow_dir, make_dir = os.path.join(work, f"flow_{n}"), os.path.join(work, f"make_{n}")
    for folder in (flow_dir, make_dir):
        os.makedirs(folder, exist_ok=True)
    subprocess.run([sys.executable, os.path.join(HARNESS, "gen_workload.py"), "manifest", str(n), flow_dir],
                   check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(flow_dir, "Flowfile"), "w", encoding="utf-8") as flowfile:
        subprocess.run([sys.executable, os.path.join(HERE, "workload_to_flowfile.py"),
                        os.path.join(flow_dir, "workload.json")], check=True, stdout=flowfile)
    shutil.copy(os.path.join(HERE, "flow_actions.py"), flow_dir)
    subprocess.run([sys.executable, os.path.join(HARNESS, "gen_workload.py"), "make", str(n), make_dir],
                   check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(flow_dir, "workload.json"), encoding="utf-8") as manifest:
        tasks = len(json.load(manifest)["tasks"])
    return flow_dir, make_dir, tasks


def clean(folder: str) -> None:
    for name in ("data", ".flow"):
        shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def measure(n: int, work: str, with_make: bool, rounds: int) -> tuple:
    """The rows of one size, (step, seconds, CPU seconds, peak MB, load at its start, what was checked), and the
    rounds: (flow -j1 s, flow -j2 s, floor s, load) each."""
    flow_dir, make_dir, tasks = generate(n, work)
    logs = os.path.join(work, "logs")
    os.makedirs(logs, exist_ok=True)
    rows = []

    def step(name, command, cwd, check):
        load = os.getloadavg()[0]
        seconds, cpu, peak = run(command, cwd, os.path.join(logs, f"{n}-{name.replace(' ', '_')}.log"))
        rows.append((name, seconds, cpu, peak, load, check()))
        print(f"  {n:>9,}  {name:<14} {seconds:8.2f} s  {cpu:8.2f} s CPU  {peak:7.0f} MB  load {load:4.1f}",
              file=sys.stderr)

    def cold_built():
        found = count_files(os.path.join(flow_dir, "data"))
        if found != tasks:
            raise SystemExit(f"expected {tasks} outputs, found {found}")
        return f"{found:,} files"

    clean(flow_dir)
    step("flow dry run", FLOW + ["build", "-j1", "--dry-run"], flow_dir,
         lambda: f"{tasks:,} would run" if not os.path.exists(os.path.join(flow_dir, "data")) else "wrote data/!")
    step("flow -j1", FLOW + ["build", "-j1"], flow_dir, cold_built)
    before = newest_mtime(os.path.join(flow_dir, "data"))
    step("flow no-op", FLOW + ["build", "-j1"], flow_dir,
         lambda: "nothing touched" if newest_mtime(os.path.join(flow_dir, "data")) == before else "touched!")
    clean(flow_dir)
    step("flow -j2", FLOW + ["build", "-j2"], flow_dir, cold_built)
    if with_make:
        shutil.rmtree(os.path.join(make_dir, "data"), ignore_errors=True)
        step("make -n", ["make", "-n", "-f", "Makefile"], make_dir, lambda: "")
        step("make", ["make", "-f", "Makefile"], make_dir,
             lambda: f"{count_files(os.path.join(make_dir, 'data')):,} files")
        step("make no-op", ["make", "-f", "Makefile"], make_dir, lambda: "")
        shutil.rmtree(os.path.join(make_dir, "data"), ignore_errors=True)
    clean(flow_dir)
    step("floor", [sys.executable, os.path.join(HERE, "floor.py"), os.path.join(flow_dir, "workload.json")],
         flow_dir, cold_built)
    name, _, _, peak, load, checked = rows[-1]
    rows[-1] = (name, *floor_figures(logs, n), peak, load, checked)
    clean(flow_dir)
    interleaved = []
    for number in range(1, rounds + 1):
        load = os.getloadavg()[0]
        walls = []
        for jobs in ("-j1", "-j2"):
            seconds, _, _ = run(FLOW + ["build", jobs], flow_dir, os.path.join(logs, f"{n}-round{number}{jobs}.log"))
            cold_built()
            walls.append(seconds)
            clean(flow_dir)
        run([sys.executable, os.path.join(HERE, "floor.py"), os.path.join(flow_dir, "workload.json")], flow_dir,
            os.path.join(logs, f"{n}-floor.log"))
        cold_built()
        clean(flow_dir)
        interleaved.append((*walls, floor_figures(logs, n)[0], load))
        print(f"  {n:>9,}  round {number}: -j1 {walls[0]:.2f} s, -j2 {walls[1]:.2f} s, floor "
              f"{interleaved[-1][2]:.2f} s, load {load:4.1f}", file=sys.stderr)
    return [(tasks,) + row for row in rows], [(tasks,) + one for one in interleaved]


def floor_figures(logs: str, n: int) -> tuple:
    """The floor's own (seconds, CPU seconds), from its log: "N files in S s (C s CPU)"."""
    with open(os.path.join(logs, f"{n}-floor.log"), encoding="utf-8") as log:
        words = log.read().split()
    return float(words[3]), float(words[5].lstrip("("))


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100_000])
    parser.add_argument("--no-make", action="store_true", help="skip make (it takes ~10 min at 1M)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the cold builds (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--work", help="the work folder (default: a new one under /dev/shm)")
    args = parser.parse_args(argv)
    work = work_folder(args.work)
    os.makedirs(work, exist_ok=True)
    print(f"work folder {work}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", file=sys.stderr)
    rows, rounds = [], []
    try:
        for n in args.sizes:
            size_rows, size_rounds = measure(n, work, not args.no_make, args.rounds)
            rows.extend(size_rows)
            rounds.extend(size_rounds)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("| tasks | step | wall s | CPU s | peak RSS MB | load | checked |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for tasks, name, seconds, cpu, peak, load, checked in rows:
        print(f"| {tasks:,} | {name} | {seconds:.2f} | {cpu:.2f} | {peak:.0f} | {load:.1f} | {checked} |")
    floors = {tasks: (seconds, cpu) for tasks, name, seconds, cpu, *_ in rows if name == "floor"}
    for tasks, name, seconds, cpu, *_ in rows:
        if name in ("flow -j1", "flow -j2", "make") and floors.get(tasks):
            wall_floor, cpu_floor = floors[tasks]
            print(f"{tasks:,} tasks: {name} is {seconds / wall_floor:.1f}x the floor's wall time,"
                  f" {cpu / cpu_floor:.1f}x its CPU")
    if rounds:
        print()
        print("| tasks | round | flow -j1 s | flow -j2 s | floor s | load |")
        print("|---:|---:|---:|---:|---:|---:|")
        for number, (tasks, j1, j2, floor, load) in enumerate(rounds, 1):
            print(f"| {tasks:,} | {number} | {j1:.2f} | {j2:.2f} | {floor:.2f} | {load:.1f} |")
        for tasks in dict.fromkeys(r[0] for r in rounds):
            j1, j2, floor = (statistics.median(r[i] for r in rounds if r[0] == tasks) for i in (1, 2, 3))
            print(f"{tasks:,} tasks, medians of the rounds: -j1 {j1:.2f} s ({j1 / floor:.1f}x the floor),"
                  f" -j2 {j2:.2f} s ({j2 / floor:.1f}x the floor); -j2 takes {j2 / j1:.2f} of -j1's time")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
