"""Outputs that are PostgreSQL tables: complete when the task's marker row exists in flow_table_updates.

The `load:` and `sql:` actions write a table's rows and its marker row in one transaction and
re-check the marker under an advisory lock (actions/sql.py, tables.py), so there is no temporary
to stage, publish or discard, and nothing for `flow clean` to delete safely.
"""

from __future__ import annotations

from . import DatabaseUnavailable, Target


class TableTarget(Target):
    """A table in the project's database; the marker rows say which tasks are done (one query for many)."""

    noun = "table output"
    transactional = True
    removable = False
    removal_hint = "--table-markers deletes their marker rows, so their tasks run again"
    present_reason = "marker row present"
    missing_reason = "marker row missing"
    unknown_reason = "marker unknown: database unreachable"

    def complete(self, tasks: list) -> set:
        from ..db import DatabaseError
        from ..tables import existing_markers

        database = self.targets.database
        if database is None:
            raise DatabaseUnavailable("table outputs need a database connection")
        try:
            present = existing_markers(database(), [t.id for t in tasks])
        except DatabaseError as exc:
            discard = getattr(database, "discard", None)
            if discard is not None:
                discard()  # it may be broken (a server that went away): the next ask reconnects
            raise DatabaseUnavailable(str(exc)) from None
        return {t for t in tasks if t.id in present}

    def remove_markers(self, tasks: list) -> None:
        """Delete the marker rows of these tasks (one statement), so the next build runs them again; their rows stay."""
        from ..tables import delete_markers

        delete_markers(self.targets.database(), [task.id for task in tasks])

    def lock_key(self, task) -> str:
        # many tasks load one table: they are locked by task, not by location
        return task.id

    @classmethod
    def describe(cls, output: str) -> str:
        return f"table {output}"

    where = describe
