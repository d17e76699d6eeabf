"""Remote outputs through the `flow` command against the suite's local S3 server (moto, real S3 protocol)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
EXAMPLE = Path(ROOT) / "examples" / "s3"


def run_flow(project, *args, env, timeout=300):
    return subprocess.run([sys.executable, "-m", "flow.runtime.cli", *args], cwd=project, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)


def start_flow(project, *args, env):
    return subprocess.Popen([sys.executable, "-m", "flow.runtime.cli", *args], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def environment(s3_server, project, extra=None) -> dict:
    env = dict(os.environ)
    env.update(s3_server.env)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["FLOW_TEST_DIR"] = str(project)
    env["FLOW_RETRY_DELAY"] = "0.05"
    env.update(extra or {})
    return env


def keys(s3_server, bucket, prefix="") -> dict:
    """key -> bytes of every object under the prefix."""
    client = s3_server.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found


def names(s3_server, bucket, prefix="") -> list:
    """The keys under the prefix."""
    pages = s3_server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def wait_for(condition, what: str, deadline_s: float = 120):
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def kill_build(process) -> None:
    """SIGKILL a flow build and every process it started: the main process, its workers, their children."""
    doomed = {process.pid} | descendants(process.pid)
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(60)


def descendants(pid: int) -> set:
    children: dict = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


# ---------------------------------------------------------------------------- the example, end to end


@pytest.fixture
def example(tmp_path, s3_server, s3_bucket):
    """A copy of examples/s3 writing to the test's own bucket, with June 2012's streams put there."""
    project = tmp_path / "example"
    project.mkdir()
    text = (EXAMPLE / "Flowfile").read_text().replace("flow-example", s3_bucket)
    (project / "Flowfile").write_text(text)
    shutil.copy(EXAMPLE / "remote_artists.py", project)
    env = environment(s3_server, project)
    put = subprocess.run([sys.executable, str(EXAMPLE / "put_streams.py"), s3_bucket, "2012-06-01", "2012-06-30"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    assert put.returncode == 0, put.stderr
    return project, env, s3_bucket


def expected_counts(streams: dict) -> bytes:
    counts: Counter = Counter()
    for body in streams.values():
        for line in body.decode().splitlines():
            counts[line.split("\t")[1]] += 1
    return "".join(f"{artist}\t{counts[artist]}\n" for artist in sorted(counts)).encode()


def test_example_end_to_end_objects_bytes_rows_and_a_no_op(example, s3_server, pg_dsn, pg_conn):
    project, env, bucket = example
    env["FLOW_DATABASE_URL"] = pg_dsn
    build = run_flow(project, "build", "toplist_db(2012-06)", env=env)
    assert build.returncode == 0, build.stdout + build.stderr

    streams = keys(s3_server, bucket, "streams/")
    assert len(streams) == 30
    counts = keys(s3_server, bucket, "artist_streams/")
    assert counts == {"artist_streams/2012-06.tsv": expected_counts(streams)}
    top = (project / "data" / "top_artists_2012-06.tsv").read_text().splitlines()
    ranked = sorted(((artist, int(n)) for artist, n in (line.split("\t") for line in
                     counts["artist_streams/2012-06.tsv"].decode().splitlines())), key=lambda x: (-x[1], x[0]))[:10]
    assert top == [f"2012-06-01\t2012-07-01\t{artist}\t{n}" for artist, n in ranked]
    with pg_conn.cursor() as cur:
        cur.execute("SELECT artist, streams FROM top10 WHERE date_from = '2012-06-01' ORDER BY streams DESC, artist")
        assert cur.fetchall() == ranked
    assert not list((project / ".flow" / "tmp").iterdir())  # every temporary uploaded and gone

    s3_server.reset_counts()
    again = run_flow(project, "build", f"s3://{bucket}/artist_streams/2012-06.tsv", "top_artists(2012-06)", env=env)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout + again.stderr
    assert s3_server.counts() == {"LIST": 1}


def test_status_dry_run_and_clean_on_remote_outputs(example, s3_server):
    project, env, bucket = example
    url = f"s3://{bucket}/artist_streams/2012-06.tsv"
    dry = run_flow(project, "--dry-run", "build", "top_artists(2012-06)", env=env)
    assert dry.returncode == 0, dry.stderr
    assert f"artist_streams(2012-06)  {url}" in dry.stdout
    assert run_flow(project, "build", "top_artists(2012-06)", env=env).returncode == 0

    status = run_flow(project, "status", url, env=env)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[0] == f"artist_streams(2012-06)  [complete]  {url}"

    clean = run_flow(project, "clean", "-y", url, env=env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert keys(s3_server, bucket, "artist_streams/") == {}
    assert len(keys(s3_server, bucket, "streams/")) == 30  # external inputs are never cleaned
    status = run_flow(project, "status", url, env=env)
    assert status.stdout.splitlines()[0] == f"artist_streams(2012-06)  [missing]  {url}"
    dry = run_flow(project, "--dry-run", "build", url, env=env)
    assert "output missing" in dry.stdout


def test_missing_external_streams_exit_3(tmp_path, s3_server, s3_bucket):
    project = tmp_path / "p"
    project.mkdir()
    (project / "Flowfile").write_text((EXAMPLE / "Flowfile").read_text().replace("flow-example", s3_bucket))
    shutil.copy(EXAMPLE / "remote_artists.py", project)
    result = run_flow(project, "build", "artist_streams(2012-06)", env=environment(s3_server, project))
    assert result.returncode == 3
    assert f"s3://{s3_bucket}/streams/2012-06-01.tsv" in result.stdout + result.stderr


# ---------------------------------------------------------------------------- atomic publish


ACTIONS = '''
import os, time

def big(output):
    with open(output, "wb") as handle:
        handle.write(os.urandom(1 << 16) * 1024)  # 64 MiB: more than the sockets can hold in flight

def small(date, output):
    with open(output, "w") as handle:
        handle.write(f"{date}\\n")

def parts(date, output):
    os.makedirs(output)
    attempts = os.path.join(os.environ["FLOW_TEST_DIR"], "attempts")
    os.makedirs(attempts, exist_ok=True)
    attempt = len(os.listdir(attempts))
    open(os.path.join(attempts, str(attempt)), "w").close()
    for n in range(2):
        with open(os.path.join(output, f"part-{n}-attempt{attempt}.tsv"), "w") as handle:
            handle.write(f"{date} {n}\\n")
    with open(os.path.join(output, f"part-2-attempt{attempt}.bin"), "wb") as handle:
        handle.write(os.urandom(1 << 16) * 1024)  # 64 MiB: its upload can be cut
    if os.environ.get("FLOW_TEST_FAIL_PARTS"):
        raise RuntimeError("no parts today")

def racer(date, output):
    """Write this project's name, then wait until the other project's build has written too."""
    shared = os.environ["FLOW_TEST_SHARED"]
    me = os.path.basename(os.environ["FLOW_TEST_DIR"])
    with open(output, "w") as handle:
        handle.write(me + "\\n")
    open(os.path.join(shared, me), "w").close()
    deadline = time.monotonic() + 120
    while len(os.listdir(shared)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
'''


def remote_project(tmp_path, s3_server, bucket, name="p", storage_block=False) -> tuple:
    """A project with remote outputs; with `storage_block`, the endpoint is in the Flowfile, not the environment."""
    project = tmp_path / name
    project.mkdir()
    env = environment(s3_server, project)
    block = ""
    if storage_block:
        block = f'storage:\n    s3:\n        endpoint-url: "{env.pop("FLOW_S3_ENDPOINT_URL")}"\n'
    (project / "Flowfile").write_text(block + textwrap.dedent(f'''
        rule big(date: date):
            output: "s3://{bucket}/big/{{date}}.bin"
            python: s3_actions.big

        rule small(date: date):
            output: "s3://{bucket}/small/{{date}}.txt"
            python: s3_actions.small

        rule parts(date: date):
            output: dir "s3://{bucket}/parts/{{date}}"
            python: s3_actions.parts

        rule racer(date: date):
            output: "s3://{bucket}/race/{{date}}.txt"
            python: s3_actions.racer

        target june: small(d) for d in days(2012-06-01 .. 2012-06-30)
    '''))
    (project / "s3_actions.py").write_text(ACTIONS)
    return project, env


def test_sigkill_mid_upload_leaves_no_object_and_the_rerun_publishes(tmp_path, s3_server, s3_bucket):
    project, env = remote_project(tmp_path, s3_server, s3_bucket)
    s3_server.reset_counts()
    s3_server.hold("big/2012-06-01.bin")
    try:
        build = start_flow(project, "build", "big(2012-06-01)", env=env)
        wait_for(lambda: s3_server.held(), "the upload to reach the server")
        kill_build(build)
    finally:
        s3_server.release()  # the server now reads what is left of the cut request
    wait_for(lambda: "PUT 400" in s3_server.counts() or "PUT 500" in s3_server.counts(),
             "the server to refuse the cut upload")
    assert keys(s3_server, s3_bucket, "big/") == {}

    rerun = run_flow(project, "build", "big(2012-06-01)", env=env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    [(key, body)] = keys(s3_server, s3_bucket, "big/").items()
    assert key == "big/2012-06-01.bin" and len(body) == 64 << 20
    assert not list((project / ".flow" / "tmp").iterdir())  # the dead build's temporary was swept


def test_a_failed_directory_output_has_no_success_and_the_rerun_removes_its_parts(tmp_path, s3_server, s3_bucket):
    project, env = remote_project(tmp_path, s3_server, s3_bucket)
    failed = run_flow(project, "build", "parts(2012-06-01)", env={**env, "FLOW_TEST_FAIL_PARTS": "1"})
    assert failed.returncode == 1
    assert keys(s3_server, s3_bucket, "parts/") == {}  # the action failed: nothing was uploaded

    s3_server.reset_counts()
    s3_server.hold("parts/2012-06-01/part-2-")  # two small parts go up; flow dies during the big one
    small = {f"parts/2012-06-01/part-{n}-attempt1.tsv" for n in range(2)}
    try:
        build = start_flow(project, "build", "parts(2012-06-01)", env=env)
        wait_for(lambda: s3_server.held() and small <= set(names(s3_server, s3_bucket, "parts/")),
                 "the small parts to be stored and the big one to reach the server")
        kill_build(build)
    finally:
        s3_server.release()  # the server now reads what is left of the cut request
    wait_for(lambda: "PUT 400" in s3_server.counts() or "PUT 500" in s3_server.counts(),
             "the server to refuse the cut upload")
    assert set(names(s3_server, s3_bucket, "parts/")) == small  # no _SUCCESS: incomplete
    status = run_flow(project, "status", "parts(2012-06-01)", env=env)
    assert status.stdout.splitlines()[0] == (f"parts(2012-06-01)  [FAILED last time: RuntimeError: no parts today]  "
                                             f"s3://{s3_bucket}/parts/2012-06-01")  # not complete

    rerun = run_flow(project, "build", "parts(2012-06-01)", env=env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert sorted(names(s3_server, s3_bucket, "parts/")) == [  # the first attempt's parts are gone
        "parts/2012-06-01/_SUCCESS", "parts/2012-06-01/part-0-attempt2.tsv", "parts/2012-06-01/part-1-attempt2.tsv",
        "parts/2012-06-01/part-2-attempt2.bin"]


def test_two_builds_of_one_output_publish_once(tmp_path, s3_server, s3_bucket):
    shared = tmp_path / "shared"
    shared.mkdir()
    # two projects, as on two hosts: their task locks do not see each other, the store decides
    first, env_a = remote_project(tmp_path, s3_server, s3_bucket, "a")
    second, env_b = remote_project(tmp_path, s3_server, s3_bucket, "b")
    s3_server.reset_counts()
    builds = [start_flow(first, "build", "racer(2012-06-01)", env={**env_a, "FLOW_TEST_SHARED": str(shared)}),
              start_flow(second, "build", "racer(2012-06-01)", env={**env_b, "FLOW_TEST_SHARED": str(shared)})]
    outputs = [build.communicate(timeout=300) for build in builds]
    assert [build.returncode for build in builds] == [0, 0], outputs
    [(key, body)] = keys(s3_server, s3_bucket, "race/").items()
    assert body in (b"a\n", b"b\n")
    counts = s3_server.counts()
    assert counts["PUT"] == 2 and counts["PUT 412"] == 1  # both tried, exactly one published
    loser = "b" if body == b"a\n" else "a"
    log = (tmp_path / loser / ".flow" / "logs" / "racer" / "racer(2012-06-01).log").read_text()
    assert "published by another writer first" in log


def test_no_op_of_many_remote_outputs_is_one_list(tmp_path, s3_server, s3_bucket):
    project, env = remote_project(tmp_path, s3_server, s3_bucket, storage_block=True)
    cold = run_flow(project, "build", "-j", "2", "june", env=env)
    assert cold.returncode == 0, cold.stdout + cold.stderr
    assert len(keys(s3_server, s3_bucket, "small/")) == 30
    s3_server.reset_counts()
    noop = run_flow(project, "build", "june", env=env)
    assert noop.returncode == 0
    assert s3_server.counts() == {"LIST": 1}


def test_an_unreachable_store_is_one_line_without_secrets(tmp_path, s3_server, s3_bucket):
    project, env = remote_project(tmp_path, s3_server, s3_bucket)
    env.update(FLOW_S3_ENDPOINT_URL="http://127.0.0.1:9", AWS_SECRET_ACCESS_KEY="very-secret-value-123",
               AWS_MAX_ATTEMPTS="1", AWS_RETRY_MODE="standard")
    result = run_flow(project, "build", "small(2012-06-01)", env=env)
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in text
    assert "very-secret-value-123" not in text
    assert f"s3://{s3_bucket}/small/" in text
    clean = run_flow(project, "clean", "-y", "small(2012-06-01)", env=env)
    assert clean.returncode == 1 and "Traceback" not in clean.stderr
    assert clean.stderr.startswith(f"error: cannot list s3://{s3_bucket}/small/")
    assert "very-secret-value-123" not in clean.stdout + clean.stderr


def test_a_key_bent_by_a_parameter_is_refused(tmp_path, s3_server, s3_bucket):
    project = tmp_path / "p"
    project.mkdir()
    (project / "Flowfile").write_text(textwrap.dedent(f'''
        rule named(name: str):
            output: "s3://{s3_bucket}/named/{{name}}.txt"
            python: s3_actions.named
    '''))
    (project / "s3_actions.py").write_text("def named(name, output):\n    open(output, 'w').write(name)\n")
    env = environment(s3_server, project)
    s3_server.client().put_object(Bucket=s3_bucket, Key="secrets/keep.txt", Body=b"keep")
    build = run_flow(project, "build", 'named("../secrets/keep")', env=env)
    # The compiler refuses the value before any store is touched (issue 11 item 1): a usage error, exit 2.
    assert build.returncode == 2 and "Traceback" not in build.stderr
    assert "out of the place it names" in build.stdout + build.stderr
    clean = run_flow(project, "clean", "-y", 'named("../secrets/keep")', env=env)
    assert "Traceback" not in clean.stderr
    assert names(s3_server, s3_bucket) == ["secrets/keep.txt"]
    assert keys(s3_server, s3_bucket, "secrets/") == {"secrets/keep.txt": b"keep"}
