"""The embedded PostgreSQL through the real `flow` command: the whole pipeline, kills, sharing, root."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from tests.processes import alive

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEADLINE = 120  # seconds; generous for a loaded 2-core CI machine


def flow(directory, *args, env=None, timeout=300):
    """Run `flow ARGS` in `directory` with no database configured, as a user on a fresh machine would."""
    return subprocess.run([sys.executable, "-m", "flow.runtime.cli", *args], cwd=directory,
                          env=environment(env), capture_output=True, text=True, timeout=timeout)


def environment(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "FLOW_DATABASE_URL"}
    env["PYTHONPATH"] = ROOT
    env.update(extra or {})
    return env


def query(directory, sql):
    """One query through `flow db shell -c`, unaligned and without headers: what a user would type."""
    result = flow(directory, "db", "shell", "-c", sql, "-A", "-t")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def server_pids(directory):
    """Live postmasters whose data directory is this project's (backends rename themselves, the postmaster does not)."""
    data = os.path.join(str(directory), ".flow", "db", "data")
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"/postgres") and data.encode() in argv and alive(int(entry)):
            pids.append(int(entry))
    # A child the postmaster has just forked shows its command line until it renames itself.
    return [pid for pid in pids if _parent(pid) not in pids]


def _parent(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def wait_for(condition, what):
    deadline = time.monotonic() + DEADLINE
    pause = 0.01
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def connect_when_up(directory):
    """A connection to the project's embedded server once a running flow has started it."""
    import psycopg2
    from flow.runtime.embedded_db import url

    dsn = url(os.path.join(str(directory), ".flow"))
    connection = []

    def try_connect():
        try:
            connection.append(psycopg2.connect(dsn))
            return True
        except psycopg2.OperationalError:
            return False

    wait_for(try_connect, "the embedded server to accept connections")
    connection[0].autocommit = True
    return connection[0]


def scalar(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


@pytest.fixture
def project():
    """An empty project directory every account may enter (pytest's own tmp dirs are 0700 under root, which
    the server's unprivileged account could not enter); its server is stopped and the directory removed after."""
    directory = tempfile.mkdtemp(prefix="flow-embedded-")
    os.chmod(directory, 0o755)
    yield directory
    for pid in server_pids(directory):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(directory, ignore_errors=True)


def copy_root_project(directory):
    shutil.copy(os.path.join(ROOT, "Flowfile"), os.path.join(directory, "Flowfile"))
    shutil.copytree(os.path.join(ROOT, "examples"), os.path.join(directory, "examples"),
                    ignore=shutil.ignore_patterns("__pycache__"))


def write(directory, name, text):
    with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
        handle.write(textwrap.dedent(text))


# ---------------------------------------------------------------------------- the README's first command


def test_flow_alone_runs_the_whole_pipeline_into_the_embedded_server_and_leaves_nothing_running(project):
    copy_root_project(project)
    first = flow(project)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "toplist_db" in first.stdout and "toplist_summary" in first.stdout
    assert server_pids(project) == []
    assert not os.path.exists(os.path.join(project, ".flow", "db", "data", "postmaster.pid"))

    assert query(project, "SELECT count(*) FROM top10") == "120"
    assert query(project, "SELECT count(*) FROM flow_table_updates") == "24"
    assert query(project, "SELECT count(*) FROM toplist_summary WHERE artists = 10") == "12"
    june = query(project, "SELECT date_from, date_to, artist, streams FROM top10 WHERE date_from = '2012-06-01' "
                          "ORDER BY streams DESC, artist")
    with open(os.path.join(project, "data", "top_artists_2012-06.tsv"), encoding="utf-8") as handle:
        assert june.replace("|", "\t") == handle.read().strip()

    again = flow(project)
    assert again.returncode == 0
    assert again.stdout.strip() == "nothing to do: all 12 targets complete"
    for command in (["--dry-run"], ["status", "toplist_summary(2012-06)"]):
        result = flow(project, *command)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "cannot check table outputs" not in result.stdout
    assert "[complete]" in result.stdout
    assert server_pids(project) == []


def test_db_commands_on_the_embedded_server(project):
    write(project, "Flowfile", """
        rule one(date: date):
            output: table "ones"
            sql: "CREATE TABLE IF NOT EXISTS ones (d date); INSERT INTO ones VALUES (:date)"
    """)
    url = flow(project, "db", "url")
    assert url.returncode == 0
    assert url.stdout.strip() == f"postgresql://flow@/postgres?host={project}/.flow/db/run"
    assert "not running" in url.stderr

    started = flow(project, "db", "start")
    assert started.returncode == 0, started.stderr
    assert "started" in started.stdout
    [pid] = server_pids(project)
    assert flow(project, "build", "one(2012-01-01)").returncode == 0
    assert server_pids(project) == [pid]  # kept up: `flow db start` asked for it
    # another program reaches it through the printed URL (psql here)
    from flow.runtime.commands.db import psql_binary

    psql = subprocess.run([psql_binary(), url.stdout.strip(), "-Atc", "SELECT count(*) FROM ones"],
                          capture_output=True, text=True, env=environment())
    assert psql.stdout.strip() == "1", psql.stderr

    stopped = flow(project, "db", "stop")
    assert stopped.stdout.strip() == "embedded PostgreSQL stopped"
    assert server_pids(project) == []
    assert flow(project, "db", "stop").stdout.strip() == "embedded PostgreSQL not running"


def test_db_commands_on_a_configured_server_say_flow_does_not_manage_it(project):
    write(project, "Flowfile", ONE_TABLE)
    env = {"FLOW_DATABASE_URL": "postgresql://me:s3cret@db.example:5433/prod"}
    url = flow(project, "db", "url", env=env)
    assert url.stdout.strip() == "postgresql://me:***@db.example:5433/prod"
    for command in ("start", "stop"):
        result = flow(project, "db", command, env=env)
        assert result.returncode == 0
        assert "flow does not manage this database (postgresql://me:***@db.example:5433/prod from " \
               "FLOW_DATABASE_URL)" in result.stdout
        assert "s3cret" not in result.stdout + result.stderr
    assert not os.path.exists(os.path.join(project, ".flow", "db"))


# ---------------------------------------------------------------------------- crashes

ROWS = 2_000_000

BIG = """
rule numbers(interval: interval):
    output: "data/numbers_{interval}.tsv"
    python: acts.numbers

rule big(interval: interval):
    requires: numbers(interval)
    output: table "big"
    load:
        columns: n int, label text
"""

NUMBERS = f'''
def numbers(output):
    with open(output, "w") as handle:
        handle.writelines(f"{{i}}\\tlabel {{i}}\\n" for i in range({ROWS}))
'''


def test_sigkill_of_flow_mid_load_then_the_rerun_loads_exactly_once(project):
    write(project, "Flowfile", BIG)
    write(project, "acts.py", NUMBERS)
    assert flow(project, "build", "numbers(2012)").returncode == 0  # so that the build below is only the load
    build = subprocess.Popen([sys.executable, "-m", "flow.runtime.cli", "build", "big(2012)"], cwd=project,
                             env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    conn = None
    try:
        conn = connect_when_up(project)
        wait_for(lambda: build.poll() is not None or scalar(
            conn, "SELECT count(*) FROM pg_stat_progress_copy WHERE tuples_processed > 0") > 0, "the COPY")
        assert build.poll() is None, "flow finished before it could be killed mid-COPY"
        os.killpg(build.pid, signal.SIGKILL)  # flow and its workers; the server is in a session of its own
        build.wait()
        assert scalar(conn, "SELECT to_regclass('big') IS NULL")  # created in the killed transaction
        if scalar(conn, "SELECT to_regclass('flow_table_updates') IS NOT NULL"):
            assert scalar(conn, "SELECT count(*) FROM flow_table_updates") == 0
    finally:
        if build.poll() is None:
            build.kill()
            build.wait()
        if conn is not None:
            conn.close()

    again = flow(project, "build", "big(2012)")  # reuses the server the killed flow left, then stops it
    assert again.returncode == 0, again.stdout + again.stderr
    assert server_pids(project) == []
    assert query(project, "SELECT count(*), count(DISTINCT n) FROM big") == f"{ROWS}|{ROWS}"
    assert query(project, "SELECT update_id FROM flow_table_updates") == "big(2012)"


SLOW = """
rule slow(date: date):
    output: table "slow_done"
    sql: \"\"\"
        SELECT pg_sleep(CASE WHEN to_regclass('hold') IS NULL THEN 0 ELSE 600 END);
        CREATE TABLE IF NOT EXISTS slow_done (d date);
        INSERT INTO slow_done VALUES (:date)
    \"\"\"
"""


def test_killing_the_server_mid_build_is_a_clear_error_and_the_rerun_completes(project):
    write(project, "Flowfile", SLOW)
    query(project, "CREATE TABLE hold ()")  # the task below sleeps while this table exists
    build = subprocess.Popen([sys.executable, "-m", "flow.runtime.cli", "build", "slow(2012-01-01)"], cwd=project,
                             env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        conn = connect_when_up(project)
        wait_for(lambda: scalar(conn, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(CASE%' "
                                      "AND state = 'active' AND pid <> pg_backend_pid()") > 0, "the task's query")
        [postmaster] = server_pids(project)
        os.kill(postmaster, signal.SIGKILL)
        conn.close()
        out, err = build.communicate(timeout=DEADLINE)
    finally:
        if build.poll() is None:
            build.kill()
            build.wait()
    assert build.returncode == 1, out + err
    assert "Traceback" not in out + err
    assert "slow(2012-01-01)" in out + err
    assert "lost the database connection" in out + err or "server closed the connection" in out + err, out + err

    query(project, "DROP TABLE hold")  # starts the server again over the killed one's postmaster.pid
    rerun = flow(project, "build", "slow(2012-01-01)")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert query(project, "SELECT count(*) FROM slow_done") == "1"
    assert query(project, "SELECT count(*) FROM flow_table_updates") == "1"
    assert server_pids(project) == []


# ---------------------------------------------------------------------------- two builds at once

SHARED = """
rule gate(date: date, name: str = "open"):
    output: "data/{name}_{date}.tsv"
    python: acts.gate

rule loaded(date: date):
    requires: gate(date)
    output: table "loaded"
    load:
        columns: n int

rule later(date: date):
    requires: gate(date, "open_later")
    output: table "later"
    load:
        columns: n int
"""

GATE = '''
import os, time

def gate(output, name):
    deadline = time.monotonic() + 300
    while not os.path.exists(name):  # the test creates the file when both builds are connected
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with open(output, "w") as handle:
        handle.writelines(f"{i}\\n" for i in range(1000))
'''


def test_two_concurrent_builds_share_one_server_and_load_once(project):
    write(project, "Flowfile", SHARED)
    write(project, "acts.py", GATE)
    log = os.path.join(project, ".flow", "db", "server.log")
    first = subprocess.Popen([sys.executable, "-m", "flow.runtime.cli", "build", "loaded(2012-01-01)"],
                             cwd=project, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    second = subprocess.Popen([sys.executable, "-m", "flow.runtime.cli", "build", "loaded(2012-01-01)",
                               "later(2012-01-01)"], cwd=project, env=environment(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        conn = connect_when_up(project)
        # both have checked their tables' markers, so both use the server
        wait_for(lambda: scalar(conn, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                                      "AND pid <> pg_backend_pid()") >= 2, "both builds to connect")
        conn.close()
        open(os.path.join(project, "open"), "w").close()
        first_out, _ = first.communicate(timeout=DEADLINE)
        assert first.returncode == 0, first_out
        # the first build has exited; the server it started goes on serving the second
        assert len(server_pids(project)) == 1
        open(os.path.join(project, "open_later"), "w").close()
        second_out, _ = second.communicate(timeout=DEADLINE)
        assert second.returncode == 0, second_out
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert server_pids(project) == []
    with open(log, encoding="utf-8") as handle:
        assert handle.read().count("starting PostgreSQL") == 1
    assert query(project, "SELECT count(*) FROM loaded") == "1000"
    assert query(project, "SELECT count(*) FROM later") == "1000"
    assert query(project, "SELECT update_id FROM flow_table_updates ORDER BY 1") == \
        "later(2012-01-01)\nloaded(2012-01-01)"


# ---------------------------------------------------------------------------- running as root

ONE_TABLE = """
rule one(date: date):
    output: table "ones"
    sql: "CREATE TABLE IF NOT EXISTS ones (d date); INSERT INTO ones VALUES (:date)"
"""

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="the root path needs root (CI runs as root)")


@root_only
def test_as_root_the_server_runs_as_an_unprivileged_account_and_only_flow_db_changes_hands(project):
    import pwd

    write(project, "Flowfile", ONE_TABLE)
    before = os.stat(project)
    started = flow(project, "db", "start")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        [pid] = server_pids(project)
        with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
            uid = int(next(line for line in handle if line.startswith("Uid:")).split()[1])
        assert uid == pwd.getpwnam("nobody").pw_uid  # the project is root's, so `nobody`
        data = os.stat(os.path.join(project, ".flow", "db", "data"))
        assert (data.st_uid, data.st_mode & 0o777) == (uid, 0o700)
        assert flow(project, "build", "one(2012-01-01)").returncode == 0
        assert query(project, "SELECT current_user, count(*) FROM ones") == "flow|1"
    finally:
        flow(project, "db", "stop")
    after = os.stat(project)
    assert (after.st_uid, after.st_mode) == (before.st_uid, before.st_mode)
    assert server_pids(project) == []


@root_only
def test_as_root_in_a_project_of_another_account_the_server_runs_as_that_owner(project):
    import pwd

    owner = pwd.getpwnam("daemon")  # an existing unprivileged account (Debian's base system has it)
    write(project, "Flowfile", ONE_TABLE)
    os.chown(project, owner.pw_uid, owner.pw_gid)
    result = flow(project, "build", "one(2012-01-01)")
    assert result.returncode == 0, result.stdout + result.stderr
    data = os.stat(os.path.join(project, ".flow", "db", "data"))
    assert data.st_uid == owner.pw_uid
    assert query(project, "SELECT count(*) FROM ones") == "1"
    assert server_pids(project) == []


@root_only
def test_as_root_a_project_the_account_cannot_reach_is_one_line_saying_what_to_do():
    home = tempfile.mkdtemp(prefix="flow-home-")  # mode 0700, like /root
    try:
        project = os.path.join(home, "project")
        os.mkdir(project)
        write(project, "Flowfile", ONE_TABLE)
        result = flow(project, "build", "one(2012-01-01)")
        assert result.returncode == 1
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert f"cannot enter {home} (mode 0700)" in lines[0]
        assert "run flow as a regular user" in lines[0] and "FLOW_DATABASE_URL" in lines[0]
        assert os.stat(home).st_mode & 0o777 == 0o700  # nothing outside .flow was changed
        assert server_pids(project) == []
    finally:
        shutil.rmtree(home, ignore_errors=True)


# ---------------------------------------------------------------------------- paths and configuration


def test_a_project_path_too_long_for_a_socket_uses_a_private_directory_under_tmp(project):
    deep = os.path.join(project, "a-rather-long-directory-name-" * 3)
    os.makedirs(deep)
    write(deep, "Flowfile", ONE_TABLE)
    url = flow(deep, "db", "url").stdout.strip()
    assert "host=/tmp/flow-pg-" in url
    result = flow(deep, "build", "one(2012-01-01)")
    assert result.returncode == 0, result.stdout + result.stderr
    socket_dir = url.split("host=")[1]
    assert os.stat(socket_dir).st_mode & 0o777 == 0o700
    assert query(deep, "SELECT count(*) FROM ones") == "1"
    shutil.rmtree(socket_dir, ignore_errors=True)


def test_configured_database_wins_over_the_embedded_one(monkeypatch, tmp_path):
    from flow.runtime.db import configured_dsn, resolve_dsn
    from flow.runtime.embedded_db import url

    for name in ("FLOW_DATABASE_URL", "PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE"):
        monkeypatch.delenv(name, raising=False)
    flow_dir = str(tmp_path / ".flow")
    assert configured_dsn(None) is None
    assert resolve_dsn(None, flow_dir) == url(flow_dir)
    assert resolve_dsn("postgresql:///flowfile", flow_dir) == "postgresql:///flowfile"
    monkeypatch.setenv("PGSERVICE", "warehouse")
    assert resolve_dsn(None, flow_dir) == ""  # libpq's defaults: the service
    monkeypatch.setenv("FLOW_DATABASE_URL", "postgresql:///env")
    assert resolve_dsn("postgresql:///flowfile", flow_dir) == "postgresql:///env"


def test_socket_directory_is_in_the_project_unless_the_path_is_too_long():
    from flow.runtime.embedded_db import MAX_SOCKET_PATH, SOCKET_NAME, socket_directory

    assert socket_directory("/srv/p/.flow") == "/srv/p/.flow/db/run"
    long_dir = "/srv/" + "x" * 100 + "/.flow"
    short = socket_directory(long_dir)
    assert short.startswith("/tmp/flow-pg-") and len(os.path.join(short, SOCKET_NAME)) <= MAX_SOCKET_PATH
    assert socket_directory(long_dir) == short != socket_directory("/srv/" + "y" * 100 + "/.flow")


def test_a_data_directory_that_is_not_a_cluster_is_one_line_and_left_alone(project):
    write(project, "Flowfile", ONE_TABLE)
    data = os.path.join(project, ".flow", "db", "data")
    os.makedirs(data)
    write(data, "notes.txt", "mine\n")
    result = flow(project, "build", "one(2012-01-01)")
    assert result.returncode == 1
    assert result.stderr.strip() == (f"error: {data} is not a PostgreSQL cluster: move it away, or delete "
                                     f"{project}/.flow/db to start the embedded database afresh")
    assert os.listdir(data) == ["notes.txt"]
