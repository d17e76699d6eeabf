"""Task logs are capped: the tail of what a task printed is kept, and the log says how much was cut (issue 11, 17)."""

from __future__ import annotations

import os
import textwrap

from flow.runtime import tasklog

from tests.reliability.helpers import flow

ACTIONS = '''
import sys

def chatty(date, output):
    for i in range(200_000):
        print(f"line {i:06d} of a very talkative task")
    sys.stdout.flush()
    raise RuntimeError("it failed at the end")
'''


def test_copy_tail_keeps_the_last_bytes_and_says_how_many_went(tmp_path):
    source = tmp_path / "spool"
    source.write_bytes(b"x" * 100 + b"0123456789")
    log = tmp_path / "task.log"
    with open(source, "rb") as handle:
        tasklog.copy_tail(handle.fileno(), 50, 110, str(log), "error: boom\n", cap=10)
    assert log.read_bytes() == tasklog.cut_notice(50, 10) + b"0123456789error: boom\n"
    assert b"the first 50 were cut" in tasklog.cut_notice(50, 10)
    with open(source, "rb") as handle:
        tasklog.copy_tail(handle.fileno(), 100, 110, str(log), None, cap=10)
    assert log.read_bytes() == b"0123456789"  # under the cap: as printed, no notice


def test_cap_file_cuts_a_log_written_by_the_action_itself(tmp_path):
    log = tmp_path / "spark.log"
    log.write_bytes(b"a" * 1000 + b"the end\n")
    tasklog.cap_file(str(log), cap=8)
    assert log.read_bytes() == tasklog.cut_notice(1000, 8) + b"the end\n"
    tasklog.cap_file(str(log), cap=0)  # 0: no cap
    assert log.read_bytes().endswith(b"the end\n")


def test_a_task_printing_megabytes_gets_a_capped_log_through_the_cli(tmp_path):
    (tmp_path / "acts.py").write_text(ACTIONS)
    (tmp_path / "Flowfile").write_text(textwrap.dedent("""
        rule chatty(date: date):
            output: "out/{date}.txt"
            python: acts.chatty
    """))
    result = flow(tmp_path, "build", "chatty(2012-01-01)", env={"FLOW_MAX_LOG_BYTES": "100000"})
    assert result.returncode == 1
    log = tmp_path / ".flow" / "logs" / "chatty" / "chatty(2012-01-01).log"
    text = log.read_text()
    first, rest = text.split("\n", 1)
    assert first.startswith("[flow: this task printed ") and "were cut and the last 100,000 are kept" in first
    assert len(rest.encode()) < 100_000 + 2_000  # the kept tail and the traceback after it
    assert "line 199999 of a very talkative task" in rest and "line 000000" not in rest
    assert "RuntimeError: it failed at the end" in rest
    assert os.path.getsize(log) < 110_000
