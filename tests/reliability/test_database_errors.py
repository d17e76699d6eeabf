"""Every database error is one line, never a traceback: no rights on the marker table, a server gone mid-query."""

from __future__ import annotations

import textwrap

import pytest

from tests.reliability.helpers import flow, start_flow, wait_for

FLOWFILE = """
rule note(day: date):
    output: "data/note_{day}.tsv"
    python: acts.note

rule kept(day: date):
    requires: note(day)
    output: table "kept"
    load:
        columns: line text
"""

ACTIONS = '''
def note(day, output):
    with open(output, "w") as handle:
        handle.write(f"a note for {day}\\n")
'''


@pytest.fixture
def project(tmp_path):
    (tmp_path / "acts.py").write_text(ACTIONS)
    (tmp_path / "Flowfile").write_text(textwrap.dedent(FLOWFILE))
    return tmp_path


def url_for(pg_url: str, user: str, password: str, schema: str) -> str:
    from psycopg2.extensions import parse_dsn

    server = parse_dsn(pg_url)
    return (f"postgresql://{user}:{password}@{server['host']}:{server['port']}/{server['dbname']}"
            f"?options=-csearch_path%3D{schema}")


def one_error_line(result) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_no_rights_on_the_marker_table_is_one_line_in_dry_run_build_and_force(project, role, pg_url):
    import psycopg2
    from psycopg2 import sql

    user = role("Rights-0f-n0ne")
    admin = psycopg2.connect(pg_url)
    admin.autocommit = True
    with admin.cursor() as cur:  # the marker table belongs to someone else, who granted nothing on it
        cur.execute(sql.SQL("CREATE TABLE {}.flow_table_updates (update_id text PRIMARY KEY, target_table text,"
                            " inserted_at timestamptz)").format(sql.Identifier(user)))
    admin.close()
    env = {"FLOW_DATABASE_URL": url_for(pg_url, user, "Rights-0f-n0ne", user)}

    dry = flow(project, "--dry-run", "kept(2012-06-01)", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "Traceback" not in dry.stderr
    assert "note: cannot check table outputs: cannot read flow_table_updates: permission denied for table" \
           " flow_table_updates" in dry.stdout
    for args in (("build", "kept(2012-06-01)"), ("build", "--force", "kept(2012-06-01)")):
        result = flow(project, *args, env=env)
        assert result.returncode == 1
        assert one_error_line(result) == ("error: cannot read flow_table_updates: permission denied for table"
                                          " flow_table_updates")


def test_a_server_gone_during_the_marker_query_is_one_line(project, pg_url, pg_dsn, pg_schema):
    import psycopg2

    admin = psycopg2.connect(pg_dsn)
    with admin.cursor() as cur:
        cur.execute("CREATE TABLE flow_table_updates (update_id text PRIMARY KEY, target_table text,"
                    " inserted_at timestamptz)")
        admin.commit()
        cur.execute("LOCK TABLE flow_table_updates IN ACCESS EXCLUSIVE MODE")  # flow's marker query waits

    def flow_waiting():
        with watcher.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE 'SELECT update_id FROM flow_table_updates%%'")
            row = cur.fetchone()
        return row and row[0]

    watcher = psycopg2.connect(pg_url)
    watcher.autocommit = True
    try:
        for args, code in ((("--dry-run", "kept(2012-06-01)"), 0), (("build", "kept(2012-06-01)"), 1)):
            build = start_flow(project, *args, env={"FLOW_DATABASE_URL": pg_dsn})
            try:
                pid = wait_for(flow_waiting, "flow's marker query to wait on the locked table")
                with watcher.cursor() as cur:  # what a server crash or restart looks like to the client
                    cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
                out, err = build.communicate(timeout=120)
            finally:
                build.kill()
                build.wait()
            assert build.returncode == code, out + err
            assert "Traceback" not in err, err
            message = "lost the database connection while reading flow_table_updates: "
            if code == 0:
                assert f"note: cannot check table outputs: {message}" in out, out
            else:
                lines = [line for line in err.splitlines() if line.strip()]
                assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), err
    finally:
        admin.rollback()
        admin.close()
        watcher.close()
