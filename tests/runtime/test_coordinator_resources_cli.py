"""Resource limits and priorities across real `flow build` processes sharing one coordinator.

Each process works in its own copy of the project (as hosts would); all write into one shared output
directory. Actions append one line per event to shared files with O_APPEND (one write each, so lines
of several processes never mix), stamped with time.time(): every process runs on this one host.
"""

from __future__ import annotations

import collections
import os
import signal
import time

import psycopg2
import pytest

from tests.processes import alive
from tests.serving import DEADLINE, SHARED_NOTES, coordinated_hosts, finish, flow, start_flow, table_rows, wait_for

ACTIONS = SHARED_NOTES + '''

def query(date, output):
    started = time.time()
    time.sleep(0.05)  # long enough that two tasks started together would surely overlap
    with open(output, "w") as f:
        f.write(f"{date}\\n")
    _note("spans", f"query({date}) {os.getpid()} {started!r} {time.time()!r}\\n")


def _started(rule, date, output):
    _note("started", f"{rule}({date}) {os.getpid()}\\n")
    time.sleep(0.05)
    with open(output, "w") as f:
        f.write(f"{date}\\n")


def high(date, output):
    _started("high", date, output)


def low(date, output):
    _started("low", date, output)


def _held(rule, date, output):
    # says it started, then holds its resource until the test creates the file "release"
    started = time.time()
    _note("started", f"{rule}({date}) {os.getpid()} {started!r}\\n")
    deadline = time.monotonic() + 120
    while not os.path.exists(os.path.join(SHARED, "release")) and time.monotonic() < deadline:
        time.sleep(0.01)
    with open(output, "w") as f:
        f.write(f"{date}\\n")
    _note("spans", f"{rule}({date}) {os.getpid()} {started!r} {time.time()!r}\\n")


def gated(date, output):
    _held("gated", date, output)


def hold(date, output):
    _held("hold", date, output)
'''

FLOWFILE = '''
resources: db = 1

rule query(date: date):
    output: "{shared}/out/query_{{date}}.txt"
    resources: db=1
    python: acts.query

rule high(date: date):
    output: "{shared}/out/high_{{date}}.txt"
    priority: 10
    python: acts.high

rule low(date: date):
    output: "{shared}/out/low_{{date}}.txt"
    python: acts.low

rule hold(date: date):
    output: "{shared}/out/hold_{{date}}.txt"
    resources: db=1
    python: acts.hold

rule gated(date: date):
    output: "{shared}/out/gated_{{date}}.txt"
    resources: db=1
    python: acts.gated

rule urgent(date: date):
    output: "{shared}/out/urgent_{{date}}.txt"
    resources: db=1
    priority: 10
    python: acts.query

target month: query(d) for d in days(2012-06-01 .. 2012-06-30)
target backfill:
    low(d) for d in days(2012-07-01 .. 2012-07-10)
    high(d) for d in days(2012-07-01 .. 2012-07-10)
target first: hold(2012-08-01)
target later: hold(d) for d in days(2012-08-02 .. 2012-08-03)
target lows: gated(d) for d in days(2012-09-01 .. 2012-09-10)
target urgents: urgent(d) for d in days(2012-09-11 .. 2012-09-15)
'''


@pytest.fixture
def hosts(tmp_path, monkeypatch, pg_dsn):
    """A function making the n-th 'host': its own copy of the project; all share tmp_path/shared and the coordinator."""
    return coordinated_hosts(tmp_path, monkeypatch, pg_dsn, ACTIONS, FLOWFILE)


def read(shared: str, name: str) -> list:
    """The lines of the shared file `name`, split into words ([] before it exists)."""
    path = os.path.join(shared, name)
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [line.split() for line in handle if line.strip()]


def spans(shared: str) -> list:
    """(task, pid, start, end) of every action that ran to its end, by start."""
    return sorted(((task, int(pid), float(start), float(end)) for task, pid, start, end in read(shared, "spans")),
                  key=lambda span: span[2])


def assert_one_at_a_time(found: list) -> None:
    for before, after in zip(found, found[1:]):
        assert after[2] >= before[3], f"{after[0]} (pid {after[1]}) started before {before[0]} (pid {before[1]}) ended"


def test_three_processes_never_pass_a_shared_limit_of_1(hosts):
    projects = [hosts(n) for n in range(3)]
    processes = [start_flow(p, "build", "-j", "2", "month") for p in projects]
    results = [finish(process) for process in processes]
    for code, out, err in results:
        assert code == 0, out + err
        assert "this build was successful" in out
    found = spans(hosts.shared)
    assert collections.Counter(span[0] for span in found) == {f"query(2012-06-{d:02})": 1 for d in range(1, 31)}
    assert_one_at_a_time(found)
    assert len(os.listdir(os.path.join(hosts.shared, "out"))) == 30


