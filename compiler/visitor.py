"""One walker for expression nodes: their children, a visitor base class, and the walks checks, lint and graph share.

Modelled on Jinja2's `Node.iter_child_nodes` and `NodeVisitor`: a visitor has a `visit_<Class>`
method for the nodes it cares about, and `generic_visit` walks into every other node's children.
"""

from __future__ import annotations

from typing import Iterator

from . import nodes as n

# The fields of each node that hold child expressions, in the order a walk visits them
# (a comprehension's iterable first: its variable is bound only in the element and condition).
_CHILD_FIELDS = {
    n.Literal: (),
    n.Name: (),
    n.Attribute: ("value",),
    n.BinOp: ("left", "right"),
    n.Not: ("value",),
    n.SpanRange: ("first", "last"),
    n.FuncCall: ("args", "kwargs"),
    n.Comprehension: ("iterable", "element", "condition"),
    n.Conditional: ("condition", "then", "otherwise"),
    n.ListExpr: ("items",),
}


def iter_child_nodes(node) -> Iterator:
    """The direct child expressions of `node`, in walk order; nothing for leaves and non-nodes."""
    for name in _CHILD_FIELDS.get(type(node), ()):
        value = getattr(node, name)
        if value is None:
            continue
        if name == "kwargs":
            for _keyword, child, _span in value:
                yield child
        elif isinstance(value, tuple):
            yield from value
        else:
            yield value


class NodeVisitor:
    """Walk an expression tree: `visit` calls `visit_<ClassName>(node, *context)` or `generic_visit`."""

    def visit(self, node, *context):
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            return self.generic_visit(node, *context)
        return method(node, *context)

    def generic_visit(self, node, *context):
        for child in iter_child_nodes(node):
            self.visit(child, *context)


def find_all(exprs, node_type) -> Iterator:
    """Every node of `node_type` in the expressions, in walk order."""
    for expr, _bound, _conditional in walk(exprs):
        if isinstance(expr, node_type):
            yield expr


class _ContextWalker(NodeVisitor):
    """Collect (node, names bound by enclosing comprehensions, under a conditional branch) for each node."""

    def __init__(self):
        self.found: list = []

    def generic_visit(self, node, bound, conditional):
        self.found.append((node, bound, conditional))
        super().generic_visit(node, bound, conditional)

    def visit_Comprehension(self, node: n.Comprehension, bound, conditional):
        self.found.append((node, bound, conditional))
        self.visit(node.iterable, bound, conditional)
        inner = bound | {node.var}
        self.visit(node.element, inner, conditional)
        if node.condition is not None:
            self.visit(node.condition, inner, conditional)

    def visit_Conditional(self, node: n.Conditional, bound, conditional):
        self.found.append((node, bound, conditional))
        self.visit(node.condition, bound, conditional)
        self.visit(node.then, bound, True)
        self.visit(node.otherwise, bound, True)


def walk(exprs) -> list:
    """(node, bound names, only under a condition) for every node of the expressions, parents first."""
    walker = _ContextWalker()
    for expr in exprs:
        if expr is not None:
            walker.visit(expr, frozenset(), False)
    return walker.found


def free_names(exprs) -> set:
    """Names used in expressions, leaving out comprehension variables."""
    return {node.name for node, bound, _ in walk(exprs) if isinstance(node, n.Name) and node.name not in bound}


def calls(exprs, rule_names) -> Iterator[tuple[str, bool]]:
    """(rule name, only under a condition) for every rule call in requirement expressions."""
    for node, _bound, conditional in walk(exprs):
        if isinstance(node, n.FuncCall) and node.func in rule_names:
            yield node.func, conditional


class _AlwaysCalled(NodeVisitor):
    """The rule calls a requirement makes whatever the values: not under a condition or in a comprehension."""

    def __init__(self, rule_names):
        self.rule_names = rule_names
        self.found: list = []

    def visit_FuncCall(self, node: n.FuncCall):
        if node.func in self.rule_names:
            self.found.append(node)
        self.generic_visit(node)

    def visit_Conditional(self, node):
        pass  # either branch may be the one taken

    def visit_Comprehension(self, node):
        pass  # the iterable may be empty, the filter may be false


def always_called(exprs, rule_names) -> list:
    """The FuncCall nodes of rule calls that every evaluation of the expressions makes."""
    walker = _AlwaysCalled(rule_names)
    for expr in exprs:
        walker.visit(expr)
    return walker.found
