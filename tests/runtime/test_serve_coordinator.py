"""`flow serve` of a project with a coordinator: every host's runs, read from the coordinator's real PostgreSQL.

Two copies of the project (as two hosts would have) build through one coordinator with the real `flow`
command. flow names a host by its node name and has no way to fake it, so the two "hosts" are two
processes on this machine: the page tells them apart by their pids.
"""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from tests.conftest import _schema_dsn
from tests.runtime.test_serve_browser import WAIT, artifacts, browser, counter, shot  # noqa: F401 - fixtures
from tests.serving import Server, finish, flow, make_project, start_flow, wait_for

HOST = socket.gethostname()


def finished(process) -> tuple:
    """(exit code, stdout and stderr together) of a process start_flow began."""
    code, out, err = finish(process)
    return code, out + err


@pytest.fixture(scope="module")
def coordinated(tmp_path_factory, pg_url):
    """Host A built `good` (run 1), host B `-k broken` (run 2), both through one coordinator; a server in A."""
    with pytest.MonkeyPatch.context() as patch:
        for dsn in _schema_dsn(pg_url):
            patch.setenv("FLOW_COORDINATOR_URL", dsn)
            a = make_project(tmp_path_factory.mktemp("host_a"))
            b = make_project(tmp_path_factory.mktemp("host_b"))
            first = start_flow(a, "build", "-j", "2", "good")
            code, output = finished(first)
            assert code == 0, output
            second = start_flow(b, "build", "-k", "broken")
            code, output = finished(second)
            assert code == 1, output
            server = Server(a)
            try:
                yield {"a": a, "b": b, "dsn": dsn, "server": server, "pids": (first.pid, second.pid)}
            finally:
                server.stop()


def test_the_runs_list_shows_every_hosts_runs_and_which_process_ran_each(coordinated):
    server = coordinated["server"]
    pid_a, pid_b = coordinated["pids"]
    answer = server.json("/api/runs")
    assert answer["total"] == 2
    newest, first = answer["runs"]
    assert (newest["command"], newest["state"], newest["host"], newest["pid"]) == (
        "flow build broken", "failed", HOST, pid_b)
    assert (first["command"], first["state"], first["host"], first["pid"]) == (
        "flow build good", "success", HOST, pid_a)
    status, page = server.get("/")
    assert status == 200
    assert f"{HOST} (pid {pid_a})" in page and f"{HOST} (pid {pid_b})" in page
    # host A's own history file says nothing: what the page shows came from the coordinator
    assert not os.path.exists(os.path.join(coordinated["a"], ".flow", "history.sqlite"))


def test_a_run_of_the_other_host_counts_filters_and_pages_its_tasks(coordinated):
    server = coordinated["server"]
    run = server.json("/api/runs/2")
    assert {k: v for k, v in run["counts"].items() if v} == {"failed": 3, "upstream_failed": 3}
    assert run["rules"] == {"bad": {"failed": 3}, "after_bad": {"upstream_failed": 3}}
    failed = server.json("/api/runs/2/tasks?status=failed&limit=2")
    assert failed["total"] == 3 and [row["id"] for row in failed["rows"]] == ["bad(2012-03-01)", "bad(2012-03-02)"]
    assert "hunter2secret" not in str(failed) and "no data for 2012-03-01" in failed["rows"][0]["error"]
    found = server.json("/api/runs/1/tasks?q=2012-02-2")
    assert [row["id"] for row in found["rows"]] == [f"day(2012-02-2{d})" for d in range(10)]
    assert server.json("/api/runs/1")["progress"] == {"finished": 62, "total": 62, "eta": None}


def test_a_task_page_says_who_ran_it(coordinated):
    server = coordinated["server"]
    pid_a, pid_b = coordinated["pids"]
    month = server.json("/api/task?id=" + "month(2012-01)")
    assert [(a["run_id"], a["status"], a["host"], a["pid"]) for a in month["attempts"]] == [
        (1, "done", HOST, pid_a)]
    bad = server.json("/api/task?id=" + "bad(2012-03-02)")
    assert bad["status"] == "failed" and [(a["run_id"], a["pid"]) for a in bad["attempts"]] == [(2, pid_b)]
    status, page = server.get("/task?id=bad(2012-03-02)")
    assert status == 200 and f"{HOST} (pid {pid_b})" in page
    # the target page reads its failures from the coordinator too
    broken = server.json("/api/target?name=broken")
    assert {k: v for k, v in broken["counts"].items() if v} == {"failed": 3, "upstream_failed": 3}


