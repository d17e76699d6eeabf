"""Notifications of real `flow build` runs reach a local SMTP server (STARTTLS, login) and a local HTTP server.

One message per build, listing the failed task ids, with no password in it: the SMTP password
(from the environment), the database password an action's error quotes, none of them.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.reliability.helpers import flow
from tests.serving import make_project

SMTP_USER = "flow-bot"
SMTP_PASSWORD = "smtp-Pa55-xyzzy-42"
DB_PASSWORD = "hunter2secret"  # what acts.bad puts in its error (tests/serving.py)
FAILED = {"bad(2012-03-01)", "bad(2012-03-02)", "bad(2012-03-03)"}

HOOK = '''
import json

def record(payload):
    with open("hook-calls.jsonl", "a") as out:
        out.write(json.dumps(payload) + "\\n")
'''


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (the flow process trusts it through SSL_CERT_FILE)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return str(cert), str(key)


class Mailbox:
    """What the SMTP server received: (login, message) per mail."""

    def __init__(self):
        self.mails: list = []
        self.logins: list = []

    async def handle_DATA(self, server, session, envelope):
        self.mails.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def smtp_server(certificate):
    """aiosmtpd on 127.0.0.1: STARTTLS required, then AUTH with SMTP_USER / SMTP_PASSWORD."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    mailbox = Mailbox()

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
        mailbox.logins.append((auth_data.login.decode(), ok))
        return AuthResult(success=ok)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port(), tls_context=context,
                            require_starttls=True, authenticator=authenticate, auth_require_tls=True)
    controller.start()
    try:
        yield controller.port, mailbox
    finally:
        controller.stop()


@pytest.fixture
def http_server():
    """A local HTTP server that keeps every POST body (JSON) it gets."""
    bodies: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            bodies.append((self.path, self.headers["Content-Type"], json.loads(self.rfile.read(length))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _project(tmp_path, settings: str) -> str:
    project = make_project(tmp_path)
    (tmp_path / "hooks.py").write_text(HOOK)
    (tmp_path / "flow.toml").write_text(settings)
    return project


def _env(tmp_path, certificate, **extra) -> dict:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "no-user-config"), "SSL_CERT_FILE": certificate[0],
           "FLOW_RETRY_DELAY": "0.05", "SMTP_USER": SMTP_USER, "SMTP_PASSWORD": SMTP_PASSWORD}
    env.update(extra)
    return env


def _settings(smtp_port: int, on: str = '["failure"]') -> str:
    return f'''
keep_going = true

[notify]
on = {on}
hook = "hooks.record"

[notify.email]
to = ["oncall@example.com", "data@example.com"]
from = "flow@example.com"
server = "127.0.0.1:{smtp_port}"
user_env = "SMTP_USER"
password_env = "SMTP_PASSWORD"

[notify.webhook]
url_env = "CHAT_WEBHOOK"
'''


def test_a_failing_build_sends_one_message_per_channel_with_the_failed_tasks_and_no_password(
        tmp_path, certificate, smtp_server, http_server):
    smtp_port, mailbox = smtp_server
    url, bodies = http_server
    project = _project(tmp_path, _settings(smtp_port))
    result = flow(project, "build", "broken", "good",
                  env=_env(tmp_path, certificate, CHAT_WEBHOOK=f"{url}/hooks/T0/B0/tok3n"))
    assert result.returncode == 1, result.stderr
    assert "warning" not in result.stderr, result.stderr
    assert os.path.exists(os.path.join(project, "out", "month_2012-02.txt"))  # keep_going = true from flow.toml

    # e-mail: one message, over STARTTLS with the right login, to both addresses
    assert len(mailbox.mails) == 1
    assert mailbox.logins == [(SMTP_USER, True)]
    mail = mailbox.mails[0]
    assert mail["To"] == "oncall@example.com, data@example.com"
    assert mail["Subject"].startswith(f"flow build failed in {project}")
    body = mail.get_content()
    for task_id in FAILED:
        assert task_id in body
    assert "RuntimeError: no data for 2012-03-01" in body

    # webhook: one POST of JSON with Slack's `text` and the structured fields
    assert len(bodies) == 1
    path, content_type, payload = bodies[0]
    assert path == "/hooks/T0/B0/tok3n" and content_type == "application/json"
    assert payload["event"] == "failure" and payload["exit_code"] == 1
    assert {entry["task"] for entry in payload["failed"]} == FAILED
    assert payload["counts"]["failed"] == 3 and payload["counts"]["blocked"] == 3 and payload["counts"]["ran"] == 62
    assert payload["text"].splitlines()[0] == mail["Subject"]
    assert all(entry["tail"] and entry["log"].endswith(".log") for entry in payload["failed"])

    # the Python hook: called once with the same data
    with open(os.path.join(project, "hook-calls.jsonl")) as calls:
        hooked = [json.loads(line) for line in calls]
    assert hooked == [payload]

    for sent in (body, json.dumps(payload), mail.as_string(), json.dumps(hooked), result.stderr):
        assert DB_PASSWORD not in sent and SMTP_PASSWORD not in sent, sent
    assert "postgresql://loader:***@db.example/warehouse" in body  # the error is there, its password is not


