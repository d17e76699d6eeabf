"""docs/errors.md is what tests/reliability/make_error_catalogue.py writes: the catalogue stays true."""

from tests.reliability.make_error_catalogue import CASES, OUTPUT, catalogue


def test_the_committed_catalogue_matches_what_the_compiler_says_today():
    assert OUTPUT.read_text(encoding="utf-8") == catalogue(), \
        "docs/errors.md is out of date: run python -m tests.reliability.make_error_catalogue and review the diff"


def test_every_hostile_input_gets_a_message_and_none_a_traceback():
    text = catalogue()
    for case in CASES:
        section = text.split(f"### {case.title}\n", 1)[1].split("\n### ", 1)[0]
        assert "error: " in section, case.title
        assert "Traceback" not in section and "(builds " not in section, case.title