def log_claims(dsn: str) -> None:
    """Make the coordinator's tables, and log in `claim_log`, in commit order, every claim a process takes."""
    from flow.runtime.state.coordinator import PostgresState

    store = PostgresState(dsn)
    store._do(lambda cursor: cursor.execute("SELECT 1"))  # the first connection creates the tables
    store.close()
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE claim_log (n bigserial PRIMARY KEY, key text);"
                           "CREATE FUNCTION log_claim() RETURNS trigger LANGUAGE plpgsql AS"
                           " $$ BEGIN INSERT INTO claim_log (key) VALUES (NEW.key); RETURN NULL; END $$;"
                           "CREATE TRIGGER log_claim AFTER INSERT OR UPDATE ON flow_claims FOR EACH ROW"
                           " WHEN (NEW.owner IS NOT NULL) EXECUTE FUNCTION log_claim()")
    finally:
        conn.close()


def first_claims(dsn: str) -> list:
    """The output file names of the claimed tasks, in the order each was first claimed."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT key FROM claim_log ORDER BY n")
            names = [os.path.basename(key) for (key,) in cursor.fetchall()]
    finally:
        conn.close()
    return list(dict.fromkeys(names))


def test_no_low_priority_task_is_claimed_in_any_process_before_every_high_one_is(hosts, pg_dsn):
    log_claims(pg_dsn)
    processes = [start_flow(hosts(n), "build", "-j", "1", "backfill") for n in range(2)]
    results = [finish(process) for process in processes]
    for code, out, err in results:
        assert code == 0, out + err
    started = [task for task, _ in read(hosts.shared, "started")]
    every_task = {f"{rule}(2012-07-{d:02})": 1 for rule in ("high", "low") for d in range(1, 11)}
    assert collections.Counter(started) == every_task
    # the ten high-priority tasks were claimed first, whichever process ran them. (Their actions'
    # first lines may still interleave with a low one's: a process can be descheduled between its
    # claim and its action's start, so claims are what is ordered, and what this reads.)
    claimed = first_claims(pg_dsn)
    assert len(claimed) == 20 and all(name.startswith("high_") for name in claimed[:10]), claimed


def test_a_killed_process_s_resource_is_free_again_when_its_lease_ends(hosts, pg_dsn, monkeypatch):
    monkeypatch.setenv("FLOW_LEASE_SECONDS", "3")
    killed = start_flow(hosts(1), "build", "first")
    wait_for(lambda: len(read(hosts.shared, "started")) == 1, "the first process to take the resource")
    waiting = start_flow(hosts(2), "build", "-j", "2", "later")
    # the second process has registered with the coordinator: it asked for the resource
    wait_for(lambda: table_rows(pg_dsn, "flow_owners") == 2, "the second process to ask for the resource")
    killed_at = time.time()
    os.killpg(killed.pid, signal.SIGKILL)  # the whole host goes, holding db=1
    killed.communicate(timeout=DEADLINE)
    worker = int(read(hosts.shared, "started")[0][1])
    wait_for(lambda: not alive(worker), "the killed build's worker to stop")
    with open(os.path.join(hosts.shared, "release"), "w"):
        pass
    code, out, err = finish(waiting)
    assert code == 0, out + err
    assert "* 2 ran" in out
    found = spans(hosts.shared)
    assert [span[0] for span in found] == ["hold(2012-08-02)", "hold(2012-08-03)"] or \
        [span[0] for span in found] == ["hold(2012-08-03)", "hold(2012-08-02)"], found
    assert_one_at_a_time(found)
    assert all(span[2] > killed_at for span in found), (killed_at, found)  # the dead process's db=1 counted until then
    # the killed task is not lost: a later build runs it
    result = flow(hosts(3), "build", "first")
    assert result.returncode == 0, result.stdout + result.stderr
    assert collections.Counter(span[0] for span in spans(hosts.shared)) == {
        f"hold(2012-08-0{d})": 1 for d in range(1, 4)}


def asking(dsn: str) -> int:
    """How many processes are waiting for a resource they asked for (the coordinator's own table)."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM flow_resource_asks WHERE waiting")
            return cursor.fetchone()[0]
    finally:
        conn.close()


def test_a_higher_priority_process_gets_a_shared_resource_before_a_lower_one_takes_it_again(hosts, pg_dsn):
    low = start_flow(hosts(1), "build", "-j", "1", "lows")
    wait_for(lambda: len(read(hosts.shared, "started")) == 1, "the low-priority build to take db=1")
    high = start_flow(hosts(2), "build", "-j", "1", "urgents")
    wait_for(lambda: asking(pg_dsn) == 1, "the high-priority build to wait for db=1")
    with open(os.path.join(hosts.shared, "release"), "w"):
        pass
    for process in (high, low):
        code, out, err = finish(process)
        assert code == 0, out + err
    found = spans(hosts.shared)
    assert_one_at_a_time(found)
    order = ["urgent" if span[0].startswith("query(") else "low" for span in found]
    assert len(order) == 15
    # the low build's running task ended, then every urgent task ran before the low build's next one
    assert order == ["low"] + ["urgent"] * 5 + ["low"] * 9, found
