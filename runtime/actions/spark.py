"""Run Spark actions: functions on the build's one shared SparkSession, and apps through spark-submit."""

from __future__ import annotations

import collections
import contextlib
import contextvars
import dataclasses
import difflib
import importlib
import importlib.util
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import Optional

from flow.runtime import processes
from flow.runtime.actions.base import ActionContext, ActionFailed, call_with_injection, resolve_function
from flow.runtime.storage.urls import spark_url

INSTALL_PYSPARK = "pyspark is not installed: pip install 'flow[spark]'"
INSTALL_JAVA = "Java not found: install a JDK 17 and set JAVA_HOME"
DEFAULT_MASTER = "local[*]"
MASTER_ENV = "FLOW_SPARK_MASTER"


# ---------------------------------------------------------------------------- what must be installed


def _import_pyspark():
    # Imported here, never at module level: builds without Spark rules must not pay for (or need) pyspark.
    try:
        return importlib.import_module("pyspark")
    except ImportError:
        raise ActionFailed(INSTALL_PYSPARK) from None


def check_java() -> None:
    """Raise ActionFailed with what to install when no `java` can be found (Spark's launcher needs one)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        # Spark's launcher uses $JAVA_HOME/bin/java without falling back to PATH, so a stale JAVA_HOME fails.
        if not os.access(os.path.join(java_home, "bin", "java"), os.X_OK):
            raise ActionFailed(
                f"Java not found: JAVA_HOME is '{java_home}' but has no bin/java; "
                "install a JDK 17 and set JAVA_HOME to it"
            )
        return
    if shutil.which("java") is None:
        raise ActionFailed(INSTALL_JAVA)


# ---------------------------------------------------------------------------- settings


def effective_master(
    cli: Optional[str], flowfile, rule: Optional[str] = None, environ: Optional[Mapping] = None
) -> str:
    """The master: `--spark-master` > $FLOW_SPARK_MASTER > a rule's own `master:` > the `spark:` block's > local[*].

    `flowfile` is the `spark:` block's master, or the whole block as a dict.
    """
    environ = os.environ if environ is None else environ
    if flowfile is not None and not isinstance(flowfile, str):
        flowfile = settings_dict(flowfile).get("master")
    for candidate in (cli, environ.get(MASTER_ENV), rule, flowfile):
        if candidate:
            return str(candidate)
    return DEFAULT_MASTER


def settings_dict(settings) -> dict:
    """Turn a settings block (Flowfile.spark: Setting nodes, possibly nested) into a plain dict."""
    if isinstance(settings, Mapping):
        return {str(k): _plain(v) for k, v in settings.items()}
    return {s.key: _plain(s.value) for s in settings}


def _plain(value):
    if isinstance(value, Mapping):
        return settings_dict(value)
    if isinstance(value, (tuple, list)) and value and all(hasattr(v, "key") and hasattr(v, "value") for v in value):
        return settings_dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def conf_text(value) -> str:
    """A setting value as Spark reads it: booleans lowercase, lists comma-separated."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(conf_text(v) for v in value)
    return str(value)


# Settings of the `spark:` block that also mean something to an in-process session, as Spark conf keys.
_SESSION_CONF = {
    "packages": "spark.jars.packages",
    "repositories": "spark.jars.repositories",
    "jars": "spark.jars",
    "py-files": "spark.submit.pyFiles",
    "files": "spark.files",
    "archives": "spark.archives",
    "driver-memory": "spark.driver.memory",
    "driver-cores": "spark.driver.cores",
    "driver-java-options": "spark.driver.extraJavaOptions",
    "driver-library-path": "spark.driver.extraLibraryPath",
    "driver-class-path": "spark.driver.extraClassPath",
    "executor-memory": "spark.executor.memory",
    "executor-cores": "spark.executor.cores",
    "num-executors": "spark.executor.instances",
    "total-executor-cores": "spark.cores.max",
    "queue": "spark.yarn.queue",
}


# ---------------------------------------------------------------------------- per-task output capture

_task_stream: contextvars.ContextVar = contextvars.ContextVar("flow_task_stream", default=None)
_install_lock = threading.Lock()


