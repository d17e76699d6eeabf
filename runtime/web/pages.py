"""Render the views as HTML: server-side pages that work without JavaScript; flow.js only refreshes them live."""

from __future__ import annotations

import time
from html import escape
from typing import Optional
from urllib.parse import urlencode

from flow.runtime.summary import format_duration

from . import layout
from .store import STATUSES
from .views import NEIGHBOURS_SHOWN

LABELS = {"pending": "pending", "running": "running", "done": "done", "failed": "failed", "skipped": "skipped",
          "upstream_failed": "upstream failed", "interrupted": "interrupted"}
# shown even when zero: the six; interrupted only when it happened
ALWAYS_SHOWN = ("pending", "running", "done", "failed", "skipped", "upstream_failed")


def page(title: str, body: str, project_name: str, live: bool = False) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{escape(title)} · flow</title><link rel="stylesheet" href="/static/flow.css">'
            f'<script src="/static/flow.js" defer></script></head>'
            f'<body data-live="{1 if live else 0}"><header><a class="brand" href="/">flow</a>'
            f'<span class="project">{escape(project_name)}</span><nav><a href="/">runs</a>'
            f'<a href="/graph">graph</a><a href="/targets">targets</a></nav></header>'
            f'<main>{body}</main></body></html>')


def error_page(message: str, project_name: str, heading: str = "Not here") -> str:
    return page("error", f'<h1>{escape(heading)}</h1><pre class="error">{escape(message)}</pre>', project_name)


# ---------------------------------------------------------------------------- runs


def runs_page(view: dict, targets: tuple, project_name: str) -> str:
    live = any(run["state"] == "running" for run in view["runs"])
    rows = []
    for run in view["runs"]:
        progress = run.get("progress")
        state = _badge(run["state"])
        if progress:
            state += " " + _bar(progress)
        rows.append(
            f'<tr><td><a href="/runs/{run["id"]}">#{run["id"]}</a></td>'
            f'<td class="command"><a href="/runs/{run["id"]}">{escape(run["command"] or "")}</a></td>'
            f'<td>{state}</td><td>{_counts_text(run["counts"])}</td><td>{_when(run["started"])}</td>'
            f'<td>{_duration(run["duration"])}</td><td>{escape(_process(run))}</td></tr>')
    if not rows:
        rows.append('<tr><td colspan="7" class="empty">no runs recorded yet: run <code>flow build</code></td></tr>')
    body = (f'<section id="live-runs" class="live"><h1>Runs</h1>'
            f'<table class="runs"><thead><tr><th>run</th><th>command</th><th>state</th><th>counts</th>'
            f'<th>started</th><th>duration</th><th>host</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f'{_pager("/", {}, view["offset"], view["limit"], view["total"])}</section>'
            f'{_targets_list(*targets)}')
    return page("runs", body, project_name, live)


def targets_page(targets: tuple, project_name: str) -> str:
    return page("targets", _targets_list(*targets), project_name)


def _targets_list(names: list, default: Optional[str]) -> str:
    items = "".join(f'<li><a href="/target?{urlencode({"name": n})}">{escape(n)}</a>'
                    f'{" <small>(default)</small>" if n == default else ""}</li>' for n in names)
    return (f'<section><h2>Targets</h2><ul class="targets">{items}</ul>'
            f'<form class="inline" action="/target" method="get"><label>any target '
            f'<input name="name" placeholder="top_artists(2012-06) or a file name" size="40"></label>'
            f'<button>show</button></form></section>')


# ---------------------------------------------------------------------------- a run or a target


def run_page(view: dict, graph: dict, project_name: str) -> str:
    run = view["run"]
    meta = [("state", _badge(run["state"])), ("command", f'<code>{escape(run["command"] or "")}</code>'),
            ("targets", escape(", ".join(run["targets"][:10]) + (" ..." if len(run["targets"]) > 10 else ""))),
            ("started", _when(run["started"])), ("duration", _duration(run["duration"])),
            ("host", escape(_process(run))),
            ("jobs", str(run["plan"].get("jobs", ""))), ("already complete", f'{run["plan"].get("complete", 0):,}')]
    return _scope_page(f'Run #{run["id"]}', f"/runs/{run['id']}", {}, meta, view, graph, project_name)


