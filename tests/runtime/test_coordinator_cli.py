"""Real `flow build` processes sharing one coordinator: each in its own copy of the project and directory (as
hosts would be), writing into one shared output directory. Every action appends a line to a shared file
(O_APPEND) when it has written its output, so a task that ran twice shows twice."""

from __future__ import annotations

import collections
import json
import os
import signal
import textwrap

import psycopg2
import pytest

from tests.processes import alive
from tests.runtime.test_notify_cli import http_server  # noqa: F401 - a fixture
from tests.serving import DEADLINE, SHARED_NOTES, coordinated_hosts, finish, flow, start_flow, table_rows, wait_for

ACTIONS = SHARED_NOTES + '''

def day(date, output):
    time.sleep(0.01)  # a little work, so the processes overlap
    with open(output, "w") as f:
        f.write(f"day {date}\\n")
    _note("runs", f"day({date}) {os.getpid()}\\n")


def month(inputs, output, interval):
    with open(output, "w") as f:
        for path in inputs:
            f.write(open(path).read())
    _note("runs", f"month({interval}) {os.getpid()}\\n")


def held(date, output):
    # says it started, then runs until the test creates the file "release"
    _note("started", f"held({date}) {os.getpid()}\\n")
    deadline = time.monotonic() + 120
    while not os.path.exists(os.path.join(SHARED, "release")) and time.monotonic() < deadline:
        time.sleep(0.01)
    with open(output, "w") as f:
        f.write(f"held {date}\\n")
    _note("runs", f"held({date}) {os.getpid()}\\n")
'''

FLOWFILE = '''
rule day(date: date):
    output: "{shared}/out/day_{{date}}.txt"
    python: acts.day

rule month(interval: interval):
    requires: day(d) for d in interval
    output: "{shared}/out/month_{{interval}}.txt"
    python: acts.month

rule held(date: date):
    output: "{shared}/out/held_{{date}}.txt"
    python: acts.held

target quarter: month(m) for m in months(2012-01 .. 2012-03)
target pair: held(d) for d in days(2012-04-01 .. 2012-04-02)
target four: held(d) for d in days(2012-04-01 .. 2012-04-04)
target six: held(d) for d in days(2012-04-01 .. 2012-04-06)
'''

QUARTER_TASKS = 31 + 29 + 31 + 3


@pytest.fixture
def hosts(tmp_path, monkeypatch, pg_dsn):
    """A function making the n-th 'host': its own copy of the project; all share tmp_path/shared and the coordinator."""
    return coordinated_hosts(tmp_path, monkeypatch, pg_dsn, ACTIONS, FLOWFILE)


def lines(shared: str, name: str) -> collections.Counter:
    """task id -> how many times the shared file `name` says it (started, or ran to the end)."""
    path = os.path.join(shared, name)
    if not os.path.exists(path):
        return collections.Counter()
    with open(path) as handle:
        return collections.Counter(line.split()[0] for line in handle if line.strip())


def test_three_hosts_share_one_backfill_and_each_task_runs_once(hosts):
    projects = [hosts(n) for n in range(3)]
    processes = [start_flow(p, "build", "-j", "2", "quarter") for p in projects]
    results = [finish(process) for process in processes]
    for code, out, err in results:
        assert code == 0, out + err
        assert "this build was successful" in out
    ran = lines(hosts.shared, "runs")
    assert len(ran) == QUARTER_TASKS
    assert set(ran.values()) == {1}, [task for task, n in ran.items() if n > 1]
    assert len(os.listdir(os.path.join(hosts.shared, "out"))) == QUARTER_TASKS
    # every process's run is in the one history, with the host that ran it
    log = flow(projects[0], "log")
    assert log.returncode == 0, log.stderr
    assert log.stdout.count("  success  flow build quarter  on ") == 3, log.stdout
    assert "ran elsewhere" in log.stdout
    status = flow(projects[1], "status", "quarter")
    assert status.returncode == 0, status.stderr
    assert f"month(2012-02)  [complete, ran on {os.uname().nodename}]" in status.stdout


