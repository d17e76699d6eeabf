"""What the runners that run attempts on threads of the main process share: a pool, a result queue, a wake-up socket."""

from __future__ import annotations

import queue
import socket
from concurrent.futures import ThreadPoolExecutor

from ..actions.registry import ACTION_KINDS
from . import Job, Runner
from .attempt import run_attempt


class ThreadRunner(Runner):
    """Runs each attempt on a thread (up to `jobs` at once); the executor wakes up when one ends.

    Subclasses say what their actions get as `lane` (self, by default) and how the attempt's log is
    kept (`log(job)`), and how to stop an attempt (`cancel`).
    """

    def __init__(self, flowfile, jobs: int, targets, name: str):
        self.flowfile = flowfile
        self.targets = targets
        self._threads = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix=f"flow-{name}")
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._running = 0

    @property
    def busy(self) -> int:
        return self._running

    def submit(self, job: Job, task, queue: bool = False):
        self._running += 1
        self._threads.submit(self._run, job)
        return None, False

    def log(self, job: Job):
        """The log object of an attempt (attempt.FileLog and the like)."""
        raise NotImplementedError

    def _run(self, job: Job) -> None:
        info = self.flowfile.rules[job.rule]
        kind = ACTION_KINDS[info.node.action.kind]
        target = self.targets.pick(job.kind, job.location)
        self._results.put(run_attempt(job, info, kind, self, target, self.log(job)))
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def sources(self) -> list:
        return [self._wake_r]

    def collect(self, source) -> list:
        if source is not None:
            try:
                self._wake_r.recv(4096)
            except BlockingIOError:
                pass
        collected = []
        while True:
            try:
                result = self._results.get_nowait()
            except queue.Empty:
                break
            self._running -= 1
            collected.append((result, None, ()))
        return collected

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
        self._wake_r.close()
        self._wake_w.close()
