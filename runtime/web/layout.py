"""Lay a small graph out by rank and draw it as SVG: requirements above, what needs them below.

The page never hands this more than a few hundred nodes (rules, or one task's neighbourhood), so
a longest-path ranking and two barycentre sweeps to untangle each rank are enough.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

CHAR_WIDTH = 7.2  # px per character of the 12px monospace label font
LINE_HEIGHT = 16
PAD = 8
GAP_X = 24
GAP_Y = 48
BAR_HEIGHT = 6
# the colour of each page status, in the order a stacked bar shows them
COLOURS = (("done", "#2e9e5b"), ("running", "#2f6fd6"), ("pending", "#a0a7b4"), ("failed", "#d64545"),
           ("upstream_failed", "#e08a2c"), ("skipped", "#8a5cc7"), ("interrupted", "#c9a227"))


@dataclass
class Node:
    """A box: its text lines, a link, a CSS class, and counts per status for a stacked bar (optional)."""

    id: str
    lines: list
    href: str = ""
    css: str = ""
    counts: dict = field(default_factory=dict)


def ranks(node_ids: list, edges: list) -> dict:
    """node -> rank: 0 for nodes that require nothing drawn, else one more than their deepest requirement.

    `edges` are (requirement, dependent) pairs; an edge that closes a cycle is ignored.
    """
    requires: dict = {n: [] for n in node_ids}
    for source, target in edges:
        if source in requires and target in requires and source != target:
            requires[target].append(source)
    rank: dict = {}
    state: dict = {}  # 1 while on the stack, 2 when done
    for start in node_ids:
        if start in rank:
            continue
        stack = [(start, iter(requires[start]))]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                state[node] = 2
                rank[node] = max((rank[c] + 1 for c in requires[node] if state.get(c) == 2 and c in rank), default=0)
            elif state.get(child) is None:
                state[child] = 1
                stack.append((child, iter(requires[child])))
    return rank


def svg(nodes: list, edges: list, css_class: str = "graph") -> str:
    """An SVG drawing of `nodes` with `edges` (requirement, dependent) as arrows pointing down to the dependent."""
    if not nodes:
        return ""
    by_id = {node.id: node for node in nodes}
    edges = [(a, b) for a, b in edges if a in by_id and b in by_id and a != b]
    rank = ranks(list(by_id), edges)
    rows: dict = {}
    for node in nodes:
        rows.setdefault(rank[node.id], []).append(node.id)
    order = _untangle(rows, edges)
    sizes = {node.id: _size(node) for node in nodes}
    width = max(sum(sizes[n][0] for n in row) + GAP_X * (len(row) - 1) for row in order.values()) + 2 * PAD
    positions = {}
    y = PAD
    for r in sorted(order):
        row = order[r]
        row_width = sum(sizes[n][0] for n in row) + GAP_X * (len(row) - 1)
        x = (width - row_width) / 2
        height = max(sizes[n][1] for n in row)
        for n in row:
            positions[n] = (x, y)
            x += sizes[n][0] + GAP_X
        y += height + GAP_Y
    total_height = y - GAP_Y + PAD
    parts = [f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
             f'height="{total_height:.0f}" viewBox="0 0 {width:.0f} {total_height:.0f}" role="img">',
             '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z" fill="#8a93a3"/></marker></defs>']
    for a, b in edges:
        (ax, ay), (bx, by) = positions[a], positions[b]
        x1, y1 = ax + sizes[a][0] / 2, ay + sizes[a][1]
        x2, y2 = bx + sizes[b][0] / 2, by
        if y2 <= y1:  # a back edge of a cycle: go round the side
            parts.append(f'<path class="edge back" d="M{x1:.0f},{y1:.0f} C{x1 + 60:.0f},{y1 + 40:.0f} '
                         f'{x2 + 60:.0f},{y2 - 40:.0f} {x2:.0f},{y2:.0f}" marker-end="url(#arrow)"/>')
        else:
            mid = (y1 + y2) / 2
            parts.append(f'<path class="edge" d="M{x1:.0f},{y1:.0f} C{x1:.0f},{mid:.0f} {x2:.0f},{mid:.0f} '
                         f'{x2:.0f},{y2:.0f}" marker-end="url(#arrow)"/>')
    for node in nodes:
        parts.append(_draw(node, positions[node.id], sizes[node.id]))
    parts.append("</svg>")
    return "".join(parts)


def _untangle(rows: dict, edges: list) -> dict:
    """Order each rank by the mean position of its neighbours in the rank above, then below (two sweeps)."""
    order = {r: sorted(ids) for r, ids in rows.items()}
    up: dict = {}
    down: dict = {}
    for a, b in edges:
        down.setdefault(a, []).append(b)
        up.setdefault(b, []).append(a)
    for neighbours, ranks_in_order in ((up, sorted(order)), (down, sorted(order, reverse=True))):
        position = {}
        for r in ranks_in_order:
            row = order[r]
            keys = {}
            for i, node in enumerate(row):
                near = [position[n] for n in neighbours.get(node, ()) if n in position]
                keys[node] = sum(near) / len(near) if near else i / max(len(row), 1)
            row.sort(key=keys.__getitem__)
            for i, node in enumerate(row):
                position[node] = i / max(len(row) - 1, 1)
    return order


def _size(node: Node) -> tuple:
    width = max(len(line) for line in node.lines) * CHAR_WIDTH + 2 * PAD
    height = len(node.lines) * LINE_HEIGHT + 2 * PAD - 4 + (BAR_HEIGHT + 4 if node.counts else 0)
    return max(width, 60), height


def _draw(node: Node, position: tuple, size: tuple) -> str:
    x, y = position
    width, height = size
    out = [f'<g class="node {escape(node.css)}" data-id="{escape(node.id)}">']
    if node.href:
        out.insert(0, f'<a href="{escape(node.href)}">')
    out.append(f'<title>{escape(node.id)}</title>')
    out.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="{width:.0f}" height="{height:.0f}" rx="5"/>')
    for i, line in enumerate(node.lines):
        weight = ' class="name"' if i == 0 else ""
        out.append(f'<text x="{x + PAD:.0f}" y="{y + PAD + 8 + i * LINE_HEIGHT:.0f}"{weight}>{escape(line)}</text>')
    total = sum(node.counts.values())
    if total:
        bar_x, bar_y, bar_width = x + PAD, y + height - PAD - BAR_HEIGHT + 2, width - 2 * PAD
        for status, colour in COLOURS:
            n = node.counts.get(status, 0)
            if n:
                part = bar_width * n / total
                out.append(f'<rect class="bar {status}" x="{bar_x:.1f}" y="{bar_y:.0f}" width="{part:.1f}" '
                           f'height="{BAR_HEIGHT}" fill="{colour}"/>')
                bar_x += part
    out.append("</g>")
    if node.href:
        out.append("</a>")
    return "".join(out)
