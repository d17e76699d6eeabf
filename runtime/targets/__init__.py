"""Where task outputs live: one Target class per kind of place, and the registry that picks one per task.

A Target answers for every output of one kind of place (local files, local directories, Postgres
tables; object stores next). The build loop never tests an output's kind: it asks the project's
`Targets` for the task's Target and calls its methods. The contract, in the order a build uses it:

1. `complete(tasks) -> set`: which of many tasks' outputs exist, asked in bulk (main process).
2. `lock_key(task) -> str`: the key of the per-task lock two flow processes share.
3. `stage(output) -> temp | None`: a fresh temporary location for one attempt (main process);
   None when the action writes the output itself inside a transaction (`transactional`).
4. `prepare(output)`, then the action writes `temp`, then `publish(temp, output, replace)` moves it into
   place atomically, or `discard(temp)` after a failure (worker process or Spark thread); `replace` on a forced rebuild.
5. `exists(output)`, `remove(output)`: for `flow clean`; `sweep(outputs)`: temporaries of dead flows.
6. `describe(output)`, `where(output)`: how messages name the output.

Methods taking `output` work on location strings, so that a worker needs no Task object; the
worker picks its Target itself with `Targets.pick(kind, output)` (targets made after the workers
were forked must be made again there, so nothing is sent but the kind and the location).

A new place for outputs is one class here plus its tests: give it the constructor
`(kind, targets)` and add its URL scheme to `SCHEMES` (the module is imported on first use).
"""

from __future__ import annotations

import importlib
import re
from itertools import compress
from operator import attrgetter

# URL scheme -> "module:Class" of the Target for outputs written as scheme://...; imported on first use.
SCHEMES: dict = {scheme: "flow.runtime.targets.remote:RemoteTarget" for scheme in ("s3", "gs", "gcs", "hdfs")}

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
# a literal start of an output pattern that may still grow into "scheme://" once a value is appended
_SCHEME_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*(:/?)?\Z")


class TargetUnavailable(Exception):
    """The place a target's outputs live cannot be reached (a database down); the message says why."""


class DatabaseUnavailable(TargetUnavailable):
    """Table outputs were asked about but no database could be reached; the message says why."""


class Target:
    """How flow checks, writes and removes the outputs of one kind of place; see the module docstring."""

    kind = ""  # the Flowfile's output kind it serves: "file", "dir" or "table"
    noun = "output"  # how messages name its outputs: "cannot check table outputs"
    transactional = False  # the action writes the output and its completion in one transaction
    removable = True  # `flow clean` may delete its outputs
    # Whether the executor asks again, once it holds the task's lock, if another flow finished the
    # task meanwhile. Cheap for local outputs; a target whose publish is create-only (object stores)
    # skips it: a request per task on every cold build, where publish already keeps the first writer's.
    recheck_after_lock = True
    present_reason = "output exists"  # what `flow --dry-run` says of a complete one
    missing_reason = "output missing"  # ... of one that would run
    unknown_reason = "output unknown: storage unreachable"  # ... when complete() raised TargetUnavailable

    def __init__(self, kind: str, targets: "Targets"):
        self.kind = kind
        self.targets = targets

    def complete(self, tasks: list) -> set:
        """The subset of `tasks` whose outputs exist, asked in as few round trips as possible."""
        raise NotImplementedError

    def lock_key(self, task) -> str:
        """The key two flow processes lock the task by: equal keys never run at once."""
        return "path:" + task.output

    def stage(self, output: str) -> "str | None":
        """A new temporary location for one attempt at `output`; None if the action writes in place."""
        return None

    def prepare(self, output: str) -> None:
        """Get ready for an action to write `output`'s temporary (a parent directory, say)."""

    def publish(self, temp: str, output: str, replace: bool = False) -> None:
        """Move a finished temporary into place, atomically; raise FileNotFoundError if nothing was written."""

    def discard(self, temp: str) -> None:
        """Remove the temporary of a failed or stopped attempt, if there is one."""

    def exists(self, output: str) -> bool:
        """Whether anything is at the location, even a half-written output (what `flow clean` would delete)."""
        return False

    def remove(self, output: str) -> None:
        """Delete the output; nothing happens if it does not exist."""

    def sweep(self, outputs) -> int:
        """Remove temporaries that flow processes no longer running left beside these outputs; return the count."""
        return 0

    removal_hint = ""  # for a target that is not removable: what the user can do instead

    @classmethod
    def describe(cls, output: str) -> str:
        """Where the output lives, as a user would look for it."""
        return output

    @classmethod
    def where(cls, output: str) -> str:
        """The output's location in a one-line listing (the dry run's)."""
        return output


def target_class(kind: str, output: str) -> type:
    """The Target class for an output of this kind at this location (no instance, nothing connected)."""
    if kind == "table":
        return TableTarget
    if "://" in output:
        scheme = scheme_of(output)
        if scheme:
            return _scheme_class(scheme)
    return LocalDirTarget if kind == "dir" else LocalFileTarget


