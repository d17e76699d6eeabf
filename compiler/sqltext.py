"""Find `:name` / `:name.attr` task parameters in SQL text, convert them to psycopg2 form, and syntax-check the SQL."""

from __future__ import annotations

import re

from pglast.parser import ParseError, parse_sql, scan

# A parameter name must be a plain identifier: `:"quoted"` or `:1` are not parameters.
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _is_name(sql: str, token) -> bool:
    """Whether a scanner token is a plain identifier (keywords such as `interval` or `start` count)."""
    return (token.name == "IDENT" or token.kind != "NO_KEYWORD") and bool(
        _PLAIN_NAME.match(sql[token.start : token.end + 1])
    )


def find_parameters(sql: str) -> list[tuple[str, int, int]]:
    """Every parameter as (name, start, end), offsets in characters, end exclusive; name is 'a' or 'a.b'.

    A parameter is a `:` immediately followed by a plain identifier, optionally followed, again
    without spaces, by `.attr`. Working on scanner tokens leaves string literals, quoted identifiers,
    comments, `::` casts and `:=` alone. A `:` directly inside `[...]` is array slicing
    (`a[1:n]`), as in PostgreSQL itself; write `a[(:n)]` to use a parameter there.
    Raises pglast's ParseError for text the scanner cannot split (an unterminated string, say).
    """
    tokens = scan(sql)
    found = []
    brackets: list[str] = []  # stack of open '(' and '[' so we know whether ':' is a slice
    i = 0
    while i < len(tokens):
        token = tokens[i]
        text = sql[token.start : token.end + 1]
        if text in ("(", "["):
            brackets.append(text)
        elif text in (")", "]"):
            if brackets:
                brackets.pop()
        elif text == ":" and not (brackets and brackets[-1] == "["):
            parameter = _parameter_at(sql, tokens, i)
            if parameter is not None:
                found.append(parameter[0])
                i = parameter[1]
                continue
        i += 1
    return found


def _parameter_at(sql: str, tokens, i: int):
    """The parameter starting at the ':' token tokens[i] as ((name, start, end), next index), or None."""
    colon = tokens[i]
    if i + 1 >= len(tokens):
        return None
    name = tokens[i + 1]
    if name.start != colon.end + 1 or not _is_name(sql, name):
        return None
    full = sql[name.start : name.end + 1]
    end = name.end + 1
    following = i + 2
    # `.attr`, only when both the dot and the attribute touch the name.
    if following + 1 < len(tokens):
        dot, attr = tokens[following], tokens[following + 1]
        if (
            sql[dot.start : dot.end + 1] == "."
            and dot.start == end
            and attr.start == dot.end + 1
            and _is_name(sql, attr)
        ):
            full += "." + sql[attr.start : attr.end + 1]
            end = attr.end + 1
            following += 2
    return (full, colon.start, end), following


def to_psycopg(sql: str) -> tuple[str, list[str]]:
    """The text with each parameter as `%(name)s` and every other `%` doubled, and the distinct names in order."""
    pieces = []
    names: list[str] = []
    position = 0
    for name, start, end in find_parameters(sql):
        pieces.append(sql[position:start].replace("%", "%%"))
        pieces.append(f"%({name})s")
        if name not in names:
            names.append(name)
        position = end
    pieces.append(sql[position:].replace("%", "%%"))
    return "".join(pieces), names


def syntax_errors(sql: str) -> list[tuple[int, str]]:
    """PostgreSQL syntax errors as (character offset, message); empty when the text parses.

    Parameters are replaced by `$1` padded with spaces to their own length first, so they parse as
    values and every offset still points into the original text.
    """
    try:
        parameters = find_parameters(sql)
    except ParseError as exc:
        return [_error(sql, exc)]
    chars = list(sql)
    for _name, start, end in parameters:
        chars[start:end] = "$1".ljust(end - start)
    try:
        parse_sql("".join(chars))
    except ParseError as exc:
        return [_error(sql, exc)]
    return []


def _error(sql: str, exc: ParseError) -> tuple[int, str]:
    """(offset, message) from pglast's ParseError, whose args are (message, offset or None)."""
    message = exc.args[0] if exc.args else str(exc)
    offset = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else len(sql)
    return min(max(offset, 0), len(sql)), message
