"""Render what a build did (Luigi-style execution summary) and what a dry run would do, as plain text."""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain, compress, groupby, repeat
from operator import attrgetter, itemgetter, methodcaller, sub
from typing import Union

from flow.compiler.types import FORMATTERS, Interval, format_value

# tables are named as such: "top10" alone would read like a file in the working directory
from .targets import Target, target_class
from .targets import where as _where

# How many ranges or ids of one rule a summary line names before "and N more".
SHOWN = 3
# Dry-run lines align outputs in a column, unless an id is longer than this.
ID_COLUMN = 48


@dataclass
class Summary:
    """The outcome of a build, task by task; the executor fills it, render_summary prints it."""

    ran: list = field(default_factory=list)  # tasks that ran and succeeded
    already_complete: Union[int, list] = 0  # a count, or the complete tasks themselves
    failed: list = field(default_factory=list)  # failed or timed out, after their retries
    blocked: dict = field(default_factory=dict)  # task -> the failed or missing task that blocked it
    missing_external: list = field(default_factory=list)  # external tasks whose output does not exist
    skipped_locked: list = field(default_factory=list)  # another flow process was running them
    done_elsewhere: list = field(default_factory=list)  # another flow process ran them while this one waited
    interrupted: list = field(default_factory=list)
    elapsed: float = 0.0
    exit_code: int = 0

    @property
    def complete_count(self) -> int:
        complete = self.already_complete
        return complete if isinstance(complete, int) else len(complete)

    @property
    def scheduled(self) -> int:
        return (len(self.ran) + self.complete_count + len(self.failed) + len(self.blocked)
                + len(self.missing_external) + len(self.skipped_locked) + len(self.interrupted)
                + len(self.done_elsewhere))

    def counts(self) -> dict:
        """Outcome -> number of tasks: what History.finish_run stores."""
        return {"ran": len(self.ran), "already_complete": self.complete_count, "failed": len(self.failed),
                "blocked": len(self.blocked), "missing_external": len(self.missing_external),
                "skipped_locked": len(self.skipped_locked), "interrupted": len(self.interrupted),
                **({"ran_elsewhere": len(self.done_elsewhere)} if self.done_elsewhere else {})}


# ---------------------------------------------------------------------------- summary


def render_summary(summary: Summary) -> str:
    """Luigi's execution summary: the tasks per outcome, grouped by rule with parameter ranges compressed."""
    lines = [f"Scheduled {_plural(summary.scheduled, 'task')} of which:"]

    def section(tasks, one: str, many: str, detail: bool = True):
        if not tasks:
            return
        count = tasks if isinstance(tasks, int) else len(tasks)
        head = f"* {count:,} {one if count == 1 else many}"
        if isinstance(tasks, int) or not detail:
            lines.append(head)
            return
        lines.append(head + ":")
        lines.extend(f"    - {n:,} {text}" for n, text in group_tasks(tasks))

    section(summary.ran, "ran", "ran")
    section(summary.already_complete, "was already complete", "were already complete")
    section(summary.done_elsewhere, "was run by another flow process", "were run by another flow process")
    section(summary.failed, "failed", "failed")
    if summary.blocked:
        section(list(summary.blocked), "was blocked by a failed or missing dependency",
                "were blocked by a failed or missing dependency")
        blockers = list(dict.fromkeys(summary.blocked.values()))
        lines.append("      blocked by: " + ", ".join(text for _, text in group_tasks(blockers)))
    section(summary.missing_external, "external input was missing", "external inputs were missing")
    section(summary.skipped_locked, "was skipped: another flow was running it",
            "were skipped: another flow was running them")
    section(summary.interrupted, "was interrupted", "were interrupted")
    lines.append("")
    lines.append(verdict(summary))
    return "\n".join(lines) + "\n"


