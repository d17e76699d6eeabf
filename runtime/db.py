"""Which PostgreSQL database to use, connecting to it with readable errors, and one cached connection per database.

The database is `FLOW_DATABASE_URL` when set, else the Flowfile's `database:` setting, else libpq's
own defaults when a PG* variable names a server (PGHOST, PGPORT, PGUSER, PGDATABASE, PGSERVICE),
else the project's embedded server (embedded_db.py). Passwords belong in
~/.pgpass, PGPASSWORD or a service file, never in a Flowfile; any DSN shown to a user goes through
`redact`. psycopg2 is imported inside functions so importing this module costs nothing.
"""

from __future__ import annotations

import os
import re

from flow.runtime import conninfo
from flow.runtime.actions.base import ActionFailed

ENV_VAR = "FLOW_DATABASE_URL"


class DatabaseError(ActionFailed):
    """A database problem the user should read in one line (passwords already redacted)."""


# libpq variables that choose a server: any of them set means the user configured one.
LIBPQ_SERVER_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE")


def configured_dsn(flowfile_database: str | None = None) -> str | None:
    """The DSN the user configured: FLOW_DATABASE_URL, the Flowfile's `database:`, '' for the PG* variables, or None.

    The environment wins so one Flowfile can name its usual database while a deployment or a test
    run points it elsewhere without editing it.
    """
    explicit = os.environ.get(ENV_VAR) or flowfile_database
    if explicit:
        return explicit
    if any(os.environ.get(name) for name in LIBPQ_SERVER_VARIABLES):
        return ""
    return None


def resolve_dsn(flowfile_database: str | None = None, flow_dir: str | None = None) -> str:
    """The DSN to connect with: the configured one, else the embedded server of the project at `flow_dir`."""
    dsn = configured_dsn(flowfile_database)
    if dsn is None:
        if flow_dir is None:
            return ""
        from .embedded_db import url

        return url(flow_dir)
    return dsn


def redact(dsn: str) -> str:
    """The DSN with every password replaced by ***, for URIs and key=value strings alike."""
    return conninfo.redact(dsn)


# a DSN inside other text, up to the first space or quote
_URI_IN_TEXT = re.compile(r"postgres(?:ql)?://[^\s'\"<>]+", re.IGNORECASE)
# password=secret or password: 'se cret' inside other text (up to the first blank, or the closing quote)
_PASSWORD_IN_TEXT = re.compile(r"(\bpassword\s*[=:]\s*)('(?:[^'\\]|\\.)*'?|\S+)", re.IGNORECASE)
# environment variables whose values are secrets, as Spark's UI judges conf keys
_SECRET_NAME = re.compile(r"(?i)secret|password|passwd|token|access.?key|credential")


def redact_text(text: str) -> str:
    """Free text (an error, a log) with DSN passwords, `password=...` and secret environment values hidden."""
    text = _URI_IN_TEXT.sub(lambda match: redact(match.group(0)), text)
    text = _PASSWORD_IN_TEXT.sub(r"\1" + conninfo.MASK, text)
    secrets = [value for name, value in os.environ.items() if _SECRET_NAME.search(name)]
    secrets.extend(conninfo.written_passwords(os.environ.get(ENV_VAR, "")))
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= conninfo.MIN_SEARCHED:
            text = text.replace(secret, conninfo.MASK)
    return text


def describe(dsn: str) -> str:
    """How to name the database in a message: the redacted DSN, or where libpq looked when it is empty."""
    return redact(dsn) if dsn else "the default database (libpq PG* environment variables)"


def one_line(message: str, dsn: str = "") -> str:
    """A driver message as one line, without the DSN's password even if the driver echoed it."""
    text = " ".join(part.strip() for part in str(message).strip().splitlines() if part.strip())
    text = re.sub(r"^(FATAL|ERROR):\s+", "", text)
    # libpq prefixes 'connection to server at "127.0.0.1", port 5432 failed: ' which the DSN already says.
    text = re.sub(r'^connection to server (at|on) .*? failed: (FATAL:\s+)?', "", text)
    return conninfo.scrub(text, dsn) if dsn else text


def connect(dsn: str):
    """A new psycopg2 connection (autocommit off), or DatabaseError in one redacted line."""
    import psycopg2

    problem = conninfo.misread(dsn) if dsn else None
    if problem:  # never hand libpq a string it would cut in pieces and quote back in its errors
        raise DatabaseError(f"cannot connect: {problem}")
    try:
        return psycopg2.connect(dsn or "")
    except psycopg2.Error as exc:
        raise DatabaseError(f"cannot connect to {describe(dsn)}: {one_line(exc, dsn)}") from None


class ConnectionCache:
    """One open connection per DSN for this process, so a worker reuses it across tasks.

    Connections opened before a fork are never handed to the child (two processes on one socket
    corrupt the protocol); a closed or broken connection is replaced on the next `get`.
    """

    def __init__(self):
        self._pid = os.getpid()
        self._connections: dict = {}

    def get(self, dsn: str):
        """The cached connection for `dsn`, opening a new one if there is none or it has closed."""
        if os.getpid() != self._pid:
            self._connections = {}  # inherited from the parent: not ours to use or close
            self._pid = os.getpid()
        conn = self._connections.get(dsn)
        if conn is None or conn.closed:
            conn = connect(dsn)
            self._connections[dsn] = conn
        return conn

    def discard(self, dsn: str) -> None:
        """Close and forget the connection for `dsn` (after it failed in a way that may have broken it)."""
        conn = self._connections.pop(dsn, None)
        if conn is not None and not conn.closed:
            conn.close()

    def close_all(self) -> None:
        """Close every cached connection."""
        if os.getpid() == self._pid:
            for conn in self._connections.values():
                if not conn.closed:
                    conn.close()
        self._connections = {}


connections = ConnectionCache()


def close_all() -> None:
    """Close the process-wide cached connections (call at worker exit)."""
    connections.close_all()
