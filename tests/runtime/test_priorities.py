"""Priorities: effective priorities over a small graph, and the ready queue's order (no disk)."""

import random
from collections import deque

from flow.runtime.plan import Plan
from flow.runtime.priorities import ReadyByPriority, effective_priorities


class Info:
    def __init__(self, priority):
        self.priority = priority


class Unit:
    """A stand-in for a task: a name and its rule's priority."""

    def __init__(self, name, priority=0):
        self.name = name
        self.info = Info(priority)

    def __repr__(self):
        return self.name


def graph(edges):
    """edges: unit -> its requirements; returns (requirements, dependents) functions."""
    dependents = {}
    for unit, requirements in edges.items():
        dependents.setdefault(unit, [])
        for requirement in requirements:
            dependents.setdefault(requirement, []).append(unit)
    return (lambda u: edges.get(u, [])), (lambda u: dependents.get(u, []))


def test_the_highest_dependent_priority_reaches_every_requirement_and_never_lowers_one():
    raw, clean, report, backlog, loud = (Unit("raw"), Unit("clean", -3), Unit("report"), Unit("backlog"),
                                         Unit("loud", 7))
    requirements, dependents = graph({report: [clean], clean: [raw], backlog: [raw], loud: []})
    priority = effective_priorities([raw, clean, report, backlog, loud], requirements, {report: 4})
    # report's target gives it 4; clean (its rule says -3) and raw are needed for it: 4 too
    assert priority == {raw: 4, clean: 4, report: 4, backlog: 0, loud: 7}


def test_requirements_outside_the_plan_are_left_alone():
    done, todo = Unit("done"), Unit("todo", 2)
    requirements, dependents = graph({todo: [done]})
    assert effective_priorities([todo], requirements, {}) == {todo: 2}


def test_equal_priorities_give_exactly_the_deque_order():
    rng = random.Random(14)
    for _ in range(50):
        queue, heap = deque(), ReadyByPriority({})
        for step in range(200):
            choice = rng.random()
            if choice < 0.4:
                queue.append(step)
                heap.append(step)
            elif choice < 0.7:
                queue.appendleft(step)
                heap.appendleft(step)
            elif queue:
                assert heap[0] == queue[0]
                assert heap.popleft() == queue.popleft()
        assert [heap.popleft() for _ in range(len(heap))] == list(queue)


def test_plan_hands_out_higher_priorities_first_and_new_dependents_before_their_equals():
    a, b, c, top = Unit("a"), Unit("b"), Unit("c", 5), Unit("top")
    requirements, dependents = graph({top: [a]})
    units = [a, b, c, top]
    plan = Plan(units, requirements, dependents, priority=effective_priorities(units, requirements, {}))
    assert plan.next_ready() is c
    assert plan.next_ready() is a
    plan.finished(a, True)
    assert plan.next_ready() is top  # ready after b, but to the front of its priority, as without priorities
    assert plan.next_ready() is b
    assert plan.next_ready() is None


def test_a_failure_removes_what_it_blocks_from_the_prioritised_queue():
    x, y, a, b = Unit("x", 1), Unit("y"), Unit("a"), Unit("b")
    requirements, dependents = graph({a: [x], b: [y]})
    units = [x, y, a, b]
    plan = Plan(units, requirements, dependents, keep_going=True,
                priority=effective_priorities(units, requirements, {}))
    assert plan.next_ready() is x  # x outranks y
    plan.finished(x, False)
    assert plan.blocked == {a: x}
    assert plan.next_ready() is y
    plan.finished(y, True)
    assert plan.next_ready() is b
    plan.finished(b, True)
    assert plan.done()


def test_random_graphs_match_the_definition():
    # the highest of its own priority and that of everything that needs it, directly or not
    rng = random.Random(7)
    for _ in range(100):
        units = [Unit(f"u{i}", rng.choice([-2, 0, 0, 0, 1, 5])) for i in range(30)]
        edges = {u: [r for r in units[i + 1:] if rng.random() < 0.1] for i, u in enumerate(units)}
        requirements, dependents = graph(edges)
        roots = {u: rng.choice([3, 9]) for u in rng.sample(units, 3)}
        own = {u: max(u.info.priority, roots.get(u, u.info.priority)) for u in units}

        expected = {u: max(own[d] for d in _needing(u, dependents)) for u in units}
        assert effective_priorities(units, requirements, roots) == expected


def _needing(unit, dependents) -> set:
    """The unit and everything that needs it, directly or not."""
    seen, todo = {unit}, [unit]
    while todo:
        for dependent in dependents(todo.pop()):
            if dependent not in seen:
                seen.add(dependent)
                todo.append(dependent)
    return seen


def test_the_first_ready_tasks_are_seen_in_the_order_they_will_start_and_stay_queued():
    units = [Unit(f"u{i}", priority) for i, priority in enumerate([0, 3, 1, 3, 0, 2, 1])]
    requirements, dependents = graph({})
    for priority in (effective_priorities(units, requirements, {}), None):  # the heap, then the deque
        plan = Plan(units, requirements, dependents, priority=priority)
        seen = plan.first_ready(4)
        assert plan.first_ready(100) == plan.first_ready(len(units))  # no more than there are
        started = [plan.next_ready() for _ in units]
        assert seen == started[:4]
        assert plan.first_ready(4) == []
