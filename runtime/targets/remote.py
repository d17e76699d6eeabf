"""Outputs on object stores (s3://, gs://, hdfs://): listed in bulk, written locally, published in one upload.

An action writes a local temporary under `.flow/tmp/`, exactly as for a local output; publishing
uploads it whole (a file in one PUT, or a multipart upload that only appears when completed), create-
only where the store supports it so that of two writers exactly one publishes. A directory's parts
go under the final prefix and its `_SUCCESS` object last: without it, a directory is incomplete, and
the parts a failed attempt left are removed before the next one uploads.
"""

from __future__ import annotations

import itertools
import os
import sys

from ..storage import stores as object_stores
from ..storage.settings import StorageSettings
from ..storage.urls import split
from . import Target, TargetUnavailable
from .local import TEMP_MARK, remove_path, sweep

TEMP_DIR = os.path.join(".flow", "tmp")


class RemoteTarget(Target):
    """A file or directory output on an object store; see the module docstring."""

    recheck_after_lock = False  # publishing is create-only: a request per task would buy nothing

    def __init__(self, kind: str, targets):
        super().__init__(kind, targets)
        self.root = targets.root
        self.temp_dir = os.path.join(self.root, TEMP_DIR)
        self._counter = itertools.count()
        self._pid = os.getpid()
        self._temp_dir_made = False
        settings = StorageSettings(targets.settings)  # the Flowfile's storage: block, over the environment
        os.environ.update(settings.environment())  # what actions and their subprocesses read too
        self.stores = object_stores.Stores(settings)

    # ------------------------------------------------------------------------ completeness

    def complete(self, tasks: list) -> set:
        """One paginated listing per prefix the outputs share, never a request per output."""
        by_prefix: dict = {}
        for task in tasks:
            location = split(task.output)
            if self.kind == "file":
                query = object_stores.FILE
            else:
                query = object_stores.ANY_DIR if task.info.node.external else object_stores.DIR
            by_prefix.setdefault(location.parent, {}).setdefault(location.name, []).append((task, query))
        done = set()
        for prefix, by_name in by_prefix.items():
            queries = {name: entries[0][1] for name, entries in by_name.items()}
            try:
                present = self.stores.for_url(prefix).present(prefix, queries)
            except object_stores.StoreUnavailable as exc:
                raise TargetUnavailable(str(exc)) from None
            except Exception as exc:  # botocore's credential and connection errors are not OSErrors
                raise TargetUnavailable(_reason(prefix, exc)) from None
            for name in present:
                done.update(task for task, _ in by_name[name])
        return done

    def lock_key(self, task) -> str:
        return "url:" + task.output

    # ------------------------------------------------------------------------ writing

    def stage(self, output: str) -> str:
        """A local temporary under .flow/tmp, named so a later build can sweep it if this flow dies."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._counter = itertools.count()
        name = split(output).name
        return os.path.join(self.temp_dir, f".{name}{TEMP_MARK}{self._pid}-{next(self._counter)}")

    def prepare(self, output: str) -> None:
        if not self._temp_dir_made:
            os.makedirs(self.temp_dir, exist_ok=True)
            self._temp_dir_made = True

    def publish(self, temp: str, output: str, replace: bool = False) -> None:
        """Upload the finished temporary whole; if another writer published first, keep theirs."""
        _check_key(output)
        store = self.stores.for_url(output)
        if self.kind == "dir":
            if not os.path.isdir(temp):
                raise FileNotFoundError(f"the action did not write its output (expected a directory at {temp})")
            published = store.publish_dir(temp, output, replace=replace)
        else:
            if not os.path.isfile(temp):
                raise FileNotFoundError(f"the action did not write its output (expected a file at {temp})")
            published = store.publish_file(temp, output, replace=replace)
        remove_path(temp)
        if not published:
            print(f"flow: {self.describe(output)} was published by another writer first; kept theirs",
                  file=sys.stderr)

    def discard(self, temp: str) -> None:
        if temp:
            remove_path(temp)

    # ------------------------------------------------------------------------ clean, sweep

    def exists(self, output: str) -> bool:
        location = split(output)
        query = object_stores.ANY_DIR if self.kind == "dir" else object_stores.FILE
        try:
            return bool(self.stores.for_url(output).present(location.parent, {location.name: query}))
        except object_stores.StoreUnavailable as exc:
            raise TargetUnavailable(str(exc)) from None
        except Exception as exc:
            raise TargetUnavailable(_reason(location.parent, exc)) from None

    def remove(self, output: str) -> None:
        try:
            _check_key(output)
            self.stores.for_url(output).remove(output, self.kind)
        except ValueError as exc:
            raise TargetUnavailable(str(exc)) from None
        except Exception as exc:
            raise TargetUnavailable(_reason(output, exc, "cannot delete")) from None

    def sweep(self, outputs) -> int:
        return sweep([self.temp_dir])

    @classmethod
    def describe(cls, output: str) -> str:
        return output


def _check_key(output: str) -> None:
    """Refuse a location whose key a parameter value bent out of its pattern's place ('..', '.', '//').

    Stores do not resolve such segments, but every tool that maps keys onto paths does; and the
    bucket cannot change, since patterns write it out (E210).
    """
    segments = split(output).key.split("/")
    if any(segment in ("..", ".") for segment in segments) or "" in segments[:-1]:
        raise ValueError(f"'{output}' has '.', '..' or empty parts in its key: refusing to write or delete it")


def _reason(place: str, exc: Exception, doing: str = "cannot list") -> str:
    """Why a store refused, in one line, naming the place but never a credential."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{doing} {place}: {text}"