class _TaskStream:
    """Stands in for sys.stdout/sys.stderr: writes go to the calling thread's task log if it has one."""

    def __init__(self, real):
        self._real = real

    def _target(self):
        return _task_stream.get() or self._real

    def write(self, text):
        return self._target().write(text)

    def writelines(self, lines):
        return self._target().writelines(lines)

    def flush(self):
        return self._target().flush()

    def __getattr__(self, name):
        return getattr(self._real, name)


@contextlib.contextmanager
def capture_output(log_path: Optional[str]):
    """Send this thread's prints (stdout and stderr) to `log_path` while the block runs; other threads are untouched."""
    if log_path is None:
        yield
        return
    with _install_lock:
        # Re-checked on every call: something (pytest, a reporter) may have replaced sys.stdout since.
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if not isinstance(current, _TaskStream):
                setattr(sys, name, _TaskStream(current))
    with open(log_path, "a", encoding="utf-8", buffering=1) as log:
        token = _task_stream.set(log)
        try:
            yield
        finally:
            _task_stream.reset(token)


# ---------------------------------------------------------------------------- the shared session


class _Run:
    """One Spark function task in progress: set `reason` to cancel it, `done` when it has returned."""

    def __init__(self):
        self.done = threading.Event()
        self.reason: Optional[str] = None


class SparkSessionHolder:
    """The build's one SparkSession: started on first use, shared by every Spark function task, stopped at the end.

    Each task's jobs run in a FAIR scheduler pool and a job group named after the task id, so tasks
    run by parallel threads share the cluster fairly and one task's jobs can be cancelled alone.
    """

    def __init__(self, master: Optional[str] = None, conf: Optional[Mapping] = None, app_name: str = "flow"):
        self.master = master or DEFAULT_MASTER
        self.conf = {str(k): conf_text(v) for k, v in (conf or {}).items()}
        self.conf.setdefault("spark.scheduler.mode", "FAIR")
        # Spark's console progress bar would scribble over flow's own progress display.
        self.conf.setdefault("spark.ui.showConsoleProgress", "false")
        self.app_name = app_name
        self._lock = threading.Lock()
        self._session = None
        self._runs: dict = {}

    @classmethod
    def from_settings(cls, settings: Mapping, master: str, app_name: str = "flow") -> "SparkSessionHolder":
        """A holder for the Flowfile's `spark:` block (a dict): its `conf` plus the settings a session understands."""
        settings = settings_dict(settings or {})
        conf = {}
        for key, conf_key in _SESSION_CONF.items():
            if settings.get(key) not in (None, "", []):
                conf[conf_key] = conf_text(settings[key])
        conf.update(settings.get("conf") or {})
        return cls(master, conf, settings.get("name") or app_name)

    @property
    def started(self) -> bool:
        return self._session is not None

    def session(self):
        """The SparkSession, started now if this is the first call."""
        session = self._session
        if session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._start()
                session = self._session
        return session

    def _start(self):
        _import_pyspark()
        check_java()
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.master(self.master).appName(self.app_name)
        for key, value in self.conf.items():
            builder = builder.config(key, value)
        try:
            return builder.getOrCreate()
        except Exception as exc:  # the JVM did not start: the reason is already on stderr
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ActionFailed(f"cannot start Spark (master '{self.master}'): {first}") from None

    @contextlib.contextmanager
    def task(self, task_id: str):
        """Mark the calling thread's Spark jobs as `task_id`'s while the block runs; yields (session, run)."""
        run = _Run()
        with self._lock:
            if task_id in self._runs:
                raise ActionFailed(f"task '{task_id}' is already running on the Spark session")
            # Registered before the session starts, so a cancel during the JVM's start is not lost.
            self._runs[task_id] = run
        sc = None
        try:
            session = self.session()
            if run.reason:
                raise ActionFailed(run.reason)
            sc = session.sparkContext
            # Local properties are per thread (PySpark pins each Python thread to a JVM thread).
            sc.setLocalProperty("spark.scheduler.pool", task_id)
            sc.setJobGroup(task_id, f"flow: {task_id}", interruptOnCancel=True)
            yield session, run
        finally:
            if sc is not None:
                # Executor threads are reused: leave nothing behind for the next task on this thread.
                for key in ("spark.scheduler.pool", "spark.jobGroup.id", "spark.job.description"):
                    sc.setLocalProperty(key, None)
                sc.setLocalProperty("spark.job.interruptOnCancel", None)
            with self._lock:
                del self._runs[task_id]
            run.done.set()

    def cancel(self, task_id: str, reason: str = "cancelled") -> bool:
        """Cancel the Spark jobs of a running task; False if it is not running here."""
        with self._lock:
            run = self._runs.get(task_id)
            if run is None:
                return False
            run.reason = run.reason or reason
            if self._session is None:  # still starting: the task fails as soon as the session is up
                return True
            sc = self._session.sparkContext
        threading.Thread(
            target=_keep_cancelling, args=(sc, task_id, run), name=f"flow-cancel-{task_id}", daemon=True
        ).start()
        return True

    def cancel_all(self, reason: str = "cancelled") -> None:
        with self._lock:
            running = list(self._runs)
        for task_id in running:
            self.cancel(task_id, reason)

    def stop(self) -> None:
        """Stop the session if it was started (at the end of the build)."""
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.stop()


