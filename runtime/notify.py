"""One notification per build: a listener gathers failures and retries, the build's end sends one message.

`Notifier` reads the build's event stream (events.py) and keeps what a message needs: each task
that failed for good with the tail of its error, and the tasks that were retried. When the build
ends, `Notifier.send` decides from the `notify.on` setting whether this build is worth a message
(failure: exit code 1 or 3; retry: some task needed a retry; success: tasks ran and all went
well), builds one payload, and hands it to every configured channel (notify_send.py: e-mail,
webhook, Python hook). Every error text is redacted (conninfo.py, db.redact_text, and the
notification's own secrets) before it leaves the process. A channel that fails is a warning for
the build command to print; it never changes the build's exit code.

The payload (JSON for the webhook, keyword for the hook, the body of the e-mail)::

    {"text": "flow build failed in /srv/etl on host1: 2 of 40 tasks failed ...",  # Slack shows this
     "event": "failure" | "retry" | "success",
     "project": "/srv/etl", "host": "host1", "command": "flow build toplists", "run_id": 12,
     "exit_code": 1, "elapsed": 12.5,
     "counts": {"ran": 37, "failed": 2, "blocked": 1, ...},
     "failed": [{"task": "top_artists(2012-06)", "rule": "top_artists", "status": "failed",
                 "attempts": 2, "error": "ValueError: ...", "tail": ["last", "log", "lines"],
                 "log": "/srv/etl/.flow/logs/top_artists/top_artists(2012-06).log"}],
     "retried": [{"task": "...", "retries": 1, "error": "..."}],
     "missing_external": ["streams(2012-06-01)"]}
"""

from __future__ import annotations

import os

from .events import Listener, TaskEvent

EXIT_FAILED, EXIT_MISSING_EXTERNAL = 1, 3
LISTED = 20  # failed tasks listed in the text; the JSON lists every one
TAIL_LINES = 15
ERROR_CHARS = 2000


class Notifier(Listener):
    """Collects what the build's message needs; `send` delivers it, once, and returns the warnings to print."""

    def __init__(self, settings, project_root: str, command: str, secrets: tuple = ()):
        self.settings = settings
        self.root = project_root
        self.command = command
        self.secrets = tuple(s for s in secrets if s)
        self.failed: list = []  # final failures, as payload entries
        self.retried: dict = {}  # task id -> payload entry

    def task_finished(self, event: TaskEvent) -> None:
        status = event.status
        if status not in ("failed", "timeout", "gave-up"):
            return
        task = event.task
        if event.retry_in is not None:
            entry = self.retried.setdefault(task.id, {"task": task.id, "retries": 0, "error": None})
            entry["retries"] += 1
            entry["error"] = self._clean(event.error)
            return
        self.failed.append({"task": task.id, "rule": task.name, "status": "timeout" if status == "timeout" else
                            "failed", "attempts": event.attempt, "error": self._clean(event.error),
                            "tail": [self._clean(line) for line in (event.tail or [])[-TAIL_LINES:]],
                            "log": event.log_path})

    def event_of(self, exit_code: int) -> str | None:
        """Which notification this build's end calls for, if the settings ask for it."""
        wanted = self.settings["notify.on"]
        if exit_code in (EXIT_FAILED, EXIT_MISSING_EXTERNAL):
            return "failure" if "failure" in wanted else None
        if exit_code != 0:
            return None  # interrupted, or a usage error: someone is at the terminal
        if self.retried and "retry" in wanted:
            return "retry"
        return "success" if "success" in wanted else None

    def send(self, summary, exit_code: int, run_id, error: str | None = None) -> list:
        """Send the build's one message if its outcome calls for one; return the warnings (one line each).

        `error`: what stopped the whole build, when something did (the coordinator was lost).
        """
        event = self.event_of(exit_code)
        if event is None:
            return []
        from .notify_send import channels

        payload = self.payload(event, summary, exit_code, run_id, error)
        problems = []
        for name, deliver in channels(self.settings, self.root):
            try:
                deliver(payload)
            except SystemExit as exc:  # a hook's sys.exit must not end flow with the hook's code
                problems.append(f"notification by {name} failed: it called sys.exit({exc.code!r})")
            except Exception as exc:  # noqa: BLE001 - a notification never breaks the build
                problems.append(f"notification by {name} failed: {self._clean(str(exc) or type(exc).__name__)}")
        return problems

    def payload(self, event: str, summary, exit_code: int, run_id, error: str | None = None) -> dict:
        from .history import hostname

        counts = {k: v for k, v in summary.counts().items() if v}
        payload = {
            "event": event, "project": self.root, "host": hostname(), "command": self.command, "run_id": run_id,
            "exit_code": exit_code, "error": self._clean(error), "elapsed": round(summary.elapsed, 3),
            "counts": counts,
            "failed": self.failed, "retried": list(self.retried.values()),
            "missing_external": [task.id for task in summary.missing_external],
        }
        payload["text"] = self._text(payload, summary)
        return {"text": payload.pop("text"), **payload}

    def _text(self, payload: dict, summary) -> str:
        """The human message: a headline, then one line per failed task (Slack shows this field)."""
        where = f"{self.root} on {payload['host']}"
        word = {"failure": "failed", "retry": "succeeded after retries", "success": "succeeded"}[payload["event"]]
        counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in payload["counts"].items())
        run = f", run #{payload['run_id']}" if payload["run_id"] is not None else ""  # none when nothing could run
        lines = [f"flow build {word} in {where}: {counts or 'nothing ran'} ({self.command}{run})"]
        if payload["error"]:
            lines.append(f"- stopped: {payload['error']}")
        for entry in self.failed[:LISTED]:
            error = (entry["error"] or entry["status"]).strip().splitlines()
            lines.append(f"- {entry['task']}: {error[-1] if error else entry['status']}")
        if len(self.failed) > LISTED:
            lines.append(f"- ... and {len(self.failed) - LISTED} more failed tasks")
        for task_id in payload["missing_external"][:LISTED]:
            lines.append(f"- missing external input: {task_id}")
        if payload["event"] == "retry":
            lines.extend(f"- {e['task']}: retried {e['retries']}x after: {(e['error'] or '').strip()[-200:]}"
                         for e in payload["retried"][:LISTED])
        return "\n".join(lines)

    def _clean(self, text):
        """Text without secrets: DSN passwords and secret variables (db.redact_text), this notification's own."""
        if text is None:
            return None
        from .conninfo import MASK, MIN_SEARCHED
        from .db import redact_text

        text = redact_text(text)
        for secret in self.secrets:
            if len(secret) >= MIN_SEARCHED:
                text = text.replace(secret, MASK)
        return text[-ERROR_CHARS:] if len(text) > ERROR_CHARS else text


def make_notifier(settings, project_root: str, command: str, database: str | None = None):
    """A Notifier when some notification channel is configured, else None (the build then pays nothing)."""
    if not (settings["notify.email.to"] or settings["notify.webhook.url"] or settings["notify.webhook.url_env"]
            or settings["notify.hook"]):
        return None
    from .conninfo import written_passwords

    secrets = []
    for name in ("notify.email.password_env", "notify.webhook.url_env"):
        if settings[name]:
            secrets.append(os.environ.get(settings[name], ""))
    if settings["notify.webhook.url"]:
        secrets.append(settings["notify.webhook.url"])
    if database:
        secrets.extend(written_passwords(database))
    return Notifier(settings, project_root, command, tuple(secrets))
