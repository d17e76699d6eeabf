"""Instantiate tasks from checked rules and grow the task graph, only as deep as the caller asks."""

from __future__ import annotations

from itertools import filterfalse, repeat
from operator import attrgetter
from typing import Callable, Iterable, Optional

from . import types as t
from .checks import CheckedFlowfile, RuleInfo
from .errors import Diagnostic, FlowCheckError, UsageError, error
from .expressions import REQUIREMENTS_LIMIT, NoClock, RuleCalls


class Task:
    """One rule applied to parameter values; identified by the rule and its significant values."""

    __slots__ = ("info", "values", "output", "_id", "_requires")

    def __init__(self, info: RuleInfo, values: tuple, output: str):
        self.info = info
        self.values = values
        self.output = output
        self._id = None
        self._requires = None

    @property
    def key(self) -> tuple:
        """What identifies the task: the rule's name and its significant values."""
        info = self.info
        values = self.values
        if len(info.significant) == len(values):
            return (info.name, values)
        return (info.name, tuple(values[i] for i in info.significant))

    @property
    def rule(self):
        return self.info.node

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def params(self) -> dict:
        return dict(zip(self.info.param_names, self.values))

    @property
    def id(self) -> str:
        """`top_artists(2012-06)`: the rule and its significant parameter values."""
        text = self._id
        if text is None:
            text = self._id = self.id_text()
        return text

    def id_text(self) -> str:
        """The id, without keeping it on the task (a dry run of a million tasks writes each id once)."""
        text = self._id
        if text is None:
            info = self.info
            make = info.__dict__.get("_id_format")
            if make is None:
                make = info.__dict__["_id_format"] = _id_format(info)
            text = make(self.values)
        return text

    @property
    def external(self) -> bool:
        return self.info.node.external

    @property
    def output_kind(self) -> str:
        return self.info.output.kind

    def __repr__(self) -> str:
        return f"Task({self.id})"

    def __lt__(self, other: "Task") -> bool:
        return self.id < other.id


def _id_format(info: RuleInfo) -> Callable[[tuple], str]:
    """The function that writes the ids of a rule's tasks, made once per rule (a dry run writes every id)."""
    name = info.name
    slots = [(i, t.FORMATTERS.get(info.param_types[i], t.format_value)) for i in info.significant]
    if len(slots) == 1:
        [(index, convert)] = slots

        def one(values: tuple) -> str:
            return f"{name}({convert(values[index])})"

        return one

    def many(values: tuple) -> str:
        return f"{name}({', '.join([convert(values[i]) for i, convert in slots])})"

    return many


class CycleError(FlowCheckError):
    """Tasks require each other in a circle."""


class RequirementError(FlowCheckError):
    """A task's requirements cannot be computed: a date or interval left the calendar (years 1 to 9999)."""

    task = None  # the task whose requirements failed (not pickled: the diagnostics say everything)
    reason = ""


def _reason(exc: Exception) -> str:
    if isinstance(exc, t.TypeError_):
        return str(exc)
    return "a date leaves the calendar (years 1 to 9999)"


def requirement_error(task, reason: str, start=None) -> RequirementError:
    """E805; when a chain of a rule requiring itself got there from `start`, say it has no end."""
    if start is not None and start is not task:
        message = (f"rule '{task.name}' requires itself without end: the chain that starts at {start.id} "
                   f"reaches {task.id}, where {reason}")
    else:
        message = f"cannot compute what {task.id} requires: {reason}"
    span = task.rule.requires[0].span if task.rule.requires else task.rule.span
    exc = RequirementError(error("E805", message, span,
                                 hint="a rule that requires itself (day - 1) needs a condition that stops it"))
    exc.task, exc.reason = task, reason
    return exc


# Past this many tasks in one graph, a rule that requires itself (day - 1) almost surely never stops.
MAX_TASKS = 5_000_000


NO_TASKS = ()  # the requirements of a rule without requires

# The requirements the walk found for a task it expanded (None or empty for a leaf: the walk does not
# ask a rule without requires), without a call per task: a dry run orders a million tasks with it.
walked_requirements = attrgetter("_requires")
_RULE_NAME = attrgetter("info.name")


