"""Settings files: precedence (environment > project > user > default), and a one-line error for every bad value."""

from __future__ import annotations

import os

import pytest
from flow.runtime.settings import KEYS, SettingsError, load_settings


@pytest.fixture
def dirs(tmp_path):
    """(project directory, environment whose user file is under tmp_path, the user file's path)."""
    project = tmp_path / "project"
    project.mkdir()
    config = tmp_path / "config"
    (config / "flow").mkdir(parents=True)
    return project, {"XDG_CONFIG_HOME": str(config)}, config / "flow" / "config.toml"


def load(project, env):
    return load_settings(str(project), env)


def error_of(project, env) -> str:
    with pytest.raises(SettingsError) as caught:
        load(project, env)
    text = str(caught.value)
    assert "\n" not in text
    return text


def test_defaults_when_there_is_no_file(dirs):
    project, env, _ = dirs
    settings = load(project, env)
    assert settings.files == []
    assert [(name, origin.kind) for name, _, origin in settings.items()] == [(key.name, "default") for key in KEYS]
    assert settings["jobs"] == 1 and settings["keep_going"] is False and settings["history.keep_runs"] == 1000
    assert settings["history.keep_days"] == 90 and settings["notify.on"] == ("failure",)


def test_each_level_overrides_the_next(dirs):
    project, env, user = dirs
    user.write_text("jobs = 2\nretry_delay = 3\nmax_tasks = 50\nkeep_going = true\n")
    (project / "flow.toml").write_text("# team defaults\nretry_delay = 4.5\nmax_tasks = 60\n")
    settings = load(project, {**env, "FLOW_MAX_TASKS": "70"})
    assert settings["jobs"] == 2 and settings.origin("jobs").where == f"{user}:1"
    assert settings["keep_going"] is True and settings.origin("keep_going").kind == "user"
    assert settings["retry_delay"] == 4.5 and settings.origin("retry_delay").where == "flow.toml:2"
    assert settings["max_tasks"] == 70 and settings.origin("max_tasks") == ("environment", "FLOW_MAX_TASKS")
    assert settings.files == [str(user), str(project / "flow.toml")]


def test_pyproject_tool_flow_is_the_project_file_unless_there_is_a_flow_toml(dirs):
    project, env, _ = dirs
    (project / "pyproject.toml").write_text('[project]\nname = "etl"\n\n[tool.flow]\njobs = 3\n\n'
                                            '[tool.flow.history]\nkeep_days = 30\n')
    settings = load(project, env)
    assert settings["jobs"] == 3 and settings.origin("jobs").where == "pyproject.toml:5"
    assert settings["history.keep_days"] == 30 and settings.origin("history.keep_days").where == "pyproject.toml:8"
    (project / "flow.toml").write_text("jobs = 5\n")
    settings = load(project, env)
    assert settings["jobs"] == 5 and settings["history.keep_days"] == 90


def test_a_pyproject_without_flow_settings_is_not_even_parsed(dirs):
    project, env, _ = dirs
    (project / "pyproject.toml").write_text("[project\nthis is not TOML at all\n")  # not flow's business
    assert load(project, env).files == []


def test_tables_dotted_keys_and_inline_tables_are_one_namespace(dirs):
    project, env, _ = dirs
    (project / "flow.toml").write_text('[notify]\non = ["failure", "success"]\nemail.to = "ops@example.com"\n'
                                       'webhook = { url_env = "HOOK" }\nemail . "starttls" = false\n\n'
                                       '[history]\nkeep_runs = 5\n')
    settings = load(project, env)
    assert settings["notify.on"] == ("failure", "success")
    assert settings["notify.email.to"] == ("ops@example.com",)
    assert settings.origin("notify.email.to").where == "flow.toml:3"
    assert settings["notify.webhook.url_env"] == "HOOK"
    assert settings["notify.email.starttls"] is False
    assert settings.origin("notify.email.starttls").where == "flow.toml:5"
    assert settings.origin("history.keep_runs").where == "flow.toml:8"


