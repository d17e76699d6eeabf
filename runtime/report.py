"""Show a build's progress: one plain line per task when piped, a live rich display on a terminal.

Every event costs microseconds: reporters only update counters and queue lines. The plain
reporter flushes at most once a second (or at once on a terminal or a failure); the rich
display is redrawn by a timer thread, never by an event. rich is imported only by RichReporter.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from itertools import islice
from typing import Optional

from .summary import Summary, format_duration, render_dry_run, render_summary  # noqa: F401 (re-exported)

FINAL = frozenset(("done", "failed", "timeout", "skipped", "interrupted"))
FAILURES = frozenset(("failed", "timeout"))
WORDS = {"done": "done", "failed": "FAILED", "timeout": "TIMEOUT", "skipped": "skipped",
         "interrupted": "interrupted", "retry": "retry"}
RUNNING_SHOWN = 5
LOG_TAIL = 20
BAR_WIDTH = 30


def make_reporter(stream=None, quiet: bool = False, verbose: bool = False):
    """A RichReporter on an interactive terminal (not TERM=dumb, not --quiet), else a PlainReporter.

    NO_COLOR (https://no-color.org) set to anything non-empty turns every colour and style off.
    """
    stream = sys.stdout if stream is None else stream
    if quiet or os.environ.get("TERM") == "dumb" or not _isatty(stream):
        return PlainReporter(stream, verbose=verbose and not quiet, quiet=quiet)
    from rich.console import Console

    no_color = bool(os.environ.get("NO_COLOR"))
    console = Console(file=stream, color_system=None if no_color else "auto", no_color=no_color, highlight=False)
    return RichReporter(console, verbose=verbose)


def rule_estimates(tasks, means: dict) -> dict:
    """rule -> (tasks of that rule to run, mean seconds from History.mean_durations or None): build_started's input."""
    counts: dict = {}
    for task in tasks:
        name = task.name
        counts[name] = counts.get(name, 0) + 1
    return {name: (count, means.get(name)) for name, count in counts.items()}


class Reporter:
    """The events the executor sends; this base ignores them all (tests record them in a subclass)."""

    def build_started(self, total: int, complete: int, eta_per_rule: dict, jobs: int = 1) -> None:
        pass

    def task_started(self, task, attempt: int) -> None:
        pass

    def task_finished(self, task, status: str, duration: float, error: Optional[str] = None,
                      log_path: Optional[str] = None, log_tail: Optional[list] = None) -> None:
        pass

    def message(self, text: str, level: str = "info") -> None:
        pass

    def build_finished(self, summary: Summary) -> None:
        pass

    def close(self) -> None:
        pass


class Progress:
    """Counters shared by the reporters: done/total, running tasks, and the estimated time left.

    The estimate is the history's mean duration per rule times the tasks of that rule still to
    finish, minus the time running tasks have already spent, over the jobs; while a rule has no
    history, the rate observed in this build stands in for everything.
    """

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.began = clock()
        self.total = 0
        self.complete = 0
        self.finished = 0
        self.failed = 0
        self.skipped = 0
        self.jobs = 1
        self.running: dict = {}  # task -> clock() when its attempt started, oldest first
        self.remaining: dict = {}  # rule -> tasks not finished
        self.means: dict = {}  # rule -> seconds, from history or observed in this build
        self._observed: dict = {}  # rule -> [seconds, count] of this build's successes
        self._historic: set = set()

    def start(self, total: int, complete: int, eta_per_rule: dict, jobs: int) -> None:
        self.began = self.clock()
        self.total = total
        self.complete = complete
        self.jobs = max(1, jobs)
        for rule, (count, mean) in eta_per_rule.items():
            self.remaining[rule] = count
            if mean is not None:
                self.means[rule] = mean
                self._historic.add(rule)

    def task_started(self, task) -> None:
        self.running[task] = self.clock()

    def task_finished(self, task, status: str, duration: float) -> None:
        self.running.pop(task, None)
        if status not in FINAL:
            return
        self.finished += 1
        if status in FAILURES:
            self.failed += 1
        elif status == "skipped":
            self.skipped += 1
        rule = task.name
        if rule in self.remaining:
            self.remaining[rule] -= 1
        if status == "done" and rule not in self._historic:
            seen = self._observed.setdefault(rule, [0.0, 0])
            seen[0] += duration
            seen[1] += 1
            self.means[rule] = seen[0] / seen[1]

    def tasks_done(self, done: list) -> None:
        """`task_finished(task, "done", duration)` of several (task, duration) pairs."""
        running = self.running
        remaining = self.remaining
        historic = self._historic
        observed = self._observed
        means = self.means
        for task, duration in done:
            running.pop(task, None)
            rule = task.info.name
            if rule in remaining:
                remaining[rule] -= 1
            if rule not in historic:
                seen = observed.get(rule)
                if seen is None:
                    seen = observed[rule] = [0.0, 0]
                seen[0] += duration
                seen[1] += 1
                means[rule] = seen[0] / seen[1]
        self.finished += len(done)

    def elapsed(self) -> float:
        return self.clock() - self.began

    def eta(self) -> Optional[float]:
        """Seconds until the build ends, or None while nothing is known."""
        left = self.total - self.finished
        if left <= 0:
            return 0.0
        now = self.clock()
        work = 0.0
        known = 0
        for rule, count in self.remaining.items():
            mean = self.means.get(rule)
            if count > 0 and mean is not None:
                work += count * mean
                known += count
        if known < left:
            if not self.finished:
                return None
            return self.elapsed() / self.finished * left
        for task, began in list(self.running.items()):
            mean = self.means.get(task.name)
            if mean is not None:
                work -= min(now - began, mean)
        return max(work, 0.0) / min(self.jobs, left)


# ---------------------------------------------------------------------------- plain


class PlainReporter(Reporter):
    """One line per finished task (`[ 12/400] done streams(2012-06-01) 0.01s`), for logs and CI."""

    def __init__(self, stream, verbose: bool = False, quiet: bool = False):
        self.stream = stream
        self.verbose = verbose
        self.quiet = quiet
        self.progress = Progress()
        self._tty = _isatty(stream)
        self._width = 1
        self._last_flush = time.monotonic()

    def build_started(self, total: int, complete: int, eta_per_rule: dict, jobs: int = 1) -> None:
        progress = self.progress
        progress.start(total, complete, eta_per_rule, jobs)
        self._width = len(str(total))
        if self.quiet:
            return
        text = f"{total:,} task{'' if total == 1 else 's'} to run, {complete:,} already complete"
        eta = progress.eta()
        if eta is not None and total:
            text += f", about {format_duration(eta)}"
        self._write(text + "\n")

    def task_started(self, task, attempt: int) -> None:
        self.progress.task_started(task)
        if self.verbose:
            again = f" (attempt {attempt})" if attempt > 1 else ""
            self._write(f"{'':>{2 * self._width + 3}} start {task.id}{again}\n")

    def task_finished(self, task, status: str, duration: float, error: Optional[str] = None,
                      log_path: Optional[str] = None, log_tail: Optional[list] = None) -> None:
        progress = self.progress
        progress.task_finished(task, status, duration)
        failure = status in FAILURES
        if self.quiet and not failure:
            return
        word = WORDS.get(status, status)
        if status in FINAL:
            head = f"[{progress.finished:>{self._width}}/{progress.total}] {word} {task.id} {format_duration(duration)}"
        else:
            head = f"{'':>{2 * self._width + 3}} {word} {task.id} {format_duration(duration)}"
        if status == "skipped":
            head += " (another flow is running it)"
        if not (failure or status == "retry"):
            self._write(head + "\n")
            return
        self._write("\n".join(failure_lines(head, error, log_path, log_tail)) + "\n", urgent=failure)

    def tasks_started(self, tasks: list) -> None:
        """Several first attempts started at once (the jobs of one message)."""
        if self.verbose:
            for task in tasks:
                self.task_started(task, 1)
            return
        self.progress.running.update(dict.fromkeys(tasks, self.progress.clock()))

    def tasks_done(self, done: list) -> None:
        """Several successes, (task, duration) each, in order: one write for all their lines."""
        progress = self.progress
        first = progress.finished + 1
        progress.tasks_done(done)
        if self.quiet:
            return
        width, total = self._width, progress.total
        self._write("".join([f"[{number:>{width}}/{total}] done {task.id} {format_duration(duration)}\n"
                             for number, (task, duration) in enumerate(done, first)]))

    def message(self, text: str, level: str = "info") -> None:
        if level == "info" and self.quiet:
            return
        prefix = "" if level == "info" else f"{level}: "
        self._write(f"{prefix}{text}\n", urgent=level != "info")

    def build_finished(self, summary: Summary) -> None:
        self._write("\n" + render_summary(summary), urgent=True)

    def close(self) -> None:
        try:
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe or file must not hide the build's own error
            pass

    def _write(self, text: str, urgent: bool = False) -> None:
        self.stream.write(text)
        # A line-buffered terminal shows each line; a pipe (CI) gets its text at most a second late.
        if self._tty or urgent:
            self.stream.flush()
            return
        now = time.monotonic()
        if now - self._last_flush >= 1.0:
            self._last_flush = now
            self.stream.flush()


def failure_lines(head: str, error: Optional[str], log_path: Optional[str], log_tail: Optional[list]) -> list:
    """A failure as lines: the headline, the error, the log's last lines and the log's path."""
    lines = [head]
    if error:
        lines.extend("    " + line for line in error.rstrip("\n").split("\n"))
    if log_tail:
        lines.extend("    | " + line.rstrip("\n") for line in log_tail[-LOG_TAIL:])
    if log_path:
        lines.append(f"    log: {log_path}")
    return lines


# ---------------------------------------------------------------------------- rich


class RichReporter(Reporter):
    """A live display (done/total, bar, running tasks, elapsed, ETA) redrawn by a timer; failures above it."""

    def __init__(self, console, verbose: bool = False, refresh_per_second: float = 5.0):
        from rich.live import Live

        self.console = console
        self.verbose = verbose
        self.progress = Progress()
        self._interval = 1.0 / refresh_per_second
        self._lock = threading.Lock()  # guards progress and _pending against the timer thread
        self._pending: list = []  # (style, text) lines to print above the display at the next tick
        self._live = Live(console=console, auto_refresh=False, transient=True, get_renderable=self._render)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def build_started(self, total: int, complete: int, eta_per_rule: dict, jobs: int = 1) -> None:
        with self._lock:
            self.progress.start(total, complete, eta_per_rule, jobs)
        if self._thread is None:
            self._stop.clear()
            self._live.start(refresh=True)
            self._thread = threading.Thread(target=self._tick, name="flow-progress", daemon=True)
            self._thread.start()

    def task_started(self, task, attempt: int) -> None:
        with self._lock:
            self.progress.task_started(task)
            if self.verbose:
                again = f" (attempt {attempt})" if attempt > 1 else ""
                self._pending.append(("dim", f"start {task.id}{again}"))

    def task_finished(self, task, status: str, duration: float, error: Optional[str] = None,
                      log_path: Optional[str] = None, log_tail: Optional[list] = None) -> None:
        with self._lock:
            progress = self.progress
            progress.task_finished(task, status, duration)
            head = f"{WORDS.get(status, status)} {task.id} {format_duration(duration)}"
            if status in FAILURES:
                lines = failure_lines(head, error, log_path, log_tail)
                self._pending.append(("bold red", lines[0]))
                self._pending.extend(("red" if i == 1 else "", line) for i, line in enumerate(lines[1:], 1))
            elif status == "retry":
                last = error.strip().splitlines()[-1] if error and error.strip() else ""
                self._pending.append(("yellow", f"{head}: {last}" if last else head))
            elif self.verbose:
                self._pending.append(("green" if status == "done" else "yellow", head))

    def message(self, text: str, level: str = "info") -> None:
        style = {"warning": "yellow", "error": "bold red"}.get(level, "")
        prefix = "" if level == "info" else f"{level}: "
        with self._lock:
            self._pending.append((style, prefix + text))
        if self._thread is None:
            self._print_pending()

    def build_finished(self, summary: Summary) -> None:
        self._stop_display()
        from rich.text import Text

        text = Text(render_summary(summary))
        last = text.plain.rstrip("\n").rfind("\n") + 1
        text.stylize("bold green" if summary.exit_code == 0 else "bold red", last)
        self.console.print(text, highlight=False, markup=False, soft_wrap=True, end="")

    def close(self) -> None:
        self._stop_display()

    # ------------------------------------------------------------------ the timer side

    def _tick(self) -> None:
        while not self._stop.wait(self._interval):
            self._print_pending()
            self._live.refresh()

    def _stop_display(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._print_pending()
            self._live.refresh()
            self._live.stop()
        else:
            self._print_pending()

    def _print_pending(self) -> None:
        with self._lock:
            lines, self._pending = self._pending, []
        if not lines:
            return
        from rich.text import Text

        text = Text()
        for i, (style, line) in enumerate(lines):
            if i:
                text.append("\n")
            text.append(line, style=style or None)
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def _render(self):
        from rich.console import Group
        from rich.text import Text

        with self._lock:
            progress = self.progress
            total, finished, failed = progress.total, progress.finished, progress.failed
            skipped, complete = progress.skipped, progress.complete
            now = progress.clock()
            running = [(task.id, now - began) for task, began in islice(progress.running.items(), RUNNING_SHOWN)]
            more = len(progress.running) - len(running)
            elapsed = progress.elapsed()
            eta = progress.eta()
        top = self._bar(finished, total)
        top.no_wrap = True
        top.overflow = "ellipsis"
        top.append(f" {finished:,}/{total:,} tasks")
        if failed:
            top.append(f"  {failed:,} failed", style="bold red")
        if skipped:
            top.append(f"  {skipped:,} skipped", style="yellow")
        top.append(f"  {_clock_text(elapsed)}  ETA {'--' if eta is None else _clock_text(eta)}")
        if complete:
            top.append(f"  ({complete:,} complete before)", style="dim")
        rows = [top]
        for i, (task_id, seconds) in enumerate(running):
            rows.append(Text(f"  {'running' if i == 0 else '':7} {task_id}  {format_duration(seconds)}",
                             no_wrap=True, overflow="ellipsis"))
        if more > 0:
            rows.append(Text(f"          and {more:,} more running", style="dim"))
        return Group(*rows)


    def _bar(self, finished: int, total: int):
        from rich.text import Text

        # rich's ProgressBar draws both parts with one character told apart by colour alone,
        # which NO_COLOR would make invisible; two characters read without colour.
        width = min(BAR_WIDTH, self.console.width // 4)
        done = width * finished // total if total else width
        bar = Text("━" * done, style="green")
        bar.append("─" * (width - done), style="bright_black")
        return bar


def _clock_text(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
