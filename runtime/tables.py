"""PostgreSQL table outputs: qualified names, declared columns, and the marker rows that say a table task is done.

A table task is complete when `flow_table_updates` holds a row with its update id. The marker
table is unqualified, so it lives in the first schema of the connection's search_path (normally
`public`). Every identifier goes through psycopg2.sql.Identifier; column types, which are SQL
syntax, are checked against a small grammar before they reach a statement.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from dataclasses import dataclass

from flow.runtime.actions.base import ActionFailed

MARKER_TABLE = "flow_table_updates"


# ---------------------------------------------------------------------------- names


@dataclass(frozen=True)
class TableName:
    """A table name split into an optional schema and the table; str() gives 'schema.table'."""

    schema: str | None
    table: str

    def identifier(self):
        """The psycopg2 Identifier, quoted part by part."""
        from psycopg2 import sql

        return sql.Identifier(self.schema, self.table) if self.schema else sql.Identifier(self.table)

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}" if self.schema else self.table


def parse_table_name(name: str) -> TableName:
    """'top10' or 'schema.table' as a TableName; names are used exactly as written (case included)."""
    parts = name.split(".")
    if len(parts) > 2 or not all(parts):
        raise ActionFailed(f"'{name}' is not a table name of the form 'table' or 'schema.table'")
    return TableName(parts[0], parts[1]) if len(parts) == 2 else TableName(None, parts[0])


# ---------------------------------------------------------------------------- column types

# Spellings of the same type, mapped to what format_type() prints.
_ALIASES = {
    "int": "integer", "int4": "integer", "integer": "integer", "serial": "integer",
    "smallint": "smallint", "int2": "smallint",
    "bigint": "bigint", "int8": "bigint", "bigserial": "bigint",
    "real": "real", "float4": "real",
    "double precision": "double precision", "float8": "double precision", "float": "double precision",
    "bool": "boolean", "boolean": "boolean",
    "varchar": "character varying", "character varying": "character varying",
    "char": "character", "character": "character", "bpchar": "character",
    "decimal": "numeric", "numeric": "numeric",
    "timestamp": "timestamp without time zone", "timestamp without time zone": "timestamp without time zone",
    "timestamptz": "timestamp with time zone", "timestamp with time zone": "timestamp with time zone",
    "time": "time without time zone", "time without time zone": "time without time zone",
    "timetz": "time with time zone", "time with time zone": "time with time zone",
}

# A type name (words), an optional (n) or (p, s) modifier, optional trailing words and [] suffixes.
_TYPE = re.compile(
    r"(?P<base>[a-z_][a-z0-9_]*(?: [a-z_][a-z0-9_]*)*)"
    r"(?:\s*\(\s*(?P<mod>\d+(?:\s*,\s*\d+)?)\s*\))?"
    r"(?P<tail>(?: [a-z_][a-z0-9_]*)*)"
    r"(?P<array>(?:\s*\[\s*\])*)\Z"
)


def normalise_type(text: str) -> str:
    """A declared column type in format_type()'s spelling: 'int' -> 'integer', 'varchar(10)' -> 'character varying(10)'.

    Raises ActionFailed for text that is not a plain type name, which also keeps anything but a type
    out of the CREATE TABLE statement.
    """
    cleaned = " ".join(text.lower().split())
    match = _TYPE.match(cleaned)
    if not match:
        raise ActionFailed(f"'{text}' is not a column type")
    base = (match["base"] + match["tail"]).strip()
    modifier = match["mod"]
    arrays = "[]" * match["array"].count("[")
    if base.startswith("timestamp") or base.startswith("time"):
        # 'timestamp(3) with time zone' is printed with the modifier after the first word.
        words = _ALIASES.get(base, base).split(" ", 1)
        suffix = f" {words[1]}" if len(words) > 1 else ""
        return words[0] + (f"({modifier})" if modifier else "") + suffix + arrays
    name = _ALIASES.get(base, base)
    if name == "character" and modifier is None:
        modifier = "1"  # SQL's bare char means char(1)
    if modifier:
        modifier = ",".join(part.strip() for part in modifier.split(","))
        return f"{name}({modifier}){arrays}"
    return name + arrays


def _type_sql(text: str):
    """The declared type as an SQL fragment; safe because normalise_type only accepts the type grammar."""
    from psycopg2 import sql

    normalise_type(text)
    return sql.SQL(" ".join(text.split()))


# ---------------------------------------------------------------------------- creating and checking tables


def existing_columns(cur, name: TableName) -> dict[str, str] | None:
    """Column name -> format_type() of an existing table, in column order; None if there is no such table."""
    if not table_exists(cur, name):
        return None
    cur.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (_regclass_text(name),),
    )
    return dict(cur.fetchall())


def table_exists(cur, name: TableName) -> bool:
    """Whether the table exists (as seen through the connection's search_path when unqualified)."""
    cur.execute("SELECT to_regclass(%s)", (_regclass_text(name),))
    return cur.fetchone()[0] is not None


def _regclass_text(name: TableName) -> str:
    """The name in regclass input form, quoted so case and odd characters survive."""
    def quote(part: str) -> str:
        return '"' + part.replace('"', '""') + '"'

    return f"{quote(name.schema)}.{quote(name.table)}" if name.schema else quote(name.table)


def column_differences(existing: dict[str, str], declared: list[tuple[str, str]]) -> list[str]:
    """What differs between a table's columns and the declared ones, as short phrases; empty if they agree."""
    wanted = {column: normalise_type(kind) for column, kind in declared}
    problems = []
    for column, kind in wanted.items():
        if column not in existing:
            problems.append(f"column '{column}' is missing")
        elif existing[column] != kind:
            problems.append(f"column '{column}' is {existing[column]}, declared {kind}")
    for column in existing:
        if column not in wanted:
            problems.append(f"column '{column}' is not declared")
    return problems


def ensure_table(cur, name: TableName, declared: list[tuple[str, str]]) -> None:
    """Create schema and table if missing, else check the table's columns match the declared ones.

    Concurrent creators of the same table would collide on the catalog, so creation happens under an
    advisory lock; tasks that find the table already there never take it.
    """
    from psycopg2 import sql

    existing = existing_columns(cur, name)
    if existing is None:
        lock_creation(cur, name)
        if name.schema:
            # Two new tables in one new schema would collide on the schema: lock it too (always second).
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("flow: create schema " + name.schema),))
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(name.schema)))
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(column), _type_sql(kind)) for column, kind in declared
        )
        cur.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(name.identifier(), columns))
        existing = existing_columns(cur, name)
    problems = column_differences(existing, declared)
    if problems:
        raise ActionFailed(f"table '{name}' does not match the declared columns: " + "; ".join(problems))


