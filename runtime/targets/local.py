"""Outputs on the local disk: files, and directories that carry `_SUCCESS` once complete."""

from __future__ import annotations

import itertools
import os
from operator import attrgetter

from . import Target

TEMP_MARK = ".flow-tmp-"
SUCCESS = "_SUCCESS"

# Above this many outputs asked about in one directory, one scandir beats a stat per file
# (a stat is ~1.5 us, a scandir ~0.3 us per entry, and the directory may hold far more entries).
SCAN_THRESHOLD = 4096
# ... unless the directory holds far more entries than are asked about (the 30,000 months of a
# no-op beside a million days): its size in bytes over this is an upper estimate of its entries
# (tmpfs counts 20 bytes per entry, ext4 and xfs 12 or more), and a scan is worth it only when
# the outputs asked about are at least a fifth of them.
BYTES_PER_ENTRY = 16
_DIRECTORY = attrgetter("info.output.directory")


class LocalTarget(Target):
    """What local files and directories share: temporaries beside the output, renamed into place.

    Relative outputs are relative to the project's root (the Flowfile's directory), which is also
    the directory flow runs its actions in.
    """

    def __init__(self, kind: str, targets):
        super().__init__(kind, targets)
        self.root = targets.root
        # Relative outputs are relative to the root; while the process runs there (the usual case,
        # and always in workers) they are used as they are, which saves a join per output.
        self._prefix = "" if os.getcwd() == self.root else os.path.join(self.root, "")
        self._counter = itertools.count()
        self._made_dirs: set = set()  # directories known to exist: asked of the disk once each
        self._lock_prefix = os.path.join(self.root, "")  # what os.path.join(root, output) starts with
        self._pid = os.getpid()

    def at(self, path: str) -> str:
        """The path as this process must use it: relative outputs are relative to the project's root."""
        prefix = self._prefix
        return path if not prefix or path.startswith("/") else prefix + path

    def complete(self, tasks: list) -> set:
        if len(tasks) == 1:  # the executor's re-check of one task under its lock
            task = tasks[0]
            return {task} if self._present(task) else set()
        done = set()
        if not tasks:
            return done
        by_dir: dict = {}
        directories = set(map(_DIRECTORY, tasks))  # each pattern's, when it fixes one: no pass over outputs
        if len(directories) == 1 and None not in directories:  # a rule's days, say
            by_dir[directories.pop()] = tasks
        else:
            for task in tasks:
                head = task.output.rpartition("/")[0]
                group = by_dir.get(head)
                if group is None:
                    by_dir[head] = [task]
                else:
                    group.append(task)
        for directory, group in by_dir.items():
            if len(group) > SCAN_THRESHOLD:
                path = self.at(directory) if directory else self.root
                try:
                    entries = os.stat(path).st_size // BYTES_PER_ENTRY
                    if len(group) * 5 < entries:  # a few outputs among many entries: a stat each
                        done.update(self._present_each(group))
                        continue
                    with os.scandir(path) as scan:
                        present = {entry.name for entry in scan}
                except (FileNotFoundError, NotADirectoryError):
                    continue  # a cold build: nothing more to ask about these
                cut = len(directory) + 1 if directory else 0
                for task in group:
                    if task.output[cut:] in present and self._confirm(task):
                        done.add(task)
            else:
                done.update(self._present_each(group))
        return done

    def _present(self, task) -> bool:
        """Whether the task's output is complete, asked alone."""
        raise NotImplementedError

    def _present_each(self, tasks: list) -> list:
        """The tasks whose outputs are complete, each asked alone."""
        present = self._present
        return [task for task in tasks if present(task)]

    def _confirm(self, task) -> bool:
        """Whether an output whose name a directory listing showed is complete."""
        raise NotImplementedError

    def lock_key(self, task) -> str:
        # Locked by absolute location, so two Flowfiles writing one path never write it at once.
        output = task.output
        return "path:" + (output if output.startswith("/") else self._lock_prefix + output)

    def stage(self, output: str) -> str:
        """A temporary sibling of `output`: same directory, so the final rename is atomic."""
        if self._pid != os.getpid():  # forked: names must differ from the parent's
            self._pid = os.getpid()
            self._counter = itertools.count()
        head, _, name = output.rpartition("/")
        temp = f".{name}{TEMP_MARK}{self._pid}-{next(self._counter)}"
        return f"{head}/{temp}" if head else temp

    def prepare(self, output: str) -> None:
        """Make sure the output's directory exists (asked of the disk once per directory per process)."""
        head = output.rpartition("/")[0]
        if head and head not in self._made_dirs:
            try:
                os.makedirs(self.at(head), exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                from ..actions.base import ActionFailed

                raise ActionFailed(f"cannot make the directory '{head}' for '{output}': a file is in the way") from None
            self._made_dirs.add(head)

    def discard(self, temp: str) -> None:
        if temp:
            remove_path(self.at(temp))

    def exists(self, output: str) -> bool:
        return os.path.lexists(self.at(output))

    def remove(self, output: str) -> None:
        remove_path(self.at(output))

    def sweep(self, outputs) -> int:
        # up to the last "/" first: a cold build's 100,000 outputs live in a few directories
        heads = {output[:output.rfind("/") + 1] for output in outputs}
        return sweep({self.at(os.path.dirname(head)) if head else self.root for head in heads})


class LocalFileTarget(LocalTarget):
    """A file on the local disk: complete when it exists; written to a temporary, renamed into place."""

    def _present(self, task) -> bool:
        output = task.output  # os.path.exists and at() inlined: the executor asks this of every task it locks
        prefix = self._prefix
        try:
            os.stat(output if not prefix or output.startswith("/") else prefix + output)
        except (OSError, ValueError):
            return False
        return True

    def _present_each(self, tasks: list) -> list:
        # os.path.exists and at() inlined: a no-op of a 30,000-month backfill asks this of each month.
        # os.access, not os.stat: the same question to the disk without making a stat result
        # (1.4 against 2.7 us a file on tmpfs).
        prefix = self._prefix
        access, exists = os.access, os.F_OK
        present = []
        for task in tasks:
            output = task.output
            try:
                if access(output if not prefix or output.startswith("/") else prefix + output, exists):
                    present.append(task)
            except ValueError:  # a NUL in the name: no such file
                continue
        return present

    def _confirm(self, task) -> bool:
        return True

    def publish(self, temp: str, output: str, replace: bool = False) -> None:
        try:
            os.replace(self.at(temp), self.at(output))
        except FileNotFoundError:
            raise FileNotFoundError(f"the action did not write its output (expected a file at {temp})") from None


class LocalDirTarget(LocalTarget):
    """A directory on the local disk: complete once `_SUCCESS` is in it (flow writes it last)."""

    def _present(self, task) -> bool:
        # An external directory is complete when it exists; one flow writes also carries _SUCCESS,
        # which is written last, so a directory without it is an interrupted write.
        path = self.at(task.output)
        if task.info.node.external:
            return os.path.isdir(path)
        return os.path.isfile(os.path.join(path, SUCCESS))

    _confirm = _present

    def publish(self, temp: str, output: str, replace: bool = False) -> None:
        at = self.at
        if not os.path.isdir(at(temp)):
            raise FileNotFoundError(f"the action did not write its output (expected a directory at {temp})")
        success = os.path.join(at(temp), SUCCESS)
        if not os.path.exists(success):
            open(success, "w").close()
        if os.path.lexists(at(output)):
            # a forced rebuild: move the old one aside first, then delete it once the new one is in place
            old = at(self.stage(output))
            os.rename(at(output), old)
            os.rename(at(temp), at(output))
            remove_path(old)
        else:
            os.rename(at(temp), at(output))

    @classmethod
    def describe(cls, output: str) -> str:
        return output + "/"


def remove_path(path: str) -> None:
    """Delete a file or directory tree if it exists."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            import shutil  # here, not at the top: every command imports this module, few remove a tree

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
    """Whether a process with this pid runs (ours always does); one that ended and awaits reaping does not.

    A worker that outlived its killed main process ends as a zombie until init reaps it, which
    in some containers is never: it writes nothing more, so its temporaries are swept.
    """
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return True  # no /proc here: it exists, so it may still write
