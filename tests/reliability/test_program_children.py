"""Programs (command actions) and everything they start end with the build, even when flow's main process is SIGKILLed.

A command action runs on a thread of the main process, so no worker watches it: the build's
watchdog kills every process that carries the build's mark, daemons that called setsid included.
"""

from __future__ import annotations

import os
import signal
import textwrap

from tests.processes import alive
from tests.reliability.helpers import flow, start_flow, wait_for

DEADLINE = 60.0  # generous: CI is a loaded 2-core machine

# A grandchild in a session of its own (as a daemon makes) that writes its pid and sleeps forever.
DAEMON = """setsid sh -c 'echo $$ > \\"$FLOW_TEST_DIR/{name}.pid\\"; exec sleep 100000'"""

PID_WRITTEN = """while [ ! -s \\"$FLOW_TEST_DIR/{name}.pid\\" ]; do sleep 0.01; done"""

# `daemon` waits for its grandchild, so its task never ends by itself; `leaves_daemon` returns as soon as
# its daemon has written its pid (returning before that, the build could end and kill the daemon first).
FLOWFILE = """
rule daemon(name: str):
    output: "out/{name}.txt"
    shell: "DAEMON & wait"

rule leaves_daemon(name: str):
    output: "left/{name}.txt"
    shell: "DAEMON </dev/null >/dev/null 2>&1 & PID_WRITTEN; echo done > {output}"

rule times_out(name: str):
    output: "late/{name}.txt"
    shell: "DAEMON & wait"
    timeout: 1s

rule held(name: str):
    output: "held/{name}.txt"
    shell: "while [ ! -e \\"$FLOW_TEST_DIR/release\\" ]; do sleep 0.05; done; echo ok > {output}"
""".replace("DAEMON", DAEMON).replace("PID_WRITTEN", PID_WRITTEN)


def make_project(path):
    path.mkdir(parents=True, exist_ok=True)
    (path / "Flowfile").write_text(textwrap.dedent(FLOWFILE))
    return path


def pid_in(path) -> int:
    """The pid a program wrote, once the file is complete."""
    text = path.read_text() if path.exists() else ""
    return int(text) if text.endswith("\n") else 0


def wait_until_gone(pids):
    try:
        wait_for(lambda: not any(alive(pid) for pid in pids), f"processes {pids} to end", timeout=DEADLINE,
                 interval=0.05)
    finally:
        for pid in pids:  # never leave one behind for the next test, whatever the assertion said
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def test_sigkill_of_flow_ends_the_daemon_a_command_started_in_a_session_of_its_own(tmp_path):
    project = make_project(tmp_path / "p")
    build = start_flow(project, "build", "daemon(a)", env={"FLOW_TEST_DIR": str(project)})
    try:
        grandchild = wait_for(lambda: pid_in(project / "a.pid") or build.poll() is not None,
                              "the grandchild's pid file", timeout=DEADLINE)
        assert build.poll() is None, "the build ended first: " + "".join(build.communicate())
        assert alive(grandchild)
        assert os.getsid(grandchild) != os.getsid(build.pid)  # it really left flow's session
        os.kill(build.pid, signal.SIGKILL)
        build.wait(DEADLINE)
        wait_until_gone([grandchild])
    finally:
        build.kill()
        build.communicate()
    assert not (project / "out" / "a.txt").exists()


def test_a_daemon_a_command_leaves_running_ends_with_the_build(tmp_path):
    project = make_project(tmp_path / "p")
    result = flow(project, "build", "leaves_daemon(b)", env={"FLOW_TEST_DIR": str(project)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (project / "left" / "b.txt").read_text() == "done\n"
    # flow has returned; the daemon it started must be gone too (it has been killed, or is about to be reaped)
    daemon = pid_in(project / "b.pid")
    assert daemon, "the daemon never wrote its pid"
    wait_until_gone([daemon])


def test_a_timeout_ends_the_daemon_its_program_started_while_the_build_goes_on(tmp_path):
    project = make_project(tmp_path / "p")
    build = start_flow(project, "build", "-j", "2", "-k", "times_out(c)", "held(h)",
                       env={"FLOW_TEST_DIR": str(project)})
    try:
        daemon = wait_for(lambda: pid_in(project / "c.pid") or build.poll() is not None, "the daemon's pid file",
                          timeout=DEADLINE)
        assert build.poll() is None, "the build ended first: " + "".join(build.communicate())
        wait_for(lambda: not alive(daemon), f"the timed-out program's daemon {daemon} to end", timeout=DEADLINE,
                 interval=0.05)
        assert build.poll() is None  # killed at its program's timeout, not at the end of the build
        (project / "release").write_text("")
        out, err = build.communicate(timeout=DEADLINE)
        assert build.returncode == 1, out + err
        assert "timed out after 1s" in out
        assert (project / "held" / "h.txt").read_text() == "ok\n"
    finally:
        (project / "release").write_text("")
        build.kill()
        build.communicate()
        wait_until_gone([pid_in(project / "c.pid")] if pid_in(project / "c.pid") else [])
