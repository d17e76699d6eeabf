"""Task logs with a size cap: keep the tail of what a task printed, and say in the log how much was cut.

An action that prints 100 MB would otherwise write 100 MB per task into .flow/logs. The end of the
output is what explains a failure, so the tail is kept; the log's first line says how many bytes
before it were dropped. The cap is FLOW_MAX_LOG_BYTES (default 10 MiB; 0: no cap).
"""

from __future__ import annotations

import os
import re

ENV_VAR = "FLOW_MAX_LOG_BYTES"
DEFAULT_MAX_LOG_BYTES = 10 << 20
CHUNK = 1 << 20


_UNSAFE = re.compile(r"[^A-Za-z0-9_.,()=+-]")


def log_file(log_dir: str, rule: str, task_id: str) -> str:
    """Where a task's log is written: one file per task, the latest attempt's (the page reads it too)."""
    return os.path.join(log_dir, rule, _UNSAFE.sub("_", task_id) + ".log")


class LogPaths:
    """`log_file` of many tasks: one join per rule instead of one per task (asked of every task a build runs)."""

    __slots__ = ("log_dir", "_prefixes")

    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self._prefixes: dict = {}  # rule -> its log directory, with the separator

    def of(self, task) -> str:
        prefix = self._prefixes.get(task.info.name)
        if prefix is None:
            prefix = self._prefixes[task.info.name] = os.path.join(self.log_dir, task.info.name, "")
        return prefix + _UNSAFE.sub("_", task.id) + ".log"


def max_log_bytes() -> int:
    """The cap in bytes from the environment (a value that is not a whole number means the default)."""
    text = os.environ.get(ENV_VAR, "").strip()
    try:
        value = int(text) if text else DEFAULT_MAX_LOG_BYTES
    except ValueError:
        return DEFAULT_MAX_LOG_BYTES
    return max(value, 0)


def cut_notice(dropped: int, kept: int) -> bytes:
    return (f"[flow: this task printed {dropped + kept:,} bytes; the first {dropped:,} were cut and the last "
            f"{kept:,} are kept ({ENV_VAR})]\n").encode()


def copy_tail(source_fd: int, start: int, end: int, log_path: str, error_text: str | None = None,
              cap: int | None = None) -> None:
    """Write bytes [start, end) of source_fd into log_path, keeping only the last `cap` of them, then error_text."""
    cap = max_log_bytes() if cap is None else cap
    dropped = max(0, end - start - cap) if cap else 0
    with open(log_path, "wb") as log:
        if dropped:
            log.write(cut_notice(dropped, end - start - dropped))
        position = start + dropped
        while position < end:
            chunk = os.pread(source_fd, min(CHUNK, end - position), position)
            if not chunk:
                break
            log.write(chunk)
            position += len(chunk)
        if error_text:
            log.write(error_text.encode("utf-8", "replace"))


def cap_file(path: str, cap: int | None = None) -> None:
    """Cut a log file an action wrote itself (Spark) down to its last `cap` bytes, in place, with the notice."""
    cap = max_log_bytes() if cap is None else cap
    try:
        size = os.path.getsize(path)
    except OSError:
        return
    if not cap or size <= cap:
        return
    temp = path + ".cut"
    fd = os.open(path, os.O_RDONLY)
    try:
        copy_tail(fd, 0, size, temp, None, cap)
    finally:
        os.close(fd)
    os.replace(temp, path)
