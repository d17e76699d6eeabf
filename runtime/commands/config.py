"""`flow config`: every setting, its value and where it came from, as text or JSON."""

from __future__ import annotations

import json
import os
import sys

from . import EXIT_OK, render_error

PRECEDENCE = "command line > environment > Flowfile (database:) > project file > user file > default"


def run_config(flowfile: str, fmt: str = "text") -> int:
    """Print the settings of the project whose Flowfile is `flowfile`; exit 2 on a bad settings file."""
    from flow.compiler.errors import FlowError

    from ..settings import load_settings, user_file

    root = os.path.dirname(os.path.abspath(flowfile))
    try:
        settings = load_settings(root)
    except FlowError as exc:
        print(render_error(exc), file=sys.stderr)
        return exc.exit_code
    rows = [_row(name, value, origin) for name, value, origin in settings.items()]
    _flowfile_database(flowfile, rows)
    if fmt == "json":
        print(json.dumps({"project": root, "precedence": PRECEDENCE, "files": settings.files,
                          "user_file": user_file(), "settings": rows}, indent=2))
        return EXIT_OK
    print(f"settings of {root}")
    print(f"  highest first: {PRECEDENCE}")
    print(f"  files read: {', '.join(settings.files) if settings.files else 'none'} (user file: {user_file()})")
    print()
    width = max(len(row["key"]) for row in rows)
    for row in rows:
        shown = _text(row["value"])
        if row.get("note"):
            shown += f"  ({row['note']})"
        where = f"environment {row['where']}" if row["source"] == "environment" else row["where"]
        print(f"{row['key']:<{width}}  {shown:<30}  {where}")
    return EXIT_OK


def _row(name: str, value, origin) -> dict:
    row = {"key": name, "value": list(value) if isinstance(value, tuple) else value, "source": origin.kind,
           "where": origin.where}
    if name == "database" and isinstance(value, str):
        from ..conninfo import redact

        row["value"] = redact(value)
        if value.startswith("$"):  # what the variable holds, without its password
            held = os.environ.get(value.strip("${}"))
            row["note"] = f"= {redact(held)}" if held else "not set"
    elif name == "notify.webhook.url" and isinstance(value, str):
        row["value"] = _hide_path(value)
    elif name.endswith("_env") and isinstance(value, str):
        row["note"] = "set" if os.environ.get(value) else "not set"
    return row


def _hide_path(url: str) -> str:
    """A webhook URL without its path and credentials: the path of many (Slack's) is the secret."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/***"


def _flowfile_database(flowfile: str, rows: list) -> None:
    """The Flowfile's `database:` sits above the settings files (FLOW_DATABASE_URL above it): show it there."""
    row = next(r for r in rows if r["key"] == "database")
    if row["source"] == "environment" or not os.path.exists(flowfile):
        return
    from flow.compiler.errors import FlowError
    from flow.compiler.loader import load

    try:
        database = load(flowfile).database
    except FlowError:
        row["note"] = (row.get("note", "") + "; " if row.get("note") else "") + "the Flowfile does not load"
        return
    if database:
        from ..conninfo import redact

        row.update(value=redact(database), source="flowfile", where=f"{os.path.basename(flowfile)} (database:)")
        row.pop("note", None)


def _text(value) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(json.dumps(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return f"{value:g}" if isinstance(value, float) else str(value)
