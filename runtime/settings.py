"""Settings from files and the environment: one checked value per key, and where it came from.

Precedence, highest first: the command line (the command applies its own options), the
environment (the FLOW_* variables that existed before settings files), the project file
(`flow.toml` beside the Flowfile, else `[tool.flow]` of the `pyproject.toml` there), the user file
(`$XDG_CONFIG_HOME/flow/config.toml`, by default `~/.config/flow/config.toml`), the built-in default.
The Flowfile's own `database:` sits between the environment and the project file (project.py).

Loading costs a stat per file when there are none: TOML is parsed (and tomllib imported) only
for a file that holds flow settings. Every bad value is one SettingsError naming the file, line
and key; a project file never holds a password (it is shared), and the user file only when
nobody else can read it, as libpq asks of ~/.pgpass.
"""

from __future__ import annotations

import os
import re
from typing import Callable, NamedTuple, Optional

from flow.compiler.errors import Diagnostic, FlowError, did_you_mean

PROJECT_FILE = "flow.toml"
PYPROJECT_FILE = "pyproject.toml"
USER_FILE = os.path.join("flow", "config.toml")
# A pyproject.toml is read only when some line starts a flow table or key: most have none. The patterns
# are compiled on first use (re caches them): a command whose project has no settings file pays for none.
_MENTIONS_FLOW = rb"(?m)^[ \t]*(\[[ \t]*tool[ \t]*\.[ \t]*\"?flow\b|tool[ \t]*\.[ \t]*\"?flow\b)"
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_HOOK = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$"
# Slack's incoming webhook URLs are credentials: whoever has one can post to the channel.
_SECRET_WEBHOOK = r"(?i)^https?://hooks\.slack\.com/(services|workflows|triggers)/"
NOTIFY_EVENTS = ("failure", "retry", "success")


class SettingsError(FlowError):
    """A settings file or variable holds something flow cannot use: one line (file:line: error: ...), exit code 2.

    A FlowError, so every command that reports Flowfile errors reports it too (`render_error` prints it as is).
    """

    one_line = True

    def __init__(self, message):
        if not isinstance(message, str):  # unpickled: FlowError pickles its diagnostics
            message = message[0].message
        super().__init__(Diagnostic("error", "E000", message, None))


class Bad(ValueError):
    """A parser's complaint about a value: the phrase after the value ("must be a whole number ...")."""


# ---------------------------------------------------------------------------- value parsers