def test_an_attempt_under_way_on_another_host_shows_with_its_host_and_pid(coordinated):
    server, b = coordinated["server"], coordinated["b"]
    build = start_flow(b, "build", "-j", "2", "live")
    try:
        def held_running():
            running = server.json("/api/task?id=held(2012-04-01)")["running"]
            return running if running and running["run_id"] == 3 else None
        running = wait_for(held_running, "held(2012-04-01) to run on host B")
        assert (running["host"], running["pid"]) == (HOST, build.pid)
        run = server.json("/api/runs/3")
        assert run["live"] is True and run["run"]["state"] == "running" and run["counts"]["running"] == 2
        assert server.json("/api/runs")["runs"][0]["progress"]["total"] == 4
        status, page = server.get("/task?id=held(2012-04-01)")
        assert status == 200 and f"on {HOST} (pid {build.pid})" in page
    finally:
        open(os.path.join(b, "release"), "w").close()
        code, output = finished(build)
    assert code == 0, output
    run = wait_for(lambda: (r := server.json("/api/runs/3"))["run"]["state"] == "success" and r,
                   "run 3 to show as ended")
    assert run["live"] is False and run["counts"]["done"] == 4 and run["counts"]["running"] == 0


def test_serve_never_writes_to_the_coordinator(tmp_path, pg_url, monkeypatch):
    """A coordinator no build has used yet: the page shows no runs and leaves it without a table."""
    for dsn in _schema_dsn(pg_url):
        monkeypatch.setenv("FLOW_COORDINATOR_URL", dsn)
        server = Server(make_project(tmp_path))
        try:
            assert server.json("/api/runs") == {"runs": [], "total": 0, "offset": 0, "limit": 50}
            status, page = server.get("/")
            assert status == 200 and "no runs recorded yet" in page
            assert server.json("/api/task?id=day(2012-01-01)")["attempts"] == []
        finally:
            server.stop()
        conn = psycopg2.connect(dsn)
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")
                assert cursor.fetchone()[0] == 0
        finally:
            conn.close()


def test_the_coordinators_setting_in_the_flowfile_is_read_too(coordinated, tmp_path, monkeypatch):
    """No FLOW_COORDINATOR_URL: the Flowfile's `coordinator: $NAME` names it, as for `flow build`."""
    monkeypatch.delenv("FLOW_COORDINATOR_URL")
    monkeypatch.setenv("FLOW_TEST_COORDINATOR", coordinated["dsn"])
    directory = make_project(tmp_path)
    flowfile = os.path.join(directory, "Flowfile")
    with open(flowfile) as handle:
        text = handle.read()
    with open(flowfile, "w") as handle:
        handle.write('coordinator: "$FLOW_TEST_COORDINATOR"\n' + text)
    server = Server(directory)
    try:
        assert server.json("/api/runs")["total"] >= 2
    finally:
        server.stop()
    monkeypatch.delenv("FLOW_TEST_COORDINATOR")
    unset = flow(directory, "serve", "--port", "0")
    assert unset.returncode == 1 and "Traceback" not in unset.stderr
    assert unset.stderr.strip() == ("error: the Flowfile's coordinator is $FLOW_TEST_COORDINATOR,"
                                    " and FLOW_TEST_COORDINATOR is not set")


def test_a_coordinator_that_is_down_is_one_line_on_the_page_never_a_traceback(tmp_path, monkeypatch):
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("FLOW_COORDINATOR_URL", f"postgresql://flow:s3cretpw@127.0.0.1:{port}/flow")
    server = Server(make_project(tmp_path))
    try:
        answer = server.json("/api/runs", expect=503)
        assert answer["error"].startswith("error: cannot read the history: the coordinator"
                                          f" postgresql://flow:***@127.0.0.1:{port}/flow cannot be reached: ")
        assert "\n" not in answer["error"] and "s3cretpw" not in answer["error"]
        status, page = server.get("/")
        assert status == 503 and "The history cannot be read now" in page and "cannot be reached" in page
        status, page = server.get("/task?id=day(2012-01-01)")
        assert status == 503 and "cannot be reached" in page
        wait_for(lambda: "warning: cannot read the history" in server.stderr(), "the warning of the warm start")
    finally:
        server.stop()
    assert "Traceback" not in server.stderr() and "s3cretpw" not in server.stderr()


