"""The coordinator store on a real PostgreSQL: claims and leases, fencing, resources, shared history, failures."""

from __future__ import annotations

import threading
import time

import pytest
from flow.runtime.history import StateError
from flow.runtime.state import open_state
from flow.runtime.state.coordinator import REFRESH_SECONDS, PostgresState
from flow.runtime.state.local import LocalState

DEADLINE = 60.0


class Info:
    param_names = ("date",)


class Task:
    """What the store reads of a task: id, rule name, parameter values, output."""

    info = Info()

    def __init__(self, day: int):
        self.id = f"day(2012-06-{day:02d})"
        self.name = "day"
        self.values = (f"2012-06-{day:02d}",)
        self.output = f"out/day_{day}.txt"


class Clock:
    """A monotonic clock the test moves, so a refused claim is asked about again without waiting."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def stores(pg_dsn):
    made = []

    def make(**options):
        store = PostgresState(pg_dsn, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def kill(store: PostgresState) -> None:
    """What a SIGKILL leaves: no renewal, no release, no goodbye."""
    store._renewer.stop()
    store._renewer = None
    store._drop()
    store.owner = None
    store._held.clear()
    store._releases.clear()


def wait_for(condition, what: str):
    end = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_claimed_task_is_refused_to_another_process_until_released(stores):
    clock = Clock()
    a, b = stores(), stores(clock=clock)
    assert a.try_lock("/data/out/day_1.txt")
    assert a.try_lock("/data/out/day_1.txt")  # its own claim, again
    assert not b.try_lock("/data/out/day_1.txt")
    assert b.try_lock("/data/out/day_2.txt")
    a.unlock("/data/out/day_1.txt")
    assert not b.try_lock("/data/out/day_1.txt")  # the release waits for a's next batch
    a.flush_if_due()
    a._flush()
    assert not b.try_lock("/data/out/day_1.txt")  # b asks again only every REFRESH_SECONDS
    clock.now += REFRESH_SECONDS
    assert b.try_lock("/data/out/day_1.txt")


def test_the_tasks_of_a_dead_process_are_taken_over_when_its_lease_ends_and_its_late_release_is_fenced(stores):
    a, b = stores(lease=1.0), stores(lease=30.0)
    assert a.try_lock("k1")
    held_by_a = a.owner
    kill(a)
    a.owner = held_by_a
    a._held["k1"] = held_by_a  # the process was only stalled: it comes back and releases
    assert not b.try_lock("k1")
    wait_for(lambda: b.try_lock("k1"), "b to take over k1 after a's lease")
    a.unlock("k1")
    a._flush()
    assert any("took over" in line and "k1" in line for line in a.warnings())
    c = stores()
    assert not c.try_lock("k1")  # b's claim stood: a could not release it


def test_renewals_keep_a_lease_alive_past_its_length(stores):
    a, b = stores(lease=1.0), stores(clock=Clock())
    assert a.try_lock("long")
    renewed = a._renewer
    # three lease lengths pass while a holds the claim; its renewer pushes the lease forward
    wait_for(lambda: _seconds_since(b, a.owner) >= 3.0, "three lease lengths")
    b._refreshed_at = float("-inf")
    assert not b.try_lock("long")
    assert not renewed.lost


def _seconds_since(store, owner) -> float:
    return store._do(lambda cursor: (cursor.execute(
        "SELECT extract(epoch FROM now() - started) FROM flow_owners WHERE owner = %s", (owner,)),
        cursor.fetchone()[0])[1])


def test_many_processes_creating_the_tables_at_once_do_it_once(pg_url, pg_schema):
    from tests.pg import with_options

    dsn = with_options(pg_url, options=f"-csearch_path={pg_schema}")
    errors, won, stores = [], [], [PostgresState(dsn) for _ in range(6)]

    def claim(store):
        try:
            if store.try_lock("same"):
                won.append(store)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert errors == []
    assert len(won) == 1


def test_history_goes_to_the_coordinator_with_hosts_and_what_runs_now(stores):
    a, reader = stores(), stores()
    run = a.start_run("flow build june", ["month(2012-06)"], {"tasks": 2})
    first, second = Task(1), Task(2)
    assert a.try_lock("k1")
    a.record_start(run, first, 1, time.time())
    a._flush()
    running = reader.running_now()
    assert [(r["task_id"], r["host"]) for r in running] == [(first.id, a.host)]
    a.record(run, first, "done", 1, time.time(), 0.5)
    a.record(run, second, "failed", 1, time.time(), 0.2, "no data for 2012-06-02")
    a.unlock("k1")
    a.finish_run(run, "failed", {"ran": 1, "failed": 1})
    assert reader.running_now() == []
    runs = reader.recent_runs()
    assert runs[0]["id"] == run and runs[0]["status"] == "failed" and runs[0]["host"] == a.host
    assert runs[0]["counts"] == {"ran": 1, "failed": 1}
    failed = reader.failed_attempts(run)
    assert [(f["task_id"], f["error"], f["params"]) for f in failed] == [
        (second.id, "no data for 2012-06-02", {"date": "2012-06-02"})]
    assert reader.last_status([first.id, second.id])[first.id][0] == "done"
    assert reader.built_by([first.id]) == {first.id: a.host}
    assert reader.mean_durations(["day"]) == {"day": pytest.approx(0.5)}
    assert reader.exists()
    assert reader.prune(0) == 1 and reader.recent_runs() == []


def test_a_resource_limit_counts_what_every_live_process_holds(stores):
    a, b = stores(lease=1.0), stores()
    assert a.try_take_resources("day(2012-06-01)", {"postgres": 1}, {"postgres": 1})
    assert not b.try_take_resources("day(2012-06-02)", {"postgres": 1}, {"postgres": 1})
    assert b.try_take_resources("day(2012-06-02)", {"memory": 4}, {"memory": 8})
    assert not b.try_take_resources("day(2012-06-03)", {"memory": 5}, {"memory": 8})
    a.give_back_resources("day(2012-06-01)")
    assert b.try_take_resources("day(2012-06-02)", {"postgres": 1}, {"postgres": 1})
    # a holder that dies stops counting once its lease ends
    assert not a.try_take_resources("day(2012-06-04)", {"postgres": 1}, {"postgres": 1})
    c = stores(lease=1.0)
    assert c.try_take_resources("x", {"slots": 2}, {"slots": 2})
    kill(c)
    assert not b.try_take_resources("y", {"slots": 1}, {"slots": 2})
    wait_for(lambda: b.try_take_resources("y", {"slots": 1}, {"slots": 2}), "c's slots to count no more")


def test_a_process_asking_for_a_resource_at_a_higher_priority_is_served_first(stores):
    low, high, same, dying = stores(), stores(), stores(), stores(lease=1.0)
    db = {"db": 1}
    assert low.try_take_resources("low1", db, db)
    assert not high.try_take_resources("high1", db, db, priority=10)  # full: it waits, at 10
    low.give_back_resources("low1")
    assert not low.try_take_resources("low2", db, db)  # free, but a process waits at a higher priority
    assert high.try_take_resources("high1", db, db, priority=10)  # waiting at 0 does not hold back 10
    high.give_back_resources("high1")
    assert not low.try_take_resources("low2", db, db)  # high took it just now: it is between two tasks
    assert same.try_take_resources("same1", db, db, priority=10)  # an equal priority is not held back
    assert not dying.try_take_resources("top", db, db, priority=20)
    kill(dying)  # it waited at 20, then died: that counts only until its lease ends
    same.give_back_resources("same1")
    assert not same.try_take_resources("same2", db, db, priority=10)
    wait_for(lambda: same.try_take_resources("same2", db, db, priority=10), "the dead waiter to count no more")
    same.close()  # a process that ends takes its asks along
    wait_for(lambda: low.try_take_resources("low2", db, db), "the high-priority process's ask to lapse")


def test_the_base_store_leaves_resource_counting_to_the_executor(tmp_path):
    local = LocalState(str(tmp_path / ".flow"))
    assert local.try_take_resources("t", {"postgres": 5}, {"postgres": 1})
    local.give_back_resources("t")


def test_an_unreachable_coordinator_is_one_line_without_its_password():
    store = PostgresState("postgresql://flow:hunter2secret@127.0.0.1:1/flow", wait=0.0)
    with pytest.raises(StateError) as caught:
        store.start_run("flow build", [], None)
    message = str(caught.value)
    assert message.startswith("the coordinator postgresql://flow:***@127.0.0.1:1/flow cannot be reached: ")
    assert "hunter2secret" not in message and "\n" not in message
    store.close()


def test_open_state_picks_the_coordinator_from_the_environment_or_the_flowfile(tmp_path, monkeypatch, pg_dsn):
    monkeypatch.delenv("FLOW_COORDINATOR_URL", raising=False)
    assert isinstance(open_state(str(tmp_path)), LocalState)
    monkeypatch.setenv("FLOW_TEST_COORD", pg_dsn)
    store = open_state(str(tmp_path), "$FLOW_TEST_COORD")
    assert isinstance(store, PostgresState) and store.dsn == pg_dsn
    monkeypatch.delenv("FLOW_TEST_COORD")
    with pytest.raises(StateError, match=r"coordinator is \$FLOW_TEST_COORD, and FLOW_TEST_COORD is not set"):
        open_state(str(tmp_path), "$FLOW_TEST_COORD")
    monkeypatch.setenv("FLOW_COORDINATOR_URL", pg_dsn)
    assert open_state(str(tmp_path), "postgresql://elsewhere/db").dsn == pg_dsn
    monkeypatch.setenv("FLOW_LEASE_SECONDS", "soon")
    with pytest.raises(StateError, match="FLOW_LEASE_SECONDS must be a number of seconds"):
        open_state(str(tmp_path))


def test_a_process_whose_lease_ran_out_registers_again_and_says_so(stores):
    a = stores(lease=1.0)
    assert a.try_lock("k1")
    first_owner, renewer = a.owner, a._renewer
    # a stall longer than the lease, as the database sees it
    a._do(lambda cursor: cursor.execute("UPDATE flow_owners SET expires = now() - interval '1 second'"
                                        " WHERE owner = %s", (first_owner,)))
    wait_for(lambda: renewer.lost, "the renewer to find the lease gone")
    b = stores()
    assert b.try_lock("k1")  # free for the taking: a's lease ran out
    assert a.try_lock("k2")
    assert a.owner != first_owner
    assert any("lost its lease" in line and "1 task " in line for line in a.warnings())


def test_a_claim_that_another_process_had_says_so_so_the_output_is_checked_again(stores):
    a, b = stores(), stores(clock=Clock())
    assert a.try_lock("s3://bucket/day_1.txt") and not a.taken_over("s3://bucket/day_1.txt")
    a.unlock("s3://bucket/day_1.txt")
    a._flush()
    assert b.try_lock("s3://bucket/day_1.txt") and b.taken_over("s3://bucket/day_1.txt")
    b.unlock("s3://bucket/day_1.txt")
    assert not b.taken_over("s3://bucket/day_1.txt")


def test_refused_tasks_are_asked_about_in_batches_longest_refused_first(stores, monkeypatch):
    from flow.runtime.state import coordinator

    monkeypatch.setattr(coordinator, "REFRESH_BATCH", 2)
    clock = Clock()
    a, b = stores(), stores(clock=clock)
    for key in ("k1", "k2", "k3"):
        assert a.try_lock(key) and not b.try_lock(key)
    a.unlock("k3")
    a._flush()
    clock.now += REFRESH_SECONDS
    assert not b.try_lock("k1") and not b.try_lock("k3")  # k1 and k2 were asked about: still held
    clock.now += REFRESH_SECONDS
    assert b.try_lock("k3")  # its turn came


def rows(store: PostgresState, sql: str) -> list:
    def read(cursor):
        cursor.execute(sql)
        return cursor.fetchall()

    return store._do(read)


def keys(store: PostgresState) -> set:
    return {key for (key,) in rows(store, "SELECT key FROM flow_claims")}


def test_retention_deletes_released_claims_only_once_no_live_plan_can_need_them(stores):
    a, b = stores(), stores()
    for day in (1, 2, 3):
        assert a.try_lock(f"/data/out/day_{day}.txt")
        a.unlock(f"/data/out/day_{day}.txt")
    a._flush()
    assert b.try_lock("/data/out/day_9.txt")  # b is a live process whose plan is from now
    # day_1 was released two hours ago, before any live plan: nothing can need its row
    a._do(lambda cursor: cursor.execute("UPDATE flow_claims SET released = now() - interval '2 hours'"
                                        " WHERE key = '/data/out/day_1.txt'"))
    # day_2 too, but b planned three hours ago and may still hold day_2 as missing
    a._do(lambda cursor: cursor.execute("UPDATE flow_claims SET released = now() - interval '2 hours'"
                                        " WHERE key = '/data/out/day_2.txt'"))
    # day_3 was released a moment ago: a process still planning may need it (not registered yet)
    b._do(lambda cursor: cursor.execute("UPDATE flow_owners SET planned = now() - interval '3 hours'"
                                        " WHERE owner = %s", (b.owner,)))
    b.retain(0, 0, "/nonexistent")
    assert keys(b) == {f"/data/out/day_{day}.txt" for day in (1, 2, 3, 9)}  # b's old plan keeps day_1 and day_2
    b._do(lambda cursor: cursor.execute("UPDATE flow_owners SET planned = now() - interval '1 hour'"
                                        " WHERE owner = %s", (b.owner,)))
    a.retain(0, 0, "/nonexistent")
    assert keys(a) == {f"/data/out/day_{day}.txt" for day in (3, 9)}
    # a claim taken over from such a row's task is fresh again: the output was there when every live plan was made
    assert a.try_lock("/data/out/day_1.txt") and not a.taken_over("/data/out/day_1.txt")


def test_retention_deletes_what_dead_processes_left_and_runs_past_the_limit(stores):
    dead, live = stores(), stores()
    assert dead.try_lock("/data/out/day_1.txt")
    assert dead.try_take_resources("t1", {"postgres": 1}, {"postgres": 1})
    run_ids = [live.start_run("flow build", ["t"]) for _ in range(3)]
    for run_id in run_ids:
        live.record(run_id, Task(1), "done", 1, time.time(), 0.1)
        live.finish_run(run_id, "success", {"done": 1})
    dead_owner = dead.owner
    kill(dead)
    live._do(lambda cursor: cursor.execute("UPDATE flow_owners SET expires = now() - interval '2 hours'"
                                           " WHERE owner = %s", (dead_owner,)))
    assert live.try_lock("/data/out/day_2.txt")  # registers live anew; its plan is from now
    assert live.retain(2, 0, "/nonexistent") == 1
    assert keys(live) == {"/data/out/day_2.txt"}
    assert rows(live, "SELECT count(*) FROM flow_resources") == [(0,)]
    assert rows(live, "SELECT count(*) FROM flow_resource_asks") == [(0,)]
    owners = {owner for (owner,) in rows(live, "SELECT owner FROM flow_owners")}
    assert owners == {live.owner} and dead_owner not in owners
    assert [run["id"] for run in live.recent_runs()] == run_ids[:0:-1]
    assert rows(live, "SELECT count(*) FROM flow_attempts") == [(2,)]


def test_tasks_about_to_start_are_claimed_in_one_round_trip(stores, monkeypatch):
    clock = Clock()
    a, b = stores(clock=clock), stores()
    assert b.try_lock("k2")  # another process holds k2
    assert b.try_lock("k5")
    b.unlock("k5")
    b._flush()  # k5 was b's: whoever claims it next must check its output again
    assert a.try_lock("warm-up")  # a's owner row, once per process
    statements = []
    real_do = a._do
    monkeypatch.setattr(a, "_do", lambda work, **options: statements.append(work) or real_do(work, **options))
    a.claim_ahead(["k1", "k2", "k3", "k4", "k5", "k1"])
    assert len(statements) == 1
    assert all(a.try_lock(key) for key in ("k1", "k3", "k4", "k5")) and len(statements) == 1  # from memory
    assert a.taken_over("k5") and not a.taken_over("k1")
    assert not a.try_lock("k2")  # refused: b holds it
    b.unlock("k2")
    b._flush()
    clock.now += REFRESH_SECONDS
    assert a.try_lock("k2")  # asked again once it is free