def target_page(view: dict, graph: dict, project_name: str) -> str:
    target = view["target"]
    meta = [("tasks", f'{sum(view["counts"].values()):,} (complete tasks are leaves, as a build sees them)')]
    if view["live_runs"]:
        meta.append(("building now", " ".join(f'<a href="/runs/{r}">#{r}</a>' for r in view["live_runs"])))
    return _scope_page(f'Target {target["name"]}', "/target", {"name": target["name"]}, meta, view, graph,
                       project_name)


def _scope_page(title: str, path: str, base: dict, meta: list, view: dict, graph: dict, project_name: str) -> str:
    tasks = view["tasks"]
    filters = {"q": tasks["query"], "status": tasks["status"], "rule": tasks["rule"],
               "hide_done": "1" if tasks["hide_done"] else ""}
    here = {**base, **{k: v for k, v in filters.items() if v}}
    meta_html = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in meta)
    progress = view["progress"]
    counters = []
    for status in STATUSES:
        n = view["counts"].get(status, 0)
        if status not in ALWAYS_SHOWN and not n:
            continue
        selected = " selected" if tasks["status"] == status else ""
        link = _link(path, {**here, "status": "" if selected else status, "offset": ""})
        counters.append(f'<a class="counter {status}{selected}" href="{link}" data-status="{status}">'
                        f'<span class="n">{n:,}</span><span class="label">{LABELS[status]}</span></a>')
    hide_link = _link(path, {**here, "hide_done": "" if tasks["hide_done"] else "1", "offset": ""})
    live = view["live"]
    body = (
        f'<h1>{escape(title)}</h1>'
        f'<section id="live-head" class="live"><div class="overview"><div><dl class="meta">{meta_html}</dl>'
        f'<div class="progress-line">{_bar(progress, wide=True)}</div>'
        f'<div class="counters">{"".join(counters)}</div></div>'
        f'<div><h2>Rules <a class="toggle" href="{hide_link}">{"show done" if tasks["hide_done"] else "hide done"}'
        f'</a></h2>{_rule_graph(graph, path, here, tasks["rule"])}</div></div></section>'
        f'<h2>Tasks{_filter_text(tasks, path, base)}</h2>'
        f'<form class="search" method="get" action="{escape(path)}">'
        + "".join(f'<input type="hidden" name="{k}" value="{escape(v)}">' for k, v in base.items())
        + f'<input type="search" name="q" value="{escape(tasks["query"])}" placeholder="search tasks" size="36">'
        f'<input type="hidden" name="status" value="{escape(tasks["status"])}">'
        f'<input type="hidden" name="rule" value="{escape(tasks["rule"])}">'
        f'{"<input type=hidden name=hide_done value=1>" if tasks["hide_done"] else ""}'
        f'<button>search</button></form>'
        f'<section id="live-tasks" class="live">{_task_table(tasks, path, here)}</section>')
    return page(title, body, project_name, live)


def _filter_text(tasks: dict, path: str, base: dict) -> str:
    parts = []
    if tasks["rule"]:
        parts.append(f'rule <b>{escape(tasks["rule"])}</b>')
    if tasks["status"]:
        parts.append(f'<b>{LABELS.get(tasks["status"], tasks["status"])}</b>')
    if tasks["query"]:
        parts.append(f'matching <b>{escape(tasks["query"])}</b>')
    if not parts:
        return ""
    return f' <small>· {", ".join(parts)} · <a href="{_link(path, base)}">clear</a></small>'


