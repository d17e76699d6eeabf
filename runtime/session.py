"""A loaded Flowfile and where its state lives: what build, clean and status share."""

from __future__ import annotations

import os
import sys

from . import targets

# The exit codes of every flow command (documented in the README).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_MISSING_EXTERNAL = 3
EXIT_INTERRUPTED = 130


class Session:
    """A loaded Flowfile, its task factory, and where its state lives (.flow/ next to the Flowfile)."""

    def __init__(self, flowfile_path: str, today: str | None = None):
        from flow.compiler.graph import TaskFactory
        from flow.compiler.loader import load

        from .clock import build_clock

        self.checked = load(flowfile_path)
        self.clock = build_clock(self.checked.timezone, today)
        self.directory = os.path.dirname(os.path.abspath(flowfile_path))
        # Outputs and module names are relative to the Flowfile, as make -C would have it.
        os.chdir(self.directory)
        if self.directory not in sys.path:
            sys.path.insert(0, self.directory)
        self.flow_dir = os.path.join(self.directory, ".flow")
        self.factory = TaskFactory(self.checked, self.clock)
        self._markers = None
        self.database_error = None
        self._embedded = None  # the project's embedded PostgreSQL, once a task or check needed it

    def database_url(self) -> str:
        """The project's database; with none configured, the embedded server, started on first use.

        Raises DatabaseUnavailable when it cannot be reached or started.
        """
        from .db import DatabaseError, configured_dsn

        dsn = configured_dsn(self.checked.database)
        if dsn is not None:
            return dsn
        if self._embedded is None:
            from .embedded_db import EmbeddedServer

            self._embedded = EmbeddedServer(self.flow_dir)
        try:
            return self._embedded.acquire()
        except DatabaseError as exc:
            raise targets.DatabaseUnavailable(str(exc)) from None

    def roots(self, names: list) -> list:
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

    def markers(self, update_ids: list) -> set:
        """Marker rows present for table outputs (one query); raises DatabaseUnavailable."""
        from .db import DatabaseError, connections
        from .tables import existing_markers

        dsn = self.database_url()
        try:
            return existing_markers(connections.get(dsn), update_ids)
        except DatabaseError as exc:
            connections.discard(dsn)  # it may be broken (a server that went away): the next ask reconnects
            raise targets.DatabaseUnavailable(str(exc)) from None

    def complete(self, tasks) -> set:
        return targets.complete(tasks, self.markers)

    def close(self) -> None:
        """Close the database connection the marker checks opened, if any (workers close their own),
        then stop the embedded server if this was the last flow process using it."""
        if "flow.runtime.db" in sys.modules:
            sys.modules["flow.runtime.db"].close_all()
        if self._embedded is not None:
            self._embedded.release()


def render_error(exc) -> str:
    from flow.compiler.errors import SourceCache, render_all

    return render_all(exc.diagnostics, SourceCache())


def lenient_complete(session: Session):
    """For dry runs: a database that cannot be reached makes its tables look missing, and says so."""

    def complete(tasks):
        if session.database_error is not None:  # asked once, failed: do not wait for it again per level
            return targets.complete([t for t in tasks if t.info.output.kind != "table"], None)
        try:
            return session.complete(tasks)
        except targets.DatabaseUnavailable as exc:
            if session.database_error is None:
                session.database_error = str(exc)
            return targets.complete([t for t in tasks if t.info.output.kind != "table"], None)

    return complete