def lock_creation(cur, name: TableName) -> None:
    """Hold, until the transaction ends, the lock that serialises every creator of this table.

    Two transactions running `CREATE TABLE IF NOT EXISTS` on one missing table both insert its
    row type into the catalog, and the second fails on `pg_type_typname_nsp_index` when the first
    commits. Loads and SQL actions take this lock before creating their output, so the second one
    waits and then finds the table. An unqualified name is keyed by the schema it would be created
    in (current_schema()), so `top10` and `public.top10` are one lock.
    """
    schema = name.schema
    if schema is None:
        cur.execute("SELECT current_schema()")
        schema = cur.fetchone()[0] or ""
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(f"flow: create table {schema}.{name.table}"),))


# ---------------------------------------------------------------------------- markers


def lock_key(text: str) -> int:
    """A signed 64-bit advisory lock key for a text (first 8 bytes of its SHA-256)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


_ensured = weakref.WeakSet()  # connections known to see the marker table


def ensure_marker_table(conn) -> None:
    """Create flow_table_updates if it does not exist, in a short transaction of its own (it commits).

    Call it outside any transaction. Creation runs under an advisory lock so concurrent first runs
    do not collide on the catalog; later calls on the same connection are free.
    """
    if conn in _ensured:
        return
    with conn.cursor() as cur:
        try:
            cur.execute("SELECT to_regclass(%s)", (MARKER_TABLE,))
            if cur.fetchone()[0] is None:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("flow: create " + MARKER_TABLE),))
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS flow_table_updates ("
                    " update_id text PRIMARY KEY,"
                    " target_table text NOT NULL,"
                    " inserted_at timestamptz NOT NULL DEFAULT now())"
                )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    _ensured.add(conn)


def existing_markers(conn, update_ids: list[str]) -> set[str]:
    """Which of the update ids have a marker row, in one query; empty when the marker table does not exist yet.

    Ends the read transaction it opened (if the connection was idle), so no connection is left
    idle in a transaction holding locks. Any database error (no rights on the marker table, a
    server that went away mid-query) is a DatabaseError in one line.
    """
    import psycopg2
    from flow.runtime.db import DatabaseError, one_line
    from psycopg2.extensions import TRANSACTION_STATUS_IDLE

    try:
        was_idle = conn.get_transaction_status() == TRANSACTION_STATUS_IDLE
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT to_regclass(%s)", (MARKER_TABLE,))
                if cur.fetchone()[0] is None or not update_ids:
                    return set()
                cur.execute(
                    "SELECT update_id FROM flow_table_updates WHERE update_id = ANY(%s)", (list(update_ids),)
                )
                return {row[0] for row in cur.fetchall()}
        finally:
            if was_idle and not conn.closed:
                conn.rollback()
    except psycopg2.Error as exc:
        if conn.closed:
            raise DatabaseError(f"lost the database connection while reading {MARKER_TABLE}: {one_line(exc)}") from None
        raise DatabaseError(f"cannot read {MARKER_TABLE}: {one_line(exc)}") from None


def claim(cur, update_id: str) -> bool:
    """Lock the update id for this transaction and say whether it still needs doing (no marker yet).

    The lock serialises concurrent runs of one task; the re-check under the lock is what makes the
    second of them see the first one's committed marker and do nothing.
    """
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(update_id),))
    cur.execute("SELECT 1 FROM flow_table_updates WHERE update_id = %s", (update_id,))
    return cur.fetchone() is None


def mark_done(cur, update_id: str, table: str) -> None:
    """Insert the marker row; commits with the data or not at all."""
    cur.execute("INSERT INTO flow_table_updates (update_id, target_table) VALUES (%s, %s)", (update_id, table))


def delete_markers(conn, update_ids: list[str]) -> int:
    """Delete the marker rows of these update ids in one statement and commit; how many there were.

    Only the markers: the rows the tasks wrote stay where they are (`flow clean --table-markers`).
    A database error is a DatabaseError in one line.
    """
    import psycopg2
    from flow.runtime.db import DatabaseError, one_line

    if not update_ids:
        return 0
    try:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM flow_table_updates WHERE update_id = ANY(%s)", (list(update_ids),))
            deleted = cur.rowcount
        conn.commit()
    except psycopg2.Error as exc:
        if not conn.closed:
            conn.rollback()
        raise DatabaseError(f"cannot delete from {MARKER_TABLE}: {one_line(exc)}") from None
    return deleted