class TaskFactory:
    """Interns tasks by key and computes each task's requirements once."""

    def __init__(self, flowfile: CheckedFlowfile, clock: Optional[t.Clock] = None):
        self.flowfile = flowfile
        self.rules = flowfile.rules
        self._tasks: dict = {}  # rule name -> {its significant values: Task}: no key tuple per task
        self._count = 0
        # The build's date, for ranges relative to today: the caller reads the clock, never the compiler.
        self.clock = clock
        self.clock_env = clock.env() if clock is not None else {}
        # A caller's limit on one task's requirements: past it, requirements() raises
        # expressions.TooManyRequirements while the list is made, before it takes the memory.
        self.max_requirements: Optional[int] = None

    def __len__(self) -> int:
        return self._count

    def task(self, rule_name: str, values: tuple) -> Task:
        tasks = self._tasks.get(rule_name)
        if tasks is None:
            tasks = self._tasks[rule_name] = {}
        info = self.rules[rule_name]
        significant = info.significant
        key = values if len(significant) == len(values) else tuple(values[i] for i in significant)
        task = tasks.get(key)
        if task is None:
            task = tasks[key] = Task(info, values, info.output.format(values))
            self._count += 1
        return task

    def from_params(self, rule_name: str, params: dict) -> Task:
        """A task from a partial mapping of parameter values; defaults fill the rest."""
        info = self.rules[rule_name]
        values = []
        for name, default in zip(info.param_names, info.defaults):
            if name in params:
                values.append(params[name])
            else:
                values.append(default.fn({}))
        return self.task(rule_name, tuple(values))

    def requirements(self, task: Task) -> list:
        """The tasks `task` requires, in requires order, without duplicates."""
        required = task._requires
        if required is None:
            info = task.info
            if not info.has_requires:
                required = NO_TASKS  # shared: most tasks of a big graph are leaves
            else:
                env = dict(zip(info.param_names, task.values))
                if info.uses_clock:
                    env.update(self.clock_env)
                if self.max_requirements is not None:
                    env[REQUIREMENTS_LIMIT] = self.max_requirements
                try:
                    pairs = _with_clock(info.requires, env, task)
                except (OverflowError, ValueError) as exc:  # t.TypeError_ included: a date left the calendar
                    raise requirement_error(task, _reason(exc)) from None
                required = self._tasks_of(pairs)
            task._requires = required
        return required

    def target(self, name: str) -> list:
        """The tasks a named target stands for."""
        _, requires = self.flowfile.targets[name]
        return self._tasks_of(_with_clock(requires, self.clock_env, f"target '{name}'"))

    def _tasks_of(self, pairs) -> list:
        """The tasks of (rule name, values) pairs, in order, each once.

        What task() does, with the rule looked up once per run of one rule rather than per task:
        a target of a 30,000-month backfill is made at every command, a no-op included, and the
        requirements of a million-task graph come in runs of one rule (an aggregate's 31 days).
        """
        if pairs.__class__ is RuleCalls:
            made = self._tasks_of_rule(pairs.rule, pairs.values)
            if made is not None:
                return made
        out = []
        seen = set()
        current = None
        for rule_name, values in pairs:
            if rule_name != current:
                current = rule_name
                info = self.rules[rule_name]
                tasks = self._tasks.get(rule_name)
                if tasks is None:
                    tasks = self._tasks[rule_name] = {}
                significant = info.significant
                every = len(significant)
                form = info.output.format
            key = values if every == len(values) else tuple(values[i] for i in significant)
            task = tasks.get(key)
            if task is None:
                task = tasks[key] = Task(info, values, form(values))
                self._count += 1
            elif task in seen:
                continue
            seen.add(task)
            out.append(task)
        return out

    def _tasks_of_rule(self, rule_name: str, values_list: list) -> Optional[list]:
        """_tasks_of for calls of one rule whose values are its keys, made in C (an aggregate's days: new when
        the first is, else mostly known from a neighbour); None: take the general way."""
        info = self.rules[rule_name]
        if len(info.significant) != len(info.param_names):
            return None
        tasks = self._tasks.get(rule_name)
        if tasks is None:
            tasks = self._tasks[rule_name] = {}
        if not values_list or values_list[0] in tasks:
            found = list(map(tasks.get, values_list))
            if None in found:
                return None
            return list(dict.fromkeys(found))  # each once, in order
        # Made first, then interned with one dictionary lookup each (setdefault keeps a task already
        # there): a look-up and an insert per new day were a tenth of growing a million-task graph.
        made = list(map(Task, repeat(info), values_list, info.output.format_all(values_list)))
        before = len(tasks)
        interned = list(map(tasks.setdefault, values_list, made))
        added = len(tasks) - before
        self._count += added
        if added == len(made):
            return made
        # some were known (an overlapping interval's days) or the same values came twice: each once, in order
        return list(dict.fromkeys(interned))

    def relative_range(self, name: str) -> list:
        """The values of a range relative to today, on this factory's clock."""
        return _with_clock(self.flowfile.relative_ranges[name], self.clock_env, f"range '{name}'")


