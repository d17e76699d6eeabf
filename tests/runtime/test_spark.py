"""Spark actions on a real local[2] Spark: both forms' outputs, failures, argument patterns, concurrency, cancelling."""

from __future__ import annotations

import datetime
import os
import random
import sys
import threading
import time
from dataclasses import dataclass

import pytest
from flow.compiler.nodes import NO_SPAN, Setting, SparkAction, SparkSubmitAction
from flow.runtime.actions import spark as sp
from flow.runtime.actions.base import ActionContext, ActionFailed

from examples.counts import read_counts
from tests.processes import alive

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP = "examples/top_artists_spark_app.py"
# Names that break naive CSV handling: quotes, separators, spaces at the ends, backslashes, non-ASCII.
ARTISTS = [
    "Abba",
    "AC\\DC",
    'Foo "Bar"',
    '"Quoted"',
    " Leading",
    "Trailing ",
    "a,b",
    "Åström",
    "Zz Top",
    "Björk",
    "Sigur Rós",
]
DAYS = [datetime.date(2012, 6, d) for d in (1, 2, 3)]


# ---------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def holder():
    # Python workers must be this interpreter (pyspark otherwise runs `python3` from PATH).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    h = sp.SparkSessionHolder(
        "local[2]", {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"}, app_name="flow-tests"
    )
    yield h
    h.stop()


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    """Three daily stream files in the format of examples/top_artists.py's fake_streams."""
    folder = tmp_path_factory.mktemp("streams")
    paths = []
    for day in DAYS:
        rng = random.Random(day.toordinal())
        path = folder / f"{day}.tsv"
        with open(path, "w", encoding="utf-8", newline="\n") as out:
            for _ in range(400):
                stamp = datetime.datetime.combine(day, datetime.time()) + datetime.timedelta(
                    seconds=rng.randrange(86400)
                )
                out.write(f"{stamp.isoformat()}\t{rng.choice(ARTISTS)}\ttrack {rng.randrange(50)}\n")
        paths.append(str(path))
    return paths


def python_counts(paths):
    counts = {}
    for path in paths:
        with open(path, encoding="utf-8", newline="\n") as lines:
            for line in lines:
                artist = line.rstrip("\n").split("\t")[1]
                counts[artist] = counts.get(artist, 0) + 1
    return counts


def expected_text(counts):
    return "".join(f"{artist}\t{count}\n" for artist, count in sorted(counts.items()))


def context(
    tmp_path,
    inputs,
    name="artist_streams_spark_2012-06-01-2012-06-04",
    task_id="artist_streams_spark(2012-06-01-2012-06-04)",
    **params,
):
    # What the executor hands over: a temporary directory path, next to the final one, not created yet.
    output = tmp_path / "data" / f".{name}.flow-tmp-1234"
    output.parent.mkdir(parents=True, exist_ok=True)
    return ActionContext(
        task_id=task_id,
        rule="artist_streams_spark",
        params=params,
        inputs=list(inputs),
        output=str(output),
        update_id=task_id,
        flowfile_dir=REPO,
        extra={"output_kind": "dir"},
    )


def part_text(directory):
    parts = [n for n in sorted(os.listdir(directory)) if n.startswith("part-") and not n.endswith(".crc")]
    return "".join(open(os.path.join(directory, n), encoding="utf-8").read() for n in parts)


def write_app(tmp_path, body):
    app = tmp_path / "app.py"
    app.write_text(body)
    return str(app)


def wait_for(condition, what, limit=60.0):
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


# ---------------------------------------------------------------------------- outputs of both forms


def test_function_form_writes_sorted_counts_of_every_day(holder, streams, tmp_path):
    ctx = context(tmp_path, streams)
    sp.run_spark_function(ctx, SparkAction("examples.top_artists_spark.aggregate", NO_SPAN), holder)
    assert sp.spark_dir_complete(ctx.output)
    assert read_counts(ctx.output) == python_counts(streams)
    assert part_text(ctx.output) == expected_text(python_counts(streams))


