"""Resources of a build (`resources: postgres=1`): the limits in force and what the running tasks hold.

A rule says what one of its tasks holds while it runs (a batch run holds it once); limits come
from the Flowfile's top-level `resources:`, overridden by FLOW_RESOURCES, overridden by
`flow build --resources`. A resource with no limit is not counted. Within one build the
`ResourcePool` counts; across flow processes the state store's `try_take_resources` hook does
(the local store always says yes). A task that cannot have its resources waits in the pool,
parked behind the resource that was full (the highest priority first, then the longest waiting),
and is handed back when a holder gives it back; one refused by the store (another process holds
it, or asks for it at a higher priority) is tried again every `poll` seconds, the highest priority
first.
"""

from __future__ import annotations

import heapq
import itertools
import re
import time

ENV_VAR = "FLOW_RESOURCES"
_AMOUNT = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([0-9]+)\s*")


class ResourceError(Exception):
    """Limits that cannot be read, or a task that needs more than a limit allows; exit code 2."""

    exit_code = 2


def parse_limits(text: str, source: str) -> dict:
    """`postgres=2,memory=16` as {name: limit}; ResourceError naming `source` when it is not that form."""
    limits: dict = {}
    for part in text.split(","):
        if not part.strip():
            continue
        match = _AMOUNT.fullmatch(part)
        if match is None:
            raise ResourceError(f"{source}: '{part.strip()}' is not name=N (a whole number, 0 or more); "
                                "for example: postgres=2,memory=16")
        limits[match[1]] = int(match[2])
    return limits


def limits_in_force(flowfile_limits: dict, environ: dict, option: str | None) -> tuple:
    """(name -> limit, name -> where it was set): the Flowfile's, FLOW_RESOURCES over it, --resources over both."""
    limits = dict(flowfile_limits)
    sources = dict.fromkeys(flowfile_limits, "the Flowfile's resources: block")
    for text, source in ((environ.get(ENV_VAR), ENV_VAR), (option, "--resources")):
        if text:
            found = parse_limits(text, source)
            limits.update(found)
            sources.update(dict.fromkeys(found, source))
    return limits, sources


def check_needs(infos, limits: dict, sources: dict) -> None:
    """ResourceError when a rule to run needs more than a limit set outside the Flowfile allows (it could never start).

    The Flowfile's own limits were checked when it was compiled (E213).
    """
    problems = []
    for info in infos:
        for name, amount in info.resources:
            limit = limits.get(name)
            if limit is not None and amount > limit:
                problems.append(f"a task of '{info.name}' needs {name}={amount}, more than the limit of {limit} "
                                f"that {sources[name]} sets, so it could never start")
    if problems:
        raise ResourceError("; ".join(problems))