def _with_clock(function, env: dict, what):
    """`function(env)`; E903 when it needs today and no clock was given (`what`: a text, or the Task asking)."""
    try:
        return function(env)
    except NoClock:
        if what.__class__ is Task:
            what = what.id  # named only on an error: an id costs a format per task
        raise UsageError(Diagnostic("error", "E903", f"{what} depends on today, and no build date was given",
                                    None, "pass --today YYYY-MM-DD")) from None


class TaskGraph:
    """The tasks reached from the roots and their requirement edges, in plain lists (no per-task dicts).

    `nodes` lists the tasks in the order the walk reached them (roots first). A task was expanded
    (its requirements followed) unless it was complete (and not forced) or external: the others'
    requirements were never looked at (Luigi's rule), so they have no edges. `graph` gives the
    same as a networkx DiGraph (edge task -> requirement), made on first use, for the algorithms
    of networkx; a build never asks for it.
    """

    def __init__(self, roots: list, nodes: list, members: set, complete: set, descended: set, requires):
        self.roots = roots
        self.nodes = nodes
        self.complete = complete
        self._members = members  # the set of nodes
        self._descended = descended  # complete tasks expanded all the same (forced)
        self._requires = requires  # the factory's requirements(task), cached per task
        self._dependents = None  # task -> the expanded tasks that require it, made when first asked
        self._graph = None

    def is_expanded(self, task: Task) -> bool:
        """Whether the walk followed the task's requirements."""
        return (task in self._members and not task.info.node.external
                and (task not in self.complete or task in self._descended))

    @property
    def expanded(self) -> set:
        """The tasks whose requirements were followed (made when asked: a build never asks)."""
        return {task for task in self.nodes if self.is_expanded(task)}

    def requirements(self, task: Task) -> list:
        return self._requires(task) if self.is_expanded(task) else NO_TASKS

    def dependents(self, task: Task):
        """The expanded tasks that require `task` (a list, or a tuple of one or none)."""
        dependents = self._dependents
        if dependents is None:
            dependents = self._dependents = self._all_dependents()
        found = dependents.get(task, NO_TASKS)
        return (found,) if found.__class__ is Task else found

    def _all_dependents(self) -> dict:
        """task -> its one dependent, or a list of several (most tasks have one); a dry run never asks."""
        dependents: dict = {}
        expanded = self.is_expanded
        for task in self.nodes:
            if not expanded(task):
                continue
            for child in task._requires or NO_TASKS:  # computed by the walk, cached on the task (None: a leaf)
                parents = dependents.get(child)
                if parents is None:
                    dependents[child] = task
                elif parents.__class__ is Task:
                    dependents[child] = [parents, task]
                else:
                    parents.append(task)
        return dependents

    @property
    def graph(self):
        """The graph as a networkx DiGraph (edge task -> requirement)."""
        if self._graph is None:
            import networkx as nx

            graph = nx.DiGraph()
            graph.add_nodes_from(self.nodes)
            requires = self._requires
            graph.add_edges_from((task, child) for task in self.nodes if self.is_expanded(task)
                                 for child in requires(task))
            self._graph = graph
        return self._graph

    def __iter__(self):
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)


def _chain_start(parents: dict, task):
    """The first task of the requirement chain that reached `task`: follow the recorded parents back."""
    seen = {task}
    while task in parents and parents[task] not in seen:
        task = parents[task]
        seen.add(task)
    return task


