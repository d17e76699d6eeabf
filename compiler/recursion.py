"""Rules that require themselves: which can (so the graph checks for cycles), and which can never stop."""

from __future__ import annotations

from . import nodes as n
from .errors import Diagnostic, error
from .visitor import always_called, calls, free_names


def strongly_connected(graph: dict) -> list:
    """The strongly connected components of `graph` (node -> successors), each a list; Tarjan's, iterative."""
    index_of: dict = {}
    low: dict = {}
    on_stack: set = set()
    stack: list = []
    components = []
    counter = 0
    for root in graph:
        if root in index_of:
            continue
        work = [(root, iter(graph.get(root, ())))]
        index_of[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index_of:
                    index_of[successor] = low[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(graph.get(successor, ()))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index_of[successor])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index_of[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def _in_cycles(graph: dict) -> list:
    """The components of `graph` that hold a cycle: more than one node, or a node that reaches itself."""
    return [c for c in strongly_connected(graph) if len(c) > 1 or c[0] in graph.get(c[0], ())]


def recursive_rules(rules) -> frozenset:
    """Rules that can reach themselves through requires (day - 1 chains, or mistakes)."""
    names = {rule.name for rule in rules}
    graph = {rule.name: {callee for callee, _ in calls(rule.requires, names)} for rule in rules}
    return frozenset(name for component in _in_cycles(graph) for name in component)


def _advances(call: n.FuncCall) -> bool:
    """Whether a call may ask for new values: an argument computed from a parameter (`date - 1`).

    Calls that only pass names through, or constants, can reach finitely many tasks: if those
    require each other the task graph reports the cycle, with its path.
    """
    arguments = list(call.args) + [value for _, value, _ in call.kwargs]
    return any(not isinstance(arg, n.Name) and free_names([arg]) for arg in arguments)


def endless_requirements(rules) -> list[Diagnostic]:
    """E110 for rules that require themselves on new values with no condition to stop: the chain has no end.

    A build would follow such a chain until the calendar runs out (year 1) before saying anything.
    """
    by_name = {rule.name: rule for rule in rules}
    graph: dict = {}
    advancing: dict = {}  # (caller, callee) -> the first call that advances, if any
    for rule in rules:
        if rule.external:  # flow never follows an external rule's requirements
            continue
        graph[rule.name] = set()
        for call in always_called(rule.requires, by_name):
            if by_name[call.func].external:
                continue
            graph[rule.name].add(call.func)
            if _advances(call):
                advancing.setdefault((rule.name, call.func), call)
    found = []
    for component in _in_cycles(graph):
        members = set(component)
        edges = [(call.span.line, call.span.column, caller, call) for (caller, callee), call in advancing.items()
                 if caller in members and callee in members]
        if not edges:
            continue  # only names passed around: a task cycle, reported with its path when built
        _, _, caller, call = min(edges, key=lambda edge: edge[:2])
        chain = _chain(graph, members, caller, call.func)
        through = f" through {', '.join(repr(r) for r in chain[1:-1])}" if len(chain) > 2 else ""
        params = by_name[caller].params
        stop = f"{params[0].name} > ..." if params else "..."
        found.append(error(
            "E110", f"rule '{caller}' requires itself without end{through}: "
            f"{' -> '.join(chain)}, and no condition stops the chain", call.span,
            hint=f"require it only while a condition holds: {call.func}(...) if {stop} else []"))
    return found


def _chain(graph: dict, members: set, start: str, first: str) -> list:
    """The shortest cycle start -> first -> ... -> start within one component, as rule names."""
    if first == start:
        return [start, start]
    previous = {first: None}
    level = [first]
    while level:
        following = []
        for node in level:
            for successor in sorted(graph.get(node, ())):
                if successor == start:
                    path = []
                    while node is not None:
                        path.append(node)
                        node = previous[node]
                    return [start] + path[::-1] + [start]
                if successor in members and successor not in previous:
                    previous[successor] = node
                    following.append(successor)
        level = following
    return [start, first, start]
