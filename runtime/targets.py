"""Outputs on disk and in databases: is it complete (asked in bulk), temporary paths, atomic commit, removal."""

from __future__ import annotations

import itertools
import os
import shutil
from collections import defaultdict

TEMP_MARK = ".flow-tmp-"
SUCCESS = "_SUCCESS"

# Above this many outputs asked about in one directory, one scandir beats a stat per file
# (a stat is ~1.5 us, a scandir ~0.3 us per entry, and the directory may hold far more entries).
SCAN_THRESHOLD = 4096

_counter = itertools.count()


class DatabaseUnavailable(Exception):
    """Table outputs were asked about but no database could be reached; the message says why."""


def complete(tasks, markers=None) -> set:
    """The subset of `tasks` whose outputs exist, asked in bulk: one scandir per busy directory,
    one query per database. `markers(update_ids) -> set` answers for table outputs."""
    done = set()
    files_by_dir: dict = defaultdict(list)
    tables = []
    for task in tasks:
        kind = task.info.output.kind
        if kind == "table":
            tables.append(task)
            continue
        head, _, name = task.output.rpartition("/")
        files_by_dir[head].append((task, name, kind))
    for directory, entries in files_by_dir.items():
        if len(entries) > SCAN_THRESHOLD:
            try:
                with os.scandir(directory or ".") as scan:
                    present = {entry.name for entry in scan}
            except (FileNotFoundError, NotADirectoryError):
                continue
            for task, name, kind in entries:
                if name in present and (kind == "file" or _dir_complete(task)):
                    done.add(task)
        else:
            for task, _, kind in entries:
                if kind == "file":
                    if os.path.exists(task.output):
                        done.add(task)
                elif _dir_complete(task):
                    done.add(task)
    if tables:
        if markers is None:
            raise DatabaseUnavailable("table outputs need a database connection")
        present = markers([t.id for t in tables])
        done.update(t for t in tables if t.id in present)
    return done


def _dir_complete(task) -> bool:
    # An external directory is complete when it exists; one flow writes also carries _SUCCESS,
    # which is written last, so a directory without it is an interrupted write.
    if task.info.node.external:
        return os.path.isdir(task.output)
    return os.path.isfile(os.path.join(task.output, SUCCESS))


def temp_path(output: str) -> str:
    """A temporary sibling of `output`: same directory, so the final rename is atomic."""
    head, _, name = output.rpartition("/")
    temp = f".{name}{TEMP_MARK}{os.getpid()}-{next(_counter)}"
    return f"{head}/{temp}" if head else temp


_made_dirs: set = set()


def prepare(output: str) -> None:
    """Make sure the output's directory exists (asked of the disk once per directory per process)."""
    head = output.rpartition("/")[0]
    if head and head not in _made_dirs:
        try:
            os.makedirs(head, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            from .actions.base import ActionFailed

            raise ActionFailed(f"cannot make the directory '{head}' for '{output}': a file is in the way") from None
        _made_dirs.add(head)


def commit(temp: str, output: str, kind: str) -> None:
    """Move a finished temporary output into place (atomic for files; for directories, replace)."""
    if kind == "file":
        try:
            os.replace(temp, output)
        except FileNotFoundError:
            raise FileNotFoundError(f"the action did not write its output (expected a file at {temp})") from None
        return
    if not os.path.isdir(temp):
        raise FileNotFoundError(f"the action did not write its output (expected a directory at {temp})")
    success = os.path.join(temp, SUCCESS)
    if not os.path.exists(success):
        open(success, "w").close()
    if os.path.lexists(output):
        # a forced rebuild: move the old one aside first, then delete it once the new one is in place
        old = temp_path(output)
        os.rename(output, old)
        os.rename(temp, output)
        remove_path(old)
    else:
        os.rename(temp, output)


def remove_path(path: str) -> None:
    """Delete a file or directory tree if it exists."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except (FileNotFoundError, NotADirectoryError):  # gone, or its directory is a file: nothing to remove
        pass


def sweep(directories) -> int:
    """Remove temporaries left by flow processes that no longer run (a SIGKILL, a power cut)."""
    removed = 0
    for directory in directories:
        try:
            with os.scandir(directory or ".") as scan:
                names = [e.name for e in scan if TEMP_MARK in e.name]
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            pid_text = name.rsplit(TEMP_MARK, 1)[1].split("-", 1)[0]
            if pid_text.isdigit() and not process_alive(int(pid_text)):
                remove_path(os.path.join(directory, name))
                removed += 1
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (ours always does)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe(task) -> str:
    """Where a task's output lives, as a user would look for it."""
    kind = task.info.output.kind
    if kind == "table":
        return f"table {task.output}"
    if kind == "dir":
        return task.output + "/"
    return task.output