def _keep_cancelling(sc, task_id: str, run: _Run) -> None:
    # cancelJobGroup only stops the jobs running now; the function may start another before it
    # notices, so keep cancelling the group until the function has returned.
    while not run.done.is_set():
        try:
            sc.cancelJobGroup(task_id)
        except Exception:  # the session was stopped under us: nothing left to cancel
            return
        run.done.wait(0.2)


def run_spark_function(
    ctx: ActionContext,
    action,
    holder: SparkSessionHolder,
    log_path: Optional[str] = None,
    timeout: Optional[float] = None,
) -> None:
    """Call the `spark:` function in the calling thread with the shared session injected as `spark`.

    Prints go to `log_path` when given. Exceptions of the function propagate unchanged, except after
    a cancel or timeout, which raise ActionFailed saying so.
    """
    function = resolve_function(action.target)  # before starting the JVM: a typo should fail fast
    ctx = for_spark(ctx)
    with holder.task(ctx.task_id) as (session, run):
        timer = None
        if timeout is not None:
            timer = threading.Timer(timeout, holder.cancel, (ctx.task_id, f"timed out after {timeout:g}s"))
            timer.daemon = True
            timer.start()
        try:
            with capture_output(log_path):
                call_with_injection(function, ctx, spark=session)
        except Exception:
            if run.reason:
                raise ActionFailed(run.reason) from None
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if run.reason:  # returned normally, but its output may lack the cancelled jobs' work
            raise ActionFailed(run.reason)
    _check_dir_output(ctx, f"'{action.target}'")


def for_spark(ctx: ActionContext) -> ActionContext:
    """The context with inputs as Spark's Hadoop connectors name them: s3a:// for s3://, local paths as they are.

    The output stays what the Target staged (a local temporary, uploaded by flow when it is remote).
    """
    if ctx.extra.get("batch"):  # one list of inputs per partition
        inputs = [[spark_url(location) for location in per_partition] for per_partition in ctx.inputs]
    else:
        inputs = [spark_url(location) for location in ctx.inputs]
    if inputs == ctx.inputs:
        return ctx
    return dataclasses.replace(ctx, inputs=inputs)


# ---------------------------------------------------------------------------- outputs


def spark_dir_complete(path: str) -> bool:
    """A Spark output directory is complete only once Spark's committer has written `_SUCCESS` into it."""
    return os.path.isfile(os.path.join(path, "_SUCCESS"))


def _check_dir_output(ctx: ActionContext, what: str) -> None:
    # Only when the executor says the output is a directory: a Spark function may also write a file.
    if ctx.extra.get("output_kind") != "dir":
        return
    for output in ctx.output if ctx.extra.get("batch") else [ctx.output]:
        if not spark_dir_complete(output):
            raise ActionFailed(
                f"{what} finished but wrote no '{output}/_SUCCESS': "
                "write the output with df.write...mode('overwrite') to 'output'"
            )