def walk(
    factory: TaskFactory,
    roots: Iterable[Task],
    complete: Optional[Callable[[list], set]] = None,
    descend_into_complete: Optional[Callable[[Task], bool]] = None,
    edges: bool = True,
    seen: Optional[set] = None,
):
    """Visit the tasks reached from `roots` breadth first, one level at a time: the one walk of the task graph.

    Yields `(level, finished, expanded, edges)` per level:
    1. `finished = complete(level)`, one bulk call per level (nothing is finished without `complete`);
    2. the level's tasks that are neither finished (unless `descend_into_complete` names them) nor
       external are expanded: their requirements are followed, as `edges` (task, requirement);
       a complete task's requirements are never looked at (Luigi's rule);
    3. the next level is the requirements not seen before. The caller may stop after any level.
    With `edges=False` the edges are not listed (an empty list): the caller reads requirements itself.
    `seen`, an empty set, is filled with every task reached (the caller keeps it as the set of nodes).
    """
    roots = list(dict.fromkeys(roots))
    if seen is None:
        seen = set()
    seen.update(roots)
    level = roots
    requirements = factory.requirements
    recursive = factory.flowfile.recursive_rules
    parents: dict = {}
    while level:
        finished = complete(level) if complete is not None else set()
        next_level = []
        expanded = []
        level_edges = []
        if not finished and _only_leaves(level, factory.rules):
            # nothing to follow (a million-task graph's last level, its days): no work per task
            yield level, finished, list(level), level_edges
            return
        for task in level:
            if task in finished and not (descend_into_complete and descend_into_complete(task)):
                continue
            info = task.info
            if info.node.external:
                continue
            expanded.append(task)
            if not info.has_requires:
                continue
            try:
                children = requirements(task)
            except RequirementError as exc:
                start = _chain_start(parents, task) if task.name in recursive else None
                raise requirement_error(task, exc.reason, start) from None
            if edges:
                level_edges.extend([(task, child) for child in children])
            if recursive:
                for child in children:
                    if child not in seen:
                        seen.add(child)
                        next_level.append(child)
                        if child.info.name in recursive:  # for naming the start of a chain that never ends
                            parents[child] = task
            else:  # the usual Flowfile: the new children in C, no test per child
                fresh = list(filterfalse(seen.__contains__, children))
                seen.update(fresh)
                next_level += fresh
        yield level, finished, expanded, level_edges
        level = next_level


def _only_leaves(level: list, rules: dict) -> bool:
    """Whether every task of the level is of a rule without requires that is not external (its rules found in C)."""
    infos = [rules[name] for name in set(map(_RULE_NAME, level))]
    return not any(info.has_requires or info.node.external for info in infos)


def build_graph(
    factory: TaskFactory,
    roots: Iterable[Task],
    complete: Callable[[list], set],
    descend_into_complete: Optional[Callable[[Task], bool]] = None,
) -> TaskGraph:
    """The graph `walk` reaches from `roots`, checked for cycles.

    `complete(tasks)` is asked once per level; complete tasks are leaves, unless
    `descend_into_complete` names them (tasks a user forces).
    """
    roots = list(dict.fromkeys(roots))
    nodes: list = []
    members: set = set()
    done: set = set()
    descended: set = set()
    requirements = factory.requirements
    any_expanded = False
    for level, finished, expanded, _ in walk(factory, roots, complete, descend_into_complete, edges=False,
                                             seen=members):
        nodes.extend(level)
        if finished:
            done.update(finished)
            if descend_into_complete is not None:
                descended.update(task for task in expanded if task in finished)
        any_expanded = any_expanded or bool(expanded)
        if len(nodes) > MAX_TASKS:
            raise FlowCheckError(error(
                "E801", f"more than {MAX_TASKS:,} tasks: a requirement chain seems never to end",
                None, hint="a rule that requires itself (day - 1) needs a condition that stops it"))
    graph = TaskGraph(roots, nodes, members, done, descended, requirements)
    if any_expanded and factory.flowfile.recursive_rules:
        import networkx as nx

        if not nx.is_directed_acyclic_graph(graph.graph):
            cycle = nx.find_cycle(graph.graph)
            path = " -> ".join(edge[0].id for edge in cycle) + " -> " + cycle[0][0].id
            raise CycleError(error("E802", f"tasks require each other in a cycle: {path}", cycle[0][0].rule.span))
    return graph
