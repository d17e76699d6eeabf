"""Run `load:` and `sql:` actions: each in one transaction that also writes the task's marker row, exactly once.

Both runners follow the same steps on the connection they are given:
1. make sure flow_table_updates exists (its own short transaction);
2. in one transaction: take the advisory lock on the update id and re-check the marker; if it is
   there, another run already did the work: roll back and say so;
3. do the work (create/check the table, before hook, COPY, after hook; or the SQL text);
4. insert the marker row and commit. A failure or a killed process before commit leaves nothing.
"""

from __future__ import annotations

import datetime
import decimal
import os

from flow.compiler.nodes import LoadAction, SqlAction
from flow.compiler.sqltext import to_psycopg
from flow.runtime.actions.base import ActionContext, ActionFailed
from flow.runtime.db import DatabaseError, one_line
from flow.runtime.tables import (
    claim,
    ensure_marker_table,
    ensure_table,
    lock_creation,
    mark_done,
    parse_table_name,
    table_exists,
)

COPY_CHUNK = 1 << 20  # bytes per read of the input file: fewer Python round trips than the 8 KiB default

_FORMATS = {"text": "text", "csv": "csv"}  # the only words that ever reach the COPY options


# ---------------------------------------------------------------------------- parameters


def _sql_value(value):
    """A parameter value psycopg2 binds well: dates, numbers, strings, bools as they are, lists item by item,
    anything else (an Interval, say) as its text form."""
    if value is None or isinstance(value, (bool, int, float, str, decimal.Decimal, datetime.date)):
        return value
    if isinstance(value, (list, tuple)):
        return [_sql_value(item) for item in value]
    return str(value)


def bind(names: list[str], params: dict, task_id: str = "") -> dict:
    """Values for the `:name` / `:name.attr` parameters of an SQL text, keyed as to_psycopg names them."""
    values = {}
    for name in names:
        head, _, attr = name.partition(".")
        if head not in params:
            known = ", ".join(f":{p}" for p in params) or "none"
            task = task_id or "the task"
            raise ActionFailed(f"SQL parameter ':{name}' is not a parameter of {task} (it has {known})")
        value = params[head]
        if attr:
            found = getattr(value, attr, None) if not attr.startswith("_") else None
            if found is None or callable(found):
                raise ActionFailed(f"SQL parameter ':{name}': a {type(value).__name__} has no '{attr}'")
            value = found
        values[name] = _sql_value(value)
    return values


def _prepare(text: str, ctx: ActionContext, what: str):
    """(query, values) for an SQL text and the task's parameters."""
    from pglast.parser import ParseError

    try:
        query, names = to_psycopg(text)
    except ParseError as exc:
        raise ActionFailed(f"{what}: cannot read the SQL: {exc.args[0]}") from None
    # Always pass a dict, even an empty one: psycopg2 only undoes the %% doubling when given values.
    params = ctx.params
    if ctx.extra.get("batch"):  # a batched run: `:partitions` (and the partition parameter) list its partitions
        params = dict(params, partitions=ctx.extra["partitions"])
    return query, bind(names, params, ctx.task_id)


# ---------------------------------------------------------------------------- transactions


def _failure(exc, what: str, conn) -> ActionFailed:
    """One line for a psycopg2 error: the server's message plus where it happened (COPY line, etc.)."""
    diag = getattr(exc, "diag", None)
    message = (diag.message_primary if diag is not None else None) or one_line(exc)
    context = diag.context if diag is not None else None
    if context:
        message += f" ({one_line(context)})"
    if conn.closed:
        return DatabaseError(f"{what}: lost the database connection: {message}")
    return ActionFailed(f"{what}: {message}")


def _rollback(conn) -> None:
    """Roll back, ignoring a connection that is already gone (the server rolls back for us then)."""
    import psycopg2

    try:
        if not conn.closed:
            conn.rollback()
    except psycopg2.Error:
        pass


