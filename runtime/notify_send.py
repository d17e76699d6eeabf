"""Deliver a build's notification: SMTP e-mail (STARTTLS), a webhook POSTing JSON, a Python hook.

Each channel is a function of the payload (notify.py) that raises on failure; the caller turns
that into a warning. Credentials come from environment variables the settings name, never from
a file. Every channel gives up after `notify.timeout` seconds.
"""

from __future__ import annotations

import json
import os
import sys


def channels(settings, project_root: str) -> list:
    """(name, deliver(payload)) of every channel the settings configure."""
    out = []
    timeout = settings["notify.timeout"] or None
    if settings["notify.email.to"]:
        out.append(("e-mail", lambda payload: send_email(settings, payload, timeout)))
    url_env = settings["notify.webhook.url_env"]
    if settings["notify.webhook.url"] or url_env:
        out.append(("webhook", lambda payload: post_webhook(_webhook_url(settings), payload, timeout)))
    if settings["notify.hook"]:
        out.append((f"hook {settings['notify.hook']}", lambda payload: call_hook(settings["notify.hook"], payload,
                                                                                 project_root)))
    return out


def send_email(settings, payload: dict, timeout) -> None:
    """One message to every address; STARTTLS (certificates checked) before logging in, unless turned off."""
    import smtplib
    import ssl
    from email.message import EmailMessage

    from .history import hostname

    host, port = _server(settings["notify.email.server"], settings["notify.email.starttls"])
    message = EmailMessage()
    message["Subject"] = payload["text"].splitlines()[0][:200]
    message["From"] = settings["notify.email.from"] or f"flow@{hostname()}"
    message["To"] = ", ".join(settings["notify.email.to"])
    message.set_content(payload["text"] + "\n\n" + _details(payload))
    user = _variable(settings["notify.email.user_env"], "notify.email.user_env")
    password = _variable(settings["notify.email.password_env"], "notify.email.password_env")
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        smtp.ehlo()
        if settings["notify.email.starttls"]:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if user or password:
            smtp.login(user or "", password or "")
        smtp.send_message(message)


def post_webhook(url: str, payload: dict, timeout) -> None:
    """POST the payload as JSON; Slack's incoming webhooks show its `text` and ignore the rest."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "flow"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:  # its text names the URL, whose path may be the secret
        raise RuntimeError(f"the server answered {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise RuntimeError(f"cannot reach the webhook's server: {exc.reason}") from None


def call_hook(spec: str, payload: dict, project_root: str) -> None:
    """Call module.function(payload); the module is looked up beside the Flowfile first, as actions are."""
    import importlib

    module_name, _, function_name = spec.rpartition(".")
    sys.path.insert(0, project_root)
    try:
        module = importlib.import_module(module_name)
    finally:
        sys.path.remove(project_root)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise RuntimeError(f"{module_name} has no function {function_name!r}")
    function(payload)


def _webhook_url(settings) -> str:
    if settings["notify.webhook.url"]:
        return settings["notify.webhook.url"]
    return _variable(settings["notify.webhook.url_env"], "notify.webhook.url_env", required=True)


def _variable(name, key: str, required: bool = False):
    if not name:
        return None
    value = os.environ.get(name)
    if required and not value:
        raise RuntimeError(f"{key} names ${name}, which is not set")
    return value


def _server(text: str, starttls: bool) -> tuple:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    return host, int(port) if port else (587 if starttls else 25)


def _details(payload: dict) -> str:
    """The e-mail's second part: every failed task with the tail of its log, then the JSON for tools."""
    parts = []
    for entry in payload["failed"]:
        parts.append(f"{entry['task']} ({entry['status']} after {entry['attempts']} attempt"
                     f"{'s' if entry['attempts'] != 1 else ''}){': ' + entry['log'] if entry['log'] else ''}")
        parts.extend(f"    {line}" for line in entry["tail"] or (entry["error"] or "").splitlines()[-15:])
        parts.append("")
    parts.append(json.dumps(payload, indent=2))
    return "\n".join(parts)
