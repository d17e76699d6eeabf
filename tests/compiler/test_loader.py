"""Tests of compiler/loader.py: reading a Flowfile safely, and the parse cache writing whole files only."""

import os
import pickle

import pytest
from flow.compiler import loader
from flow.compiler.errors import FlowSyntaxError, SourceCache, UsageError, render

GOOD = 'rule a(date: date):\n    output: "a/{date}.tsv"\n    python: m.f\n'


def test_a_flowfile_that_is_not_utf8_is_located(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Flowfile").write_bytes(b'rule a(date: date):\n    output: "\xc3\xa9t\xe9/{date}"\n')
    with pytest.raises(UsageError) as caught:
        loader.load("Flowfile")
    [diagnostic] = caught.value.diagnostics
    assert render(diagnostic, SourceCache()) == (
        "Flowfile:2:16: error: the Flowfile is not UTF-8 text: invalid continuation byte 0xe9\n"
        '        output: "ét\ufffd/{date}"\n'
        "                   ^\n"
        "  hint: save the file as UTF-8")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "Flowfile"
    os.mkfifo(fifo)
    with pytest.raises(UsageError) as caught:  # no writer: a plain open() would wait forever
        loader.load(str(fifo))
    assert caught.value.diagnostics[0].message == f"cannot read '{fifo}': it is not a regular file"


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(UsageError) as caught:
        loader.load(str(tmp_path))
    assert caught.value.diagnostics[0].message == f"cannot read '{tmp_path}': it is a directory"


def test_the_cache_keeps_whole_entries_and_no_temporaries(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOW_CACHE_DIR", str(tmp_path))
    loader.parse_cached(GOOD, "Flowfile")
    [entry] = os.listdir(tmp_path)
    assert entry.startswith("ast-") and entry.endswith(".pickle")
    assert pickle.loads((tmp_path / entry).read_bytes()).rules[0].name == "a"


def test_too_deep_input_is_an_error_and_writes_nothing_to_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOW_CACHE_DIR", str(tmp_path))
    with pytest.raises(FlowSyntaxError):
        loader.parse_cached("range x = " + " + ".join(["1"] * 350) + "\n", "Flowfile")
    assert os.listdir(tmp_path) == []


def test_a_failed_cache_write_removes_its_temporary(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOW_CACHE_DIR", str(tmp_path))

    def no_rename(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(loader.os, "replace", no_rename)
    flowfile = loader.parse_cached(GOOD, "Flowfile")
    assert flowfile.rules[0].name == "a"  # the build goes on without its cache
    assert os.listdir(tmp_path) == []


def test_an_unpicklable_parse_is_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOW_CACHE_DIR", str(tmp_path))

    def fail(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded while pickling an object")

    monkeypatch.setattr(loader.pickle, "dumps", fail)
    loader.parse_cached(GOOD, "Flowfile")
    assert os.listdir(tmp_path) == []