def test_another_process_waits_for_a_running_task_and_its_summary_names_it(hosts, pg_dsn):
    first, second, third = hosts(1), hosts(2), hosts(3)
    holder = start_flow(first, "build", "-j", "2", "pair")
    wait_for(lambda: len(lines(hosts.shared, "started")) == 2, "both held tasks to start")
    host = os.uname().nodename
    # what each process is running now, seen from another host's copy of the project
    wait_for(lambda: all(f"    running on {host}: held(2012-04-0{d})" in flow(third, "log").stdout for d in (1, 2)),
             "flow log to show the running tasks")
    code, out, err = finish(start_flow(third, "build", "--no-wait", "-k", "pair"))
    assert code == 1, out + err
    assert "* 2 were skipped: another flow was running them:" in out and "held(2012-04-01 .. 2012-04-02)" in out
    waiter = start_flow(second, "build", "-j", "2", "pair")
    wait_for(lambda: table_rows(pg_dsn, "flow_runs") == 3, "the waiting build to plan")
    with open(os.path.join(hosts.shared, "release"), "w"):
        pass
    assert finish(holder)[0] == 0
    code, out, err = finish(waiter)
    assert code == 0, out + err
    assert "* 2 were run by another flow process:\n    - 2 held(2012-04-01 .. 2012-04-02)" in out
    assert set(lines(hosts.shared, "runs").values()) == {1}


def test_a_killed_process_s_tasks_are_taken_over_after_its_lease(hosts, monkeypatch):
    monkeypatch.setenv("FLOW_LEASE_SECONDS", "3")
    first, second = hosts(1), hosts(2)
    killed = start_flow(first, "build", "-j", "2", "four")
    started = wait_for(lambda: len(lines(hosts.shared, "started")) == 2 and lines(hosts.shared, "started"),
                       "two held tasks to start")
    os.killpg(killed.pid, signal.SIGKILL)  # the whole host goes: the main process first
    killed.communicate(timeout=DEADLINE)
    with open(os.path.join(hosts.shared, "started")) as handle:
        worker_pids = [int(line.split()[1]) for line in handle]
    wait_for(lambda: not any(alive(pid) for pid in worker_pids), "the killed build's workers to stop")
    assert lines(hosts.shared, "runs") == collections.Counter()
    with open(os.path.join(hosts.shared, "release"), "w"):
        pass
    code, out, err = finish(start_flow(second, "build", "-j", "2", "four"))
    assert code == 0, out + err
    assert "* 4 ran" in out
    assert lines(hosts.shared, "runs") == collections.Counter({f"held(2012-04-0{d})": 1 for d in range(1, 5)})
    # the two tasks the killed process had started ran again (its attempts were lost), no other twice
    assert lines(hosts.shared, "started") == collections.Counter(
        {task: 2 if task in started else 1 for task in (f"held(2012-04-0{d})" for d in range(1, 5))})
    log = flow(second, "log")
    assert "died (its lease on the coordinator ran out)  flow build four" in log.stdout, log.stdout


@pytest.fixture
def own_server():
    from tests.pg import Server

    server = Server().start()
    yield server
    server.stop()


def build_losing_its_coordinator(hosts, own_server, project: str) -> tuple:
    """`flow build six` in `project`, its coordinator stopped while four tasks run; (exit code, stdout, stderr)."""
    build = start_flow(project, "build", "-j", "4", "six")
    wait_for(lambda: len(lines(hosts.shared, "started")) == 4, "four held tasks to start")
    own_server.pause()
    with open(os.path.join(hosts.shared, "release"), "w"):
        pass  # the four end; the next claim finds the coordinator gone
    return finish(build)


