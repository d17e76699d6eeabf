"""`flow serve` in a real headless Chromium (the system's, driven by Selenium) during and after real builds.

Screenshots go to $FLOW_TEST_ARTIFACTS (default: flow-test-artifacts/ in the temporary directory);
docs/serve.png is one of them.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from tests.serving import ROOT, Server, flow, make_project, start_flow, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 120  # seconds: conditions, not sleeps, on a loaded machine


@pytest.fixture(scope="module")
def artifacts():
    directory = os.environ.get("FLOW_TEST_ARTIFACTS") or os.path.join(tempfile.gettempdir(), "flow-test-artifacts")
    directory = os.path.join(directory, "serve")
    os.makedirs(directory, exist_ok=True)
    return directory


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("CI"):
            pytest.fail("CI must install chromium and chromium-driver (.ci/run does)", pytrace=False)
        pytest.skip("needs the system's Chromium: apt-get install chromium chromium-driver")
    os.environ["SE_OFFLINE"] = "true"  # Selenium must never try to download a browser or a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


def counter(browser, status: str) -> int:
    from selenium.webdriver.common.by import By

    return int(browser.find_element(By.CSS_SELECTOR, f".counter.{status} .n").text.replace(",", ""))


def shot(browser, artifacts, name: str, full: bool = True) -> None:
    """Save a screenshot of the whole page (up to 2,400 px), or of the first 1,000 px."""
    height = browser.execute_script("return document.body.scrollHeight") if full else 1000
    browser.set_window_size(1280, min(max(height, 800), 2400))
    browser.save_screenshot(os.path.join(artifacts, name + ".png"))
    browser.set_window_size(1280, 1000)


def test_the_page_during_and_after_a_real_build(tmp_path, browser, artifacts):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    directory = make_project(tmp_path)
    server = Server(directory)
    build = start_flow(directory, "build", "-k", "-j", "2", "good", "broken", "live")
    try:
        # 1. during: the two held tasks fill both jobs and wait for the test
        def held_running():
            runs = server.json("/api/runs")["runs"]
            return runs and server.json(f"/api/runs/{runs[0]['id']}")["counts"]["running"] == 2 and runs[0]["id"]
        run_id = wait_for(held_running, "both held tasks to run")
        browser.get(f"{server.url}/runs/{run_id}")
        assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-live") == "1"
        assert counter(browser, "running") == 2
        assert "/ 72" in browser.find_element(By.CSS_SELECTOR, ".progress-line").text
        running_rows = browser.find_elements(By.CSS_SELECTOR, "table.tasks tr.running")
        assert sorted(row.text.split()[0] for row in running_rows) == ["held(2012-04-01)", "held(2012-04-02)"]
        shot(browser, artifacts, "run-during-build")

        # 2. after: the same page, never reloaded, follows the build to its end
        (tmp_path / "release").write_text("")
        assert build.wait(timeout=WAIT) == 1  # bad(...) failed
        WebDriverWait(browser, WAIT).until(
            lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-live") == "0")
        assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-refreshed")  # updated in place
        expected = {"done": 66, "failed": 3, "upstream_failed": 3, "running": 0, "pending": 0, "skipped": 0}
        assert {status: counter(browser, status) for status in expected} == expected
        assert "72 / 72" in browser.find_element(By.CSS_SELECTOR, ".progress-line").text
        assert browser.find_element(By.CSS_SELECTOR, "dl.meta .badge").text == "failed"  # the run's state
        rules = browser.find_elements(By.CSS_SELECTOR, "svg.graph g.node")
        assert sorted(node.get_attribute("data-id") for node in rules) == ["after_bad", "bad", "day", "held", "month"]
        shot(browser, artifacts, "run-after-build")
        shot(browser, artifacts, "run-after-build-top", full=False)  # docs/serve.png
        # 3. a failed task's error, one click from the counter, then on its own page, without the password
        browser.find_element(By.CSS_SELECTOR, ".counter.failed").click()
        rows = WebDriverWait(browser, WAIT).until(
            lambda b: b.find_elements(By.CSS_SELECTOR, "table.tasks tr.failed"))
        assert len(rows) == 3
        assert "RuntimeError: no data for 2012-03-01" in rows[0].find_element(By.CSS_SELECTOR, ".error-cell").text
        rows[0].find_element(By.TAG_NAME, "a").click()
        error = WebDriverWait(browser, WAIT).until(lambda b: b.find_elements(By.CSS_SELECTOR, "pre.error"))[0]
        assert "RuntimeError: no data for 2012-03-01" in error.text
        assert "hunter2secret" not in browser.page_source and "loader:***@" in error.text
        assert "after_bad(2012-03-01)" in browser.find_element(By.CSS_SELECTOR, "svg.neighbourhood").text
        shot(browser, artifacts, "task-failed")

        # 4. search finds a task, on the server
        browser.get(f"{server.url}/runs/{run_id}")
        box = browser.find_element(By.CSS_SELECTOR, "form.search input[name=q]")
        box.send_keys("2012-01-15")
        box.submit()
        WebDriverWait(browser, WAIT).until(lambda b: "q=2012-01-15" in b.current_url)
        found = [row.text.split()[0] for row in browser.find_elements(By.CSS_SELECTOR, "table.tasks tbody tr")]
        assert found == ["day(2012-01-15)"]

        # 5. offline: every script, style and request of the page came from flow serve itself
        urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert urls and all(url.startswith(server.url + "/") for url in urls), urls
    finally:
        (tmp_path / "release").write_text("")
        build.wait(timeout=WAIT)
        server.stop()


def test_the_root_flowfiles_graph_renders(tmp_path, browser, artifacts):
    import json

    from selenium.webdriver.common.by import By

    shutil.copy(os.path.join(ROOT, "Flowfile"), tmp_path)
    shutil.copytree(os.path.join(ROOT, "examples"), tmp_path / "examples")
    rules = json.loads(flow(str(tmp_path), "graph", "--format", "json").stdout)  # what `flow graph` says
    built = flow(str(tmp_path), "build", "top_artists_2012-06.tsv")  # the README's first command
    assert built.returncode == 0, built.stdout + built.stderr
    server = Server(str(tmp_path))
    try:
        browser.get(f"{server.url}/graph")
        nodes = browser.find_elements(By.CSS_SELECTOR, "svg.graph g.node")
        assert sorted(node.get_attribute("data-id") for node in nodes) == sorted(n["id"] for n in rules["nodes"])
        assert len(browser.find_elements(By.CSS_SELECTOR, "svg.graph path.edge")) == len(rules["edges"])
        shot(browser, artifacts, "root-graph")

        # the run's rules, each with its count of done tasks, as the build planned them
        planned = server.json("/api/runs/1")["run"]["plan"]
        browser.get(f"{server.url}/runs/1")
        labels = {node.get_attribute("data-id"): node.text for node in
                  browser.find_elements(By.CSS_SELECTOR, "svg.graph g.node")}
        assert labels == {rule: f"{rule}\n{n} done" for rule, n in planned["rules"].items()}
        assert counter(browser, "done") == planned["tasks"] and "top_artists" in labels

        # drill down: one rule's tasks, then one task's neighbourhood
        browser.find_element(By.CSS_SELECTOR, "svg.graph a[href*='rule=top_artists'] g.node").click()
        rows = browser.find_elements(By.CSS_SELECTOR, "table.tasks tbody tr")
        assert [row.text.split()[0] for row in rows] == ["top_artists(2012-06)"]
        rows[0].find_element(By.TAG_NAME, "a").click()
        task = server.json("/api/task?id=top_artists(2012-06)")
        neighbours = {node.get_attribute("data-id") for node in
                      browser.find_elements(By.CSS_SELECTOR, "svg.neighbourhood g.node")}
        assert neighbours == {"top_artists(2012-06)", *task["requires"], *task["required_by"]}
        assert "artist_streams(2012-06)" in neighbours
        shot(browser, artifacts, "root-task")
    finally:
        server.stop()
