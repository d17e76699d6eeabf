"""Plan tests in Ninja's style: a small graph, then the ready tasks as others finish. No disk."""

from flow.runtime.plan import Plan, run_order


def make_plan(edges, to_run=None, missing=(), keep_going=False):
    """edges: task -> list of requirements. Tasks are plain strings."""
    nodes = set(edges) | {r for rs in edges.values() for r in rs}
    dependents = {n: [] for n in nodes}
    for task, requirements in edges.items():
        for requirement in requirements:
            dependents[requirement].append(task)
    to_run = to_run if to_run is not None else sorted(n for n in nodes if n not in missing)
    return Plan(to_run, lambda t: edges.get(t, []), lambda t: dependents[t], missing, keep_going)


def drain(plan):
    ready = []
    while True:
        task = plan.next_ready()
        if task is None:
            return ready
        ready.append(task)


def test_leaves_are_ready_first_and_dependents_follow_as_requirements_finish():
    plan = make_plan({"agg": ["d1", "d2"], "top": ["agg"]})
    assert drain(plan) == ["d1", "d2"]
    plan.finished("d1", True)
    assert drain(plan) == []
    plan.finished("d2", True)
    assert drain(plan) == ["agg"]
    plan.finished("agg", True)
    assert drain(plan) == ["top"]
    plan.finished("top", True)
    assert plan.done()
    assert plan.finished_ok == ["d1", "d2", "agg", "top"]


def test_complete_requirements_not_in_the_plan_do_not_hold_anything_back():
    # d1 is complete (not in to_run): agg waits only for d2
    plan = make_plan({"agg": ["d1", "d2"]}, to_run=["agg", "d2"])
    assert drain(plan) == ["d2"]
    plan.finished("d2", True)
    assert drain(plan) == ["agg"]


def test_a_failure_stops_new_starts_without_keep_going():
    plan = make_plan({"a": ["x"], "b": ["y"]}, to_run=["x", "y", "a", "b"])
    first = plan.next_ready()
    assert first == "x"
    plan.finished("x", False)
    assert plan.next_ready() is None
    assert plan.blocked == {"a": "x"}
    assert plan.done()
    assert sorted(plan.not_started()) == ["b", "y"]


def test_keep_going_runs_everything_that_does_not_need_the_failure():
    plan = make_plan({"a": ["x"], "b": ["y"], "top": ["a", "b"]}, to_run=["x", "y", "a", "b", "top"],
                     keep_going=True)
    assert drain(plan) == ["x", "y"]
    plan.finished("x", False)
    plan.finished("y", True)
    assert drain(plan) == ["b"]
    plan.finished("b", True)
    assert drain(plan) == []
    assert plan.blocked == {"a": "x", "top": "x"}
    assert plan.done()


def test_missing_external_blocks_its_dependents_from_the_start():
    plan = make_plan({"agg": ["raw1", "d2"], "top": ["agg"], "other": ["d3"]},
                     to_run=["d2", "d3", "agg", "top", "other"], missing=["raw1"])
    assert plan.blocked == {"agg": "raw1", "top": "raw1"}
    assert drain(plan) == ["d2", "d3"]
    plan.finished("d2", True)
    plan.finished("d3", True)
    assert drain(plan) == ["other"]


def test_finished_chains_go_before_new_leaves():
    # when a month's days are done, its aggregate runs before the next month's days
    plan = make_plan({"m1": ["a1"], "m2": ["a2"]}, to_run=["a1", "a2", "m1", "m2"])
    assert plan.next_ready() == "a1"
    plan.finished("a1", True)
    assert plan.next_ready() == "m1"


def test_put_back_task_is_offered_again():
    plan = make_plan({"a": []}, to_run=["a"])
    task = plan.next_ready()
    plan.put_back(task)
    assert plan.next_ready() == "a"


def test_run_order_puts_requirements_first_and_each_task_once():
    edges = {"top": ["agg"], "agg": ["d1", "d2"], "d2": ["d1"]}
    order = run_order(["top", "agg", "d1", "d2"], lambda t: edges.get(t, []))
    assert sorted(order) == ["agg", "d1", "d2", "top"]
    for task, requirements in edges.items():
        for requirement in requirements:
            assert order.index(requirement) < order.index(task)


def test_run_order_is_the_depth_first_order_whatever_the_shape():
    # months of days (ordered with their days at once), a day shared by two months, a requirement
    # not to run, one listed twice, and a chain: the order is requirements first, depth first
    edges = {
        "top1": ["m1"], "m1": ["d1", "d2", "d3"],
        "top2": ["m2"], "m2": ["d3", "d4", "x"],
        "m3": ["d5", "d5", "d6"],
        "c1": ["c2"], "c2": ["c3", "d6"], "c3": [],
    }
    to_run = ["top1", "top2", "m3", "c1", "m1", "m2", "c2", "c3", "d1", "d2", "d3", "d4", "d5", "d6"]

    def depth_first():
        order, seen = [], set()

        def visit(task):
            seen.add(task)
            for child in edges.get(task, []):
                if child in to_run and child not in seen:
                    visit(child)
            order.append(task)

        for task in to_run:
            if task not in seen:
                visit(task)
        return order

    assert run_order(to_run, lambda t: edges.get(t)) == depth_first() == [
        "d1", "d2", "d3", "m1", "top1", "d4", "m2", "top2", "d5", "d6", "m3", "c3", "c2", "c1"]
    # when every requirement is to run (x too), the order is the same without the table of tasks to run
    to_run.append("x")
    assert run_order(to_run, lambda t: edges.get(t), closed=True) == run_order(to_run, lambda t: edges.get(t)) \
        == depth_first()
