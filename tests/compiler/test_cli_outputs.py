"""Through the real `flow` command: a parameter value never writes or deletes outside its output's place."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLOWFILE = '''
rule bare(name: str):
    output: "{name}.txt"
    python: acts.write

rule r(name: str):
    output: "data/{name}.txt"
    python: acts.write
'''

ACTIONS = '''
def write(name, output):
    with open(output, "w") as handle:
        handle.write(name + "\\n")
'''


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    (root / "Flowfile").write_text(textwrap.dedent(FLOWFILE))
    (root / "acts.py").write_text(ACTIONS)
    return root


def flow(project, *args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "flow.runtime.cli", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [["build"], ["--dry-run"], ["clean", "-y"]])
def test_absolute_value_is_refused_and_nothing_outside_is_touched(project, tmp_path, command):
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "abs.txt"
    victim.write_text("keep me\n")
    result = flow(project, *command, f'bare("{outside}/abs")')
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: parameter 'name' of 'bare' is '{outside}/abs': a '/' would take")
    assert "Traceback" not in result.stderr
    assert victim.read_text() == "keep me\n"
    assert sorted(os.listdir(outside)) == ["abs.txt"]


@pytest.mark.parametrize("command", [["build"], ["--dry-run"], ["clean", "-y"]])
def test_climbing_value_is_refused(project, tmp_path, command):
    result = flow(project, *command, 'r("../../esc")')
    assert result.returncode == 2
    assert "parameter 'name' of 'r' is '../../esc'" in result.stderr
    assert not (tmp_path / "esc.txt").exists()


def test_a_name_too_long_is_one_clear_error_and_leaves_no_temporary(project):
    result = flow(project, "build", f'r("{"x" * 240}")')
    assert result.returncode == 2
    assert result.stderr.startswith("error: output of 'r' has a name of 244 bytes")
    assert "Traceback" not in result.stderr
    assert not (project / "data").exists() or os.listdir(project / "data") == []


def test_a_data_directory_that_is_a_symlink_keeps_working(project, tmp_path):
    bigger_disk = tmp_path / "bigger_disk"
    bigger_disk.mkdir()
    os.symlink(bigger_disk, project / "data")
    result = flow(project, "build", 'r("june")')
    assert result.returncode == 0, result.stderr
    assert (bigger_disk / "june.txt").read_text() == "june\n"
    result = flow(project, "clean", "-y", "data/june.txt")
    assert result.returncode == 0, result.stderr
    assert not (bigger_disk / "june.txt").exists() and (project / "data").is_symlink()