def test_submit_form_writes_the_same_bytes_as_the_function_form(holder, streams, tmp_path):
    function_ctx = context(tmp_path, streams, name="function")
    sp.run_spark_function(function_ctx, SparkAction("examples.top_artists_spark.aggregate", NO_SPAN), holder)
    settings = {"deploy-mode": "client", "executor-memory": "1g", "conf": {"spark.sql.shuffle.partitions": "4"}}
    action = SparkSubmitAction(APP, settings, NO_SPAN, args=("{output}", "{inputs}"))
    submit_ctx = context(tmp_path, streams, name="submit")
    log = tmp_path / "submit.log"
    sp.run_spark_submit(submit_ctx, action, {"conf": {"spark.ui.enabled": "false"}}, "local[2]", str(log))
    assert sp.spark_dir_complete(submit_ctx.output)
    assert part_text(submit_ctx.output) == part_text(function_ctx.output) == expected_text(python_counts(streams))
    assert read_counts(submit_ctx.output) == python_counts(streams)
    assert "spark.sql.shuffle.partitions=4" in log.read_text().splitlines()[0]


def test_read_counts_reads_a_file_or_a_spark_directory(tmp_path):
    (tmp_path / "counts.tsv").write_text("Abba\t3\nBjörk\t2\n")
    spark_dir = tmp_path / "out"
    spark_dir.mkdir()
    (spark_dir / "part-00000-x.csv").write_text("Abba\t3\n")
    (spark_dir / "part-00001-x.csv").write_text("Björk\t2\n")
    (spark_dir / ".part-00000-x.csv.crc").write_bytes(b"\x00garbage")
    (spark_dir / "_SUCCESS").write_text("")
    assert read_counts(str(tmp_path / "counts.tsv")) == read_counts(str(spark_dir)) == {"Abba": 3, "Björk": 2}
    os.remove(spark_dir / "_SUCCESS")
    with pytest.raises(ValueError, match="no _SUCCESS"):
        read_counts(str(spark_dir))


def test_a_function_that_writes_no_output_fails(holder, tmp_path, streams):
    ctx = context(tmp_path, streams)
    with pytest.raises(ActionFailed, match="_SUCCESS"):
        sp.run_spark_function(ctx, SparkAction(f"{__name__}.count_only", NO_SPAN), holder)


def count_only(spark, inputs):
    spark.read.text(inputs).count()


# ---------------------------------------------------------------------------- failures


def test_failing_submit_reports_exit_code_and_stderr_tail_but_no_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOW_TEST_DB_PASSWORD", "env-secret-4815")
    app = write_app(
        tmp_path,
        "import sys\nfor i in range(40):\n    print(f'noise {i}', file=sys.stderr)\n"
        "raise RuntimeError('boom in the app')\n",
    )
    settings = {"conf": {"spark.hadoop.fs.s3a.secret.key": "conf-secret-1623"}}
    action = SparkSubmitAction(app, settings, NO_SPAN)
    log = tmp_path / "task.log"
    with pytest.raises(ActionFailed) as failure:
        sp.run_spark_submit(context(tmp_path, ["in.tsv"]), action, {}, "local[1]", str(log))
    message = str(failure.value)
    assert message.startswith("spark-submit exited with code 1; last lines of its output:")
    assert "RuntimeError: boom in the app" in message
    assert "noise 0" not in message  # a tail, not the whole stderr
    assert len(message.splitlines()) <= 1 + sp.STDERR_TAIL
    for secret in ("env-secret-4815", "conf-secret-1623"):
        assert secret not in message
        assert secret not in log.read_text()
    assert "noise 0" in log.read_text()  # all of it is in the task's log


def test_missing_pyspark_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # makes `import pyspark` fail as if not installed
    monkeypatch.delenv("SPARK_HOME", raising=False)
    with pytest.raises(ActionFailed) as failure:
        sp.run_spark_function(
            context(tmp_path, []),
            SparkAction("examples.top_artists_spark.aggregate", NO_SPAN),
            sp.SparkSessionHolder("local[1]"),
        )
    assert str(failure.value) == "pyspark is not installed: pip install 'flow[spark]'"
    with pytest.raises(ActionFailed, match=r"^pyspark is not installed"):
        sp.spark_submit_command(SparkSubmitAction(APP, {}, NO_SPAN), context(tmp_path, []), {}, "local[1]")


