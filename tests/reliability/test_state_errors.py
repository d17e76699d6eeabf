"""State flow cannot write or read is a warning or a one-line error, never a traceback, never a failed success.

Covers an output whose directory is a file, a `.flow` that cannot hold state, a disk that fills up
while the history is closed (simulated with RLIMIT_FSIZE, which makes the history's writes fail the
way a full disk does while the small outputs still fit), and `flow log` / `flow status` on a
history file that is not a database.
"""

from __future__ import annotations

import os
import resource
import textwrap

import pytest

from tests.reliability.helpers import FLOW, environment, flow

ACTIONS = '''
def day(date, output):
    with open(output, "w") as handle:
        handle.write(f"{date}\\n")
'''

FLOWFILE = """
rule day(date: date):
    output: "out/days/{date}.txt"
    python: acts.day

target year: day(d) for d in days(2000-01-01 .. 2002-01-01)
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "acts.py").write_text(ACTIONS)
    (tmp_path / "Flowfile").write_text(textwrap.dedent(FLOWFILE))
    return tmp_path


def no_traceback(result):
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr


def error_lines(result) -> list:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_an_output_whose_directory_is_a_file_fails_that_task_in_words(project):
    (project / "out").mkdir()
    (project / "out" / "days").write_text("in the way")
    result = flow(project, "build", "day(2000-01-01)")
    no_traceback(result)
    assert result.returncode == 1
    assert "cannot make the directory 'out/days' for 'out/days/2000-01-01.txt': a file is in the way" in \
        result.stdout + result.stderr
    assert (project / "out" / "days").read_text() == "in the way"


@pytest.mark.parametrize("breakage", ["flow dir is a file", "history is a directory"])
def test_state_that_cannot_be_written_is_one_line_before_anything_runs(project, breakage):
    if breakage == "flow dir is a file":
        (project / ".flow").write_text("not a directory")
    else:
        (project / ".flow" / "history.sqlite").mkdir(parents=True)
    result = flow(project, "build", "day(2000-01-01)")
    no_traceback(result)
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: cannot write .flow"), result.stderr
    assert not (project / "out" / "days" / "2000-01-01.txt").exists()


def test_a_disk_that_fills_while_closing_the_history_keeps_the_build_successful(project):
    import subprocess

    assert flow(project, "build", "day(1999-01-01)").returncode == 0  # a history exists, its WAL folded in
    biggest = max(os.path.getsize(project / ".flow" / name) for name in os.listdir(project / ".flow")
                  if name.startswith("history.sqlite"))
    room = biggest + 16_384  # room for the run's start; not for 732 attempts (the outputs, 11 bytes, fit)

    def small_files_only():
        resource.setrlimit(resource.RLIMIT_FSIZE, (room, room))

    result = subprocess.run([*FLOW, "build", "-q", "year"], cwd=project, env=environment(), capture_output=True,
                            text=True, timeout=300, preexec_fn=small_files_only)
    no_traceback(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "this build was successful" in result.stdout
    warnings = [line for line in error_lines(result) if line.startswith("warning: cannot write .flow/history")]
    assert warnings and "task attempts" in warnings[0], result.stderr
    outputs = sorted(os.listdir(project / "out" / "days"))
    assert len(outputs) == 733 and all(name.endswith(".txt") and not name.startswith(".") for name in outputs)
    log = flow(project, "log")
    no_traceback(log)
    assert log.returncode == 0
    newest = log.stdout.splitlines()[0]
    # the run's end was recorded after all; only if even that failed may it show as died, and flow said so
    assert "success" in newest or ("died" in newest and "show this run as died" in result.stderr), newest


def test_log_and_status_on_a_history_that_is_not_a_database(project):
    (project / ".flow").mkdir()
    (project / ".flow" / "history.sqlite").write_bytes(b"this is not an SQLite file, it is rubbish\n" * 100)
    log = flow(project, "log")
    no_traceback(log)
    assert log.returncode == 1
    lines = error_lines(log)
    assert len(lines) == 1 and lines[0].startswith("error: cannot read the run history .flow/history.sqlite: ")
    status = flow(project, "status", "day(2000-01-01)")
    no_traceback(status)
    assert status.returncode == 0
    assert "day(2000-01-01)  [missing]" in status.stdout
    assert "warning: cannot read the run history .flow/history.sqlite: " in status.stderr


def test_log_refuses_a_negative_count(project):
    result = flow(project, "log", "-n", "-5")
    no_traceback(result)
    assert result.returncode == 2
    assert "-5 is not in the range x>=1" in result.stderr
