"""End-to-end: the real `flow` command on temporary Flowfiles, checking files, logs and exit codes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.processes import alive

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ACTIONS = '''
import os, subprocess, sys, time

def _note(name):
    # one line per real run, appended atomically, so tests can count runs across processes
    with open(os.path.join(os.environ["FLOW_TEST_DIR"], "runs.log"), "a") as log:
        log.write(name + "\\n")

def day(date, output):
    _note(f"day {date}")
    with open(output, "w") as f:
        f.write(f"day {date}\\n")

def slow_day(date, output):
    _note(f"slow_day {date}")
    time.sleep(0.3)
    with open(output, "w") as f:
        f.write(f"slow {date}\\n" * 1000)

def month(inputs, output, interval):
    _note(f"month {interval}")
    with open(output, "w") as f:
        for path in inputs:
            f.write(open(path).read())

def fail(date, output):
    _note(f"fail {date}")
    print("about to fail for", date)
    raise RuntimeError(f"no data for {date}")

def flaky(date, output):
    _note(f"flaky {date}")
    counter = os.path.join(os.environ["FLOW_TEST_DIR"], "flaky.count")
    count = int(open(counter).read()) if os.path.exists(counter) else 0
    open(counter, "w").write(str(count + 1))
    if count < 2:
        raise RuntimeError(f"attempt {count + 1} fails")
    open(output, "w").write("ok\\n")

def die(date, output):
    _note(f"die {date}")
    open(output, "w").write("half")
    os._exit(3)

def gated_day(date, output):
    # says it started, then holds its task until the test creates "release": two flows overlap for sure
    _note(f"gated_day {date}")
    directory = os.environ["FLOW_TEST_DIR"]
    open(os.path.join(directory, f"started-{date}"), "w").close()
    deadline = time.monotonic() + 120
    while not os.path.exists(os.path.join(directory, "release")) and time.monotonic() < deadline:
        time.sleep(0.01)
    with open(output, "w") as f:
        f.write(f"gated {date}\\n")

def quick_or_hang(date, output):
    if date.day == 6:
        time.sleep(60)
    open(output, "w").write(str(date))

def hang(date, output):
    _note(f"hang {date}")
    child = subprocess.Popen(["sleep", "60"])
    open(os.path.join(os.environ["FLOW_TEST_DIR"], "child.pid"), "w").write(str(child.pid))
    open(output, "w").write("partial")
    time.sleep(60)
'''


@pytest.fixture
def project(tmp_path):
    (tmp_path / "acts.py").write_text(ACTIONS)
    return tmp_path


def write_flowfile(project, text):
    (project / "Flowfile").write_text(textwrap.dedent(text))


def environment(project, extra=None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["FLOW_TEST_DIR"] = str(project)
    env["FLOW_RETRY_DELAY"] = "0.05"
    env.update(extra or {})
    return env


def flow(project, *args, timeout=120, env=None):
    return subprocess.run([sys.executable, "-m", "flow.runtime.cli", *args], cwd=project, env=environment(project, env),
                          capture_output=True, text=True, timeout=timeout)


def start_flow(project, *args):
    return subprocess.Popen([sys.executable, "-m", "flow.runtime.cli", *args], cwd=project, env=environment(project),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def runs(project):
    path = project / "runs.log"
    return path.read_text().splitlines() if path.exists() else []


MONTHLY = """
rule day(date: date):
    output: "out/day_{date}.txt"
    python: acts.day

rule month(interval: interval):
    requires: day(d) for d in interval
    output: "out/month_{interval}.txt"
    python: acts.month