def test_missing_java_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ActionFailed) as failure:
        sp.SparkSessionHolder("local[1]").session()
    assert str(failure.value) == "Java not found: install a JDK 17 and set JAVA_HOME"
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    with pytest.raises(ActionFailed, match=r"^Java not found: JAVA_HOME is '.*jdk' but has no bin/java"):
        sp.check_java()


# ---------------------------------------------------------------------------- command line (no Spark)


@dataclass(frozen=True)
class Month:
    start: datetime.date
    end: datetime.date

    def __str__(self):
        return self.start.strftime("%Y-%m")


def test_args_default_to_output_then_inputs():
    ctx = ActionContext("t", "r", {}, ["a.tsv", "b.tsv"], "out.tmp", "t")
    assert sp.expand_args(None, ctx) == ["out.tmp", "a.tsv", "b.tsv"]


def test_args_patterns_substitute_output_inputs_and_parameters():
    june = Month(datetime.date(2012, 6, 1), datetime.date(2012, 7, 1))
    ctx = ActionContext("t", "r", {"interval": june, "n": 3, "full": True}, ["a.tsv", "b.tsv"], "out.tmp", "t")
    patterns = (
        "--out={output}",
        "{inputs}",
        "{interval}",
        "{interval.start}..{interval.end}",
        "{n}",
        "{full}",
        "{{literal}}",
    )
    assert sp.expand_args(patterns, ctx) == [
        "--out=out.tmp",
        "a.tsv",
        "b.tsv",
        "2012-06",
        "2012-06-01..2012-07-01",
        "3",
        "true",
        "{literal}",
    ]
    one = ActionContext("t", "r", {}, ["only.tsv"], "out.tmp", "t")
    assert sp.expand_args(("{input}",), one) == ["only.tsv"]


@pytest.mark.parametrize(
    "pattern, message",
    [
        ("{nope}", r"unknown placeholder '\{nope\}' in spark-submit args \(known: output, input, inputs, interval\)"),
        ("--in={inputs}", r"'\{inputs\}' must be an argument of its own"),
        ("{input}", r"needs exactly one input, the task has 2"),
        ("{interval.__class__}", r"'interval' has no attribute '__class__'"),
    ],
)
def test_bad_args_patterns_say_what_is_wrong(pattern, message):
    ctx = ActionContext(
        "t", "r", {"interval": Month(datetime.date(2012, 6, 1), datetime.date(2012, 7, 1))}, ["a", "b"], "o", "t"
    )
    with pytest.raises(ActionFailed, match=message):
        sp.expand_args((pattern,), ctx)


def test_submit_command_has_every_setting_and_resolves_paths_against_the_flowfile(tmp_path, monkeypatch):
    spark_home = tmp_path / "spark"
    (spark_home / "bin").mkdir(parents=True)
    (spark_home / "bin" / "spark-submit").write_text("#!/bin/sh\n")
    (spark_home / "bin" / "spark-submit").chmod(0o755)
    monkeypatch.setenv("SPARK_HOME", str(spark_home))
    block = {"master": "yarn", "packages": ["org.x:a:1"], "conf": {"spark.a": "block", "spark.b": "block"}}
    settings = {
        "deploy-mode": "cluster",
        "name": "counts",
        "conf": {"spark.b": "rule", "spark.c": True},
        "jars": ["lib/a.jar", "hdfs:///b.jar"],
        "py-files": "deps.zip",
        "files": ["/abs/f.txt"],
        "driver-memory": "2g",
        "executor-memory": "1g",
        "driver-cores": 1,
        "executor-cores": 2,
        "num-executors": 4,
        "queue": "etl",
        "properties-file": "spark.conf",
        "supervise": True,
    }
    ctx = ActionContext("t(2012-06)", "t", {}, ["in1", "in2"], "out.tmp", "u", flowfile_dir="/proj")
    argv = sp.spark_submit_command(SparkSubmitAction("apps/job.py", settings, NO_SPAN), ctx, block, "local[2]")
    assert argv == [
        str(spark_home / "bin" / "spark-submit"),
        "--master",
        "local[2]",
        "--name",
        "counts",
        "--deploy-mode",
        "cluster",
        "--properties-file",
        "/proj/spark.conf",
        "--packages",
        "org.x:a:1",
        "--jars",
        "/proj/lib/a.jar,hdfs:///b.jar",
        "--py-files",
        "/proj/deps.zip",
        "--files",
        "/abs/f.txt",
        "--driver-memory",
        "2g",
        "--driver-cores",
        "1",
        "--executor-memory",
        "1g",
        "--executor-cores",
        "2",
        "--num-executors",
        "4",
        "--queue",
        "etl",
        "--supervise",
        "--conf",
        "spark.a=block",
        "--conf",
        "spark.b=rule",
        "--conf",
        "spark.c=true",
        "/proj/apps/job.py",
        "out.tmp",
        "in1",
        "in2",
    ]
    named = sp.spark_submit_command(SparkSubmitAction("job.py", {}, NO_SPAN), ctx, {}, "local[2]")
    assert named[3:5] == ["--name", "t(2012-06)"]
    with pytest.raises(
        ActionFailed, match=r"unknown spark-submit setting 'executor-memroy' \(did you mean 'executor-memory'\?\)"
    ):
        sp.spark_submit_command(SparkSubmitAction("job.py", {"executor-memroy": "1g"}, NO_SPAN), ctx, {}, "local[2]")