def test_a_coordinator_restart_stops_the_build_in_one_line_and_the_rerun_completes(hosts, own_server, monkeypatch):
    monkeypatch.setenv("FLOW_COORDINATOR_URL", own_server.url)
    monkeypatch.setenv("FLOW_COORDINATOR_WAIT", "2")
    project = hosts(1)
    code, out, err = build_losing_its_coordinator(hosts, own_server, project)
    assert code == 1, out + err
    problems = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(problems) == 1, err
    assert problems[0].startswith("error: the coordinator postgresql://flow:***@127.0.0.1:")
    assert "cannot be reached" in problems[0] and "run the build again" in problems[0]
    assert "Traceback" not in err and "flow-test-secret" not in err, err
    own_server.resume()
    code, out, err = finish(start_flow(project, "build", "-j", "4", "six"))
    assert code == 0, out + err
    assert "* 2 ran" in out
    assert lines(hosts.shared, "runs") == collections.Counter({f"held(2012-04-0{d})": 1 for d in range(1, 7)})


def test_a_lost_coordinator_sends_the_builds_failure_notification(hosts, own_server, monkeypatch, http_server):  # noqa: F811
    url, bodies = http_server
    monkeypatch.setenv("FLOW_COORDINATOR_URL", own_server.url)
    monkeypatch.setenv("FLOW_COORDINATOR_WAIT", "2")
    project = hosts(1)
    with open(os.path.join(project, "flow.toml"), "w") as settings:
        settings.write(f'[notify]\nwebhook.url = "{url}/flow"\n')
    code, out, err = build_losing_its_coordinator(hosts, own_server, project)
    own_server.resume()
    assert code == 1, out + err
    assert len(bodies) == 1, err
    payload = bodies[0][2]
    assert payload["event"] == "failure" and payload["exit_code"] == 1
    assert payload["error"].startswith("the coordinator postgresql://flow:***@127.0.0.1:")
    assert "cannot be reached" in payload["error"] and "run the build again" in payload["error"]
    assert payload["text"].splitlines()[1] == f"- stopped: {payload['error']}"
    assert "flow-test-secret" not in json.dumps(payload)


def test_a_coordinator_restart_within_the_wait_is_ridden_out(hosts, own_server, monkeypatch):
    monkeypatch.setenv("FLOW_COORDINATOR_URL", own_server.url)
    monkeypatch.setenv("FLOW_COORDINATOR_WAIT", "120")
    project = hosts(1)
    build = start_flow(project, "build", "-j", "4", "six")
    wait_for(lambda: len(lines(hosts.shared, "started")) == 4, "four held tasks to start")
    own_server.pause()
    with open(os.path.join(hosts.shared, "release"), "w"):
        pass  # the four end while the coordinator is down; the build retries its next claim
    wait_for(lambda: len(lines(hosts.shared, "runs")) == 4, "the four to end")
    own_server.resume()
    code, out, err = finish(build)
    assert code == 0, out + err
    assert "* 6 ran" in out and "warning" not in err
    assert lines(hosts.shared, "runs") == collections.Counter({f"held(2012-04-0{d})": 1 for d in range(1, 7)})


S3_FLOWFILE = '''
rule day(date: date):
    output: "s3://{bucket}/days/day_{{date}}.txt"
    python: acts.day

target month: day(d) for d in days(2012-05-01 .. 2012-05-31)
'''


def test_processes_sharing_s3_outputs_run_each_task_once(hosts, s3_server, s3_bucket, monkeypatch):
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    projects = [hosts(n) for n in range(2)]
    for project in projects:  # object-store outputs skip the re-check after a local lock: a claim that
        with open(os.path.join(project, "Flowfile"), "w") as handle:  # another process had says when it is due
            handle.write(textwrap.dedent(S3_FLOWFILE.format(bucket=s3_bucket)))
    processes = [start_flow(project, "build", "-j", "2", "month") for project in projects]
    for code, out, err in [finish(process) for process in processes]:
        assert code == 0, out + err
    ran = lines(hosts.shared, "runs")
    assert len(ran) == 31 and set(ran.values()) == {1}, ran
    listed = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix="days/")
    assert listed["KeyCount"] == 31


