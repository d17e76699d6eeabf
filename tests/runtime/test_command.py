"""The command runner's pieces: patterns expanded into words, quoting for the shell, messages."""

import datetime
import os
import shlex

import pytest
from flow.compiler import nodes as n
from flow.compiler.types import Interval
from flow.runtime.actions.base import ActionContext, ActionFailed
from flow.runtime.actions.command import command_line, expand, failure_message

JUNE = Interval("month", datetime.date(2012, 6, 1), datetime.date(2012, 7, 1))


def context(inputs=("in/a b.txt", "in/it's;.txt"), flowfile_dir="/project") -> ActionContext:
    return ActionContext("t(2012-06)", "t", {"interval": JUNE, "label": "x y"}, list(inputs), "out/.t.tmp", "t",
                         flowfile_dir)


def test_inputs_alone_is_one_argument_per_input_and_values_are_never_split():
    ctx = context()
    assert expand("{inputs}", ctx, quote=False) == ["in/a b.txt", "in/it's;.txt"]
    assert expand("--label={label}", ctx, quote=False) == ["--label=x y"]
    assert expand("{interval.start}..{interval.end.year}", ctx, quote=False) == ["2012-06-01..2012"]
    assert expand("{interval}{{}}", ctx, quote=False) == ["2012-06{}"]


def test_shell_quoting_keeps_each_value_one_word():
    line = expand("cat {inputs} > {output}; echo {label}", context(), quote=True)[0]
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)  # reads words as /bin/sh would
    lexer.whitespace_split = True
    words = list(lexer)
    assert words == ["cat", "in/a b.txt", "in/it's;.txt", ">", "out/.t.tmp", ";", "echo", "x y"]


def test_input_needs_exactly_one_input():
    with pytest.raises(ActionFailed, match="needs exactly one input, and the task has 2"):
        expand("{input}", context(), quote=False)


def test_a_working_directory_makes_paths_absolute(tmp_path):
    (tmp_path / "sub").mkdir()
    action = n.CommandAction(("cat", "{inputs}", "{output}"), n.NO_SPAN, (n.NO_SPAN,) * 3,
                             (n.Setting("cwd", "sub", n.NO_SPAN, n.NO_SPAN),))
    argv, env, cwd = command_line(action, context(flowfile_dir=str(tmp_path)))
    assert cwd == str(tmp_path / "sub")
    assert argv == ["cat", str(tmp_path / "in/a b.txt"), str(tmp_path / "in/it's;.txt"), str(tmp_path / "out/.t.tmp")]
    argv, _, cwd = command_line(n.CommandAction(("cat", "{output}"), n.NO_SPAN), context(flowfile_dir=str(tmp_path)))
    assert cwd == str(tmp_path) and argv == ["cat", "out/.t.tmp"]


def test_shell_actions_run_sh_with_environment_additions():
    action = n.ShellAction("echo {label}", n.NO_SPAN, n.NO_SPAN, (
        n.Setting("env", (n.Setting("WHAT", "{interval}", n.NO_SPAN, n.NO_SPAN),), n.NO_SPAN, n.NO_SPAN),))
    argv, env, _ = command_line(action, context(flowfile_dir=os.getcwd()))
    assert argv == ["/bin/sh", "-c", "echo 'x y'"]
    assert env == {"WHAT": "2012-06"}


def test_failure_messages_name_the_code_or_the_signal_and_keep_the_tail():
    assert failure_message("'prog'", 3, []) == "'prog' exited with code 3"
    assert failure_message("'prog'", -9, ["", "boom"]) == \
        "'prog' was killed by SIGKILL; last lines of its standard error:\n  boom"


def test_inputs_inside_a_longer_argument_are_joined_by_commas():
    assert expand("--input={inputs}", context(), quote=False) == ["--input=in/a b.txt,in/it's;.txt"]


def test_dates_take_a_strftime_format():
    assert expand("--day={interval.start:%Y%m%d}", context(), quote=False) == ["--day=20120601"]
