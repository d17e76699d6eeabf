"""How `flow` routes its arguments: bare targets and options mean `build`."""

import pytest
from flow.runtime.cli import _route


@pytest.mark.parametrize("args, routed", [
    ([], ["build"]),
    (["--dry-run"], ["build", "--dry-run"]),
    (["top_artists_2012-06.tsv"], ["build", "top_artists_2012-06.tsv"]),
    (["-j", "2", "toplists_2012"], ["build", "-j", "2", "toplists_2012"]),
    (["lint"], ["lint"]),
    (["-f", "sub/Flowfile", "lint"], ["lint", "-f", "sub/Flowfile"]),
    (["-f", "lint", "x.tsv"], ["build", "-f", "lint", "x.tsv"]),  # a Flowfile that happens to be named lint
    (["--help"], ["--help"]),
    (["--version"], ["--version"]),
    (["build", "--help"], ["build", "--help"]),
])
def test_route(args, routed):
    assert _route(args) == routed