def scheme_of(output: str) -> str:
    """The URL scheme of an output location ("s3" for s3://bucket/key), or "" for a local path."""
    match = _SCHEME.match(output)
    return match.group(1).lower() if match else ""


def _scheme_class(scheme: str) -> type:
    spec = SCHEMES.get(scheme)
    if spec is None:
        raise TargetUnavailable(f"no storage for '{scheme}://' outputs"
                                + (f" (known: {', '.join(s + '://' for s in sorted(SCHEMES))})" if SCHEMES else ""))
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def describe(task) -> str:
    """Where a task's output lives, as a user would look for it ("table x", "data/d/", "data/f.tsv")."""
    output = task.output
    return target_class(task.info.output.kind, output).describe(output)


def where(task) -> str:
    """A task's output location in one-line listings (dry run): like describe, without a directory's slash."""
    output = task.output
    return target_class(task.info.output.kind, output).where(output)


class Targets:
    """The Targets of one project: made on first use, one per kind and place, picked per task.

    `root` is the directory relative output paths start from (the Flowfile's); `database()`
    returns an open database connection or raises TargetUnavailable, and is called only when a
    table output is asked about. `settings` holds what the Flowfile says about storage.
    """

    def __init__(self, root: str, database=None, settings=None):
        self.root = root
        self.database = database
        self.settings = settings or {}
        self._made: dict = {}  # kind, or (kind, URL scheme) -> Target
        self._by_rule: dict = {}  # rule name -> Target, for rules whose pattern fixes the place

    def pick(self, kind: str, output: str) -> Target:
        """The Target for an output of this kind at this location (workers call it once per task: keep it cheap)."""
        key = kind
        if "://" in output and kind != "table":
            key = (kind, scheme_of(output))
        target = self._made.get(key)
        if target is None:
            target = self._made[key] = target_class(kind, output)(kind, self)
        return target

    def of(self, task) -> Target:
        """The Target for a task's output (one dict lookup for rules whose pattern fixes the place)."""
        info = task.info
        target = self._by_rule.get(info.name)
        if target is None:
            target = self.pick(info.output.kind, task.output)
            if _place_is_fixed(info.output):
                self._by_rule[info.name] = target
        return target

    def of_rule(self, rule_name: str) -> "Target | None":
        """The Target of every task of the rule, once one was asked for and the rule's pattern fixes the place."""
        return self._by_rule.get(rule_name)

    def complete(self, tasks) -> set:
        """The subset of `tasks` whose outputs exist: one bulk question per Target."""
        groups: dict = {}
        by_rule = self._by_rule
        of = self.of
        last = group = None
        for task in tasks:  # one dict lookup per task: the tasks of a level mostly share one Target
            target = by_rule.get(task.info.name) or of(task)
            if target is not last:
                last = target
                group = groups.get(target)
                if group is None:
                    group = groups[target] = []
            group.append(task)
        done: set = set()
        for target, group in groups.items():
            done |= target.complete(group)
        return done

    def group(self, tasks) -> dict:
        """Target -> its tasks, in order.

        When each rule's pattern fixes its place (the usual case), the tasks are sorted by rule in C,
        one pass per Target: a level of a million-task graph is mostly one rule's 938,000 days.
        """
        tasks = list(tasks)
        by_rule = self._by_rule
        target_of: dict = {}  # rule name -> its Target, in order of first appearance
        for name in dict.fromkeys(map(_RULE_NAME, tasks)):
            target = by_rule.get(name)
            if target is None:  # its first task: the rule's Target is kept when its pattern fixes the place
                self.of(next(task for task in tasks if task.info.name == name))
                target = by_rule.get(name)
                if target is None:  # the place depends on the values: task by task
                    groups: dict = {}
                    for task in tasks:
                        groups.setdefault(self.of(task), []).append(task)
                    return groups
            target_of[name] = target
        targets = list(dict.fromkeys(target_of.values()))
        if len(targets) == 1:
            return {targets[0]: tasks}
        names = list(map(_RULE_NAME, tasks))
        return {target: list(compress(tasks, map({n for n, t in target_of.items() if t is target}.__contains__,
                                                  names)))
                for target in targets}

    def sweep(self, tasks) -> int:
        """Remove temporaries of dead flow processes beside the outputs of these tasks."""
        return sum(target.sweep([t.output for t in group]) for target, group in self.group(tasks).items())


_RULE_NAME = attrgetter("info.name")


def _place_is_fixed(pattern) -> bool:
    """Whether every output of the pattern lives in the same kind of place (its literal start decides)."""
    if pattern.kind == "table":
        return True
    parts = pattern.parts
    if not parts or parts[0].__class__ is int:
        return False  # starts with a value: "{root}/x" may be s3://... for one task and local for another
    head = parts[0]
    if len(parts) == 1 or _SCHEME.match(head):
        return True
    return not _SCHEME_PREFIX.match(head)


# At the end: these modules import Target from this package.
from .local import LocalDirTarget, LocalFileTarget  # noqa: E402
from .table import TableTarget  # noqa: E402