def test_the_page_in_a_browser_shows_the_other_hosts_run_live_to_its_end(coordinated, browser, artifacts):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, b = coordinated["server"], coordinated["b"]
    release = os.path.join(b, "release")
    if os.path.exists(release):
        os.remove(release)
    for name in ("held_2012-04-01.txt", "held_2012-04-02.txt"):  # a test above may have built them
        if os.path.exists(os.path.join(b, "out", name)):
            os.remove(os.path.join(b, "out", name))
    before = server.json("/api/runs")["total"]
    build = start_flow(b, "build", "-j", "2", "live")
    try:
        def held_running():
            runs = server.json("/api/runs")["runs"]
            return runs[0]["id"] if runs[0]["state"] == "running" and runs[0]["id"] > before and server.json(
                f"/api/runs/{runs[0]['id']}")["counts"]["running"] == 2 else None
        run_id = wait_for(held_running, "host B's held tasks to run")
        # 1. during: host A's page lists host B's run as running, with its process, and keeps polling
        browser.get(server.url + "/")
        assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-live") == "1"
        rows = browser.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")
        assert len(rows) == run_id
        assert f"#{run_id}" in rows[0].text and "running" in rows[0].text and f"(pid {build.pid})" in rows[0].text
        assert f"(pid {coordinated['pids'][0]})" in rows[-1].text  # host A's own first run
        shot(browser, artifacts, "coordinator-runs-during-build")
        # 2. after: the same page, never reloaded, shows the run's end
        open(release, "w").close()
        assert build.wait(timeout=WAIT) == 0
        WebDriverWait(browser, WAIT).until(
            lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-live") == "0")
        assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-refreshed")  # updated in place
        first = browser.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")[0]
        assert f"#{run_id}" in first.text and "success" in first.text
        # 3. the run's page names the process that ran it
        first.find_element(By.TAG_NAME, "a").click()
        WebDriverWait(browser, WAIT).until(lambda b: b.current_url.endswith(f"/runs/{run_id}"))
        assert f"{HOST} (pid {build.pid})" in browser.find_element(By.CSS_SELECTOR, "dl.meta").text
        done = server.json(f"/api/runs/{run_id}")["counts"]["done"]
        assert counter(browser, "done") == done and done >= 2  # the held tasks (and their days, if not built yet)
        shot(browser, artifacts, "coordinator-run-after-build")
    finally:
        open(release, "w").close()
        build.wait(timeout=WAIT)


class Relay:
    """A TCP relay to the database that a test can cut (the coordinator goes down) and restore."""

    def __init__(self, host: str, port: int):
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.sockets: list = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if not self.up:
                client.close()  # the database is "down": the connection ends at once
                continue
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self.up = False
        with self.lock:
            for end in self.sockets:
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.sockets = []

    def close(self) -> None:
        self.cut()
        self.listener.close()


def test_the_page_says_when_the_coordinator_goes_away_and_recovers_when_it_is_back(coordinated, tmp_path,
                                                                                  monkeypatch):
    address = urlsplit(coordinated["dsn"])
    relay = Relay(address.hostname, address.port)
    through_relay = address._replace(netloc=f"{address.netloc.rsplit('@', 1)[0]}@127.0.0.1:{relay.port}")
    monkeypatch.setenv("FLOW_COORDINATOR_URL", urlunsplit(through_relay))
    server = Server(make_project(tmp_path))
    try:
        assert server.json("/api/runs")["total"] >= 2
        relay.cut()
        answer = server.json("/api/runs", expect=503)
        assert "cannot be reached" in answer["error"] and "\n" not in answer["error"]
        status, page = server.get("/runs/1")
        assert status == 503 and "The history cannot be read now" in page
        relay.up = True  # back: the next request connects again, without a restart
        assert server.json("/api/runs")["total"] >= 2
        assert server.json("/api/runs/1")["run"]["pid"] == coordinated["pids"][0]
    finally:
        server.stop()
        relay.close()
    assert "Traceback" not in server.stderr()
