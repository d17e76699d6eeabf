"""Per-task OS locks so two flow processes never run the same task at once (byte-range fcntl locks).

One lock file under .flow/ holds a one-byte range per task, at an offset hashed from the task's
output. Locking a range costs one fcntl call: no file per task, no pid files, and the kernel drops
every lock of a process that dies, however it dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os

# Offsets live below 2**62 so that they fit off_t everywhere; 62 bits make collisions negligible.
_OFFSET_MASK = (1 << 62) - 1


def _offset(key: str) -> int:
    digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _OFFSET_MASK


class TaskLocks:
    """Exclusive, non-blocking locks on tasks, held by this process until released."""

    def __init__(self, flow_dir: str):
        os.makedirs(flow_dir, exist_ok=True)
        self._fd = os.open(os.path.join(flow_dir, "locks"), os.O_RDWR | os.O_CREAT, 0o644)
        self._held: dict = {}

    def try_lock(self, key: str) -> bool:
        """Take the lock of `key` if no other process holds it."""
        if key in self._held:
            return True
        offset = _offset(key)
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
        except (BlockingIOError, PermissionError):
            return False
        self._held[key] = offset
        return True

    def unlock(self, key: str) -> None:
        offset = self._held.pop(key, None)
        if offset is not None:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, offset)

    def close(self) -> None:
        # closing the descriptor releases every lock this process holds on the file
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self._held.clear()