def test_the_spark_block_may_be_given_as_setting_nodes(monkeypatch):
    conf = (Setting("spark.sql.shuffle.partitions", "4", NO_SPAN, NO_SPAN),)
    block = (
        Setting("master", "yarn", NO_SPAN, NO_SPAN),
        Setting("conf", conf, NO_SPAN, NO_SPAN),
        Setting("driver-memory", "2g", NO_SPAN, NO_SPAN),
    )
    monkeypatch.delenv("FLOW_SPARK_MASTER", raising=False)
    assert sp.effective_master(None, block) == "yarn"
    holder = sp.SparkSessionHolder.from_settings(block, "yarn")
    assert holder.conf["spark.sql.shuffle.partitions"] == "4" and holder.conf["spark.driver.memory"] == "2g"
    assert holder.conf["spark.scheduler.mode"] == "FAIR" and not holder.started
    assert sp.merged_submit_settings(block, {})["conf"] == {"spark.sql.shuffle.partitions": "4"}


def test_master_precedence_is_cli_then_environment_then_rule_then_flowfile():
    env = {"FLOW_SPARK_MASTER": "spark://env:7077"}
    assert sp.effective_master("spark://cli:7077", {"master": "yarn"}, "local[3]", env) == "spark://cli:7077"
    assert sp.effective_master(None, {"master": "yarn"}, "local[3]", env) == "spark://env:7077"
    assert sp.effective_master(None, {"master": "yarn"}, "local[3]", {}) == "local[3]"
    assert sp.effective_master(None, "yarn", None, {}) == "yarn"
    assert sp.effective_master(None, {}, None, {"FLOW_SPARK_MASTER": ""}) == "local[*]"


# ---------------------------------------------------------------------------- concurrency and cancelling

_seen: dict = {}


def rendezvous_then_aggregate(spark, inputs, output, rendezvous):
    """Prove the two tasks' Spark jobs run at the same time: each job waits for the other's to have started."""
    sc = spark.sparkContext
    me = sc.getLocalProperty("spark.jobGroup.id")
    _seen[me] = (id(spark), sc.getLocalProperty("spark.scheduler.pool"))
    print(f"hello from {me}")

    def meet(_):
        import glob
        import os
        import time

        open(os.path.join(rendezvous, me.replace("/", "_")), "w").close()
        deadline = time.monotonic() + 60
        while len(glob.glob(os.path.join(rendezvous, "*"))) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the other task's job never ran at the same time as this one")
            time.sleep(0.05)
        return []

    sc.parallelize([0], 1).mapPartitions(meet).collect()
    from examples.top_artists_spark import aggregate

    aggregate(spark, inputs, output)


def test_two_function_tasks_run_concurrently_in_one_session(holder, streams, tmp_path):
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()
    contexts = [
        context(tmp_path, streams[:n], name=f"n{n}", task_id=f"artist_streams_spark(n{n})", rendezvous=str(rendezvous))
        for n in (2, 3)
    ]
    errors = []

    def run(ctx):
        try:
            sp.run_spark_function(
                ctx,
                SparkAction(f"{__name__}.rendezvous_then_aggregate", NO_SPAN),
                holder,
                log_path=str(tmp_path / f"{ctx.task_id}.log"),
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(ctx,)) for ctx in contexts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for n, ctx in zip((2, 3), contexts, strict=True):
        assert read_counts(ctx.output) == python_counts(streams[:n])
        assert _seen[ctx.task_id][1] == ctx.task_id  # its own scheduler pool
        assert (tmp_path / f"{ctx.task_id}.log").read_text() == f"hello from {ctx.task_id}\n"  # its own prints only
    assert _seen[contexts[0].task_id][0] == _seen[contexts[1].task_id][0]  # one session