def test_builds_keep_the_coordinator_s_tables_from_growing(hosts, pg_dsn):
    project = hosts(0)
    with open(os.path.join(project, "flow.toml"), "w") as settings:
        settings.write("[history]\nkeep_runs = 1\n")
    first = flow(project, "build", "-j", "2", "quarter")
    assert first.returncode == 0, first.stdout + first.stderr
    conn = psycopg2.connect(pg_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM flow_claims WHERE owner IS NULL")
            assert cursor.fetchone()[0] == QUARTER_TASKS  # released; kept while a plan might need them
            # as if the first build had ended two hours ago
            cursor.execute("UPDATE flow_claims SET released = now() - interval '2 hours'")
        for name in ("day_2012-02-10.txt", "month_2012-02.txt"):
            os.unlink(os.path.join(hosts.shared, "out", name))
        second = flow(project, "build", "quarter")
        assert second.returncode == 0, second.stdout + second.stderr
        with conn.cursor() as cursor:
            cursor.execute("SELECT key FROM flow_claims ORDER BY key")
            assert [os.path.basename(key) for (key,) in cursor.fetchall()] == [
                "day_2012-02-10.txt", "month_2012-02.txt"]  # what the second build ran
            cursor.execute("SELECT count(*) FROM flow_runs")
            assert cursor.fetchone()[0] == 1
            cursor.execute("SELECT count(*) FROM flow_owners")
            assert cursor.fetchone()[0] == 0  # both processes ended and said goodbye
    finally:
        conn.close()
    log = flow(project, "log")
    assert log.returncode == 0, log.stderr
    assert log.stdout.count("flow build quarter") == 1, log.stdout


def test_a_coordinator_made_by_an_older_flow_gets_the_new_columns(hosts, pg_dsn):
    conn = psycopg2.connect(pg_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:  # the tables as flow 0.3 made them, with a released claim
            cursor.execute("CREATE TABLE flow_owners (owner text PRIMARY KEY, host text, pid integer, run_id bigint,"
                           " started timestamptz NOT NULL DEFAULT now(), expires timestamptz NOT NULL);"
                           "CREATE TABLE flow_claims (key text PRIMARY KEY, owner text,"
                           " claimed_at timestamptz NOT NULL DEFAULT now());"
                           "CREATE TABLE flow_resource_asks (resource text, owner text, priority integer NOT NULL,"
                           " waiting boolean NOT NULL, asked timestamptz NOT NULL DEFAULT now(),"
                           " PRIMARY KEY (resource, owner));"
                           "INSERT INTO flow_claims (key, owner) VALUES ('elsewhere', NULL)")
        project = hosts(0)
        build = flow(project, "build", "quarter")
        assert build.returncode == 0, build.stdout + build.stderr
        assert len(lines(hosts.shared, "runs")) == QUARTER_TASKS
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM flow_claims WHERE released IS NOT NULL")
            assert cursor.fetchone()[0] == QUARTER_TASKS + 1
    finally:
        conn.close()


def test_log_and_status_say_at_once_that_the_coordinator_cannot_be_reached(hosts, monkeypatch):
    # a build would wait an hour for it to come back; commands that only read do not wait
    monkeypatch.setenv("FLOW_COORDINATOR_URL", "postgresql://flow:hunter2secret@127.0.0.1:1/flow")
    monkeypatch.setenv("FLOW_COORDINATOR_WAIT", "3600")
    project = hosts(0)
    log = flow(project, "log", timeout=120)
    assert log.returncode == 1, log.stdout + log.stderr
    assert log.stderr.startswith("error: the coordinator postgresql://flow:***@127.0.0.1:1/flow cannot be reached")
    assert len(log.stderr.splitlines()) == 1 and "hunter2secret" not in log.stderr
    status = flow(project, "status", "quarter", timeout=120)
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stderr.startswith("warning: the coordinator postgresql://flow:***@127.0.0.1:1/flow cannot be")
    assert "month(2012-01)  [missing]" in status.stdout