def _whole(low: int, high: Optional[int] = None, noun: str = "") -> Callable:
    def parse(value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise Bad(f"is not a whole number{noun}")
        if value < low or (high is not None and value > high):
            if high is None:
                raise Bad(f"must be {low}{' (no limit)' if low == 0 else ''} or more")
            raise Bad(f"must be from {low} to {high}")
        return value

    return parse


def _seconds(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise Bad("is not a number of seconds")
    if value < 0:
        raise Bad("must be 0 or more seconds")
    return float(value)


def _days(value):
    try:
        return _seconds(value)
    except Bad:
        raise Bad("must be a number of days, 0 (no limit) or more") from None


def _flag(value):
    if not isinstance(value, bool):
        raise Bad("must be true or false")
    return value


def _text(value):
    if not isinstance(value, str) or not value.strip():
        raise Bad("must be a non-empty string")
    return value.strip()


def _env_name(value):
    value = _text(value)
    if not re.match(_ENV_NAME, value):
        raise Bad("must be the name of an environment variable (letters, digits, _)")
    return value


def _database(value):
    value = _text(value)
    if value.startswith("$"):
        _env_name(value.strip("${}"))
    return value


def _events(value):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Bad(f"must be a list of {', '.join(repr(e) for e in NOTIFY_EVENTS)}")
    unknown = [v for v in value if v not in NOTIFY_EVENTS]
    if unknown:
        raise Bad(f"names {unknown[0]!r}; the events are {', '.join(repr(e) for e in NOTIFY_EVENTS)}")
    return tuple(dict.fromkeys(value))


def _addresses(value):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and "@" in v for v in value):
        raise Bad("must be an e-mail address or a list of them")
    return tuple(v.strip() for v in value)


def _address(value):
    value = _text(value)
    if "@" not in value:
        raise Bad("must be an e-mail address")
    return value


def _server(value):
    value = _text(value)
    host, _, port = value.rpartition(":") if ":" in value else (value, "", "")
    if not host or (port and not port.isdigit()):
        raise Bad("must be HOST or HOST:PORT")
    return value


def _url(value):
    value = _text(value)
    if not re.match(r"^https?://[^/\s]+", value):
        raise Bad("must be an http:// or https:// URL")
    return value


def _hook(value):
    value = _text(value)
    if not re.match(_HOOK, value):
        raise Bad("must be module.function (a function in a module beside the Flowfile or installed)")
    return value


class Key(NamedTuple):
    """One setting: its dotted name, how its value is checked, its default, its variable, what it does."""

    name: str
    parse: Callable
    default: object
    help: str
    env: Optional[str] = None


KEYS = (
    Key("jobs", _whole(1, 512), 1, "tasks to run at once (-j)"),
    Key("keep_going", _flag, False, "after a failure, go on with what does not need it (-k)"),
    Key("database", _database, None, "PostgreSQL URL, or $NAME of a variable holding it (never a password here)",
        "FLOW_DATABASE_URL"),
    Key("retry_delay", _seconds, 1.0, "seconds before a task's first retry, doubling up to 60", "FLOW_RETRY_DELAY"),
    Key("max_tasks", _whole(0, None, " of tasks"), 1_000_000, "refuse to plan more tasks (0: no limit; --max-tasks)",
        "FLOW_MAX_TASKS"),
    Key("history.keep_runs", _whole(0), 1000, "runs kept in .flow/history.sqlite after each build (0: all)"),
    Key("history.keep_days", _days, 90.0, "days of runs kept after each build (0: all)"),
    Key("notify.on", _events, ("failure",), "when to notify: failure, retry, success"),
    Key("notify.timeout", _seconds, 10.0, "seconds each notification may take (0: no limit)"),
    Key("notify.email.to", _addresses, None, "addresses to mail"),
    Key("notify.email.from", _address, None, "sender address (default: flow@HOST)"),
    Key("notify.email.server", _server, "localhost", "SMTP server, HOST or HOST:PORT (587 with STARTTLS, else 25)"),
    Key("notify.email.starttls", _flag, True, "switch to TLS before logging in"),
    Key("notify.email.user_env", _env_name, None, "variable holding the SMTP user"),
    Key("notify.email.password_env", _env_name, None, "variable holding the SMTP password"),
    Key("notify.webhook.url", _url, None, "URL to POST the JSON to (Slack incoming webhooks too)"),
    Key("notify.webhook.url_env", _env_name, None, "variable holding that URL (for URLs that are secrets)"),
    Key("notify.hook", _hook, None, "module.function called with the notification"),
)
BY_NAME = {key.name: key for key in KEYS}


class Origin(NamedTuple):
    """Where a value came from: `kind` is default, user, project, environment (or flowfile); `where` says it."""

    kind: str
    where: str


class Settings:
    """The settings of one project, checked: `settings[key]` is the value, `origin(key)` where it came from."""

    def __init__(self, values: dict, origins: dict, files: list):
        self._values = values
        self._origins = origins
        self.files = files  # the settings files read, lowest precedence first

    def __getitem__(self, name: str):
        return self._values[name]

    def origin(self, name: str) -> Origin:
        return self._origins[name]

    def items(self):
        """(key, value, origin) of every setting, in the documented order."""
        return [(key.name, self._values[key.name], self._origins[key.name]) for key in KEYS]

    def configured(self, prefix: str) -> bool:
        """Whether any key under `prefix` was set by a file or the environment."""
        return any(name.startswith(prefix) and self._origins[name].kind != "default" for name in self._values)

    def database_url(self) -> Optional[str]:
        """The database the files name (a $NAME resolved from the environment), or None.

        FLOW_DATABASE_URL is left to db.configured_dsn, which puts it above the Flowfile's `database:`.
        """
        value = self._values["database"]
        origin = self._origins["database"]
        if value is None or origin.kind == "environment":
            return None
        if value.startswith("$"):
            name = value.strip("${}")
            resolved = os.environ.get(name)
            if not resolved:
                raise SettingsError(f"{origin.where}: error: database names ${name}, which is not set"
                                    f" (set it, or remove the setting)")
            return resolved
        return value


def user_file(environ=os.environ) -> str:
    """The user's settings file: $XDG_CONFIG_HOME/flow/config.toml, by default ~/.config/flow/config.toml."""
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, USER_FILE)