def test_a_notification_that_cannot_be_sent_is_a_warning_and_the_exit_code_stays(tmp_path, certificate):
    closed = _free_port()  # nothing listens there
    project = _project(tmp_path, _settings(closed))
    result = flow(project, "build", "broken", env=_env(tmp_path, certificate,
                                                         CHAT_WEBHOOK=f"http://127.0.0.1:{closed}/hook"))
    assert result.returncode == 1
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: notification")]
    assert len(warnings) == 2, result.stderr
    assert warnings[0].startswith("warning: notification by e-mail failed: ")
    assert warnings[1].startswith("warning: notification by webhook failed: cannot reach the webhook's server")
    assert "Traceback" not in result.stderr
    assert len(open(os.path.join(project, "hook-calls.jsonl")).readlines()) == 1  # the hook still ran


def test_success_is_quiet_unless_asked_for(tmp_path, certificate, smtp_server, http_server):
    smtp_port, mailbox = smtp_server
    url, bodies = http_server
    project = _project(tmp_path, _settings(smtp_port))
    env = _env(tmp_path, certificate, CHAT_WEBHOOK=url)
    assert flow(project, "build", "day(2012-05-01)", env=env).returncode == 0
    assert mailbox.mails == [] and bodies == []

    (tmp_path / "flow.toml").write_text(_settings(smtp_port, on='["failure", "success"]'))
    result = flow(project, "build", "day(2012-05-02)", "day(2012-05-03)", env=env)
    assert result.returncode == 0, result.stderr
    assert len(mailbox.mails) == 1 and len(bodies) == 1
    payload = bodies[0][2]
    assert payload["event"] == "success" and payload["failed"] == [] and payload["counts"] == {"ran": 2}
    assert payload["text"].startswith(f"flow build succeeded in {project}")
    # a no-op build runs nothing: no message
    assert flow(project, "build", "day(2012-05-02)", env=env).returncode == 0
    assert len(bodies) == 1


FLAKY = '''
rule flaky(date: date):
    output: "out/flaky_{date}.txt"
    retries: 2
    python: flaky.once
'''

FLAKY_ACTION = '''
import os

def once(date, output):
    # fails on the first attempt of each date, succeeds on the retry
    marker = f"tried-{date}"
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise ConnectionError(f"warehouse busy for {date}")
    open(output, "w").write("ok\\n")
'''


def test_a_build_that_needed_retries_is_reported_when_asked_and_only_then(tmp_path, certificate, http_server):
    url, bodies = http_server
    project = _project(tmp_path, f'[notify]\non = ["failure"]\nwebhook.url = "{url}/flow"\n')
    with open(os.path.join(project, "Flowfile"), "a") as flowfile:
        flowfile.write(FLAKY)
    (tmp_path / "flaky.py").write_text(FLAKY_ACTION)
    env = _env(tmp_path, certificate)
    assert flow(project, "build", "flaky(2012-06-01)", env=env).returncode == 0
    assert bodies == []  # retries alone are not a failure

    (tmp_path / "flow.toml").write_text(f'[notify]\non = ["failure", "retry"]\nwebhook.url = "{url}/flow"\n')
    assert flow(project, "build", "flaky(2012-06-02)", "flaky(2012-06-03)", env=env).returncode == 0
    assert len(bodies) == 1
    payload = bodies[0][2]
    assert payload["event"] == "retry" and payload["failed"] == [] and payload["exit_code"] == 0
    assert sorted(entry["task"] for entry in payload["retried"]) == ["flaky(2012-06-02)", "flaky(2012-06-03)"]
    assert all(entry["retries"] == 1 and "warehouse busy" in entry["error"] for entry in payload["retried"])
    assert payload["text"].startswith(f"flow build succeeded after retries in {project}")


FEED = '''
external rule feed(date: date):
    output: "incoming/feed_{date}.tsv"

rule from_feed(date: date):
    requires: feed(date)
    output: "out/from_feed_{date}.txt"
    python: acts.day
'''


def test_an_input_that_never_came_is_a_failure_worth_a_message(tmp_path, certificate, http_server):
    url, bodies = http_server
    project = _project(tmp_path, f'[notify]\nwebhook.url = "{url}/flow"\n')
    with open(os.path.join(project, "Flowfile"), "a") as flowfile:
        flowfile.write(FEED)
    result = flow(project, "build", "from_feed(2012-06-01)", env=_env(tmp_path, certificate))
    assert result.returncode == 3, result.stdout + result.stderr
    assert len(bodies) == 1
    payload = bodies[0][2]
    assert payload["event"] == "failure" and payload["exit_code"] == 3
    assert payload["missing_external"] == ["feed(2012-06-01)"] and payload["failed"] == []
    # asked for the feed itself, nothing can run at all: still one message, without a run
    bodies.clear()
    assert flow(project, "build", "feed(2012-06-02)", env=_env(tmp_path, certificate)).returncode == 3
    assert len(bodies) == 1 and bodies[0][2]["run_id"] is None
    assert bodies[0][2]["text"].splitlines()[0].endswith(": 1 missing external (flow build feed(2012-06-02))")
    assert payload["text"].splitlines() == [
        f"flow build failed in {project} on {payload['host']}: 1 blocked, 1 missing external"
        " (flow build from_feed(2012-06-01), run #1)",
        "- missing external input: feed(2012-06-01)"]
