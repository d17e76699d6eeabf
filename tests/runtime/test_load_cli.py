"""A load killed with flow in the middle of its COPY leaves nothing; the next build loads exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROWS = 2_000_000

ACTIONS = f'''
def numbers(output):
    with open(output, "w") as handle:
        handle.writelines(f"{{i}}\\tlabel {{i}}\\n" for i in range({ROWS}))
'''

FLOWFILE = """
rule numbers(interval: interval):
    output: "data/numbers_{interval}.tsv"
    python: acts.numbers

rule big(interval: interval):
    requires: numbers(interval)
    output: table "big"
    load:
        columns: n int, label text
"""


def command(directory, env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    environment.update(env, PYTHONPATH=ROOT)
    return dict(cwd=directory, env=environment)


def test_killing_flow_mid_copy_leaves_no_rows_no_marker_and_the_rerun_loads_once(tmp_path, pg_dsn, pg_conn):
    (tmp_path / "acts.py").write_text(ACTIONS)
    (tmp_path / "Flowfile").write_text(textwrap.dedent(FLOWFILE))
    env = {"FLOW_DATABASE_URL": pg_dsn}
    # the input first, so that the build below is only the load
    first = subprocess.run([sys.executable, "-m", "flow.runtime.cli", "build", "numbers(2012)"], capture_output=True,
                           text=True, **command(tmp_path, env))
    assert first.returncode == 0, first.stderr

    pg_conn.autocommit = True
    build = subprocess.Popen([sys.executable, "-m", "flow.runtime.cli", "build", "big(2012)"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True, **command(tmp_path, env))
    try:
        deadline = time.monotonic() + 60
        copying = False
        with pg_conn.cursor() as cur:
            while not copying and build.poll() is None and time.monotonic() < deadline:
                cur.execute("SELECT count(*) FROM pg_stat_progress_copy WHERE tuples_processed > 0"
                            " AND datname = current_database()")
                copying = cur.fetchone()[0] > 0
        assert copying, "flow never got to COPY, or finished first"
        os.killpg(build.pid, signal.SIGKILL)  # flow and its workers
    finally:
        build.kill()
        build.wait()

    with pg_conn.cursor() as cur:
        cur.execute("SELECT to_regclass('big')")
        assert cur.fetchone() == (None,)  # the table was created in the killed transaction
        cur.execute("SELECT to_regclass('flow_table_updates') IS NOT NULL")
        if cur.fetchone()[0]:
            cur.execute("SELECT count(*) FROM flow_table_updates")
            assert cur.fetchone()[0] == 0

    again = subprocess.run([sys.executable, "-m", "flow.runtime.cli", "build", "big(2012)"], capture_output=True,
                           text=True, timeout=300, **command(tmp_path, env))
    assert again.returncode == 0, again.stdout + again.stderr
    with pg_conn.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT n) FROM big")
        assert cur.fetchone() == (ROWS, ROWS)
        cur.execute("SELECT update_id FROM flow_table_updates")
        assert cur.fetchall() == [("big(2012)",)]