def load_settings(project_dir: str, environ=os.environ) -> Settings:
    """The project's settings: files, then the environment over them; SettingsError on any bad value."""
    values = {key.name: key.default for key in KEYS}
    origins = {key.name: Origin("default", "built-in default") for key in KEYS}
    files = []
    for source in (_user_source(environ), _project_source(project_dir)):
        if source is None:
            continue
        path, shown, kind, text, base = source
        files.append(path)
        for name, (value, where) in _file_values(text, base, shown, kind, path).items():
            values[name] = value
            origins[name] = Origin(kind, where)
    for key in KEYS:
        text = environ.get(key.env, "").strip() if key.env else ""
        if text:
            try:
                values[key.name] = key.parse(text if key.parse is _database else _number_or_text(text))
            except Bad as exc:
                raise SettingsError(f"error: {key.env}={text!r} {exc}") from None
            origins[key.name] = Origin("environment", key.env)
    return Settings(values, origins, files)


def _number_or_text(text: str):
    """A variable's text as the number it spells, if it spells one: TOML files give typed values, variables text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _user_source(environ):
    path = user_file(environ)
    data = _read(path)
    if data is None:
        return None
    home = os.path.expanduser("~")
    shown = "~" + path[len(home):] if path.startswith(home + os.sep) else path
    return path, shown, "user", data.decode("utf-8", "replace"), ""


def _project_source(project_dir: str):
    path = os.path.join(project_dir, PROJECT_FILE)
    data = _read(path)
    if data is not None:
        return path, PROJECT_FILE, "project", data.decode("utf-8", "replace"), ""
    path = os.path.join(project_dir, PYPROJECT_FILE)
    data = _read(path)
    if data is not None and b"flow" in data and re.search(_MENTIONS_FLOW, data):
        return path, PYPROJECT_FILE, "project", data.decode("utf-8", "replace"), "tool.flow"
    return None


def _read(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SettingsError(f"error: cannot read {path}: {exc.strerror or exc}") from None


def _parse_toml(text: str, shown: str) -> dict:
    """The file's tables, from the user's cache when this text was parsed before (as the loader keeps Flowfiles):
    tomllib's import alone is several milliseconds of every command."""
    import hashlib
    import pickle

    from flow.compiler.loader import _cache_dir, _store

    cache_file = os.path.join(_cache_dir(), f"toml-{hashlib.sha256(text.encode()).hexdigest()[:32]}.pickle")
    try:
        with open(cache_file, "rb") as handle:
            return pickle.load(handle)
    except Exception:  # noqa: BLE001 - missing or unreadable: parse afresh
        pass
    data = _parse_toml_text(text, shown)
    _store(cache_file, data)
    return data


def _parse_toml_text(text: str, shown: str) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if match:
            message = message[:match.start()]
            raise SettingsError(f"{shown}:{match.group(1)}:{match.group(2)}: error: {message[:1].lower()}"
                                f"{message[1:]} (not valid TOML)") from None
        raise SettingsError(f"{shown}: error: {message} (not valid TOML)") from None