range first_months = months(2012-01 .. 2012-02)
target both: month(m) for m in first_months
default: both
"""


def test_fresh_build_then_noop_then_force(project):
    write_flowfile(project, MONTHLY)
    result = flow(project, "build", "month_2012-02.txt")
    assert result.returncode == 0, result.stderr
    content = (project / "out" / "month_2012-02.txt").read_text().splitlines()
    assert content == [f"day 2012-02-{d:02d}" for d in range(1, 30)]
    assert len(runs(project)) == 30  # 29 days of a leap February and the month

    mtime = os.stat(project / "out" / "month_2012-02.txt").st_mtime_ns
    again = flow(project, "build", "month_2012-02.txt")
    assert again.returncode == 0
    assert "nothing to do" in again.stdout
    assert len(runs(project)) == 30
    assert os.stat(project / "out" / "month_2012-02.txt").st_mtime_ns == mtime

    forced = flow(project, "build", "--force", "month_2012-02.txt")
    assert forced.returncode == 0, forced.stderr
    assert runs(project)[30:] == ["month 2012-02"]  # the named target only, not its days


def test_default_target_and_dry_run_write_nothing(project):
    write_flowfile(project, MONTHLY)
    dry = flow(project, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert not (project / "out").exists()
    assert not (project / ".flow").exists()
    assert runs(project) == []
    lines = dry.stdout.splitlines()
    day_line = next(i for i, line in enumerate(lines) if "day(2012-01-31)" in line)
    month_line = next(i for i, line in enumerate(lines) if "month(2012-01)" in line)
    assert day_line < month_line  # a valid order: requirements first
    assert "output missing" in lines[day_line]

    built = flow(project)
    assert built.returncode == 0, built.stderr
    assert (project / "out" / "month_2012-01.txt").exists()
    assert (project / "out" / "month_2012-02.txt").exists()


def test_missing_external_input_exits_3_and_names_it(project):
    write_flowfile(project, """
        external rule raw(date: date):
            output: "raw/{date}.log"

        rule clean(date: date):
            requires: raw(date)
            output: "out/clean_{date}.txt"
            python: acts.day
    """)
    result = flow(project, "build", "clean_2012-06-03.txt")
    assert result.returncode == 3
    output = result.stdout + result.stderr
    assert "raw(2012-06-03)" in output and "raw/2012-06-03.log" in output
    assert runs(project) == []
    (project / "raw").mkdir()
    (project / "raw" / "2012-06-03.log").write_text("x")
    assert flow(project, "build", "clean_2012-06-03.txt").returncode == 0


FAILING = """
rule good(date: date):
    output: "out/good_{date}.txt"
    python: acts.day

rule bad(date: date):
    output: "out/bad_{date}.txt"
    python: acts.fail

rule top(date: date):
    requires: bad(date), good(date)
    output: "out/top_{date}.txt"
    python: acts.month

target all: [bad(2012-01-01), good(2012-01-02), top(2012-01-03)]
"""


def test_failure_stops_the_build_and_shows_the_log(project):
    write_flowfile(project, FAILING)
    result = flow(project, "build", "all")
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "RuntimeError: no data for 2012-01-01" in output
    assert "about to fail for 2012-01-01" in output  # the tail of the task's log
    log = project / ".flow" / "logs" / "bad" / "bad(2012-01-01).log"
    assert log.exists() and "about to fail" in log.read_text()
    assert 'acts.py", line' in log.read_text() and "runtime/workers.py" not in log.read_text()  # user frames only
    assert runs(project) == ["fail 2012-01-01"]
    assert not list((project / "out").glob("bad_*")) if (project / "out").exists() else True


def test_keep_going_builds_everything_that_does_not_need_the_failure(project):
    write_flowfile(project, FAILING)
    result = flow(project, "build", "-k", "all")
    assert result.returncode == 1
    assert (project / "out" / "good_2012-01-02.txt").exists()
    assert (project / "out" / "good_2012-01-03.txt").exists()
    assert not (project / "out" / "top_2012-01-03.txt").exists()
    assert "blocked" in result.stdout + result.stderr


def test_retries_until_success(project):
    write_flowfile(project, """
        rule flaky(date: date):
            output: "out/flaky_{date}.txt"
            python: acts.flaky
            retries: 2
    """)
    result = flow(project, "build", "flaky_2012-01-01.txt")
    assert result.returncode == 0, result.stdout + result.stderr
    assert runs(project) == ["flaky 2012-01-01"] * 3
    assert (project / "out" / "flaky_2012-01-01.txt").read_text() == "ok\n"


def test_timeout_kills_the_task_and_its_children(project):
    write_flowfile(project, """
        rule hang(date: date):
            output: "out/hang_{date}.txt"
            python: acts.hang
            timeout: 1s
    """)
    started = time.monotonic()
    result = flow(project, "build", "hang_2012-01-01.txt")
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    assert "timed out after 1s" in result.stdout + result.stderr
    assert not (project / "out" / "hang_2012-01-01.txt").exists()
    assert [p for p in os.listdir(project / "out") if "flow-tmp" in p] == []
    pid = int((project / "child.pid").read_text())
    time.sleep(0.2)
    assert not alive(pid)


SLOW = """
rule slow_day(date: date):
    output: "out/slow_{date}.txt"
    python: acts.slow_day

