"""Kill flow at many moments of a multi-task build: nothing partial, nothing left running, the next build is clean.

Moments are conditions, not sleeps: an action pauses at a named point ("part 2012-01-03:half" means
the temporary of that task is half written) when FLOW_TEST_PAUSE names it, and says so in a file;
other moments are "N outputs exist". Some pauses first start a child process in a session of its
own (`setsid`), which must not outlive the build either.

- SIGKILL of the main process alone, and of the main process with its workers: within 5 s no
  process of the build is alive, no output is partial, and the next build completes and matches a
  clean build byte for byte.
- SIGINT to the build's process group, as Ctrl-C in a terminal sends it: exit 130, no temporary,
  no process left, at ten moments (planning included, and a job queued behind a quick task).
"""

from __future__ import annotations

import datetime
import os
import signal
import textwrap

import pytest

from tests.processes import alive
from tests.reliability.helpers import flow, start_flow, wait_for

ACTIONS = '''
import os, subprocess, sys, time

def _pause(key, phase):
    here = os.environ["FLOW_TEST_DIR"]
    if os.environ.get("FLOW_TEST_PAUSE") != f"{key}:{phase}":
        return
    if os.environ.get("FLOW_TEST_CHILD"):  # a helper started on its own session, as a daemon would be
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
        open(os.path.join(here, "child.pid"), "w").write(str(child.pid))
    open(os.path.join(here, "paused"), "w").write(str(os.getpid()))
    time.sleep(600)

def _write(key, output, text):
    _pause(key, "begin")
    with open(output, "w") as handle:
        half = len(text) // 2
        handle.write(text[:half])
        handle.flush()
        _pause(key, "half")
        handle.write(text[half:])
    _pause(key, "full")

def part(date, output):
    _write(f"part {date}", output, "".join(f"{date} {i} {(i * 7919) % 1000}\\n" for i in range(3000)))

def bundle(inputs, output, interval):
    os.makedirs(output)
    text = "".join(open(path).read() for path in inputs)
    _write(f"bundle {interval}", os.path.join(output, "all.txt"), text)

def top(inputs, output, interval):
    lines = open(os.path.join(inputs[0], "all.txt")).read().splitlines()
    best = sorted(lines, key=lambda line: (-int(line.split()[2]), line))[:50]
    _write(f"top {interval}", output, "\\n".join(best) + "\\n")

def tiny(date, output):
    _pause(f"tiny {date}", "begin")
    open(output, "w").write(str(date))
'''

FLOWFILE = """
rule part(date: date):
    output: "out/part/{date}.txt"
    python: acts.part

rule bundle(interval: interval):
    requires: part(d) for d in interval
    output: dir "out/bundle_{interval}"
    python: acts.bundle

rule top(interval: interval):
    requires: bundle(interval)
    output: "out/top_{interval}.txt"
    python: acts.top

rule tiny(date: date):
    output: "out/tiny/{date}.txt"
    python: acts.tiny

target all: top(w) for w in weeks(2012-W01 .. 2012-W02)
target tinies: tiny(d) for d in days(2012-01-01 .. 2012-07-18)
target huge: tiny(d) for d in days(1600-01-01 .. 2011-12-31)
"""

PAUSES = ["part 2012-01-02:begin", "part 2012-01-02:half", "part 2012-01-02:full", "part 2012-01-09:half",
          "bundle 2012-W01:begin", "bundle 2012-W01:half", "bundle 2012-W01:full", "top 2012-W01:half",
          "top 2012-W01:full", "top 2012-W02:half"]
WITH_CHILD = {"part 2012-01-02:half", "bundle 2012-W01:full", "top 2012-W02:half"}
OUTPUTS_EXIST = [3, 11]


def make_project(path):
    path.mkdir(parents=True, exist_ok=True)
    (path / "acts.py").write_text(ACTIONS)
    (path / "Flowfile").write_text(textwrap.dedent(FLOWFILE))
    return path


def tree(path) -> dict:
    """Every file under out/ (relative path -> bytes)."""
    found = {}
    root = path / "out"
    for folder, _, names in os.walk(root):
        for name in names:
            full = os.path.join(folder, name)
            try:
                with open(full, "rb") as handle:
                    found[os.path.relpath(full, root)] = handle.read()
            except FileNotFoundError:  # a temporary renamed or removed while a build runs
                pass
    return found


@pytest.fixture(scope="module")
def clean_tree(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("clean"))
    result = flow(project, "build", "-j", "2", "all", env={"FLOW_TEST_DIR": str(project)})
    assert result.returncode == 0, result.stdout + result.stderr
    return tree(project)


def children(pid: int) -> list:
    """The direct children of a process (its workers, for flow's main process)."""
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.extend(int(p) for p in handle.read().split())
    except FileNotFoundError:
        pass
    return found


def outputs(project) -> int:
    return sum(1 for name in tree(project) if "flow-tmp" not in name)


def build_processes(project, main: int) -> list:
    """The main process, its workers, and a child an action started (if the moment made one)."""
    pids = [main, *children(main)]
    child = project / "child.pid"
    if child.exists():
        pids.append(int(child.read_text()))
    return pids