def verdict(summary: Summary) -> str:
    """One line that says how the build went, naming what to look at first."""
    parts = []
    if summary.interrupted or summary.exit_code == 130:
        text = "this build was interrupted"
        if summary.interrupted:
            text += f": {_plural(len(summary.interrupted), 'task')} interrupted"
        parts.append(text)
    if summary.failed or (summary.blocked and not summary.missing_external):
        text = f"this build failed: {_plural(len(summary.failed), 'task')} failed"
        if summary.blocked:
            text += f", {len(summary.blocked):,} blocked"
        parts.append(text)
    missing = summary.missing_external
    if missing:
        shown = ", ".join(f"{task.id} at {task.output}" for task in missing[:SHOWN])
        more = f" and {len(missing) - SHOWN:,} more" if len(missing) > SHOWN else ""
        parts.append(f"missing external input{'s' if len(missing) > 1 else ''}: {shown}{more}")
    if summary.skipped_locked and not parts:
        parts.append(f"this build is incomplete: {_plural(len(summary.skipped_locked), 'task')}"
                     f" {'was' if len(summary.skipped_locked) == 1 else 'were'} running in another flow")
    if not parts:
        parts.append("this build was successful" if summary.exit_code == 0
                     else f"this build failed (exit code {summary.exit_code})")
    text = "; ".join(parts)
    if summary.elapsed:
        text += f" ({format_duration(summary.elapsed)})"
    return text


# ---------------------------------------------------------------------------- dry run


def render_dry_run(order, complete_count: int, missing_external: list) -> str:
    """What `flow --dry-run` prints: each (task, reason) in order, then counts per rule and what is missing."""
    order = list(order)
    return "".join(dry_run_chunks([task for task, _ in order], [reason for _, reason in order], complete_count,
                                  missing_external))


def dry_run_chunks(order: list, reasons: list, complete_count: int, missing_external: list,
                   lines_per_chunk: int = 8192, names: "list | None" = None):
    """render_dry_run's text in pieces of a few thousand lines, so a million tasks never sit in one string.

    `order` lists the tasks and `reasons` the reason of each (two lists: no tuple per task); `names`,
    each task's rule name, when the caller has them already. The lines of each run of one rule's tasks
    are joined from their pieces in C (maps over the run): a Python loop and an f-string per line
    were a quarter of a million-task dry run.
    """
    if names is None:
        names = list(map(_RULE_NAME, order))
    per_rule = Counter(names)  # in order of first appearance
    width = min(_id_width(order, names, per_rule), ID_COLUMN)
    pieces_of: dict = {}  # rule name -> (tasks, outputs, where they live, reasons' tails) -> pieces of lines
    where_of: dict = {}  # output kind -> the Target class's where
    tails: dict = {}  # reason -> the end of its lines
    for start in range(0, len(order), lines_per_chunk):
        pieces: list = []
        at = start
        for name, run in groupby(order[start:start + lines_per_chunk], _RULE_NAME):
            run = list(run)
            outputs = list(map(_OUTPUT, run))
            make = pieces_of.get(name)
            if make is None:
                make = pieces_of[name] = _line_pieces(run[0].info, width)
            why = reasons[at:at + len(run)]
            at += len(run)
            tail = tails.get(why[0])
            if tail is None:
                tail = tails[why[0]] = f"  ({why[0]})\n"
            ends = repeat(tail) if why.count(why[0]) == len(why) else map("  ({})\n".format, why)
            pieces.extend(make(run, outputs, _shown(run, outputs, where_of), ends))
        yield "".join(pieces)
    lines = [""] if order else []
    if order:
        lines.append(f"{_plural(len(order), 'task')} would run:")
        count_width = len(f"{max(per_rule.values()):,}")
        lines.extend(f"    {n:>{count_width},} {name}" for name, n in per_rule.items())
    else:
        lines.append("nothing would run")
    if complete_count:
        lines.append(f"{_plural(complete_count, 'task')} {'is' if complete_count == 1 else 'are'} already complete")
    if missing_external:
        lines.append(f"{_plural(len(missing_external), 'external input')}"
                     f" {'is' if len(missing_external) == 1 else 'are'} missing:")
        lines.extend(f"    {task.id}  {task.output}" for task in missing_external)
    yield "\n".join(lines) + "\n"


_RULE_NAME = attrgetter("info.name")
_OUTPUT = attrgetter("output")
_ID_TEXT = methodcaller("id_text")
_flat = chain.from_iterable


def _line_pieces(info, width: int):
    """(tasks of the rule, outputs, where they live, ends of lines) -> the pieces of their dry-run lines, in order.

    A line is the id left-aligned in a column `width` wide, two spaces, where the output lives, the end.
    """
    cut = _id_cut(info)
    size = _fixed_id_length(info)
    if cut is not None and size is not None:  # `streams(` + the date cut from the output + `)` and the padding
        head, close = info.name + "(", ")" + " " * (width - size) + "  "
        return lambda tasks, outputs, shown, ends: _flat(zip(repeat(head), map(cut, outputs), repeat(close),
                                                              shown, ends))
    if cut is not None:
        template = info.name.replace("%", "%%") + "(%s)"

        def ids(tasks, outputs):
            return map(template.__mod__, map(cut, outputs))
    else:
        def ids(tasks, outputs):
            return map(_ID_TEXT, tasks)
    return lambda tasks, outputs, shown, ends: _flat(zip(map(str.ljust, ids(tasks, outputs), repeat(width)),
                                                          repeat("  "), shown, ends))


