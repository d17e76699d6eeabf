"""The task or rule graph as dot, mermaid or JSON, and a plain listing of a Flowfile (for `flow graph` and `flow list`).

Edges point from a task (or rule) to what it requires: `[a, b]` means a requires b.
"""

from __future__ import annotations

import json
from typing import Optional

from . import nodes as n
from . import types as t
from .visitor import calls

FORMATS = ("dot", "mermaid", "json")


class Graph:
    """Nodes (id -> {id, rule, params, output}) and edges, each edge marked when only a condition takes it."""

    def __init__(self):
        self.nodes: dict = {}
        self.edges: dict = {}  # (from, to) -> True when conditional

    def add_edge(self, source: str, target: str, conditional: bool = False) -> None:
        self.edges[(source, target)] = self.edges.get((source, target), True) and conditional

    def sorted_nodes(self) -> list:
        return [self.nodes[key] for key in sorted(self.nodes)]

    def sorted_edges(self) -> list:
        return sorted(self.edges)


# ---------------------------------------------------------------------------- building graphs


def rule_graph(flowfile: n.Flowfile) -> Graph:
    """Rules as nodes; an edge for every rule a rule's requires can call, dashed when under a condition."""
    graph = Graph()
    names = {rule.name for rule in flowfile.rules}
    for rule in flowfile.rules:
        graph.nodes[rule.name] = {
            "id": rule.name,
            "rule": rule.name,
            "params": {p.name: p.type for p in rule.params},
            "output": rule.output.pattern if rule.output is not None else None,
        }
        for callee, conditional in calls(rule.requires, names):
            graph.add_edge(rule.name, callee, conditional)
    return graph


def task_graph(checked, targets: list, clock=None) -> Graph:
    """Every task the targets need when nothing is complete yet."""
    from .graph import TaskFactory, build_graph
    from .resolve import resolve

    factory = TaskFactory(checked, clock)
    roots = [task for name in targets for task in resolve(factory, name)]
    built = build_graph(factory, roots, complete=lambda level: set())
    graph = Graph()
    for task in built.graph.nodes:
        graph.nodes[task.id] = {
            "id": task.id,
            "rule": task.name,
            "params": {name: t.format_value(value) for name, value in task.params.items()},
            "output": task.output,
        }
    for source, target in built.graph.edges:
        graph.add_edge(source.id, target.id)
    return graph


# ---------------------------------------------------------------------------- formats


def to_json(graph: Graph) -> str:
    data: dict = {"nodes": graph.sorted_nodes(), "edges": [list(edge) for edge in graph.sorted_edges()]}
    conditional = [list(edge) for edge in graph.sorted_edges() if graph.edges[edge]]
    if conditional:
        data["conditional_edges"] = conditional
    return json.dumps(data, indent=2)


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _dot_quote(text: str) -> str:
    return f'"{_dot_escape(text)}"'


def to_dot(graph: Graph) -> str:
    lines = ["digraph flow {", "    rankdir=BT;", '    node [shape=box, fontname="Helvetica"];']
    for node in graph.sorted_nodes():
        # "\\n" is dot's own line break inside a label
        label = _dot_escape(node["id"]) + (f"\\n{_dot_escape(node['output'])}" if node["output"] else "")
        lines.append(f'    {_dot_quote(node["id"])} [label="{label}"];')
    for source, target in graph.sorted_edges():
        style = " [style=dashed]" if graph.edges[(source, target)] else ""
        lines.append(f"    {_dot_quote(source)} -> {_dot_quote(target)}{style};")
    lines.append("}")
    return "\n".join(lines)


def to_mermaid(graph: Graph) -> str:
    lines = ["flowchart BT"]
    ids = {}
    for index, node in enumerate(graph.sorted_nodes()):
        ids[node["id"]] = f"n{index}"
        label = node["id"].replace('"', "#quot;")
        lines.append(f'    n{index}["{label}"]')
    for source, target in graph.sorted_edges():
        arrow = "-.->" if graph.edges[(source, target)] else "-->"
        lines.append(f"    {ids[source]} {arrow} {ids[target]}")
    return "\n".join(lines)


WRITERS = {"dot": to_dot, "mermaid": to_mermaid, "json": to_json}  # format -> Graph -> text


def resolved_ranges(factory) -> list:
    """(name, "first .. last", "n values") for each range relative to today, on the factory's clock."""
    return [(name, *_span_cells(factory.relative_range(name))) for name in factory.flowfile.relative_ranges]


def _span_cells(values: list) -> tuple:
    shown = f"{t.format_value(values[0])} .. {t.format_value(values[-1])}" if values else "(empty)"
    return shown, f"{len(values)} value{'s' * (len(values) != 1)}"


def listing(checked, clock=None) -> str:
    """The text of `flow list`: one block per kind of declaration."""
    from .graph import TaskFactory

    source = checked.text.splitlines()
    out = ["rules:"]
    for rule in checked.ast.rules:
        action = "external" if rule.external else (rule.action.kind if rule.action else "no action")
        output = ""
        if rule.output is not None:
            output = " -> " + (f"{rule.output.kind} " if rule.output.kind != "file" else "") + rule.output.pattern
        out.append(f"  {_signature(rule, source)}{output}  [{action}]")
        if _first_line(rule.doc):
            out.append(f"      {_first_line(rule.doc)}")
    if checked.ast.targets:
        factory = TaskFactory(checked, clock)
        out += ["", "targets:"]
        rows = []
        for decl in checked.ast.targets:
            count = len(factory.target(decl.name))
            rows.append((decl.name, f"{count} task{'s' * (count != 1)}", _first_line(decl.doc)))
        out += _columns(rows)
    if checked.ranges or checked.relative_ranges:
        out += ["", "ranges:"]
        rows = []
        relative = {}
        if checked.relative_ranges:
            relative = {row[0]: row[1:] for row in resolved_ranges(TaskFactory(checked, clock))}
        for decl in checked.ast.ranges:
            if decl.name in checked.ranges:
                rows.append((decl.name, *_span_cells(checked.ranges[decl.name])))
            elif decl.name in relative:
                rows.append((decl.name, *relative[decl.name]))
        out += _columns(rows)
    if clock is not None:
        out += ["", f"today: {clock.describe()}"]
    out += ["", f"default: {checked.default}" if checked.default else "default: (none)"]
    return "\n".join(out)


def _columns(rows: list) -> list:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    return ["  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]


def _signature(rule: n.Rule, source: list) -> str:
    parts = []
    for param in rule.params:
        part = f"{param.name}: {param.type}"
        if param.default is not None:
            part += " = " + _text(source, param.default.span)
        if not param.significant:
            part += " insignificant"
        parts.append(part)
    return f"{rule.name}({', '.join(parts)})"


def _text(source: list, span: n.Span) -> str:
    if span.line != span.end_line or not 0 < span.line <= len(source):
        return "..."
    return source[span.line - 1][span.column - 1:span.end_column - 1]


def _first_line(doc: Optional[str]) -> str:
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""
