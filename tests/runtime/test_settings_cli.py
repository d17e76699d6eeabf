"""Settings through the real `flow` command: the build obeys them, `flow config` says where each came from."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.reliability.helpers import flow
from tests.serving import make_project


@pytest.fixture
def project(tmp_path):
    make_project(tmp_path)
    return tmp_path


@pytest.fixture
def env(tmp_path):
    """The user's settings file lives under tmp_path/config; retries wait 0.05 s."""
    (tmp_path / "config" / "flow").mkdir(parents=True)
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), "FLOW_RETRY_DELAY": "0.05"}


def user_file(tmp_path):
    return tmp_path / "config" / "flow" / "config.toml"


def limit_in(result) -> str:
    """The task limit a refused build names."""
    assert result.returncode == 2, result.stdout + result.stderr
    return result.stderr.split("more than the limit of ")[1].split(" ")[0]


def test_the_task_limit_comes_from_each_level_in_turn(project, env, tmp_path):
    # month(2012-01) needs 32 tasks: every limit below is under that, so the refusal names the one in force
    user_file(tmp_path).write_text("max_tasks = 10\n")
    assert limit_in(flow(project, "build", "month(2012-01)", env=env)) == "10"
    (project / "pyproject.toml").write_text('[project]\nname = "etl"\n\n[tool.flow]\nmax_tasks = 11\n')
    assert limit_in(flow(project, "build", "month(2012-01)", env=env)) == "11"
    (project / "flow.toml").write_text("max_tasks = 12\n")
    assert limit_in(flow(project, "build", "month(2012-01)", env=env)) == "12"
    assert limit_in(flow(project, "build", "month(2012-01)", env={**env, "FLOW_MAX_TASKS": "13"})) == "13"
    assert limit_in(flow(project, "build", "--max-tasks", "14", "month(2012-01)",
                         env={**env, "FLOW_MAX_TASKS": "13"})) == "14"


def test_keep_going_and_jobs_from_the_files_and_the_command_line_over_them(project, env, tmp_path):
    # broken: three independent failing tasks; without keep-going the build stops after the first
    user_file(tmp_path).write_text("keep_going = true\njobs = 2\n")
    result = flow(project, "build", "broken", env=env)
    assert result.returncode == 1 and "3 tasks failed" in result.stdout, result.stdout
    (project / "flow.toml").write_text("keep_going = false\njobs = 1\n")  # one at a time: exactly one fails
    result = flow(project, "build", "broken", env=env)
    assert result.returncode == 1 and "1 task failed" in result.stdout, result.stdout
    result = flow(project, "build", "-k", "-j", "3", "broken", env=env)
    assert "3 tasks failed" in result.stdout, result.stdout
    (project / "flow.toml").write_text("keep_going = true\njobs = 1\n")
    result = flow(project, "build", "--no-keep-going", "broken", env=env)
    assert "1 task failed" in result.stdout, result.stdout
    with sqlite3.connect(project / ".flow" / "history.sqlite") as db:
        jobs = [json.loads(plan)["jobs"] for plan, in db.execute("SELECT plan_json FROM runs ORDER BY id")]
    assert jobs == [2, 1, 3, 1]  # the user file's jobs = 2, then the project file's 1, except where -j said 3