def _id_cut(info):
    """When a task's id is its rule and one value written as the output's one placeholder writes it
    (`streams(2012-06-01)`, `data/streams_2012-06-01.tsv`), the function that cuts that value's text
    from an output (no second formatting per task); else None."""
    significant = info.significant
    one = info.output.one_slot() if len(significant) == 1 else ()
    if not one:
        return None
    before, index, convert, after = one
    if index != significant[0] or convert is not FORMATTERS.get(info.param_types[index], format_value):
        return None
    return itemgetter(slice(len(before), -len(after) if after else None))


def _shown(tasks: list, outputs: list, where_of: dict):
    """Where each output lives, as the dry run shows it (the output itself for local files)."""
    kind = tasks[0].info.output.kind
    where = where_of.get(kind)
    if where is None:  # the same for every output of this kind that is not a URL
        where = where_of[kind] = target_class(kind, "").where
    if "://" in "".join(outputs):  # an object store's URL (or two outputs that join into one): asked per output
        return [_where(task) if "://" in task.output else where(task.output) for task in tasks]
    return outputs if where.__func__ is Target.where.__func__ else map(where, outputs)


def _id_width(tasks: list, names: list, per_rule: dict) -> int:
    """The length of the longest id (`names`: each task's rule), each id written only when needed.

    The ids of a rule whose significant parameters are all dates have one length (a date is always
    written in 10 characters), and an id that is its rule and its output's one value measures as the
    output: most tasks of a big backfill are days, and writing each id twice (here and on its line)
    was a quarter of a million-task dry run.
    """
    width = 0
    varying = {}
    for name in per_rule:
        info = tasks[names.index(name)].info
        size = _fixed_id_length(info)
        if size is None:
            varying[name] = info
        else:
            width = max(width, size)
    if varying:
        theirs = list(compress(tasks, map(varying.__contains__, names)))  # in one pass over the names
        for name, info in varying.items():
            mine = [task for task in theirs if task.info.name == name] if len(varying) > 1 else theirs
            cut = _id_cut(info)
            if cut is None:
                size = max(map(len, map(_ID_TEXT, mine)))
            else:  # the rule's name, the brackets and the value
                size = len(name) + 2 + max(map(len, map(cut, map(_OUTPUT, mine))))
            width = max(width, size)
    return width


def _fixed_id_length(info):
    """`name(2012-06-01, ...)`'s length when every significant parameter is a date, else None."""
    count = len(info.significant)
    if not count or any(info.param_types[i] != "date" for i in info.significant):
        return None
    return len(info.name) + 2 + 10 * count + 2 * (count - 1)


# ---------------------------------------------------------------------------- grouping


def group_tasks(tasks: list) -> list:
    """(count, text) per rule, in order of first appearance, with consecutive parameter values compressed.

    `streams(2012-06-01 .. 2012-06-30)`; with gaps `streams(2012-06-01 .. 2012-06-10, 2012-06-12)`;
    with more parameters each range is written out: `rollup(eu, 2012-06-01 .. 2012-06-30), rollup(us, ...)`.
    """
    names = list(map(_RULE_NAME, tasks))
    rules = list(dict.fromkeys(names))
    if len(rules) <= _PASSES_PER_RULE:  # a pass in C per rule: a build's summary of a million tasks
        by_rule = {rules[0]: tasks} if len(rules) == 1 else \
            {name: list(compress(tasks, map(name.__eq__, names))) for name in rules}
    else:
        by_rule = {}
        for name, task in zip(names, tasks):
            members = by_rule.get(name)
            if members is None:
                members = by_rule[name] = []
            members.append(task)
    return [(len(members), _compress(name, members)) for name, members in by_rule.items()]


_VALUES = attrgetter("values")
# Up to this many rules, a summary groups tasks by rule with one pass in C per rule.
_PASSES_PER_RULE = 16