def long_jobs(spark):
    """Swallow the first job's failure and start another, as careless user code does: a cancel must stop both."""
    try:
        spark.range(0, 10**13, numPartitions=2).selectExpr("max(id)").collect()
    except Exception:
        pass
    spark.range(0, 10**13, numPartitions=2).selectExpr("max(id)").collect()


def run_in_thread(target):
    result = {}

    def body():
        try:
            target()
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=body)
    thread.start()
    return thread, result


def test_cancel_stops_a_running_function_task_and_the_session_lives_on(holder, streams, tmp_path):
    ctx = context(tmp_path, streams, task_id="long(1)")
    thread, result = run_in_thread(
        lambda: sp.run_spark_function(ctx, SparkAction(f"{__name__}.long_jobs", NO_SPAN), holder)
    )
    tracker = holder.session().sparkContext.statusTracker()
    wait_for(lambda: tracker.getJobIdsForGroup("long(1)"), "the task's Spark job to start")
    assert sp.cancel("long(1)", holder)
    thread.join()
    assert isinstance(result.get("error"), ActionFailed) and str(result["error"]) == "cancelled"
    assert not sp.cancel("long(1)", holder)  # no longer running
    after = context(tmp_path, streams, name="after")
    sp.run_spark_function(after, SparkAction("examples.top_artists_spark.aggregate", NO_SPAN), holder)
    assert read_counts(after.output) == python_counts(streams)


def test_a_function_task_over_its_timeout_fails(holder, tmp_path):
    ctx = context(tmp_path, [], task_id="long(2)")
    with pytest.raises(ActionFailed, match=r"^timed out after 1s$"):
        sp.run_spark_function(ctx, SparkAction(f"{__name__}.long_jobs", NO_SPAN), holder, timeout=1)


SLEEPER = """import os, sys, time
with open(sys.argv[1], "w") as marker:
    marker.write(str(os.getpid()))
time.sleep(600)
"""


def test_cancel_kills_a_running_spark_submit_and_its_driver(tmp_path):
    marker = tmp_path / "driver.pid"
    action = SparkSubmitAction(write_app(tmp_path, SLEEPER), {}, NO_SPAN, args=(str(marker),))
    ctx = context(tmp_path, [], task_id="sleeper(1)")
    thread, result = run_in_thread(lambda: sp.run_spark_submit(ctx, action, {}, "local[1]", str(tmp_path / "log")))
    wait_for(lambda: marker.exists() and marker.read_text(), "the app to start")
    assert sp.cancel("sleeper(1)")
    thread.join()
    assert isinstance(result.get("error"), ActionFailed) and str(result["error"]) == "cancelled"
    wait_for(lambda: not alive(int(marker.read_text())), "the driver process to die")


def test_a_spark_submit_over_its_timeout_is_killed(tmp_path):
    marker = tmp_path / "driver.pid"
    action = SparkSubmitAction(write_app(tmp_path, SLEEPER), {}, NO_SPAN, args=(str(marker),))
    with pytest.raises(ActionFailed, match=r"^timed out after 2s$"):
        sp.run_spark_submit(context(tmp_path, []), action, {}, "local[1]", str(tmp_path / "log"), timeout=2)
    if marker.exists() and marker.read_text():
        wait_for(lambda: not alive(int(marker.read_text())), "the driver process to die")


def test_every_spark_submit_setting_the_language_accepts_is_one_the_runner_knows():
    from flow.compiler.nodes import SPARK_SUBMIT_SETTINGS

    known = set(sp.SUBMIT_OPTIONS) | set(sp.SUBMIT_SWITCHES) | set(sp.SUBMIT_ENV) | sp.SUBMIT_OTHER
    assert SPARK_SUBMIT_SETTINGS == known