def wait_until_gone(pids, seconds=60.0):
    """Wait for the processes to end: a dying main process's workers get SIGTERM from the kernel, kill what
    their task started and exit, which on a loaded 2-core machine took over 5 s once (the deadline before)."""
    still = [pid for pid in pids if alive(pid)]
    try:
        wait_for(lambda: not any(alive(pid) for pid in still), f"processes {still} to end", timeout=seconds)
    finally:
        for pid in pids:  # never leave one behind for the next test, whatever the assertion said
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def reach(project, build, moment):
    """Wait for the moment: a pause point reached, or N outputs in place."""
    if isinstance(moment, int):
        wait_for(lambda: outputs(project) >= moment or build.poll() is not None, f"{moment} outputs")
    else:
        wait_for(lambda: (project / "paused").exists() or build.poll() is not None, f"the pause at {moment}")
    assert build.poll() is None, "the build ended before the moment: " + "".join(build.communicate())


def moments():
    for mode in ("main alone", "main and workers"):
        for moment in PAUSES + OUTPUTS_EXIST:
            yield pytest.param(mode, moment, id=f"{mode}-{moment}".replace(" ", "_"))


@pytest.mark.parametrize("mode, moment", list(moments()))
def test_sigkill_at_a_moment_leaves_nothing_partial_nothing_running_and_the_next_build_is_clean(
        tmp_path, clean_tree, mode, moment):
    project = make_project(tmp_path / "p")
    env = {"FLOW_TEST_DIR": str(project)}
    if isinstance(moment, str):
        env["FLOW_TEST_PAUSE"] = moment
        if moment in WITH_CHILD and mode == "main alone":
            # Only then: when every flow process dies by SIGKILL at once, none is left to end a
            # process that an action started in a session of its own (docs/reliability.md).
            env["FLOW_TEST_CHILD"] = "1"
    build = start_flow(project, "build", "-j", "2", "all", env=env)
    try:
        reach(project, build, moment)
        pids = build_processes(project, build.pid)
        os.kill(build.pid, signal.SIGKILL)
        if mode == "main and workers":
            for worker in pids[1:]:
                os.killpg(worker, signal.SIGKILL)  # each worker leads a process group with its task's children
        build.wait(30)
        wait_until_gone(pids)
    finally:
        build.kill()
        build.wait()
    clean = clean_tree
    for name, content in tree(project).items():
        if "flow-tmp" not in name:
            assert content == clean[name], f"{name} is partial"
    again = flow(project, "build", "-j", "2", "all", env={"FLOW_TEST_DIR": str(project)})
    assert again.returncode == 0, again.stdout + again.stderr
    assert tree(project) == clean  # byte for byte, and the temporaries were swept


INTERRUPTS = ["planning", "part 2012-01-02:begin", "part 2012-01-02:half", "bundle 2012-W01:half",
              "top 2012-W02:full", 2, 9, "tinies:30", "tinies:90", "tinies:150"]


@pytest.mark.parametrize("moment", INTERRUPTS, ids=[str(m).replace(" ", "_") for m in INTERRUPTS])
def test_ctrl_c_at_a_moment_exits_130_with_no_temporary_and_nothing_running(tmp_path, moment):
    project = make_project(tmp_path / "p")
    env = {"FLOW_TEST_DIR": str(project)}
    target = "all"
    if moment == "planning":
        target = "huge"  # 146,000 tasks: planning takes long enough to be interrupted
    elif isinstance(moment, str) and moment.startswith("tinies:"):
        # quick tasks, which travel many to a message, a second message waiting in each worker's
        # pipe: the task after N others pauses (the build would otherwise end before the signal)
        target = "tinies"
        day = datetime.date(2012, 1, 1) + datetime.timedelta(days=int(moment.split(":")[1]))
        env["FLOW_TEST_PAUSE"] = f"tiny {day}:begin"
    elif isinstance(moment, str):
        env["FLOW_TEST_PAUSE"] = moment
        if moment in WITH_CHILD or moment.endswith("half"):
            env["FLOW_TEST_CHILD"] = "1"
    build = start_flow(project, "build", "-j", "2", target, env=env)
    try:
        if moment == "planning":
            wait_for(lambda: _cpu_seconds(build.pid) > 0.5 or build.poll() is not None, "planning to be under way")
            assert build.poll() is None
        elif isinstance(moment, str) and moment.startswith("tinies:"):
            reach(project, build, env["FLOW_TEST_PAUSE"])
        else:
            reach(project, build, moment)
        pids = build_processes(project, build.pid)
        os.killpg(build.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends to the foreground group
        out, err = build.communicate(timeout=60)
        assert build.returncode == 130, out + err
        assert "Traceback" not in err and "Aborted!" not in err, err
        wait_until_gone(pids)
    finally:
        build.kill()
        build.wait()
    temporaries = [name for name in tree(project) if "flow-tmp" in name]
    assert temporaries == []


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
