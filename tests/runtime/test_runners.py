"""Runners: the Spark lane is made once, with --spark-master; every action kind has a runner."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from flow.compiler.checks import check
from flow.compiler.graph import TaskFactory
from flow.compiler.parser import parse
from flow.runtime.actions.registry import ACTION_KINDS
from flow.runtime.commands.build import make_runners
from flow.runtime.events import Events
from flow.runtime.executor import Executor, ExecutorSettings
from flow.runtime.plan import Plan
from flow.runtime.targets import Targets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# spark-submit that writes its whole command line into its last argument: the task's output
FAKE_SUBMIT = """#!/bin/sh
for last; do :; done
echo "$@" > "$last"
"""

SUBMIT_FLOWFILE = """
spark:
    master: "local[1]"

rule app(day: int):
    output: "out/app_{day}.txt"
    spark-submit: "app.py"
"""


@pytest.fixture
def spark_home(tmp_path, monkeypatch):
    home = tmp_path / "spark"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "spark-submit").write_text(FAKE_SUBMIT)
    (home / "bin" / "spark-submit").chmod(0o755)
    monkeypatch.setenv("SPARK_HOME", str(home))
    monkeypatch.delenv("FLOW_SPARK_MASTER", raising=False)
    return home


def test_spark_master_from_the_command_line_reaches_spark_submit(tmp_path, spark_home):
    project = tmp_path / "project"
    project.mkdir()
    (project / "Flowfile").write_text(textwrap.dedent(SUBMIT_FLOWFILE))
    (project / "app.py").write_text("")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "flow.runtime.cli", "build", "--spark-master", "local[3]", "app(1)"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    argv = (project / "out" / "app_1.txt").read_text().split()
    assert argv[argv.index("--master") + 1] == "local[3]"


def test_the_executor_runs_spark_tasks_on_the_lane_it_is_handed(tmp_path, spark_home, monkeypatch):
    # The executor used to make a second SparkLane of its own, without --spark-master.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text("")
    checked = check(parse(textwrap.dedent(SUBMIT_FLOWFILE)))
    factory = TaskFactory(checked)
    task = factory.task("app", (1,))
    targets = Targets(str(tmp_path))
    runners = make_runners(checked, targets, 1, str(tmp_path), str(tmp_path / ".flow" / "tmp"), spark_master="local[3]")
    assert runners.get("spark").master == "local[3]"
    outcome = Executor(Plan([task], lambda t: [], lambda t: [], ()), runners, targets, None, Events(),
                       ExecutorSettings(workdir=str(tmp_path), log_dir=str(tmp_path / ".flow" / "logs")),
                       requirements=factory.requirements).run()
    assert outcome.failed == []
    argv = (tmp_path / "out" / "app_1.txt").read_text().split()
    assert argv[argv.index("--master") + 1] == "local[3]"


def test_every_action_kind_the_language_has_has_a_runner():
    from flow.compiler import nodes

    actions = (nodes.PythonAction, nodes.SparkAction, nodes.SparkSubmitAction, nodes.SqlAction, nodes.LoadAction,
               nodes.CommandAction, nodes.ShellAction)
    kinds = {action._field_defaults["kind"] for action in actions}
    assert len(kinds) == len(actions)
    assert kinds <= set(ACTION_KINDS)
    assert {kind.runner for kind in ACTION_KINDS.values()} == {"worker", "spark", "program"}
