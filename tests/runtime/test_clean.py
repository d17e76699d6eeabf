"""`flow clean --downstream` on the root Flowfile: a day's streams and everything built from them, nothing else."""

from __future__ import annotations

import json
import os

import pytest

from tests.serving import clone_root_project
from tests.serving import flow as run_flow

TODAY = ("--today", "2012-08-01")


@pytest.fixture
def clone(tmp_path):
    """The repository's Flowfile and examples in a temporary directory."""
    clone_root_project(tmp_path)
    return tmp_path


def flow(directory, *args, env=None):
    return run_flow(directory, *args, env=env, timeout=600)


def outputs(directory) -> set:
    """Every file under data/, relative to it."""
    found = set()
    for folder, _, files in os.walk(directory / "data"):
        found.update(os.path.relpath(os.path.join(folder, name), directory / "data") for name in files)
    return found


def test_deleting_one_days_streams_removes_that_months_counts_and_top_10_and_nothing_else(clone):
    built = flow(clone, "build", "-q", "-j", "2", *TODAY, "top_artists_2012-06.tsv", "top_artists_2012-07.tsv")
    assert built.returncode == 0, built.stderr
    before = outputs(clone)
    assert len(before) == 2 * 61 + 4
    chain = {"streams/2012-06-03.tsv", "daily_artist_streams/2012-06-03.tsv", "artist_streams_2012-06.tsv",
             "top_artists_2012-06.tsv"}

    asked = flow(clone, "clean", "--downstream", *TODAY, "streams(2012-06-03)")  # no terminal, no --yes
    assert asked.returncode == 2 and "pass --yes" in asked.stderr
    shown = {line.strip() for line in asked.stdout.splitlines()}
    assert shown == {f"data/{path}" for path in chain}  # what it would delete, before refusing
    assert outputs(clone) == before

    cleaned = flow(clone, "clean", "--downstream", "--yes", *TODAY, "streams(2012-06-03)")
    assert cleaned.returncode == 0, cleaned.stderr
    assert cleaned.stdout.splitlines()[-1] == "deleted 4 outputs"
    assert outputs(clone) == before - chain
    # the tables loaded from that month are kept without --table-markers, and said to be
    assert "note: 2 table outputs kept" in cleaned.stderr
    assert "toplist_db(2012-06)  table top10" in cleaned.stderr
    assert "toplist_summary(2012-06)  table toplist_summary" in cleaned.stderr

    # the next build makes exactly that chain again
    plan = json.loads(flow(clone, "--dry-run", "--format", "json", *TODAY, "top_artists_2012-06.tsv",
                           "top_artists_2012-07.tsv").stdout)
    assert {task["output"]["location"] for task in plan["tasks"]} == {f"data/{path}" for path in chain}


def test_downstream_of_a_target_that_is_missing_still_finds_what_was_built_from_it(clone):
    """The count of a day deleted by hand: its month's outputs are still built from it and go too."""
    assert flow(clone, "build", "-q", *TODAY, "top_artists_2012-06.tsv").returncode == 0
    os.remove(clone / "data" / "daily_artist_streams" / "2012-06-10.tsv")
    cleaned = flow(clone, "clean", "--downstream", "-y", *TODAY, "daily_artist_streams(2012-06-10)")
    assert cleaned.returncode == 0, cleaned.stderr
    assert {line.strip() for line in cleaned.stdout.splitlines()[:-1]} == {
        "data/artist_streams_2012-06.tsv", "data/top_artists_2012-06.tsv"}
    assert len(os.listdir(clone / "data" / "streams")) == 30


def test_table_markers_go_only_when_asked_and_the_next_build_reloads(clone, pg_dsn, pg_conn):
    env = {"FLOW_DATABASE_URL": pg_dsn}
    built = flow(clone, "build", "-q", "-j", "2", *TODAY, "toplist_summary(2012-06)", "toplist_db(2012-07)", env=env)
    assert built.returncode == 0, built.stderr

    def markers():
        pg_conn.rollback()
        with pg_conn.cursor() as cur:
            cur.execute("SELECT update_id FROM flow_table_updates")
            return {row[0] for row in cur.fetchall()}

    everything = {"toplist_db(2012-06)", "toplist_summary(2012-06)", "toplist_db(2012-07)"}
    assert markers() == everything
    kept = flow(clone, "clean", "--downstream", "-y", *TODAY, "top_artists(2012-06)", env=env)
    assert kept.returncode == 0 and markers() == everything

    assert flow(clone, "build", "-q", *TODAY, "top_artists(2012-06)", env=env).returncode == 0
    cleaned = flow(clone, "clean", "--downstream", "--table-markers", "-y", *TODAY, "top_artists(2012-06)", env=env)
    assert cleaned.returncode == 0, cleaned.stderr
    assert "marker row of toplist_db(2012-06)  (table top10)" in cleaned.stdout
    assert "deleted 1 output and 2 marker rows" in cleaned.stdout
    assert "rows those tasks wrote are still in their tables" in cleaned.stdout
    assert markers() == {"toplist_db(2012-07)"}
    assert not (clone / "data" / "top_artists_2012-06.tsv").exists()
    assert (clone / "data" / "top_artists_2012-07.tsv").exists()

    rebuilt = flow(clone, "build", "-q", *TODAY, "toplist_summary(2012-06)", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert markers() == everything
    with pg_conn.cursor() as cur:  # the load ran again and appended its ten rows, as the note said
        cur.execute("SELECT count(*) FROM top10 WHERE date_from = '2012-06-01'")
        assert cur.fetchone()[0] == 20


def test_downstream_of_an_external_input_deletes_only_what_was_built_from_it(tmp_path):
    (tmp_path / "acts.py").write_text("def copy(input, output):\n    open(output, 'w').write(open(input).read())\n")
    (tmp_path / "Flowfile").write_text(
        'external rule dump(date: date):\n    output: "dump/{date}.tsv"\n\n'
        'rule copied(date: date):\n    requires: dump(date)\n    output: "out/{date}.tsv"\n    python: acts.copy\n\n'
        'target june: copied(d) for d in days(2012-06-01 .. 2012-06-02)\n')
    os.makedirs(tmp_path / "dump")
    for day in ("2012-06-01", "2012-06-02"):
        (tmp_path / "dump" / f"{day}.tsv").write_text(day)
    assert flow(tmp_path, "build", "june").returncode == 0
    cleaned = flow(tmp_path, "clean", "--downstream", "-y", "dump(2012-06-01)")
    assert cleaned.returncode == 0, cleaned.stderr
    assert cleaned.stdout.splitlines() == ["  out/2012-06-01.tsv", "deleted 1 output"]
    assert sorted(os.listdir(tmp_path / "dump")) == ["2012-06-01.tsv", "2012-06-02.tsv"]
    assert os.listdir(tmp_path / "out") == ["2012-06-02.tsv"]