@pytest.mark.parametrize("text, message", [
    ("jobs = 0\n", "flow.toml:1: error: jobs = 0 must be from 1 to 512"),
    ('\njobs = "4"\n', 'flow.toml:2: error: jobs = "4" is not a whole number'),
    ("keep_going = 1\n", "flow.toml:1: error: keep_going = 1 must be true or false"),
    ("retry_delay = -1\n", "flow.toml:1: error: retry_delay = -1 must be 0 or more seconds"),
    ("max_tasks = 1.5\n", "flow.toml:1: error: max_tasks = 1.5 is not a whole number of tasks"),
    ("[history]\nkeep_runs = -3\n", "flow.toml:2: error: history.keep_runs = -3 must be 0 (no limit) or more"),
    ('[notify]\non = ["failure", "sucess"]\n',
     "flow.toml:2: error: notify.on = [...] names 'sucess'; the events are 'failure', 'retry', 'success'"),
    ('[notify.email]\nto = "nobody"\n', 'flow.toml:2: error: notify.email.to = "nobody" must be an e-mail address'
                                        ' or a list of them'),
    ('[notify]\nhook = "notify"\n', 'flow.toml:2: error: notify.hook = "notify" must be module.function (a function'
                                    ' in a module beside the Flowfile or installed)'),
    ("job = 4\n", "flow.toml:1: error: unknown setting 'job' (did you mean 'jobs'?) - `flow config` lists them"),
    ("[histroy]\nkeep_runs = 4\n", "flow.toml:2: error: unknown setting 'histroy.keep_runs' (did you mean"
                                   " 'history.keep_runs'?) - `flow config` lists them"),
    ("jobs = 4\nkeep_going = tru\n", "flow.toml:2:14: error: invalid value (not valid TOML)"),
])
def test_a_bad_value_is_one_line_naming_the_file_line_and_key(dirs, text, message):
    project, env, _ = dirs
    (project / "flow.toml").write_text(text)
    assert error_of(project, env) == message


def test_a_bad_variable_is_named(dirs):
    project, env, _ = dirs
    assert error_of(project, {**env, "FLOW_RETRY_DELAY": "soon"}) == \
        "error: FLOW_RETRY_DELAY='soon' is not a number of seconds"


def test_a_password_in_a_project_file_is_refused(dirs):
    project, env, _ = dirs
    (project / "flow.toml").write_text('jobs = 2\ndatabase = "postgresql://etl:s3cret-pw@db/warehouse"\n')
    message = error_of(project, env)
    assert message.startswith("flow.toml:2: error: database: a database URL with a password does not belong in a"
                              " project file, which is shared; name an environment variable instead")
    assert "s3cret-pw" not in message
    (project / "flow.toml").write_text('[notify.webhook]\nurl = "https://hooks.slack.com/services/T0/B0/XyZ"\n')
    message = error_of(project, env)
    assert message.startswith("flow.toml:2: error: notify.webhook.url: a webhook URL that is a secret does not belong")
    assert "XyZ" not in message


def test_the_user_file_may_hold_a_password_only_when_nobody_else_can_read_it(dirs):
    project, env, user = dirs
    user.write_text('database = "postgresql://me:s3cret-pw@db/warehouse"\n')
    os.chmod(user, 0o644)
    assert "in a file others can read; chmod 600 it" in error_of(project, env)
    os.chmod(user, 0o600)
    assert load(project, env).database_url() == "postgresql://me:s3cret-pw@db/warehouse"


def test_database_may_name_a_variable(dirs):
    project, env, _ = dirs
    (project / "flow.toml").write_text('database = "$WAREHOUSE_URL"\n')
    settings = load(project, env)
    assert settings["database"] == "$WAREHOUSE_URL"
    with pytest.raises(SettingsError, match=r"^flow.toml:1: error: database names \$WAREHOUSE_URL, which is not set"):
        settings.database_url()
    os.environ["WAREHOUSE_URL"] = "postgresql://etl:pw@db/warehouse"
    try:
        assert settings.database_url() == "postgresql://etl:pw@db/warehouse"
    finally:
        del os.environ["WAREHOUSE_URL"]