def test_flow_config_shows_each_value_and_where_it_came_from(project, env, tmp_path):
    user_file(tmp_path).write_text('jobs = 2\ndatabase = "$WAREHOUSE_URL"\n')
    (project / "flow.toml").write_text('keep_going = true\n\n[history]\nkeep_runs = 50\n\n[notify.email]\n'
                                       'to = "ops@example.com"\npassword_env = "SMTP_PASSWORD"\n')
    result = flow(project, "config", env={**env, "FLOW_RETRY_DELAY": "2.5",
                                          "WAREHOUSE_URL": "postgresql://etl:Sup3r-secret@db/wh"})
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[4:]}
    assert lines["jobs"].split()[1:] == ["2", f"{user_file(tmp_path)}:1"]
    assert lines["keep_going"].split()[1:] == ["true", "flow.toml:1"]
    assert lines["history.keep_runs"].split()[1:] == ["50", "flow.toml:4"]
    assert lines["history.keep_days"].split()[1:] == ["90", "built-in", "default"]
    assert lines["retry_delay"].split()[1:] == ["2.5", "environment", "FLOW_RETRY_DELAY"]
    assert '"$WAREHOUSE_URL"  (= postgresql://etl:***@db/wh)' in lines["database"]
    assert lines["notify.email.password_env"].split()[1:4] == ['"SMTP_PASSWORD"', "(not", "set)"]
    assert "Sup3r-secret" not in result.stdout

    result = flow(project, "config", "--format", "json", env=env)
    document = json.loads(result.stdout)
    rows = {row["key"]: row for row in document["settings"]}
    assert rows["jobs"] == {"key": "jobs", "value": 2, "source": "user", "where": f"{user_file(tmp_path)}:1"}
    assert rows["notify.email.to"]["value"] == ["ops@example.com"]
    assert rows["notify.on"] == {"key": "notify.on", "value": ["failure"], "source": "default",
                                 "where": "built-in default"}
    assert document["files"] == [str(user_file(tmp_path)), str(project / "flow.toml")]


def test_the_flowfile_database_is_above_the_settings_files(project, env):
    (project / "flow.toml").write_text('database = "$WAREHOUSE_URL"\n')
    flowfile = (project / "Flowfile").read_text()
    (project / "Flowfile").write_text('database: "postgresql://etl@db.example/warehouse"\n' + flowfile)
    result = flow(project, "config", env=env)
    line = next(line for line in result.stdout.splitlines() if line.startswith("database"))
    assert line.split()[1:] == ['"postgresql://etl@db.example/warehouse"', "Flowfile", "(database:)"]


@pytest.mark.parametrize("command", [["build", "good"], ["--dry-run"], ["status"], ["config"], ["db", "url"]])
def test_a_bad_settings_file_stops_every_command_with_one_line(project, env, command):
    (project / "flow.toml").write_text("jobs = 4\n[history]\nkeep_days = \"forever\"\n")
    result = flow(project, *command, env=env)
    assert result.returncode == 2
    assert result.stderr == 'flow.toml:3: error: history.keep_days = "forever" must be a number of days,' \
                            ' 0 (no limit) or more\n'
    assert not (project / "out").exists()


def test_a_database_variable_that_is_not_set_is_said_before_anything_runs(project, env):
    (project / "flow.toml").write_text('database = "${WAREHOUSE_URL}"\n')
    result = flow(project, "build", "good", env=env)
    assert result.returncode == 2
    assert result.stderr == "flow.toml:1: error: database names $WAREHOUSE_URL, which is not set" \
                            " (set it, or remove the setting)\n"


TABLE_RULE = '''
rule month_rows(interval: interval):
    requires: month(interval)
    output: table "days"
    load:
        columns: line text
'''


def test_the_database_a_settings_file_names_is_where_tables_load(tmp_path, env, pg_dsn, pg_conn):
    # the URL (with its password) is in a variable the project file names; the embedded server is never started
    make_project(tmp_path)
    with open(tmp_path / "Flowfile", "a") as flowfile:
        flowfile.write(TABLE_RULE)
    (tmp_path / "flow.toml").write_text('database = "$WAREHOUSE_URL"\n')
    env = {**env, "WAREHOUSE_URL": pg_dsn}
    result = flow(tmp_path, "build", "month_rows(2012-01-01-2012-01-04)", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    with pg_conn.cursor() as cur:
        cur.execute("SELECT line FROM days ORDER BY line")
        assert [row[0] for row in cur.fetchall()] == [f"day 2012-01-0{d}" for d in (1, 2, 3)]
    assert not (tmp_path / ".flow" / "db").exists()
    shown = flow(tmp_path, "config", env=env).stdout
    from flow.runtime.conninfo import written_passwords

    assert written_passwords(pg_dsn) and not any(password in shown for password in written_passwords(pg_dsn))
    assert "(= postgresql://" in shown and ":***@" in shown