class ResourcePool:
    """What the running tasks of one build hold, against the limits; tasks that must wait are parked here.

    `take(unit)` gives a unit its resources or parks it (False); `give_back(unit)` returns them;
    `retry(n)` hands back up to n parked units that now hold theirs. The executor calls nothing
    else, except `wake_at()` (when to poll the store again) and `drain()` (a stopped build).
    """

    def __init__(self, limits: dict, state=None, poll: float = 0.2, priority: dict | None = None):
        self.limits = limits
        self.state = state  # the StateStore whose hooks count other processes; None: this process only
        self.poll = poll
        self.priority = priority or {}  # unit -> its effective priority (none set: all 0)
        self.in_use = dict.fromkeys(limits, 0)
        self.peak = dict.fromkeys(limits, 0)  # the most in use at once, per resource (for tests and the curious)
        self._needs: dict = {}  # rule name -> {resource: amount} of its limited resources ({}: none)
        self._held: dict = {}  # unit -> (holder, amounts)
        # resource -> heap of (-priority, arrival, unit) waiting for it to be given back here: a task
        # that became ready later at a higher priority goes before those parked earlier
        self._parked: dict = {}
        self._arrivals = itertools.count()
        self._freed: set = set()  # resources given back since the last retry
        self._elsewhere: list = []  # units the store refused: another process holds what they need
        self._refused: set = set()  # resources the store refused since the last poll: new units wait without asking
        self._next_poll = 0.0

    # ------------------------------------------------------------------ the executor's calls

    def take(self, unit) -> bool:
        """Give `unit` its resources now, or park it until they may be free (False)."""
        if self._refused and self._refused.intersection(self._needs_of(unit)):
            self._park(unit, _ELSEWHERE)  # asked at the next poll: a backfill's tasks cost no round trip each
            return False
        full = self._take(unit)
        if full is None:
            return True
        self._park(unit, full)
        return False

    def give_back(self, unit) -> None:
        """Return what `unit` holds (nothing when it holds nothing)."""
        held = self._held.pop(unit, None)
        if held is None:
            return
        holder, amounts = held
        in_use = self.in_use
        for name, amount in amounts.items():
            in_use[name] -= amount
        self._freed.update(amounts)
        if self.state is not None:
            self.state.give_back_resources(holder)

    @property
    def waiting(self) -> bool:
        """Whether some unit is parked."""
        return bool(self._elsewhere) or any(self._parked.values())

    def retry(self, most: int) -> list:
        """Up to `most` parked units that now hold their resources, per resource the highest priority first,
        then the longest waiting."""
        ready: list = []
        freed, self._freed = self._freed, set()
        for name in freed:
            queue = self._parked.get(name)
            while queue:
                if len(ready) >= most:
                    self._freed.add(name)  # no room to start more now: look again at the next retry
                    break
                entry = heapq.heappop(queue)
                unit = entry[2]
                full = self._take(unit)
                if full is None:
                    ready.append(unit)
                elif full == name:
                    heapq.heappush(queue, entry)  # still full: the rest of this queue waits too, in its place
                    break
                else:
                    self._park(unit, full)
        if self._elsewhere and len(ready) < most and time.monotonic() >= self._next_poll:
            waiting, self._elsewhere = self._elsewhere, []
            if self.priority:  # the highest asks first: the store then knows this process waits at that priority
                waiting.sort(key=lambda unit: -self.priority.get(unit, 0))
            refused: set = set()  # resources the store refused in this round: ask once per round
            for unit in waiting:
                needs = self._needs_of(unit)
                if len(ready) >= most or refused.intersection(needs):
                    self._elsewhere.append(unit)
                    continue
                full = self._take(unit)
                if full is None:
                    ready.append(unit)
                elif full is _ELSEWHERE:
                    refused.update(needs)
                    self._elsewhere.append(unit)
                else:
                    self._park(unit, full)
            self._next_poll = time.monotonic() + self.poll
            self._refused = refused
        return ready

    def wake_at(self):
        """A time.monotonic() by which retry should be called to ask the store again, or None."""
        return self._next_poll if self._elsewhere else None

    def drain(self) -> list:
        """Every parked unit, unparked (the build stopped: they will not start)."""
        units = [entry[2] for queue in self._parked.values() for entry in sorted(queue)] + self._elsewhere
        self._parked = {}
        self._elsewhere = []
        self._refused = set()
        return units

    # ------------------------------------------------------------------ counting

    def _needs_of(self, unit) -> dict:
        info = unit.info
        needs = self._needs.get(info.name)
        if needs is None:
            limits = self.limits
            needs = self._needs[info.name] = {name: amount for name, amount in info.resources if name in limits}
        return needs

    def _take(self, unit):
        """None when taken; else the resource that is full here, or _ELSEWHERE when the store said no."""
        needs = self._needs_of(unit)
        if not needs:
            return None
        in_use, limits = self.in_use, self.limits
        for name, amount in needs.items():
            if in_use[name] + amount > limits[name]:
                return name
        holder = unit.id
        if self.state is not None and not self.state.try_take_resources(holder, needs, limits,
                                                                        self.priority.get(unit, 0)):
            self._refused.update(needs)
            return _ELSEWHERE
        for name, amount in needs.items():
            in_use[name] += amount
            if in_use[name] > self.peak[name]:
                self.peak[name] = in_use[name]
        self._held[unit] = (holder, needs)
        return None

    def _park(self, unit, full) -> None:
        if full is _ELSEWHERE:
            if not self._elsewhere:
                self._next_poll = time.monotonic() + self.poll
            self._elsewhere.append(unit)
        else:
            heapq.heappush(self._parked.setdefault(full, []),
                           (-self.priority.get(unit, 0), next(self._arrivals), unit))


_ELSEWHERE = object()  # what _take answers when the store refused: another process holds the resources
