"""End-to-end: command: and shell: actions through the real `flow` command, as a user types it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.processes import alive

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Names a shell would split, glob or run: each must reach the program as one argument, untouched.
NASTY = "it's a; b $(touch pwned) `touch pwned` * \"q\""


def literal(text: str) -> str:
    """`text` as a Flowfile string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def flow(project, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "flow.runtime.cli", *args], cwd=project, env=_env(project),
                          capture_output=True, text=True, timeout=timeout)


def start_flow(project, *args):
    return subprocess.Popen([sys.executable, "-m", "flow.runtime.cli", *args], cwd=project, env=_env(project),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _env(project) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["FLOW_TEST_DIR"] = str(project)
    env["FLOW_RETRY_DELAY"] = "0.05"
    return env


def write_flowfile(project, text: str) -> None:
    (project / "Flowfile").write_text(textwrap.dedent(text))


def wait_for(condition, what: str, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


def leftovers(directory) -> list:
    return [name for name in os.listdir(directory) if "flow-tmp" in name]


def test_command_arguments_with_spaces_quotes_and_semicolons_stay_one_word(tmp_path):
    write_flowfile(tmp_path, f"""
        rule word(name: str):
            output: "out/word {{name}}.txt"
            command: ["python3", "-c", "import sys; open(sys.argv[1], 'w').write(sys.argv[2] + '|' + sys.argv[3])",
                      "{{output}}", "{{name}}", "x={{name}}"]

        rule copy(name: str):
            requires: word(name)
            output: "out/copy {{name}}.txt"
            command: ["cp", "{{input}}", "{{output}}"]

        target nasty: copy({literal(NASTY)})
    """)
    result = flow(tmp_path, "build", "nasty")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "out" / f"copy {NASTY}.txt").read_text() == f"{NASTY}|x={NASTY}"
    assert not (tmp_path / "pwned").exists()
    assert leftovers(tmp_path / "out") == []
    log = (tmp_path / ".flow" / "logs" / "copy").iterdir().__next__().read_text()
    assert log.startswith("$ cp ")  # the log says what ran


def test_shell_pipeline_quotes_every_substituted_value(tmp_path):
    (tmp_path / "in").mkdir()
    for name, words in ((NASTY, "b\na\nb\n"), ("plain", "a\nc\n")):
        (tmp_path / "in" / f"{name}.txt").write_text(words)
    write_flowfile(tmp_path, f"""
        external rule words(name: str):
            output: "in/{{name}}.txt"

        rule counts(label: str):
            requires: words({literal(NASTY)}), words("plain")
            output: "out/counts {{label}}.txt"
            shell: "cat {{inputs}} | sort | uniq -c | awk '{{{{ print $2, $1 }}}}' > {{output}}; echo {{label}} >&2"
    """)
    result = flow(tmp_path, "build", 'counts("x; y")')
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "out" / "counts x; y.txt").read_text() == "a 2\nb 2\nc 1\n"
    assert not (tmp_path / "pwned").exists()
    log = next((tmp_path / ".flow" / "logs" / "counts").iterdir()).read_text()
    assert log.endswith("x; y\n")  # standard error is in the task's log


def test_stdout_output_captures_standard_output_as_the_output_file(tmp_path):
    write_flowfile(tmp_path, """
        rule days(interval: interval):
            output: "out/days_{interval}.txt"
            command: ["printf", "%s to %s\\n", "{interval.start}", "{interval.end}"]
                stdout: output
    """)
    result = flow(tmp_path, "build", "days(2012-06)")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "out" / "days_2012-06.txt").read_bytes() == b"2012-06-01 to 2012-07-01\n"


def test_env_and_cwd_settings(tmp_path):
    (tmp_path / "work").mkdir()
    write_flowfile(tmp_path, """
        rule where(name: str):
            output: "out/{name}.txt"
            shell: "pwd > {output} && echo \\"$GREETING\\" >> {output}"
                env:
                    GREETING: "hello {name}"
                cwd: "work"
    """)
    result = flow(tmp_path, "build", "where(world)")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = (tmp_path / "out" / "world.txt").read_text().splitlines()
    assert lines == [os.path.realpath(tmp_path / "work"), "hello world"]