# ---------------------------------------------------------------------------- spark-submit command

# Setting -> spark-submit option taking a value, in the order they appear on the command line.
SUBMIT_OPTIONS = {
    "name": "--name",
    "deploy-mode": "--deploy-mode",
    "entry-class": "--class",
    "properties-file": "--properties-file",
    "packages": "--packages",
    "exclude-packages": "--exclude-packages",
    "repositories": "--repositories",
    "jars": "--jars",
    "py-files": "--py-files",
    "files": "--files",
    "archives": "--archives",
    "driver-memory": "--driver-memory",
    "driver-java-options": "--driver-java-options",
    "driver-library-path": "--driver-library-path",
    "driver-class-path": "--driver-class-path",
    "driver-cores": "--driver-cores",
    "executor-memory": "--executor-memory",
    "executor-cores": "--executor-cores",
    "total-executor-cores": "--total-executor-cores",
    "num-executors": "--num-executors",
    "queue": "--queue",
    "principal": "--principal",
    "keytab": "--keytab",
    "proxy-user": "--proxy-user",
}
SUBMIT_SWITCHES = {"supervise": "--supervise", "verbose": "--verbose"}
# Settings Luigi passes to spark-submit through the environment.
SUBMIT_ENV = {
    "pyspark-python": "PYSPARK_PYTHON",
    "pyspark-driver-python": "PYSPARK_DRIVER_PYTHON",
    "hadoop-user-name": "HADOOP_USER_NAME",
    "hadoop-conf-dir": "HADOOP_CONF_DIR",
}
SUBMIT_OTHER = {"master", "conf", "spark-submit", "args"}
SUBMIT_SETTINGS = frozenset(SUBMIT_OPTIONS) | frozenset(SUBMIT_SWITCHES) | frozenset(SUBMIT_ENV) | SUBMIT_OTHER
# Local files spark-submit reads: relative ones are relative to the Flowfile, not to where flow runs.
_PATH_SETTINGS = {"properties-file", "jars", "py-files", "files", "archives", "keytab"}
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def merged_submit_settings(spark_settings: Mapping, action_settings: Mapping) -> dict:
    """The `spark:` block's settings overridden by the rule's; `conf` merged key by key. Unknown keys fail.

    Either may be a dict or the Setting nodes of a settings block.
    """
    spark_settings, action_settings = settings_dict(spark_settings or {}), settings_dict(action_settings or {})
    merged = {k: v for k, v in spark_settings.items() if k in SUBMIT_SETTINGS and k != "master"}
    conf = dict(merged.get("conf") or {})
    for key, value in action_settings.items():
        if key not in SUBMIT_SETTINGS:
            close = difflib.get_close_matches(key, sorted(SUBMIT_SETTINGS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ActionFailed(f"unknown spark-submit setting '{key}'{hint}")
        merged[key] = value
    conf.update(action_settings.get("conf") or {})
    merged["conf"] = conf
    return merged


def find_spark_submit(settings: Optional[Mapping] = None) -> str:
    """The spark-submit to run: the `spark-submit` setting, else $SPARK_HOME/bin/spark-submit, else pyspark's own."""
    explicit = (settings or {}).get("spark-submit")
    if explicit:
        return str(explicit)
    spark_home = os.environ.get("SPARK_HOME")
    if spark_home:
        path = os.path.join(spark_home, "bin", "spark-submit")
        if not os.access(path, os.X_OK):
            raise ActionFailed(f"SPARK_HOME is '{spark_home}' but has no bin/spark-submit; fix or unset SPARK_HOME")
        return path
    spec = importlib.util.find_spec("pyspark")  # finds the package without importing it (slow)
    if spec is None or not spec.submodule_search_locations:
        raise ActionFailed(INSTALL_PYSPARK)
    path = os.path.join(list(spec.submodule_search_locations)[0], "bin", "spark-submit")
    if not os.access(path, os.X_OK):
        raise ActionFailed(
            f"pyspark ships no executable bin/spark-submit at '{path}'; install Spark and set SPARK_HOME"
        )
    return path


def expand_args(patterns, ctx: ActionContext) -> list:
    """The app's arguments: `OUTPUT INPUT...` by default, else the patterns expanded.

    {output}, {input}, {param} and {param.attr} are substituted; an argument that is exactly
    `{inputs}` becomes one argument per input; `{{` and `}}` are literal braces.
    """
    if patterns is None:
        return [ctx.output, *ctx.inputs]
    args = []
    for pattern in patterns:
        if pattern == "{inputs}":
            args.extend(ctx.inputs)
        else:
            args.append(_PLACEHOLDER.sub(lambda m, p=pattern: _substitute(m, ctx, p), pattern))
    return args


def _substitute(match, ctx: ActionContext, pattern: str) -> str:
    text = match.group(0)
    if text in ("{{", "}}"):
        return text[0]
    name, *attrs = match.group(1).strip().split(".")
    if name == "inputs":
        raise ActionFailed(f"'{{inputs}}' must be an argument of its own, not part of '{pattern}'")
    if name == "output":
        value = ctx.output
    elif name == "input":
        if len(ctx.inputs) != 1:
            raise ActionFailed(
                f"'{{input}}' in '{pattern}' needs exactly one input, the task has {len(ctx.inputs)}; use '{{inputs}}'"
            )
        value = ctx.inputs[0]
    elif name in ctx.params:
        value = ctx.params[name]
    else:
        known = ", ".join(["output", "input", "inputs", *ctx.params])
        raise ActionFailed(f"unknown placeholder '{text}' in spark-submit args (known: {known})")
    for attr in attrs:
        # No private attributes: a pattern is data from the Flowfile, not a way into Python objects.
        if attr.startswith("_") or not hasattr(value, attr):
            raise ActionFailed(f"'{name}' has no attribute '{attr}' (in '{pattern}')")
        value = getattr(value, attr)
    return conf_text(value)


def _local_path(path: str, base: str) -> str:
    if _URI.match(path) or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(base, path))


def spark_submit_command(action, ctx: ActionContext, spark_settings: Mapping, master: str) -> list:
    """The spark-submit argv for a `spark-submit:` task; `master` is the effective one (see effective_master)."""
    settings = merged_submit_settings(spark_settings, action.settings)
    argv = [find_spark_submit(settings), "--master", master]
    settings.setdefault("name", ctx.task_id)  # what the cluster's UI shows; Luigi uses the task family
    base = ctx.flowfile_dir or "."
    for key, option in SUBMIT_OPTIONS.items():
        value = settings.get(key)
        if value in (None, "", []):
            continue
        if key in _PATH_SETTINGS:
            values = value if isinstance(value, (list, tuple)) else str(value).split(",")
            value = [_local_path(str(v).strip(), base) for v in values]
        argv += [option, conf_text(value)]
    for key, option in SUBMIT_SWITCHES.items():
        if settings.get(key):
            argv.append(option)
    for key, value in settings["conf"].items():
        argv += ["--conf", f"{key}={conf_text(value)}"]
    argv.append(_local_path(action.app, base))
    argv += expand_args(action.args, ctx)
    return argv


def spark_submit_env(action, spark_settings: Mapping, master: str) -> dict:
    """The environment for spark-submit: ours, plus the settings Luigi passes as variables."""
    settings = merged_submit_settings(spark_settings, action.settings)
    env = dict(os.environ)
    for key, variable in SUBMIT_ENV.items():
        if settings.get(key):
            env[variable] = str(settings[key])
    # Otherwise pyspark's spark-submit runs `python3` from PATH, which may lack pyspark or the app's
    # imports. Only where this interpreter exists: the driver in client mode, executors when local.
    if settings.get("deploy-mode", "client") == "client":
        env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if master.startswith("local"):
        env.setdefault("PYSPARK_PYTHON", sys.executable)
    return env


_REDACT = re.compile(r"(?i)secret|password|token|access[.]key|credential")


def redacted_command(argv: list) -> str:
    """The command as a shell line for the log, with secret-looking conf values hidden (as Spark's own UI does)."""
    shown = []
    for i, arg in enumerate(argv):
        if i > 0 and argv[i - 1] == "--conf" and "=" in arg and _REDACT.search(arg.split("=", 1)[0]):
            arg = arg.split("=", 1)[0] + "=*********(redacted)"
        shown.append(arg)
    return shlex.join(shown)


# ---------------------------------------------------------------------------- spark-submit runs

_submissions: dict = {}
_submissions_lock = threading.Lock()
STDERR_TAIL = 20


class _Submission:
    """A running spark-submit: its process (leader of its own process group) and why it was stopped, if it was."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.reason: Optional[str] = None

    def stop(self, reason: str) -> None:
        self.reason = self.reason or reason
        _kill_group(self.process)


def _kill_group(process: subprocess.Popen, grace: float = 5.0) -> None:
    # The group holds spark-submit's JVM and the Python driver it forked: TERM lets the JVM run its
    # shutdown hooks (temp dirs, YARN app), KILL makes sure.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def run_spark_submit(
    ctx: ActionContext, action, spark_settings: Mapping, master: str, log_path: str, timeout: Optional[float] = None
) -> None:
    """Run the task's app with spark-submit, output to `log_path`; on failure raise ActionFailed (exit code, tail)."""
    ctx = for_spark(ctx)
    argv = spark_submit_command(action, ctx, spark_settings, master)
    env = spark_submit_env(action, spark_settings, master)
    marks = processes.program_environment()  # its JVM and driver end with the build, even if flow is killed
    env.update(marks)
    check_java()
    with open(log_path, "ab", buffering=0) as log:
        log.write(f"$ {redacted_command(argv)}\n".encode())
        # One pipe for both streams: Spark's PythonRunner forwards the Python driver's stderr (its
        # traceback) to spark-submit's stdout, so a tail of stderr alone would miss the error.
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        submission = _Submission(process)
        with _submissions_lock:
            _submissions[ctx.task_id] = submission
        tail: collections.deque = collections.deque(maxlen=STDERR_TAIL)
        reader = threading.Thread(
            target=_tee, args=(process.stdout, log, tail), name=f"flow-output-{ctx.task_id}", daemon=True
        )
        reader.start()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            submission.stop(f"timed out after {timeout:g}s")
        finally:
            if process.poll() is None:  # interrupted while waiting (KeyboardInterrupt): leave no JVM behind
                submission.stop("interrupted")
            with _submissions_lock:
                _submissions.pop(ctx.task_id, None)
            reader.join(10)  # a grandchild that left the group may hold the pipe open: do not wait for it forever
    if submission.reason:
        processes.end_program(marks)  # and what left its group goes now, not at the build's end
        raise ActionFailed(submission.reason)
    if process.returncode != 0:
        from .command import failure_message

        raise ActionFailed(failure_message("spark-submit", process.returncode, tail, "output"))
    _check_dir_output(ctx, f"spark-submit '{action.app}'")


def _tee(stream, log, tail) -> None:
    with stream:
        for line in stream:
            log.write(line)
            tail.append(line.decode("utf-8", "replace").rstrip("\n"))


# ---------------------------------------------------------------------------- cancelling


def cancel(task_id: str, holder: Optional[SparkSessionHolder] = None, reason: str = "cancelled") -> bool:
    """Stop a running Spark task: kill its spark-submit process group, or cancel its jobs on `holder`'s session.

    The task's runner then raises ActionFailed(reason). False if the task is not running.
    """
    with _submissions_lock:
        submission = _submissions.get(task_id)
    if submission is not None:
        submission.stop(reason)
        return True
    return holder is not None and holder.cancel(task_id, reason)


def cancel_all(holder: Optional[SparkSessionHolder] = None, reason: str = "cancelled") -> None:
    """Stop every running Spark task; spark-submit runs are in their own sessions, so Ctrl-C does not reach them."""
    with _submissions_lock:
        running = list(_submissions.values())
    for submission in running:
        submission.stop(reason)
    if holder is not None:
        holder.cancel_all(reason)
