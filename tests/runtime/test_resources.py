"""Resources: limits read from text, the pool's counting and parking, and processes sharing limits through a store."""

from __future__ import annotations

import datetime
import textwrap

import pytest
from flow.compiler.checks import check
from flow.compiler.graph import TaskFactory, build_graph
from flow.compiler.parser import parse
from flow.runtime.commands.build import make_runners
from flow.runtime.events import Events, ReporterListener
from flow.runtime.executor import Executor
from flow.runtime.plan import Plan
from flow.runtime.resources import ResourceError, ResourcePool, limits_in_force, parse_limits
from flow.runtime.state import StateStore
from flow.runtime.targets import Targets

from tests.runtime.test_executor import FakeReporter, settings, workdir  # noqa: F401 - the fixture


class Info:
    def __init__(self, name, resources):
        self.name = name
        self.resources = resources


class Unit:
    def __init__(self, id, resources=(), rule=None):
        self.id = id
        self.info = Info(rule or id, tuple(resources))

    def __repr__(self):
        return self.id


class SharedStore(StateStore):
    """A fake coordinator: counts what every pool (every 'process') holds against the limits it is given."""

    def __init__(self):
        self.held = {}  # holder -> amounts
        self.asks = 0
        self.most = {}  # resource -> the most held at once
        self.locks = set()

    def try_lock(self, key):
        return True

    def unlock(self, key):
        pass

    def try_take_resources(self, holder, amounts, limits, priority=0):
        self.asks += 1
        for name, amount in amounts.items():
            used = sum(h.get(name, 0) for h in self.held.values())
            if name in limits and used + amount > limits[name]:
                return False
        self.held[holder] = dict(amounts)
        for name in amounts:
            self.most[name] = max(self.most.get(name, 0), sum(h.get(name, 0) for h in self.held.values()))
        return True

    def give_back_resources(self, holder):
        self.held.pop(holder, None)


def test_limits_come_from_the_flowfile_then_the_environment_then_the_option():
    limits, sources = limits_in_force({"postgres": 1, "memory": 8}, {"FLOW_RESOURCES": "postgres=2, gpu=1"},
                                      "gpu=0")
    assert limits == {"postgres": 2, "memory": 8, "gpu": 0}
    assert sources == {"postgres": "FLOW_RESOURCES", "memory": "the Flowfile's resources: block",
                       "gpu": "--resources"}


@pytest.mark.parametrize("text", ["postgres", "postgres=-1", "postgres=1.5", "9=1", "postgres=1;memory=2"])
def test_unreadable_limits_say_what_is_wrong(text):
    with pytest.raises(ResourceError, match="is not name=N"):
        parse_limits(text, "FLOW_RESOURCES")


def test_a_full_resource_parks_its_tasks_until_one_is_given_back():
    pool = ResourcePool({"postgres": 2})
    first, second, third = (Unit(f"q{i}", [("postgres", 1), ("memory", 5)], "q") for i in range(3))
    free = Unit("free", [("memory", 100)])  # memory has no limit: not counted, never waits
    assert pool.take(first) and pool.take(second)
    assert not pool.take(third)
    assert pool.take(free)
    assert pool.waiting and pool.in_use == {"postgres": 2}
    assert pool.retry(4) == []  # nothing given back yet
    pool.give_back(first)
    assert pool.retry(4) == [third]
    assert not pool.waiting and pool.in_use == {"postgres": 2} and pool.peak == {"postgres": 2}


def test_retry_hands_back_no_more_than_there_is_room_for():
    pool = ResourcePool({"db": 3})
    holder = Unit("big", [("db", 3)])
    small = [Unit(f"s{i}", [("db", 1)], "s") for i in range(3)]
    assert pool.take(holder)
    assert not any(pool.take(unit) for unit in small)
    pool.give_back(holder)
    assert pool.retry(1) == [small[0]]  # one free slot of -j: the others stay parked, in order
    assert pool.retry(5) == small[1:]


def test_two_processes_share_a_limit_of_1_only_through_the_store():
    store = SharedStore()
    here, there = ResourcePool({"postgres": 1}, store, poll=0.0), ResourcePool({"postgres": 1}, store, poll=0.0)
    mine, theirs, later = Unit("a", [("postgres", 1)]), Unit("b", [("postgres", 1)]), Unit("c", [("postgres", 1)])
    assert there.take(theirs)
    assert not here.take(mine) and not here.take(later)  # the store said no: both poll the store
    assert store.asks == 2  # 'later' was not asked about: the store had just refused its resource
    assert here.wake_at() is not None
    asks = store.asks
    assert here.retry(4) == [] and store.asks == asks + 1  # one question per poll for one resource, not one per task
    there.give_back(theirs)
    assert here.retry(4) == [mine]
    assert here.retry(4) == []  # 'later' is now full here: parked behind the local count, not polling
    assert here.wake_at() is None
    here.give_back(mine)
    assert here.retry(4) == [later]
    assert store.most == {"postgres": 1}


class OtherProcess(SharedStore):
    """Another process holds postgres=1 and gives it back after refusing this build five times."""

    def __init__(self):
        super().__init__()
        self.held["other-host:42:load(2012-01-01)"] = {"postgres": 1}

    def try_take_resources(self, holder, amounts, limits, priority=0):
        taken = super().try_take_resources(holder, amounts, limits, priority)
        if not taken and self.asks == 5:
            self.held.clear()
        return taken


def test_the_executor_waits_for_the_store_without_spinning_then_runs_everything(workdir):  # noqa: F811
    directory, module = workdir
    checked = check(parse(textwrap.dedent(f"""
        resources: postgres = 1

        rule query(date: date):
            output: "out/query_{{date}}"
            resources: postgres=1
            python: {module}.ok
    """)))
    factory = TaskFactory(checked)
    roots = [factory.from_params("query", {"date": datetime.date(2012, 1, day)}) for day in (1, 2, 3)]
    targets = Targets(str(directory))
    graph = build_graph(factory, roots, targets.complete)
    plan = Plan(list(graph.graph), graph.graph.succ.__getitem__, graph.graph.pred.__getitem__)
    store = OtherProcess()
    pool = ResourcePool(checked.resources, store, poll=0.05)
    executor = Executor(plan, make_runners(checked, targets, 4, str(directory), str(directory / ".flow" / "tmp")),
                        targets, store, Events(ReporterListener(FakeReporter())), settings(directory, 4),
                        requirements=factory.requirements, resources=pool)
    outcome = executor.run()
    assert sorted(t.id for t in outcome.ran) == ["query(2012-01-01)", "query(2012-01-02)", "query(2012-01-03)"]
    # refused once per task as each came up, then once per poll for all three together (two polls),
    # then one ask per task; while this build's own count was full it never asked the store at all
    assert store.asks == 3 + 2 + 3
    assert store.most == {"postgres": 1} and store.held == {}


def test_a_higher_priority_parked_later_is_handed_back_first():
    holder = Unit("holder", [("db", 1)])
    early, later, urgent = (Unit(name, [("db", 1)], "q") for name in ("early", "later", "urgent"))
    pool = ResourcePool({"db": 1}, priority={urgent: 10, early: 1, later: 1})
    assert pool.take(holder)
    assert not pool.take(early) and not pool.take(later) and not pool.take(urgent)  # urgent became ready last
    pool.give_back(holder)
    assert pool.retry(1) == [urgent]
    pool.give_back(urgent)
    assert pool.retry(1) == [early]  # equal priorities: the longest waiting
    pool.give_back(early)
    assert pool.retry(1) == [later]