def _compress(name: str, tasks: list) -> str:
    """The tasks of one rule as a short text: ranges along one parameter, the rest listed."""
    info = tasks[0].info
    significant = info.significant
    # each task's significant values, as tuples, without duplicates (built in C)
    if not significant:
        keys = [()]
    elif len(significant) == 1:
        keys = list(dict.fromkeys(zip(map(itemgetter(significant[0]), map(_VALUES, tasks)))))
    else:
        keys = list(dict.fromkeys(map(itemgetter(*significant), map(_VALUES, tasks))))
    if len(keys) == 1:
        return tasks[0].id
    # 1. Find the parameter to compress: the last one that varies and has a successor (date, interval, int).
    axis = None
    for j in range(len(significant) - 1, -1, -1):
        ordered = info.param_types[significant[j]] in ("date", "hour", "minute", "interval", "int")
        if ordered and len({k[j] for k in keys}) > 1:
            axis = j
            break
    if axis is None:
        return _listed(sorted(task.id for task in tasks), len(tasks))
    # 2. Group by the other parameters, then cut each group's sorted values into runs of successors.
    groups: dict = {}
    for key in keys:
        groups.setdefault(key[:axis] + key[axis + 1:], []).append(key[axis])
    entries = []  # (text, tasks covered)
    try:
        ordered = sorted(groups.items(), key=lambda item: [format_value(v) for v in item[0]])
        for rest, values in ordered:
            values.sort(key=_order_key if isinstance(values[0], Interval) else None)
            runs = [(_range_text(first, last), count) for first, last, count in _runs(values)]
            if len(significant) == 1:
                entries.append((", ".join(text for text, _ in runs[:SHOWN]), sum(n for _, n in runs[:SHOWN])))
                if len(runs) > SHOWN:
                    entries.append(("", sum(n for _, n in runs[SHOWN:])))
                continue
            fixed = [format_value(v) for v in rest]
            for text, count in runs:
                shown = fixed[:axis] + [text] + fixed[axis:]
                entries.append((f"{name}({', '.join(shown)})", count))
    except TypeError:  # values that do not compare (should not happen with checked types)
        return _listed(sorted(task.id for task in tasks), len(tasks))
    if len(significant) == 1:
        inner = entries[0][0]
        if len(entries) > 1:
            inner += f" and {entries[1][1]:,} more"
        return f"{name}({inner})"
    return _listed([text for text, _ in entries], len(keys), [n for _, n in entries])


def _listed(texts: list, total: int, counts: list = None) -> str:
    """Up to SHOWN texts, then "and N more" counting the tasks not shown."""
    if len(texts) <= SHOWN:
        return ", ".join(texts)
    covered = sum(counts[:SHOWN]) if counts else SHOWN
    return ", ".join(texts[:SHOWN]) + f" and {total - covered:,} more"


def _runs(values: list) -> list:
    """Sorted values cut into (first, last, count) runs where each value follows the previous one."""
    if values[0].__class__ is _dt.date:  # days (hours and minutes are datetimes): the cuts found in C
        ordinals = list(map(_dt.date.toordinal, values))
        cuts = list(compress(range(1, len(values)), map((1).__ne__, map(sub, ordinals[1:], ordinals))))
        starts, ends = [0, *cuts], [*cuts, len(values)]
        return [(values[start], values[end - 1], end - start) for start, end in zip(starts, ends)]
    runs = []
    first = previous = values[0]
    count = 1
    for value in values[1:]:
        if _follows(previous, value):
            count += 1
        else:
            runs.append((first, previous, count))
            first = value
            count = 1
        previous = value
    runs.append((first, previous, count))
    return runs


_KINDS = {"year": 0, "month": 1, "week": 2, "day": 3, "custom": 4}


def _order_key(interval: Interval) -> tuple:
    # Months and weeks of one rule make two runs, not an alternation of the two kinds.
    return (_KINDS.get(interval.kind, 5), interval.start, interval.end)


def _follows(a, b) -> bool:
    if isinstance(a, Interval):
        return a.kind == b.kind and a.end == b.start
    if isinstance(a, _dt.datetime):  # hours and minutes: one step of their own kind
        return b - a == (_dt.timedelta(hours=1) if a.__class__.__name__ == "Hour" else _dt.timedelta(minutes=1))
    if isinstance(a, _dt.date):
        return (b - a).days == 1
    return b - a == 1


def _range_text(first, last) -> str:
    if first == last:
        return format_value(first)
    return f"{format_value(first)} .. {format_value(last)}"


# ---------------------------------------------------------------------------- small texts


def format_duration(seconds: float) -> str:
    """0.01s, 12.3s, 2m03s, 1h02m."""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"