def test_a_failing_program_shows_its_exit_code_and_the_tail_of_standard_error(tmp_path):
    write_flowfile(tmp_path, """
        rule fails(name: str):
            output: "out/{name}.txt"
            shell: "echo partial > {output}; echo first problem >&2; echo second problem >&2; exit 3"
    """)
    result = flow(tmp_path, "build", "fails(x)")
    assert result.returncode == 1
    assert "the shell command exited with code 3; last lines of its standard error:" in result.stdout
    assert "first problem" in result.stdout and "second problem" in result.stdout
    assert not (tmp_path / "out" / "x.txt").exists()
    assert leftovers(tmp_path / "out") == []
    history = flow(tmp_path, "log")
    assert "exited with code 3" in history.stdout  # the message, tail included, is in the history too


@pytest.mark.parametrize("action, expected", [
    ('shell: "kill -KILL $$"', "the shell command was killed by SIGKILL"),
    ('command: ["sh", "-c", "kill -TERM $$"]', "'sh' was killed by SIGTERM"),
])
def test_a_program_killed_by_a_signal_says_which(tmp_path, action, expected):
    write_flowfile(tmp_path, f"""
        rule dies(name: str):
            output: "out/{{name}}.txt"
            {action}
    """)
    result = flow(tmp_path, "build", "dies(x)")
    assert result.returncode == 1
    assert expected in result.stdout


def test_a_program_that_does_not_exist_is_one_line(tmp_path):
    write_flowfile(tmp_path, """
        rule missing(name: str):
            output: "out/{name}.txt"
            command: ["no-such-program-for-flow", "{output}"]
    """)
    result = flow(tmp_path, "build", "missing(x)")
    assert result.returncode == 1
    assert "cannot run 'no-such-program-for-flow': not found on PATH" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


HANGS = """
rule hangs(name: str):
    output: "out/{name}.txt"
    shell: "sleep 300 & echo $! > \\"$FLOW_TEST_DIR/child.pid\\"; echo partial > {output}; wait"
"""


def test_a_timeout_kills_the_program_and_its_children(tmp_path):
    write_flowfile(tmp_path, HANGS + "    timeout: 1s\n")
    result = flow(tmp_path, "build", "hangs(x)")
    assert result.returncode == 1
    assert "timed out after 1s" in result.stdout
    pid = int((tmp_path / "child.pid").read_text())
    wait_for(lambda: not alive(pid), f"the program's child {pid} to be killed")
    assert not (tmp_path / "out" / "x.txt").exists()
    assert leftovers(tmp_path / "out") == []


def test_ctrl_c_kills_the_program_and_its_children(tmp_path):
    write_flowfile(tmp_path, HANGS)
    process = start_flow(tmp_path, "build", "hangs(x)")
    wait_for(lambda: (tmp_path / "child.pid").exists() and (tmp_path / "child.pid").read_text().strip(),
             "the program to start its child")
    pid = int((tmp_path / "child.pid").read_text())
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    wait_for(lambda: not alive(pid), f"the program's child {pid} to be killed")
    assert not (tmp_path / "out" / "x.txt").exists()
    assert leftovers(tmp_path / "out") == []


def test_retries_run_the_program_again(tmp_path):
    write_flowfile(tmp_path, """
        rule flaky(name: str):
            output: "out/{name}.txt"
            shell: "echo run >> tries; [ $(wc -l < tries) -ge 3 ] || exit 1; echo ok > {output}"
            retries: 2
    """)
    result = flow(tmp_path, "build", "flaky(x)")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "tries").read_text() == "run\n" * 3
    assert (tmp_path / "out" / "x.txt").read_text() == "ok\n"


def test_lint_warns_about_a_program_not_on_path_and_points_at_a_bad_placeholder(tmp_path):
    write_flowfile(tmp_path, """
        rule r(date: date):
            output: "out/{date}.txt"
            command: ["no-such-program-for-flow", "{dat}"]

        target t: r(2012-06-01)
    """)
    result = flow(tmp_path, "lint")
    assert result.returncode == 1
    assert "Flowfile:4:44: error: unknown placeholder '{dat}'" in result.stdout
    assert "(did you mean '{date}'?)" in result.stdout
    assert "warning: program 'no-such-program-for-flow' is not found on PATH [W103]" in result.stdout
    build = flow(tmp_path, "build", "t")
    assert build.returncode == 2 and "unknown placeholder '{dat}'" in build.stderr
