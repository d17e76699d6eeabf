"""Shared pytest fixtures."""

import os
import uuid

import pytest

# ---------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_url():
    """A libpq URL of a PostgreSQL server for the session: FLOW_TEST_DATABASE_URL, else a throwaway one.

    Fails (never skips) when no server binaries exist, so a machine without PostgreSQL cannot pass
    the database tests by not running them.
    """
    url = os.environ.get("FLOW_TEST_DATABASE_URL")
    if url:
        yield url
        return
    from tests.pg import Server, ServerError

    try:
        server = Server().start()
    except ServerError as exc:
        pytest.fail(f"cannot start a test PostgreSQL server: {exc}", pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def pg_schema(pg_url):
    """A fresh schema for one test, dropped with everything in it afterwards."""
    import psycopg2
    from psycopg2 import sql

    schema = "t_" + uuid.uuid4().hex[:12]
    admin = psycopg2.connect(pg_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        admin.close()


@pytest.fixture
def pg_dsn(pg_url, pg_schema):
    """A DSN whose search_path is the test's own schema, so unqualified tables (the marker table too) are private."""
    from tests.pg import with_options

    return with_options(pg_url, options=f"-csearch_path={pg_schema}")


@pytest.fixture
def pg_conn(pg_dsn):
    """A connection to the test's own schema, closed afterwards."""
    import psycopg2

    conn = psycopg2.connect(pg_dsn)
    yield conn
    conn.close()