def _in_marked_transaction(conn, ctx: ActionContext, what: str, work) -> str | None:
    """Run work(cursor) -> status in one transaction with the marker rule; None if the marker was already there."""
    import psycopg2

    try:
        ensure_marker_table(conn)
        update_ids = ctx.extra.get("update_ids") or [ctx.update_id]  # a batch has one marker per partition
        with conn.cursor() as cur:
            claimed = [claim(cur, update_id) for update_id in update_ids]
            if not all(claimed):
                if not ctx.extra.get("force"):
                    conn.rollback()
                    if not any(claimed):
                        return None
                    raise ActionFailed(f"another flow did part of {ctx.task_id} meanwhile: build again to do the rest")
                # `flow build --force`: redo it, dropping the old markers in the same transaction
                cur.execute("DELETE FROM flow_table_updates WHERE update_id = ANY(%s)", (update_ids,))
            status = work(cur)
            for update_id in update_ids:
                mark_done(cur, update_id, str(parse_table_name(ctx.output)))
        conn.commit()
        return status
    except psycopg2.Error as exc:
        _rollback(conn)
        raise _failure(exc, what, conn) from None
    except BaseException:
        _rollback(conn)
        raise


# ---------------------------------------------------------------------------- load


def _data_files(path: str) -> list[str]:
    """The files to load: the path itself, or a directory's visible part files in name order (Spark output)."""
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if not n.startswith((".", "_")))
        return [os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))]
    if not os.path.exists(path):
        raise ActionFailed(f"load input '{path}' does not exist")
    return [path]


def run_load(ctx: ActionContext, action: LoadAction, conn) -> str:
    """COPY the task's one input file into its output table with the declared columns, exactly once."""
    from psycopg2 import sql

    if len(ctx.inputs) != 1:
        raise ActionFailed(f"a load needs exactly one input, {ctx.task_id} has {len(ctx.inputs)}")
    if action.format not in _FORMATS:
        raise ActionFailed(f"load format '{action.format}' is not 'text' or 'csv'")
    name = parse_table_name(ctx.output)
    declared = [(column.name, column.type) for column in action.columns]
    files = _data_files(ctx.inputs[0])
    hooks = {
        hook: _prepare(text, ctx, f"{hook}: of {ctx.task_id}")
        for hook, text in (("before", action.before), ("after", action.after))
        if text
    }
    # CSV parses its own header (quoted newlines included); text format gets HEADER only from
    # PostgreSQL 15 on, so for text the first line is skipped here instead.
    csv_header = action.format == "csv" and action.header
    copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT {}, HEADER {}, ENCODING 'UTF8')").format(
        name.identifier(),
        sql.SQL(", ").join(sql.Identifier(column) for column, _ in declared),
        sql.SQL(_FORMATS[action.format]),
        sql.SQL("true" if csv_header else "false"),
    )

    def work(cur) -> str:
        ensure_table(cur, name, declared)
        if "before" in hooks:
            cur.execute(*hooks["before"])
        rows = 0
        for path in files:
            with open(path, "rb") as data:
                if action.header and not csv_header:
                    data.readline()
                cur.copy_expert(copy, data, size=COPY_CHUNK)
                rows += max(cur.rowcount, 0)
        if "after" in hooks:
            cur.execute(*hooks["after"])
        return f"loaded {rows} rows into {name}"

    status = _in_marked_transaction(conn, ctx, f"load into '{name}' failed", work)
    return status if status is not None else "already loaded"


# ---------------------------------------------------------------------------- sql


def sql_text(ctx: ActionContext, action: SqlAction) -> str:
    """The action's SQL: the inline text, or the .sql file relative to the Flowfile's directory."""
    if action.text is not None:
        return action.text
    path = os.path.join(ctx.flowfile_dir, action.file)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise ActionFailed(f"cannot read SQL file '{action.file}': {exc.strerror}") from None


def run_sql(ctx: ActionContext, action: SqlAction, conn) -> str:
    """Run the SQL with the task's parameters bound, in one transaction with the output's marker row."""
    name = parse_table_name(ctx.output)
    query, values = _prepare(sql_text(ctx, action), ctx, f"sql of {ctx.task_id}")

    def work(cur) -> str:
        if not table_exists(cur, name):
            lock_creation(cur, name)  # the SQL may create it: concurrent creators would collide
        cur.execute(query, values)
        affected = cur.rowcount
        # A marker for a table that was never made would make every later run skip a broken task.
        if not table_exists(cur, name):
            raise ActionFailed(f"the SQL of {ctx.task_id} ran but did not create its output table '{name}'")
        return f"sql done, {affected} rows" if affected >= 0 else "sql done"

    status = _in_marked_transaction(conn, ctx, f"sql of {ctx.task_id} failed", work)
    return status if status is not None else "already done"

