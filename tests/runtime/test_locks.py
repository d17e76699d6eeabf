"""Task locks between processes: a lock another process holds is refused until it lets go, on every shard."""

from __future__ import annotations

import multiprocessing

from flow.runtime.locks import SHARDS, TaskLocks, _offset


def _holds(flow_dir: str, keys: list, ready, done) -> None:
    locks = TaskLocks(flow_dir)
    assert all(locks.try_lock(key) for key in keys)
    ready.set()
    done.wait(60)
    locks.close()


def test_a_task_locked_by_another_process_is_refused_until_released(tmp_path):
    keys = [f"path:/data/out/day_{n}.txt" for n in range(200)]
    assert len({_offset(key) % SHARDS for key in keys}) == SHARDS  # every lock file is used
    context = multiprocessing.get_context("fork")
    ready, done = context.Event(), context.Event()
    other = context.Process(target=_holds, args=(str(tmp_path), keys[:100], ready, done))
    other.start()
    try:
        assert ready.wait(60)
        mine = TaskLocks(str(tmp_path))
        assert not any(mine.try_lock(key) for key in keys[:100])
        assert all(mine.try_lock(key) for key in keys[100:])
        mine.unlock(keys[100])
        done.set()
        other.join(60)
        assert all(mine.try_lock(key) for key in keys)  # its locks went with it
        mine.close()
    finally:
        done.set()
        other.join(60)
