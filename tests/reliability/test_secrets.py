"""A failing build whose database password holds each special character never shows or stores the password.

For every character class of `? # @ / % : & = space`, a real PostgreSQL role gets a password holding
it; flow then builds (a SQL task fails), dry-runs, shows status and log with the URL written four
ways (percent-encoded, raw as a user pastes it, and a wrong password encoded and raw); every line printed and
every byte under the project (outputs, task logs, .flow/history.sqlite and its WAL) is searched for
the password, raw and encoded.
"""

from __future__ import annotations

import os
import textwrap
from urllib.parse import quote

import pytest

from tests.reliability.helpers import flow

SPECIAL = "?#@/%:&= "

ACTIONS = '''
def note(day, output):
    with open(output, "w") as handle:
        handle.write(f"a note for {day}\\n")
'''

FLOWFILE = """
rule note(day: date):
    output: "data/note_{day}.tsv"
    python: acts.note

rule kept(day: date):
    requires: note(day)
    output: table "kept"
    load:
        columns: line text

rule broken(day: date):
    requires: kept(day)
    output: table "broken_out"
    sql: "SELECT * FROM no_such_table_here"
"""


def everything_written(directory) -> bytes:
    """Every byte of every file in the project after the runs (outputs, logs, history and its WAL)."""
    found = []
    for folder, _, names in os.walk(directory):
        for name in names:
            with open(os.path.join(folder, name), "rb") as handle:
                found.append(handle.read())
    return b"\n".join(found)


@pytest.mark.parametrize("char", list(SPECIAL), ids=[f"char{ord(c):02x}" for c in SPECIAL])
def test_no_output_log_history_row_or_error_holds_the_password(char, role, pg_url, tmp_path):
    from psycopg2.extensions import parse_dsn

    password = f"Pw{char}Sekrit{char}42"
    name = role(password)
    server = parse_dsn(pg_url)
    where = f"{server['host']}:{server['port']}/{server['dbname']}?options=-csearch_path%3D{name}"
    encoded = f"postgresql://{name}:{quote(password, safe='')}@{where}"
    raw = f"postgresql://{name}:{password}@{where}"
    wrong = f"postgresql://{name}:{quote('Wrong' + password, safe='')}@{where}"
    raw_wrong = f"postgresql://{name}:Wrong{password}@{where}"
    (tmp_path / "acts.py").write_text(ACTIONS)
    (tmp_path / "Flowfile").write_text(textwrap.dedent(FLOWFILE))

    printed = []
    for url, args in ((encoded, ("build", "broken(2012-06-01)")),
                      (raw, ("build", "broken(2012-06-02)")),
                      (wrong, ("build", "broken(2012-06-03)")),
                      (raw, ("--dry-run", "broken(2012-06-04)")),
                      (raw_wrong, ("build", "broken(2012-06-04)")),
                      (raw_wrong, ("--dry-run", "broken(2012-06-04)")),
                      (raw, ("status", "broken(2012-06-01)")),
                      (raw, ("log",))):
        result = flow(tmp_path, *args, env={"FLOW_DATABASE_URL": url})
        printed.append(result.stdout + result.stderr)
        if args[0] == "build":
            # a failed build, said in words, without a traceback
            assert result.returncode == 1, result.stdout + result.stderr
            assert "Traceback" not in result.stderr, result.stderr
    # the good URL got as far as the failing SQL, so the failure is the one the test meant
    assert "no_such_table_here" in printed[0], printed[0]
    assert "cannot connect" in printed[2], printed[2]

    text = "\n".join(printed)
    stored = everything_written(tmp_path)
    for secret in {password, quote(password, safe=""), "Wrong" + password, quote("Wrong" + password, safe="")}:
        assert secret not in text, text
        assert secret.encode() not in stored
    # the secret's pieces are not shown either (libpq would print the part after a raw @ as a host)
    assert "Sekrit" not in text and b"Sekrit" not in stored


def test_an_actions_error_that_quotes_a_connection_string_is_shown_without_its_password(tmp_path):
    """The console, `flow log` and `flow status` all show the error of a task whose exception names a DSN."""
    from tests.serving import flow as run_flow
    from tests.serving import make_project

    project = make_project(tmp_path)
    build = run_flow(project, "build", "-j", "1", "bad(2012-03-01)")
    assert build.returncode == 1, build.stdout + build.stderr
    assert "no data for 2012-03-01" in build.stdout + build.stderr  # the error is shown ...
    shown = [build.stdout + build.stderr]
    for command in (["log"], ["status", "bad(2012-03-01)"]):
        result = run_flow(project, *command)
        shown.append(result.stdout + result.stderr)
    for text in shown:
        assert "hunter2secret" not in text  # ... without the password it quoted
    from flow.runtime.db import redact

    assert redact("postgresql://loader:hunter2secret@db.example/warehouse") in shown[0]
