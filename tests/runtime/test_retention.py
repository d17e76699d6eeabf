"""History retention: after each build, runs beyond the newest N or older than D days go, with their stale logs."""

from __future__ import annotations

import os
import sqlite3
import time

from flow.runtime.history import History
from flow.runtime.state.local import LocalState

from tests.reliability.helpers import flow
from tests.runtime.test_history import make_factory, streams
from tests.serving import make_project


def record_runs(history, tasks_per_run: list) -> list:
    """One finished run per list of tasks, each task failed once; return the run ids."""
    ids = []
    for tasks in tasks_per_run:
        run_id = history.start_run("flow build", ["x"])
        for task in tasks:
            history.record(run_id, task, "failed", 1, time.time(), 0.1, "boom")
        history.finish_run(run_id, "failed", {"failed": len(tasks)})
        ids.append(run_id)
    return ids


def run_ids(path) -> list:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT id FROM runs ORDER BY id")]


def test_keep_runs_deletes_the_oldest_and_names_the_tasks_no_kept_run_attempted(tmp_path):
    factory = make_factory()
    a, b, c, d = streams(factory, 4)
    history = History(str(tmp_path / ".flow"))
    record_runs(history, [[a, b], [b, c], [c], [d]])
    removed, stale = history.retain(keep_runs=2, keep_days=0)
    assert removed == 2
    assert sorted(stale) == [("streams", a.id), ("streams", b.id)]  # c was attempted again in run 3
    assert run_ids(history.path) == [3, 4]
    with sqlite3.connect(history.path) as db:
        assert {row[0] for row in db.execute("SELECT task_id FROM attempts")} == {c.id, d.id}
    assert history.retain(keep_runs=2, keep_days=0) == (0, [])
    history.close()


def test_keep_days_deletes_runs_that_started_before_the_cutoff(tmp_path):
    factory = make_factory()
    a, b = streams(factory, 2)
    history = History(str(tmp_path / ".flow"))
    record_runs(history, [[a], [a], [b]])
    with sqlite3.connect(history.path) as db:  # the first two runs started 10 and 5 days ago
        db.execute("UPDATE runs SET started = started - 10 * 86400 WHERE id = 1")
        db.execute("UPDATE runs SET started = started - 5 * 86400 WHERE id = 2")
    assert history.retain(keep_runs=0, keep_days=7) == (1, [])  # a's attempt in run 2 is kept
    assert history.retain(keep_runs=1000, keep_days=1) == (1, [("streams", a.id)])
    assert run_ids(history.path) == [3]
    assert history.retain(keep_runs=0, keep_days=0) == (0, [])  # 0 and 0: keep everything
    history.close()


def test_the_state_store_removes_the_stale_logs(tmp_path):
    factory = make_factory()
    a, b = streams(factory, 2)
    flow_dir = tmp_path / ".flow"
    state = LocalState(str(flow_dir))
    record_runs(state.history, [[a], [b]])
    logs = flow_dir / "logs" / "streams"
    logs.mkdir(parents=True)
    for task in (a, b):
        (logs / f"{task.id}.log").write_text("boom\n")
    assert state.retain(1, 0, str(flow_dir / "logs")) == 1
    assert sorted(os.listdir(logs)) == [f"{b.id}.log"]
    assert state.retain(0, 0, str(flow_dir / "logs")) == 0
    state.close()


def test_builds_keep_the_newest_runs_of_the_setting_and_their_logs(tmp_path):
    project = make_project(tmp_path)
    (tmp_path / "flow.toml").write_text("[history]\nkeep_runs = 2\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "no-config"), "FLOW_RETRY_DELAY": "0.05"}
    logs = tmp_path / ".flow" / "logs" / "bad"
    assert flow(project, "build", "bad(2012-03-01)", env=env).returncode == 1
    assert (logs / "bad(2012-03-01).log").exists()
    assert flow(project, "build", "bad(2012-03-02)", env=env).returncode == 1
    assert flow(project, "build", "day(2012-05-01)", env=env).returncode == 0
    # the first run went at the end of the third build, and the log of its one failed task with it
    assert not (logs / "bad(2012-03-01).log").exists()
    assert (logs / "bad(2012-03-02).log").exists()
    shown = flow(project, "log", env=env).stdout
    assert [line.split()[0] for line in shown.splitlines() if line.startswith("#")] == ["#3", "#2"]
    assert "bad(2012-03-01)" not in shown and "bad(2012-03-02)" in shown
