"""Write (and read back) PostgreSQL COPY text format, so Python actions can produce files a `load:` accepts.

The format: one line per row, columns separated by tabs, NULL written as `\\N`, and backslash, tab,
newline and carriage return inside values escaped as `\\\\`, `\\t`, `\\n`, `\\r`.
"""

from __future__ import annotations

import datetime
import re
from typing import Iterable, TextIO

NULL = "\\N"

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def format_value(value) -> str:
    """One value in COPY text form: None -> \\N, bools as t/f, dates in ISO form, the rest via str()."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    return str(value).translate(_ESCAPES)


def format_row(values: Iterable) -> str:
    """One row as a COPY text line, including the final newline."""
    return "\t".join(map(format_value, values)) + "\n"


def write_rows(file: TextIO, rows: Iterable[Iterable]) -> int:
    """Write rows to a text file (open it with encoding='utf-8', newline='\\n'); returns the row count."""
    count = 0
    for row in rows:
        file.write(format_row(row))
        count += 1
    return count


# Backslash sequences COPY understands; octal/hex forms are decoded too for files written elsewhere.
_UNESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|(.))", re.DOTALL)
_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _unescape(match: re.Match) -> str:
    octal, hexa, char = match.groups()
    if octal:
        return chr(int(octal, 8))
    if hexa:
        return chr(int(hexa, 16))
    return _SIMPLE.get(char, char)


def parse_row(line: str) -> list:
    """The values of one COPY text line (strings, None for \\N); the inverse of format_row."""
    line = line[:-1] if line.endswith("\n") else line
    return [None if field == NULL else _UNESCAPE.sub(_unescape, field) for field in line.split("\t")]


def read_rows(file: TextIO):
    """Yield the rows of a COPY text file as lists of strings and None."""
    for line in file:
        yield parse_row(line)
