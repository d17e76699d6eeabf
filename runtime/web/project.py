"""The Flowfile side of the page: rules, targets, a target's tasks with their status, one task's neighbourhood.

The Flowfile is read again when it changes on disk. Every answer is computed on a request and
cached briefly; nothing here writes anywhere.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Optional

from .store import ORDER, Reader

# A target view is recomputed when the history changed, and otherwise at most this often while
# builds run (LIVE_TTL) or when nothing runs (IDLE_TTL; outputs may be deleted by hand).
LIVE_TTL = 2.0
IDLE_TTL = 30.0
# Past this many tasks the named targets' graph is not built, and dependents are not shown.
MAX_FULL_GRAPH = 2_000_000
# A task page waits this long for the dependents index (built in the background from the first
# task or target page on: building it at start-up would slow the first views of a large project).
DEPENDENTS_WAIT = 5.0
LOG_TAIL_BYTES = 16_000


@dataclass
class TargetState:
    """Every task a target needs right now (complete tasks are leaves, as a build sees them) and its status."""

    name: str
    roots: list
    status: dict  # task -> page status
    errors: dict  # task -> the error shown beside it
    computed: float
    _counts: Optional[dict] = None
    _ordered: Optional[list] = None

    def rule_counts(self) -> dict:
        if self._counts is None:  # once per state: a page of 100,000 tasks asks on every refresh
            counts: dict = {}
            for task, status in self.status.items():
                per_rule = counts.setdefault(task.name, {})
                per_rule[status] = per_rule.get(status, 0) + 1
            self._counts = counts
        return {rule: dict(per_rule) for rule, per_rule in self._counts.items()}

    def tasks(self, query: str = "", status: str = "", rule: str = "", hide_done: bool = False, offset: int = 0,
              limit: int = 50) -> tuple:
        return page_of(self.ordered(), self.errors, query, status, rule, hide_done, offset, limit)

    def ordered(self) -> list:
        """(task id, lowercased id, task, status), failures first, then by id: sorted once per state."""
        if self._ordered is None:
            rank = {s: i for i, s in enumerate(ORDER)}
            rows = [(rank.get(s, 99), task.id, task, s) for task, s in self.status.items()]
            rows.sort(key=lambda row: (row[0], row[1]))
            self._ordered = [(task_id, task_id.lower(), task, s) for _, task_id, task, s in rows]
        return self._ordered


def page_of(ordered: list, errors: dict, query: str = "", status: str = "", rule: str = "", hide_done: bool = False,
            offset: int = 0, limit: int = 50) -> tuple:
    """(tasks matching, one page of them as dicts) from rows that TargetState.ordered() sorted."""
    query = query.lower()  # as the run's search (SQLite's LIKE) ignores case
    if query or status or rule or hide_done:
        rows = [row for row in ordered if (not query or query in row[1]) and (not status or row[3] == status)
                and (not rule or row[2].name == rule) and not (hide_done and row[3] == "done")]
    else:
        rows = ordered
    page = [{"id": task_id, "rule": task.name, "status": s, "attempt": None, "started": None, "duration": None,
             "error": errors.get(task)} for task_id, _, task, s in rows[offset:offset + limit]]
    return len(rows), page


class Project:
    """One Flowfile and its `.flow/` directory, read-only; safe to share between threads."""

    def __init__(self, flowfile_path: str, reader: Optional[Reader] = None):
        self.flowfile_path = os.path.abspath(flowfile_path)
        self.directory = os.path.dirname(self.flowfile_path)
        self.flow_dir = os.path.join(self.directory, ".flow")
        self._reader = reader  # chosen on first use, from the Flowfile's coordinator setting
        self._lock = threading.RLock()  # the session and the caches: held briefly
        # The session's TaskFactory interns tasks and caches their requirements, so the walks of the
        # target pages, the pending lists and the dependents index share one expansion; it is not
        # thread-safe, and walking 100,000 tasks takes seconds: its own lock, so the run pages
        # (which never walk) do not wait behind a walk.
        self._factory_lock = threading.Lock()
        # One task's page never waits behind such a walk: it names its task in a small factory of its own.
        self._lookup = None  # (Flowfile mtime, TaskFactory)
        self._lookup_lock = threading.Lock()
        self._session = None
        self._mtime = None
        self._targets: dict = {}  # name -> (cache key, TargetState)
        self._dependents = None  # (Flowfile mtime, thread, {task id: [dependent ids]} or None when too big)
        self._pending: dict = {}  # run id -> (cache key, computed at, the run's pending tasks as ordered rows)
        self._rule_graph = None  # (Flowfile mtime, what rule_graph() returns): every page draws it

    @property
    def reader(self) -> Reader:
        """The history the page reads: the coordinator's when the project has one (as `flow build` decides,
        from FLOW_COORDINATOR_URL or the Flowfile's and settings' `coordinator:`), else `.flow/history.sqlite`.

        StateError when the coordinator setting names an unset variable.
        """
        if self._reader is None:
            from flow.compiler.errors import FlowError

            from .store import open_reader

            try:
                setting = self.session().checked.coordinator
            except (FlowError, OSError):  # a broken Flowfile: the history still shows, as `flow log` reads it
                setting = None
            with self._lock:
                if self._reader is None:
                    self._reader = open_reader(self.flow_dir, setting)
        return self._reader

    # ------------------------------------------------------------------ the Flowfile

    def session(self):
        """The loaded Flowfile (a runtime Project), read again when the file changed; raises FlowError."""
        with self._lock:
            mtime = os.stat(self.flowfile_path).st_mtime_ns
            if self._session is None or mtime != self._mtime:
                from flow.runtime.project import Project as RuntimeProject
                from flow.runtime.targets import Targets

                session = RuntimeProject(self.flowfile_path)
                # table outputs are checked through a database the page never starts (see ReadOnlyDatabase)
                session.targets = Targets(session.root, database=ReadOnlyDatabase(session.checked.database,
                                                                                   session.flow_dir))
                self._session = session
                self._mtime = mtime
                self._targets = {}
                self._pending = {}
                self._dependents = None
            return self._session

    def rule_graph(self) -> tuple:
        """(rule names in Flowfile order, [(requirement, dependent)], {rule: doc line})."""
        from flow.compiler.export import rule_graph

        with self._lock:
            checked = self.session().checked
            if self._rule_graph is not None and self._rule_graph[0] == self._mtime:
                return self._rule_graph[1]
            graph = rule_graph(checked.ast)
            names = [rule.name for rule in checked.ast.rules]
            docs = {rule.name: (rule.doc or "").strip().splitlines()[0] if rule.doc else ""
                    for rule in checked.ast.rules}
            self._rule_graph = (self._mtime, (names, [(b, a) for a, b in graph.sorted_edges()], docs))
            return self._rule_graph[1]

    def target_names(self) -> tuple:
        """(named targets in Flowfile order, the default target or None)."""
        checked = self.session().checked
        return list(checked.targets), checked.default

    # ------------------------------------------------------------------ a target's tasks

    def target_state(self, name: str) -> TargetState:
        """The target's tasks and their status; raises FlowError for a name that resolves to nothing."""
        with self._lock:
            session = self.session()
            key = (self._mtime, self.reader.version())
            cached = self._targets.get(name)
        if cached is not None and cached[0] == key:
            ttl = LIVE_TTL if any(s == "running" for s in cached[1].status.values()) else IDLE_TTL
            if time.monotonic() - cached[1].computed < ttl:
                return cached[1]
        with self._factory_lock:
            state = self._compute_target(session, name)
        with self._lock:
            self._targets[name] = (key, state)
        return state

    def _compute_target(self, session, name: str) -> TargetState:
        from flow.compiler.resolve import resolve

        self.warm()  # the dependents index shares this walk: the task pages that follow need it
        roots = resolve(session.factory, name)
        tasks, done, dependents = _walk_graph(session.factory, roots, self._complete(session))
        return self._statuses(name, roots, tasks, done, dependents)

    def _statuses(self, name, roots, tasks, done, dependents) -> TargetState:
        """Each task's page status: done, running, failed (its latest attempt failed, or a missing external
        input), upstream failed (something it needs, however deep, failed), else pending."""
        running = self.reader.running_now()
        last = self.reader.last_status([t.id for t in tasks if t not in done])
        status: dict = {}
        errors: dict = {}
        failed = []
        for task in tasks:
            if task in done:
                status[task] = "done"
            elif task.id in running:
                status[task] = "running"
            elif task.info.node.external:
                status[task] = "failed"
                errors[task] = "missing external input"
                failed.append(task)
            elif last.get(task.id, ("",))[0] == "failed":
                status[task] = "failed"
                errors[task] = last[task.id][1]
                failed.append(task)
        # a failure reaches up through the dependents that would run after it (one pass, no sort)
        reached = failed
        while reached:
            following = []
            for task in reached:
                for dependent in dependents.get(task, ()):
                    if dependent not in status:
                        status[dependent] = "upstream_failed"
                        errors[dependent] = f"requires {task.id}"
                        following.append(dependent)
            reached = following
        for task in tasks:
            if task not in status:
                status[task] = "pending"
        return TargetState(name, roots, status, errors, time.monotonic())

    # ------------------------------------------------------------------ a run's pending tasks

    def run_pending(self, run: dict, query: str = "", rule: str = "", offset: int = 0, limit: int = 50) -> tuple:
        """(count, one page) of the run's tasks not started yet: what its targets need now (complete tasks are
        leaves, as the build saw them) that has no attempt in the run, of the rules its plan names."""
        from flow.compiler.errors import FlowError
        from flow.compiler.resolve import resolve

        with self._lock:
            session = self.session()
            key = (self._mtime, self.reader.version())
            cached = self._pending.get(run["id"])
        if cached is None or cached[0] != key or time.monotonic() - cached[1] >= LIVE_TTL:
            with self._factory_lock:
                roots = []
                for target in run["targets"]:
                    try:
                        roots.extend(resolve(session.factory, target))
                    except FlowError:  # a target this Flowfile no longer has: its tasks cannot be named
                        continue
                tasks, done, _ = _walk_graph(session.factory, roots, self._complete(session))
                started = self.reader.run_task_ids(run)
                planned = run["plan"].get("rules") or {}
                rows = sorted(((t.id, t.id.lower(), t, "pending") for t in tasks
                               if t not in done and t.id not in started and not t.info.node.external
                               and (not planned or t.name in planned)), key=lambda row: row[0])
            cached = (key, time.monotonic(), rows)
            with self._lock:
                self._pending[run["id"]] = cached
        return page_of(cached[2], {}, query, "", rule, False, offset, limit)

    # ------------------------------------------------------------------ starting up

    def warm_start(self) -> None:
        """Read the newest run into memory, so that the first view (the run a user opens first) is quick."""
        runs = self.reader.runs(0, 1)
        if runs:
            self.reader.run_rule_counts(runs[0])
        import flow.runtime.db  # noqa: F401 - the redaction every task list uses

        self.rule_graph()
        # Not the walk of the named targets' tasks (warm()): it holds the GIL for seconds at 100,000
        # tasks and would slow every first view; the first task or target page starts it.

    @staticmethod
    def _complete(session):
        """Bulk output checks; outputs in a place that cannot be reached (a database down) count as missing."""
        session.unreachable.clear()  # ask again on each computation: the embedded server may have started

        return session.lenient_complete

    # ------------------------------------------------------------------ one task

    def task(self, task_id: str):
        """The task a task id names in today's Flowfile, or None (a rule renamed since, a bad id)."""
        from flow.compiler.errors import FlowError
        from flow.compiler.resolve import resolve

        with self._lookup_lock:
            factory = self._lookup_factory()
            try:
                tasks = resolve(factory, task_id)
            except FlowError:
                return None
            return tasks[0] if len(tasks) == 1 and tasks[0].id == task_id else None

    def neighbourhood(self, task, wait: float = DEPENDENTS_WAIT) -> tuple:
        """(ids of what the task requires, ids of what requires it among the named targets' tasks or None,
        whether they are still being computed).

        None means the dependents are still being computed (a large Flowfile) or too many to know.
        """
        with self._lookup_lock:
            factory = self._lookup_factory()
            requirements = [t.id for t in factory.requirements(task)] if task.info.has_requires else []
        thread = self.warm()
        thread.join(wait)
        index = self._dependents[2] if self._dependents is not None else None
        if index is None:
            return requirements, None, thread.is_alive()
        return requirements, sorted(index.get(task.id, ())), False

    def _lookup_factory(self):
        """The small factory of single-task lookups, for today's Flowfile; caller holds _lookup_lock."""
        from flow.compiler.graph import TaskFactory

        with self._lock:
            session = self.session()
            mtime = self._mtime
        if self._lookup is None or self._lookup[0] != mtime:
            self._lookup = (mtime, TaskFactory(session.checked, getattr(session, "clock", None)))
        return self._lookup[1]

    def warm(self) -> threading.Thread:
        """Start building the dependents index of the named targets' tasks in the background (once per Flowfile)."""
        with self._lock:
            session = self.session()
            if self._dependents is None or self._dependents[0] != self._mtime:
                thread = threading.Thread(target=self._build_dependents, args=(session, self._mtime),
                                          name="flow-serve-dependents", daemon=True)
                self._dependents = (self._mtime, thread, None)
                thread.start()
            return self._dependents[1]

    def _build_dependents(self, session, mtime) -> None:
        from flow.compiler.errors import FlowError

        # The session's factory: the target pages that follow walk the requirements it caches now.
        factory = session.factory
        with self._factory_lock:
            roots = []
            for name in session.checked.targets:
                try:
                    roots.extend(factory.target(name))
                except FlowError:  # a target this Flowfile cannot expand today: its tasks show no dependents
                    continue
            try:
                tasks, _, dependents = _walk_graph(factory, roots, None, MAX_FULL_GRAPH)
            except Exception:  # past MAX_FULL_GRAPH, a chain without end, or a cycle: dependents are not shown
                return
        index = {task.id: [d.id for d in found] for task, found in dependents.items()}
        with self._lock:
            if self._dependents is not None and self._dependents[0] == mtime:
                self._dependents = (mtime, self._dependents[1], index)

    def output_exists(self, task) -> Optional[bool]:
        """Whether the task's output exists; None when its place (a database) cannot be reached."""
        from flow.runtime.targets import TargetUnavailable

        with self._lock:
            session = self.session()
            try:
                return task in session.targets.of(task).complete([task])
            except TargetUnavailable:
                return None

    def log_tail(self, rule: str, task_id: str) -> Optional[str]:
        """The last lines of the task's log (its latest attempt), redacted; None when there is none."""
        from flow.runtime.db import redact_text
        from flow.runtime.tasklog import log_file

        path = log_file(os.path.join(self.flow_dir, "logs"), rule, task_id)  # as the executor names it
        try:
            with open(path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - LOG_TAIL_BYTES))
                data = handle.read()
        except OSError:
            return None
        text = data.decode("utf-8", "replace")
        if size > LOG_TAIL_BYTES:
            text = "...\n" + text.split("\n", 1)[-1]
        return redact_text(text)


