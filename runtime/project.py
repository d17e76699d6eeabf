"""A project: one Flowfile, its directory, its `.flow/` state, and the lifetime of what a command opens.

Nothing here changes the process: no `chdir`, no `sys.path` entry. Outputs and module names are
relative to the Flowfile's directory (`root`), as `make -C` would have them: Targets resolve
relative outputs against it, and the runners run actions there (workers change into it; the
Spark lane, whose actions share the main process, does when its first task starts).
"""

from __future__ import annotations

import os
import time


class Project:
    """One loaded Flowfile and everything a command needs around it; `close()` releases what was opened.

    Opened on first use and closed by `close()`: the database connection table outputs are
    checked on (`database`), the state store (`state()`). Paths: `root` (the Flowfile's
    directory), `flow_dir` (`.flow/`), `log_dir`, `tmp_dir`.
    """

    def __init__(self, flowfile_path: str, today: str | None = None):
        from flow.compiler.graph import TaskFactory
        from flow.compiler.loader import load

        from .clock import build_clock
        from .settings import load_settings
        from .targets import Targets

        # When this command began to look at outputs: a coordinator keeps the claims released since then.
        self.opened = time.monotonic()
        self.root = os.path.dirname(os.path.abspath(flowfile_path))
        self.settings = load_settings(self.root)  # settings files and FLOW_* variables (SettingsError: exit 2)
        self.checked = _with_settings_database(load(flowfile_path), self.settings)
        self.clock = build_clock(self.checked.timezone, today)
        self.flow_dir = os.path.join(self.root, ".flow")
        self.log_dir = os.path.join(self.flow_dir, "logs")
        self.tmp_dir = os.path.join(self.flow_dir, "tmp")
        self.factory = TaskFactory(self.checked, self.clock)
        self.database = Database(self.checked.database, self.flow_dir)
        self.targets = Targets(self.root, database=self.database, settings=self.checked.storage)
        self.unreachable: dict = {}  # Target -> why its outputs could not be checked (dry run, status)
        self._state = None

    def roots(self, names: list) -> list:
        """The tasks the names stand for (the Flowfile's default when there are none), each once."""
        from flow.compiler.errors import Diagnostic, UsageError
        from flow.compiler.resolve import resolve

        if not names:
            if self.checked.default is None:
                raise UsageError(Diagnostic("error", "E901", "no target given and the Flowfile has no default",
                                            None, "name a target, or add a line like: default: all_months"))
            names = [self.checked.default]
        roots = []
        for name in names:
            roots.extend(resolve(self.factory, name))
        return list(dict.fromkeys(roots))

    def complete(self, tasks) -> set:
        """The tasks whose outputs exist; raises TargetUnavailable when a place cannot be reached."""
        return self.targets.complete(tasks)

    def lenient_complete(self, tasks) -> set:
        """Like complete, but a place that cannot be reached (a database down) makes its outputs look
        missing, and `unreachable` says why (dry runs and status go on without it)."""
        from .targets import TargetUnavailable

        done: set = set()
        for target, group in self.targets.group(tasks).items():
            if target in self.unreachable:  # asked once, failed: do not wait for it again per level
                continue
            try:
                done |= target.complete(group)
            except TargetUnavailable as exc:
                self.unreachable[target] = str(exc)
        return done

    def notes(self) -> list:
        """One line per kind of output that could not be checked, for commands that went on without it."""
        return [f"note: cannot check {target.noun}s: {error}" for target, error in self.unreachable.items()]

    def state(self, reading: bool = False):
        """The project's state store (history, task locks), opened on first use (`reading`: see open_state)."""
        if self._state is None:
            from .state import open_state

            self._state = open_state(self.flow_dir, self.checked.coordinator, planned=self.opened, reading=reading)
        return self._state

    def close(self) -> None:
        """Close the state store and the database connection, if they were opened (workers close their own)."""
        try:
            if self._state is not None:
                self._state.close()
                self._state = None
        finally:
            self.database.close()


def _with_settings_database(checked, settings):
    """The Flowfile, with the settings files' database when it names none (workers read it from there).

    FLOW_DATABASE_URL still comes first (db.configured_dsn), then the Flowfile's `database:`.
    """
    if checked.database is not None or os.environ.get("FLOW_DATABASE_URL"):
        return checked
    url = settings.database_url()
    if url is None:
        return checked
    from dataclasses import replace

    return replace(checked, database=url)


class Database:
    """The project's PostgreSQL database as the main process uses it: one connection, opened on first use.

    `url()` is the DSN: the configured one (FLOW_DATABASE_URL, the Flowfile's `database:`, libpq's
    PG* variables), else the project's embedded server (embedded_db.py), started on first use.
    Calling the Database returns the open connection (DatabaseError if it fails, DatabaseUnavailable
    if the server cannot be started); `discard()` forgets a connection that failed, so the next
    call reconnects; `close()` closes it and releases the embedded server (which stops when no flow
    process uses it any more). The Project calls `close()` when the command ends.
    """

    def __init__(self, flowfile_database, flow_dir: str):
        self.flowfile_database = flowfile_database
        self.flow_dir = flow_dir
        self._connections = None
        self._embedded = None  # the project's embedded PostgreSQL, once a task or check needed it
        self._url = None

    def url(self) -> str:
        """The project's database; with none configured, the embedded server, started on first use."""
        if self._url is not None:
            return self._url
        from .db import DatabaseError, configured_dsn
        from .targets import DatabaseUnavailable

        dsn = configured_dsn(self.flowfile_database)
        if dsn is not None:
            return dsn
        if self._embedded is None:
            from .embedded_db import EmbeddedServer

            self._embedded = EmbeddedServer(self.flow_dir)
        try:
            self._url = self._embedded.acquire()
        except DatabaseError as exc:
            raise DatabaseUnavailable(str(exc)) from None
        return self._url

    def __call__(self):
        if self._connections is None:
            from .db import ConnectionCache

            self._connections = ConnectionCache()
        return self._connections.get(self.url())

    def discard(self) -> None:
        if self._connections is not None:
            self._connections.discard(self.url())

    def close(self) -> None:
        try:
            if self._connections is not None:
                self._connections.close_all()
                self._connections = None
        finally:
            if self._embedded is not None:
                self._embedded.release()
                self._embedded = None
                self._url = None