def _file_values(text: str, base: str, shown: str, kind: str, path: str) -> dict:
    """key -> (checked value, file:line) of one file; SettingsError naming file, line and key of a bad one."""
    data = _parse_toml(text, shown)
    for part in base.split(".") if base else []:
        data = data.get(part, {}) if isinstance(data, dict) else {}
    if not isinstance(data, dict):
        raise SettingsError(f"{shown}: error: [{base}] must be a table")
    out = {}
    for name, value in _flatten(data, ""):
        where = f"{shown}:{_line_of(text, base, name) or 1}"
        key = BY_NAME.get(name)
        if key is None:
            guess = did_you_mean(name, BY_NAME)
            raise SettingsError(f"{where}: error: unknown setting {name!r}"
                                + (f" (did you mean {guess!r}?)" if guess else "")
                                + " - `flow config` lists them")
        try:
            parsed = key.parse(value)
        except Bad as exc:
            raise SettingsError(f"{where}: error: {name} = {_toml_text(value)} {exc}") from None
        _refuse_secret(name, parsed, where, kind, path)
        out[name] = (parsed, where)
    return out


def _flatten(table: dict, prefix: str):
    for name, value in table.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, dict) and dotted not in BY_NAME:  # a table, known or not: name its keys
            yield from _flatten(value, dotted + ".")
        else:
            yield dotted, value


def _refuse_secret(name: str, value, where: str, kind: str, path: str) -> None:
    """A password or a secret URL in a shared file is refused; in the user file, unless only its owner reads it."""
    from . import conninfo  # here: a settings file is rare, and every command loads the settings

    if name == "database" and not value.startswith("$") and conninfo.password_spans(value):
        what = "a database URL with a password"
    elif name == "notify.webhook.url" and (re.match(_SECRET_WEBHOOK, value) or re.match(r"^https?://[^/@]*:[^/@]*@",
                                                                                      value)):
        what = "a webhook URL that is a secret"
    else:
        return
    hint = "name an environment variable instead" + (" (database = \"$WAREHOUSE_URL\", or ~/.pgpass or PGPASSWORD)"
                                                     if name == "database" else " (notify.webhook.url_env)")
    if kind == "project":
        raise SettingsError(f"{where}: error: {name}: {what} does not belong in a project file, which is shared;"
                            f" {hint}")
    try:
        private = not os.stat(path).st_mode & 0o077
    except OSError:
        private = False
    if not private:
        raise SettingsError(f"{where}: error: {name}: {what} in a file others can read; chmod 600 it, or {hint}")


def _toml_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        import json

        return json.dumps(value)
    return repr(value) if not isinstance(value, (list, dict)) else "[...]" if isinstance(value, list) else "{...}"


def _line_of(text: str, base: str, name: str) -> Optional[int]:
    """The line that sets `name` (dotted, under the table `base`), found by reading the text: tomllib has no positions.

    Tries each way TOML can write it: `[base.a.b]` then `key = `, `[base.a]` then `b.key = `, ...
    """
    lines = text.splitlines()
    parts = name.split(".")
    base_parts = base.split(".") if base else []
    for cut in range(len(parts) - 1, -1, -1):
        header = base_parts + parts[:cut]
        rest = parts[cut:]
        key_pattern = re.compile(r"^\s*" + r"\s*\.\s*".join(rf"[\"']?{re.escape(p)}[\"']?" for p in rest) + r"\s*=")
        in_table = not header
        for number, line in enumerate(lines, 1):
            stripped = line.strip()
            if stripped.startswith("["):
                inner = stripped.lstrip("[").split("]")[0]
                in_table = bool(header) and [p.strip().strip("\"'") for p in inner.split(".")] == header
                continue
            if in_table and key_pattern.match(line):
                return number
    return None