def _task_table(tasks: dict, path: str, here: dict) -> str:
    rows = []
    for row in tasks["rows"]:
        error = row.get("error") or ""
        link = escape(f"/task?{urlencode({'id': row['id']})}")
        rows.append(
            f'<tr class="{row["status"]}"><td><a href="{link}">{escape(row["id"])}</a></td>'
            f'<td>{_badge(row["status"])}</td><td>{row["attempt"] or ""}</td><td>{_when(row["started"])}</td>'
            f'<td>{_duration(row["duration"])}</td><td class="error-cell">{escape(_last_line(error))}</td></tr>')
    if not rows:
        note = "no task matches"
        rows.append(f'<tr><td colspan="6" class="empty">{note}</td></tr>')
    return (f'<table class="tasks"><thead><tr><th>task</th><th>status</th><th>attempt</th><th>started</th>'
            f'<th>duration</th><th>error</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f'{_pager(path, here, tasks["offset"], tasks["limit"], tasks["total"])}')


def _rule_graph(graph: dict, path: Optional[str], here: dict, selected: str = "") -> str:
    if not graph["nodes"]:
        return '<p class="empty">no rules to show</p>'
    links = {}
    for node in graph["nodes"]:
        if path is None:
            links[node["id"]] = ""
        else:
            links[node["id"]] = _link(path, {**here, "rule": "" if node["id"] == selected else node["id"],
                                             "offset": ""})
    if not graph["drawn"]:  # too many rules to draw readably: a table of them
        rows = "".join(f'<tr><td><a href="{links[n["id"]]}">{escape(n["id"])}</a></td>'
                       f'<td>{_counts_text(n["counts"])}</td></tr>' for n in graph["nodes"])
        return f'<table class="rules"><tbody>{rows}</tbody></table>'
    nodes = []
    for node in graph["nodes"]:
        counts = node["counts"]
        lines = [node["id"]]
        if counts:
            lines.append(_short_counts(counts))
        elif node.get("doc"):
            lines.append(node["doc"][:48])
        css = "selected" if node["id"] == selected else ""
        nodes.append(layout.Node(node["id"], lines, links[node["id"]], css, counts))
    return f'<div class="graph-box">{layout.svg(nodes, [tuple(e) for e in graph["edges"]])}</div>'


def graph_page(graph: dict, default: Optional[str], project_name: str) -> str:
    intro = ("Each box is a rule; an arrow goes from what a rule requires to the rule. Open a target to see its "
             "tasks and their status per rule")
    if default:
        intro += f' (the default: <a href="/target?{urlencode({"name": default})}">{escape(default)}</a>)'
    body = f'<h1>Rule graph</h1><p>{intro}.</p>{_rule_graph(graph, None, {})}'
    return page("graph", body, project_name)


# ---------------------------------------------------------------------------- a task


def _process(row: dict) -> str:
    """Which process ran a run or an attempt: 'host (pid N)', as `flow log` says it."""
    host, pid = row.get("host") or "", row.get("pid")
    return f"{host} (pid {pid})" if pid else host


def task_page(view: dict, project_name: str) -> str:
    exists = {True: "exists", False: "missing", None: "unknown (no database reachable)"}[view["exists"]]
    params = "".join(f"<tr><th>{escape(k)}</th><td><code>{escape(str(v))}</code></td></tr>"
                     for k, v in view["params"].items())
    attempts = "".join(
        f'<tr class="{a["page_status"]}"><td><a href="/runs/{a["run_id"]}">#{a["run_id"]}</a></td>'
        f'<td>{_badge(a["page_status"])}</td><td>{a["attempt"]}</td><td>{_when(a["started"])}</td>'
        f'<td>{_duration(a["duration"])}</td><td>{escape(_process(a))}</td>'
        f'<td class="error-cell">{escape(_last_line(a["error"] or ""))}</td></tr>' for a in view["attempts"])
    if not attempts:
        attempts = '<tr><td colspan="7" class="empty">never attempted</td></tr>'
    running = ""
    if view["running"]:
        r = view["running"]
        running = (f'<p>{_badge("running")} attempt {r["attempt"]} in <a href="/runs/{r["run_id"]}">run '
                   f'#{r["run_id"]}</a> on {escape(_process(r))} since {_when(r["started"])}</p>')
    body = (
        f'<h1 class="task-title">{escape(view["id"])} {_badge(view["status"])}</h1>{running}'
        f'<dl class="meta"><dt>rule</dt><dd>{escape(view["rule"])}</dd>'
        f'<dt>output</dt><dd><code>{escape(view["output"] or "")}</code> <span class="exists {exists.split()[0]}">'
        f'{exists}</span></dd></dl>'
        + ("" if view["in_flowfile"] else '<p class="note">Today\'s Flowfile no longer makes this task; '
           'what follows is from the history.</p>')
        + f'<h2>Parameters</h2><table class="params">{params}</table>'
        + (f'<h2>Error</h2><pre class="error">{escape(view["error"])}</pre>' if view["error"] else "")
        + f'<h2>Neighbourhood</h2>{_neighbourhood(view)}'
        + f'<h2>Attempts</h2><table class="tasks"><thead><tr><th>run</th><th>status</th><th>attempt</th>'
        f'<th>started</th><th>duration</th><th>host</th><th>error</th></tr></thead><tbody>{attempts}</tbody></table>'
        + (f'<h2>Log (tail)</h2><pre class="log">{escape(view["log_tail"])}</pre>' if view["log_tail"] else
           '<h2>Log</h2><p class="empty">no log kept for this task</p>'))
    live = bool(view["running"]) or view["required_by_computing"]  # refreshed until the dependents are known
    return page(view["id"], f'<section id="live-task" class="live">{body}</section>', project_name, live)


def _neighbourhood(view: dict) -> str:
    centre = view["id"]
    status = view["neighbour_status"]
    nodes = [layout.Node(centre, [centre], "", f"centre st-{view['status']}")]
    edges = []
    for side, ids in (("requires", view["requires"]), ("required_by", view["required_by"] or [])):
        for other in ids[:NEIGHBOURS_SHOWN]:
            css = f"{side} st-{status[other]}" if other in status else side
            nodes.append(layout.Node(other, [other], f"/task?{urlencode({'id': other})}", css))
            edges.append((other, centre) if side == "requires" else (centre, other))
        if len(ids) > NEIGHBOURS_SHOWN:
            more = f"{len(ids) - NEIGHBOURS_SHOWN:,} more {'requirements' if side == 'requires' else 'dependents'}"
            nodes.append(layout.Node(f"{side}:more", [more], "", "more"))
            edges.append((f"{side}:more", centre) if side == "requires" else (centre, f"{side}:more"))
    note = f'<p class="note">requires {len(view["requires"]):,}; '
    if view["required_by"] is None and view.get("required_by_computing"):
        note += "what requires it is still being worked out (a large Flowfile): it shows in a moment</p>"
    elif view["required_by"] is None:
        note += "what requires it is not shown: the Flowfile's named targets hold too many tasks</p>"
    else:
        note += f'required by {len(view["required_by"]):,} (among the tasks of the Flowfile\'s named targets)</p>'

    return note + f'<div class="graph-box">{layout.svg(nodes, edges, "graph neighbourhood")}</div>'


# ---------------------------------------------------------------------------- small parts


def _badge(status: str) -> str:
    return f'<span class="badge {escape(status)}">{escape(LABELS.get(status, status))}</span>'


def _bar(progress: dict, wide: bool = False) -> str:
    total, finished = progress["total"], progress["finished"]
    share = finished / total if total else 1.0
    eta = progress.get("eta")
    text = f"{finished:,} / {total:,}"
    if eta is not None:
        text += f" · about {format_duration(eta)} left"
    return (f'<span class="progress{" wide" if wide else ""}" data-finished="{finished}" data-total="{total}">'
            f'<span class="fill" style="width:{share * 100:.1f}%"></span></span> <span class="progress-text">'
            f'{text}</span>')


def _counts_text(counts: dict) -> str:
    return escape(", ".join(f"{n:,} {k.replace('_', ' ')}" for k, n in counts.items() if n))


def _short_counts(counts: dict) -> str:
    order = ("done", "running", "failed", "upstream_failed", "pending", "skipped", "interrupted")
    short = {"upstream_failed": "upstream", "interrupted": "stopped"}
    return " ".join(f"{counts[s]:,} {short.get(s, s)}" for s in order if counts.get(s))


def _when(seconds: Optional[float]) -> str:
    if seconds is None:
        return ""
    return f'<time data-t="{seconds:.0f}">{time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))}</time>'


def _duration(seconds: Optional[float]) -> str:
    return "" if seconds is None else format_duration(seconds)


def _last_line(text: str) -> str:
    """The line of an error that names it (a traceback ends with it)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _link(path: str, params: dict) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in ("", None)})
    return escape(f"{path}?{query}" if query else path)


def _pager(path: str, here: dict, offset: int, limit: int, total: int) -> str:
    if total <= limit and offset == 0:
        return ""
    parts = [f'<span>{offset + 1:,}–{min(offset + limit, total):,} of {total:,}</span>']
    if offset > 0:
        back = "← newer" if path == "/" else "← prev"
        parts.insert(0, f'<a href="{_link(path, {**here, "offset": max(offset - limit, 0)})}">{back}</a>')
    if offset + limit < total:
        parts.append(f'<a href="{_link(path, {**here, "offset": offset + limit})}">next →</a>')
    return f'<nav class="pager">{" ".join(parts)}</nav>'
