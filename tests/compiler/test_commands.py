"""command: and shell: patterns: splitting, the checks' messages and where their carets point."""

import pytest
from flow.compiler.commands import Placeholder, names_used, program, split
from flow.compiler.errors import FlowCheckError, FlowSyntaxError
from flow.compiler.loader import check
from flow.compiler.parser import parse


def test_split_keeps_text_and_finds_placeholders_with_attributes():
    parts, problems = split("cut -f2 {inputs} > {output}.{interval.start.year}")
    assert problems == []
    assert parts == ["cut -f2 ", Placeholder("inputs", (), 8, 16), " > ", Placeholder("output", (), 19, 27), ".",
                     Placeholder("interval", ("start", "year"), 28, 49)]


def test_doubled_braces_are_literal_and_lone_ones_are_problems():
    assert split("awk '{{ print $1 }}'") == (["awk '{ print $1 }'"], [])
    _, problems = split("a } b { c {x y}")
    assert [message for _, _, message in problems] == ["unmatched '}'", "unmatched '{'", "'{x y}' is not a placeholder"]


def _errors(text: str) -> list:
    with pytest.raises(FlowCheckError) as caught:
        check(parse(text), text)
    return [(d.code, d.message, d.span.line, d.span.column, d.span.end_column) for d in caught.value.diagnostics]


def test_carets_point_inside_strings_with_escapes():
    text = 'rule r(date: date):\n    output: "o/{date}"\n    shell: "printf \\"%s\\\\n\\" {dtae} > {output}"\n'
    [(code, message, line, column, end)] = _errors(text)
    assert code == "E211" and "did you mean '{date}'?" in message
    source = text.splitlines()[line - 1]
    assert source[column - 1:end - 1] == "{dtae}"


def test_carets_point_inside_long_strings_over_lines():
    text = 'rule r(date: date):\n    output: "o/{date}"\n    shell: """echo {date} |\n        cat > {ouput}"""\n'
    [(code, _, line, column, end)] = _errors(text)
    assert code == "E211" and line == 4
    assert text.splitlines()[3][column - 1:end - 1] == "{ouput}"


def test_command_must_be_a_list_of_strings():
    with pytest.raises(FlowSyntaxError, match="each argument of command: is a string"):
        parse('rule r(date: date):\n    output: "o/{date}"\n    command: ["cp", date]\n')


def test_names_used_and_program():
    text = ('rule r(date: date, n: int = 1 insignificant):\n    output: "o/{date}"\n'
            '    command: ["bin/run", "{date.year}"]\n        env:\n            N: "{n}"\n')
    action = parse(text).rules[0].action
    assert names_used(action) == {"date", "n"}
    assert program(action) == "bin/run"