class ReadOnlyDatabase:
    """The project's database for output checks, never started by the page: the configured one, or the
    embedded server only while something else (a build, `flow db start`) keeps it up.

    The page does not count itself as a user of the embedded server either: it only reads from it.
    """

    def __init__(self, flowfile_database, flow_dir: str):
        self.flowfile_database = flowfile_database
        self.flow_dir = flow_dir
        self._connections = None

    def url(self) -> str:
        from flow.runtime import embedded_db
        from flow.runtime.db import configured_dsn
        from flow.runtime.targets import DatabaseUnavailable

        dsn = configured_dsn(self.flowfile_database)
        if dsn is not None:
            return dsn
        if embedded_db.EmbeddedServer(self.flow_dir).pid() is None:
            raise DatabaseUnavailable("no database is configured and the embedded one is not running"
                                      " (flow serve never starts it)")
        return embedded_db.url(self.flow_dir)

    def __call__(self):
        from flow.runtime.db import ConnectionCache

        if self._connections is None:
            self._connections = ConnectionCache()
        return self._connections.get(self.url())

    def discard(self) -> None:
        if self._connections is not None:
            try:
                self._connections.discard(self.url())
            except Exception:  # noqa: BLE001 - nothing to forget when there is no URL any more
                pass


class TooBig(Exception):
    """A graph walk passed its limit of tasks."""


def _walk_graph(factory, roots: list, complete=None, limit: int = 0) -> tuple:
    """(every task reached, the complete ones, task -> the tasks that require it), as a build walks it.

    Complete tasks are leaves (Luigi's rule). Plain dicts, not a networkx graph: at 100,000 tasks
    building one costs more than the walk itself, and the page needs only the dependents.
    """
    from flow.compiler.graph import walk

    tasks: list = []
    done: set = set()
    dependents: dict = {}
    for level, finished, _, edges in walk(factory, roots, complete):
        tasks.extend(level)
        done.update(finished)
        for task, requirement in edges:
            found = dependents.get(requirement)
            if found is None:
                dependents[requirement] = [task]
            else:
                found.append(task)
        if limit and len(tasks) > limit:
            raise TooBig(len(tasks))
    return tasks, done, dependents