target week: slow_day(d) for d in days(2012-01-01 .. 2012-01-08)
"""


GATED = """
rule gated_day(date: date):
    output: "out/gated_{date}.txt"
    python: acts.gated_day

target week: gated_day(d) for d in days(2012-01-01 .. 2012-01-08)
"""


def started(project) -> list:
    return sorted(name for name in os.listdir(project) if name.startswith("started-"))


def wait_until(condition, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_two_concurrent_builds_run_each_task_once(project):
    write_flowfile(project, GATED)
    first = start_flow(project, "build", "week")
    wait_until(lambda: len(started(project)) == 1, "the first build to start a task")
    second = start_flow(project, "build", "week")
    # the second skips the task the first holds and starts another: both are inside the backfill now
    wait_until(lambda: len(started(project)) == 2, "the second build to start a task of its own")
    (project / "release").touch()
    out1, err1 = first.communicate(timeout=60)
    out2, err2 = second.communicate(timeout=60)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    made = runs(project)
    assert sorted(made) == sorted(set(made))  # no task ran twice
    assert len(made) == 8


def test_sigkill_leaves_nothing_that_looks_complete_and_the_next_build_finishes(project):
    write_flowfile(project, SLOW)
    process = start_flow(project, "build", "week")
    deadline = time.monotonic() + 30
    while len(runs(project)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # flow and its workers, mid-task
    process.wait()
    out = project / "out"
    for name in os.listdir(out):
        if "flow-tmp" not in name:
            assert (out / name).read_text().count("\n") == 1000  # every complete-looking output is whole
    assert "died" in flow(project, "log").stdout.splitlines()[0]  # not "running" forever
    result = flow(project, "build", "week")
    assert result.returncode == 0, result.stderr
    names = sorted(os.listdir(out))
    assert names == [f"slow_2012-01-0{d}.txt" for d in range(1, 9)]  # and the temporaries were swept


def test_ctrl_c_stops_running_tasks_removes_temporaries_and_exits_130(project):
    write_flowfile(project, """
        rule hang(date: date):
            output: "out/hang_{date}.txt"
            python: acts.hang
    """)
    process = start_flow(project, "build", "hang_2012-01-01.txt")
    deadline = time.monotonic() + 30
    while not (project / "child.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, out + err
    assert [p for p in os.listdir(project / "out") if p] == []


def test_flowfile_error_is_rendered_with_exit_code_2(project):
    write_flowfile(project, """
        rule day(date: date):
            output: "out/{dat}.txt"
            python: acts.day
    """)
    result = flow(project, "build", "day(2012-01-01)")
    assert result.returncode == 2
    assert result.stderr.startswith("Flowfile:3:13: error: output placeholder '{dat}' is not a parameter of 'day'")
    assert "did you mean '{date}'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_target_gets_did_you_mean(project):
    write_flowfile(project, MONTHLY)
    result = flow(project, "build", "bot")
    assert result.returncode == 2
    assert "did you mean 'both'?" in result.stderr


def test_ten_thousand_tasks_through_the_cli(project):
    write_flowfile(project, MONTHLY.replace("months(2012-01 .. 2012-02)", "months(1990-01 .. 2016-12)"))
    result = flow(project, "build", "-q", "both", timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    files = os.listdir(project / "out")
    assert len(files) == 324 + 9862  # 27 years of months and their days
    assert flow(project, "build", "both").stdout.startswith("nothing to do")


def test_clean_deletes_outputs_and_upstream_with_yes(project):
    write_flowfile(project, MONTHLY)
    assert flow(project, "build", "month_2012-01.txt").returncode == 0
    refused = flow(project, "clean", "month_2012-01.txt")  # no terminal to ask on, no --yes
    assert refused.returncode == 2
    assert (project / "out" / "month_2012-01.txt").exists()

    cleaned = flow(project, "clean", "--yes", "month_2012-01.txt")
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (project / "out" / "month_2012-01.txt").exists()
    assert (project / "out" / "day_2012-01-01.txt").exists()  # not upstream unless asked

    upstream = flow(project, "clean", "--yes", "--upstream", "month_2012-01.txt")
    assert upstream.returncode == 0
    assert os.listdir(project / "out") == []


def test_status_marks_complete_missing_and_failed_last_time(project):
    write_flowfile(project, FAILING)
    assert flow(project, "build", "-k", "all").returncode == 1
    status = flow(project, "status", "top_2012-01-03.txt")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].startswith("top(2012-01-03)  [missing]")
    assert any("bad(2012-01-03)" in line and "FAILED last time" in line and "no data for 2012-01-03" in line
               for line in lines)
    assert any("good(2012-01-03)" in line and "[complete]" in line for line in lines)


def test_log_lists_recent_runs_with_their_failures(project):
    write_flowfile(project, FAILING)
    assert flow(project, "log").stdout.strip() == "no runs recorded yet"
    flow(project, "build", "bad_2012-01-01.txt")
    flow(project, "build", "good_2012-01-01.txt")
    log = flow(project, "log")
    assert log.returncode == 0
    lines = log.stdout.splitlines()
    assert "success" in lines[0] and "good_2012-01-01.txt" in lines[0]  # newest first
    assert any("failed" in line and "bad_2012-01-01.txt" in line for line in lines)
    assert any("bad(2012-01-01): RuntimeError: no data for 2012-01-01" in line for line in lines)


def test_help_and_version(project):
    assert flow(project, "--version").stdout.strip() == "flow 0.1.0"
    help_text = flow(project, "--help").stdout
    for command in ("build", "lint", "graph", "list", "clean", "status", "log"):
        assert command in help_text


def test_no_wait_skips_tasks_another_flow_is_running_and_says_so(project):
    write_flowfile(project, GATED)
    first = start_flow(project, "build", "gated_day(2012-01-01)")
    try:
        # the exact condition: the first flow is inside that task, and stays there until released
        wait_until(lambda: started(project) == ["started-2012-01-01"], "the first build to start the task")
        second = flow(project, "build", "--no-wait", "gated_day(2012-01-01)")
    finally:
        (project / "release").touch()
    out1, err1 = first.communicate(timeout=60)
    assert first.returncode == 0, err1
    assert second.returncode == 1
    assert "another flow is running it" in second.stdout + second.stderr
    assert runs(project).count("gated_day 2012-01-01") == 1


def test_log_prune_keeps_the_newest_runs(project):
    write_flowfile(project, MONTHLY)
    for name in ("day_2012-01-01.txt", "day_2012-01-02.txt", "day_2012-01-03.txt"):
        assert flow(project, "build", name).returncode == 0
    pruned = flow(project, "log", "--prune", "1")
    assert pruned.returncode == 0
    assert pruned.stdout.strip() == "deleted the history of 2 runs, kept the newest 1"
    lines = [line for line in flow(project, "log").stdout.splitlines() if line.startswith("#")]
    assert len(lines) == 1 and "day_2012-01-03.txt" in lines[0]


def test_a_worker_that_dies_fails_its_task_and_the_build_goes_on_with_k(project):
    write_flowfile(project, """
        rule die(date: date):
            output: "out/die_{date}.txt"
            python: acts.die

        rule day(date: date):
            output: "out/day_{date}.txt"
            python: acts.day

        target all: [die(2012-01-01), day(2012-01-02), day(2012-01-03)]
    """)
    result = flow(project, "build", "-k", "all")
    assert result.returncode == 1
    assert "the worker process died (exit code 3)" in result.stdout + result.stderr
    assert sorted(os.listdir(project / "out")) == ["day_2012-01-02.txt", "day_2012-01-03.txt"]  # no temporary


def test_a_timeout_among_quick_tasks_kills_only_that_task(project):
    # quick tasks get a second job queued behind them; the one that hangs must still time out on its
    # own clock, and the job queued behind it must run on a new worker
    write_flowfile(project, """
        rule q(date: date):
            output: "out/q_{date}.txt"
            python: acts.quick_or_hang
            timeout: 2s

        target all: q(d) for d in days(2012-01-01 .. 2012-01-12)
    """)
    result = flow(project, "build", "-k", "all")
    assert result.returncode == 1
    assert "timed out after 2s" in result.stdout
    assert sorted(os.listdir(project / "out")) == [f"q_2012-01-{d:02d}.txt" for d in range(1, 13) if d != 6]
