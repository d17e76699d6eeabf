"""Output patterns: check a rule's pattern, format a location from parameter values, read one back.

A pattern such as `data/{date:%Y/%m}/top_{interval}.tsv` names a place (its literal text) and holds
placeholders. Formatting refuses any value that would take the output out of that place (`/`,
`..`, control characters, an empty value) or make a name longer than file systems allow, so build,
dry run and clean all stop with the same error before anything is written or deleted.
"""

from __future__ import annotations

import datetime
import functools
import itertools
import re
from dataclasses import dataclass, field
from itertools import repeat
from operator import add, itemgetter
from typing import Callable, Optional

from . import nodes as n
from . import types as t
from .errors import UsageError, error, suggest

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# The URL schemes outputs and external inputs may use (object stores; the runtime's storage/ serves them).
REMOTE_SCHEMES = ("s3", "gs", "gcs", "hdfs")

# File systems allow 255 bytes per name (ext4, xfs, btrfs, tmpfs, APFS); the runtime writes each
# output first under a temporary sibling name `.NAME.flow-tmp-PID-N`, which needs about 30 more.
MAX_NAME_BYTES = 220
MAX_PATH_BYTES = 4000  # PATH_MAX is 4096 on Linux, with the same room for the temporary

# The longest text of a value that prints as ASCII of a bounded length (years have 4 digits).
_TEXT_LENGTHS = {t.FORMATTERS["date"]: 10, t.FORMATTERS["hour"]: 13, t.FORMATTERS["minute"]: 15}
_ISOFORMAT = t.FORMATTERS["date"]
# The plain placeholders' converters print no "/" (a str value holding one is refused: E803).
_NO_SLASH = tuple(t.FORMATTERS.values())

# A value in a file or directory output is one name: it may not add or climb a directory,
# end a line, or vanish. URL outputs (s3://bucket/prefix/{date}.tsv) also keep their query and
# fragment characters out, so the key stays under the prefix the pattern names.
_BAD_IN_PATH = re.compile(r"[/\x00-\x1f\x7f]|\A\.{0,2}\Z")
_BAD_IN_URL = re.compile(r"[/\x00-\x1f\x7f?#%\\]|\A\.{0,2}\Z")
_BAD_IN_TABLE = re.compile(r"[\x00-\x1f\x7f]|\A\Z")


@dataclass
class OutputPattern:
    """An output pattern split into literal text and parameter slots, with a typed regex to read names back."""

    kind: str
    text: str
    parts: tuple  # literal strings and parameter indexes, alternating as they appear
    regex_source: Optional[str]  # full match of the location; group names are parameter names
    name_regex_source: Optional[str]  # match of the last path component, when it holds every placeholder

    formatters: tuple = ()  # (parameter index, value -> text) per placeholder, in order
    parsers: dict = field(default_factory=dict)  # parameter name -> (text -> value), to read names back
    rule: str = ""
    checked: tuple = ()  # (parameter index, name) of str parameters: their values are checked per task

    _literal = None
    _good = None  # str values already found safe
    _one = None  # for a pattern with one placeholder and no checked values: (text before, index, convert, text after)

    # Compiled when first needed: most commands name a target and never read a path back, and
    # compiling every rule's regex would cost start-up.
    @functools.cached_property
    def regex(self) -> Optional[re.Pattern]:
        return re.compile(self.regex_source) if self.regex_source is not None else None

    @functools.cached_property
    def name_regex(self) -> Optional[re.Pattern]:
        return re.compile(self.name_regex_source) if self.name_regex_source is not None else None

    def format(self, values: tuple) -> str:
        """The location for these parameter values (in parameter order); UsageError when a value is unsafe."""
        one = self._one
        if one is None:
            one = self._one = self._one_slot()
        if one:  # the usual pattern, one placeholder ("data/streams_{date}.tsv"): two concatenations per task
            before, index, convert, after = one
            location = before + convert(values[index]) + after
            if (len(location) > MAX_NAME_BYTES // 4 or not location.isascii()) and self.kind != "table":
                self._check_length(location)
            return location
        literal = self._literal
        if literal is None:
            literal = self._literal = "".join("{}" if p.__class__ is int else p.replace("{", "{{").replace("}", "}}")
                                              for p in self.parts)
        if self.checked:
            self._check_values(values)
        location = literal.format(*[convert(values[index]) for index, convert in self.formatters])
        if (len(location) > MAX_NAME_BYTES // 4 or not location.isascii()) and self.kind != "table":
            self._check_length(location)
        return location

    @functools.cached_property
    def directory(self) -> Optional[str]:
        """The directory every location of the pattern is in ("" for none), when all its placeholders are in
        the last name and print no "/" (a custom date format may), else None."""
        parts = self.parts
        first = next((i for i, part in enumerate(parts) if part.__class__ is int), len(parts))
        if any("/" in part for part in parts[first:] if part.__class__ is str):
            return None
        if any(convert not in _NO_SLASH for _, convert in self.formatters):
            return None
        return "".join(parts[:first]).rpartition("/")[0]

    def format_all(self, values_list: list) -> list:
        """format() of each values tuple; a one-placeholder pattern's locations made in C (a backfill's days)."""
        one = self.one_slot()
        if not one:
            return list(map(self.format, values_list))
        before, index, convert, after = one
        if convert is _ISOFORMAT:  # a backfill's days: written a month at a time
            locations = t.iso_texts(list(map(itemgetter(index), values_list)), before, after)
        else:
            locations = list(map(add, map(before.__add__, map(convert, map(itemgetter(index), values_list))),
                                 repeat(after)))
        longest = _TEXT_LENGTHS.get(convert)
        if longest is not None and len(before) + longest + len(after) <= MAX_NAME_BYTES // 4 \
                and (before + after).isascii():
            return locations  # a date, hour or minute is short ASCII text: no location can be too long
        if self.kind != "table" and locations and (max(map(len, locations)) > MAX_NAME_BYTES // 4
                                                   or not all(map(str.isascii, locations))):
            for location in locations:
                self._check_length(location)
        return locations

    def one_slot(self):
        """(text before, parameter index, convert, text after) when the pattern has one placeholder whose
        values need no check (a location is those three texts joined), else ()."""
        one = self._one
        if one is None:
            one = self._one = self._one_slot()
        return one

    def _one_slot(self):
        """(text before, parameter index, convert, text after) for a pattern of one placeholder whose values
        need no check, else () (format takes the general way)."""
        slots = [i for i, part in enumerate(self.parts) if part.__class__ is int]
        if len(slots) != 1 or len(self.formatters) != 1 or self.checked:
            return ()
        at = slots[0]
        index, convert = self.formatters[0]
        return ("".join(self.parts[:at]), index, convert, "".join(self.parts[at + 1:]))

    def read(self, location: str) -> Optional[dict]:
        """Parameter values that format to `location`, or None when it is not this pattern's.

        Raises ValueError (with a message naming the value) when it has this shape but a value
        does not parse, such as a 13th month.
        """
        return _read(self.regex, self.parsers, location)

    def read_name(self, name: str) -> Optional[dict]:
        """Like read, for a last path component given alone (`2012-06-01.tsv`)."""
        return _read(self.name_regex, self.parsers, name)

    def _check_values(self, values: tuple) -> None:
        good = self._good
        if good is None:
            good = self._good = set()
        for index, name in self.checked:
            value = values[index]
            if value in good:  # a backfill repeats a few values many times: check each once
                continue
            url = URL.match(self.text) is not None
            bad = _BAD_IN_TABLE if self.kind == "table" else _BAD_IN_URL if url else _BAD_IN_PATH
            found = bad.search(value)
            if found is None:
                if len(good) < 4096:
                    good.add(value)
            else:
                raise UsageError(error("E803", f"parameter '{name}' of '{self.rule}' is {_show(value)}: "
                                       + _why(found.group(), self.kind, url, self.text), None,
                                       hint=_VALUE_RULE[bad.pattern]))

    def _check_length(self, location: str) -> None:
        encoded = location.encode("utf-8", "surrogateescape")
        if len(encoded) > MAX_PATH_BYTES:
            raise UsageError(error("E804", f"output of '{self.rule}' would be {len(encoded)} bytes long: "
                                   f"{_show(location[:60] + '...')}", None,
                                   hint=f"a path may be at most {MAX_PATH_BYTES} bytes"))
        start = URL.match(location).end() if URL.match(location) else 0
        for part in encoded[start:].split(b"/"):
            if len(part) > MAX_NAME_BYTES:
                shown = part.decode("utf-8", "replace")
                raise UsageError(error(
                    "E804", f"output of '{self.rule}' has a name of {len(part)} bytes: {_show(shown[:40] + '...')}",
                    None, hint=f"file systems allow 255 bytes per name and flow needs room for a temporary name: "
                    f"keep each name of an output to {MAX_NAME_BYTES} bytes"))


_VALUE_RULE = {
    _BAD_IN_PATH.pattern: "a value in an output path is one name: not empty, '.' or '..', "
    "without '/' or control characters",
    _BAD_IN_URL.pattern: "a value in an output URL is one name: not empty, '.' or '..', "
    "without '/', '?', '#', '%', '\\' or control characters",
    _BAD_IN_TABLE.pattern: "a value in a table name is not empty and has no control characters",
}


def _why(bad: str, kind: str, url: bool, pattern: str) -> str:
    what = "table name" if kind == "table" else "output URL" if url else "output"
    if bad in ("", ".", ".."):
        if bad == "":
            return f"an empty value cannot name part of {what} '{pattern}'"
        return f"'{bad}' would take {what} '{pattern}' out of the place it names"
    if bad == "/":
        return f"a '/' would take {what} '{pattern}' out of the place it names"
    if bad.isprintable():
        return f"a '{bad}' would change what {what} '{pattern}' names"
    return f"a control character ({bad!r}) cannot be part of {what} '{pattern}'"


def _show(value: str) -> str:
    """A value as a user can read it: quoted, with control characters escaped."""
    if value.isprintable() and "'" not in value:
        return f"'{value}'"
    return repr(value)


def _read(regex, parsers: dict, text: str) -> Optional[dict]:
    if regex is None:
        return None
    match = regex.fullmatch(text)
    if match is None:
        return None
    return {key: parsers[key](value) for key, value in match.groupdict().items()}


def pattern_span(output: n.Output) -> n.Span:
    """The quoted pattern: the output entry ends with it (escapes inside it are rare enough to ignore)."""
    span = output.span
    if span.end_line != span.line:
        return n.Span(span.file, span.line, span.column, span.line, span.column + 1)
    quoted = len(output.pattern.replace("\\", "\\\\").replace('"', '\\"')) + 2
    return n.Span(span.file, span.line, max(span.column, span.end_column - quoted), span.line, span.end_column)


# ---------------------------------------------------------------------------- checking a pattern


def _output_error(rule: n.Rule, errors: list, code: str, message: str, hint=None):
    errors.append(error(code, message, pattern_span(rule.output), hint))


# strftime-like directives an output may format a date, hour or minute with: regex, and text from the value.
_TIME_DIRECTIVES = {
    "Y": (r"[0-9]{4}", lambda d: f"{d.year:04d}"),
    "m": (r"[0-9]{2}", lambda d: f"{d.month:02d}"),
    "d": (r"[0-9]{2}", lambda d: f"{d.day:02d}"),
    "j": (r"[0-9]{3}", lambda d: f"{d.timetuple().tm_yday:03d}"),
    "H": (r"[0-9]{2}", lambda d: f"{d.hour:02d}"),
    "M": (r"[0-9]{2}", lambda d: f"{d.minute:02d}"),
}
# Per type: the directives it may use, what one value is called, and what names one whole value.
_FORMAT_RULES = {
    "date": ("Ymdj", "one day", ["%Y with %m and %d", "%Y with %j"]),
    "hour": ("YmdjH", "one whole hour", ["%Y with %m, %d and %H", "%Y with %j and %H"]),
    "minute": ("YmdjHM", "one whole minute", ["%Y with %m, %d, %H and %M", "%Y with %j, %H and %M"]),
}
_FORMAT_EXAMPLES = {
    "date": "for example {date:%Y/%m/%d} or {date:year=%Y/month=%m/day=%d}",
    "hour": "for example {hour:%Y/%m/%d/%H} or {hour:year=%Y/month=%m/day=%d/hour=%H}",
    "minute": "for example {minute:%Y/%m/%d/%H%M}",
}


@dataclass
class _Slot:
    """One placeholder of an output pattern: which parameter, how it prints, how a name parses back."""

    index: int
    name: str
    regex: str
    convert: Callable
    parse: Callable


def _time_format(fmt: str, type_name: str):
    """(regex, value -> text, text -> value) for a `{date:%Y/%m/%d}` format, or a message saying what is wrong."""
    allowed, what, needs = _FORMAT_RULES[type_name]
    regex, printers, seen = [], [], set()
    for piece in re.split(r"(%.)", fmt):
        if piece.startswith("%") and len(piece) == 2:
            if piece == "%%":
                regex.append("%")
                printers.append("%")
                continue
            directive = _TIME_DIRECTIVES.get(piece[1])
            if directive is None or piece[1] not in allowed:
                usable = ", ".join(f"%{c}" for c in allowed)
                return f"'{piece}' is not a {type_name} format this pattern can read back (use {usable})"
            seen.add(piece[1])
            regex.append(directive[0])
            printers.append(directive[1])
        elif piece:
            regex.append(re.escape(piece))
            printers.append(piece)
    clock = set(allowed) - set("Ymdj")
    if "Y" not in seen or not ({"m", "d"} <= seen or "j" in seen) or not clock <= seen:
        return f"format '{fmt}' does not name {what}: one placeholder needs " + ", or ".join(needs)
    make = {"date": lambda v: v.date(), "hour": lambda v: t.Hour(v.year, v.month, v.day, v.hour),
            "minute": lambda v: t.Minute(v.year, v.month, v.day, v.hour, v.minute)}[type_name]

    def convert(value):
        return "".join(p if p.__class__ is str else p(value) for p in printers)

    def parse(text):
        value = make(datetime.datetime.strptime(text, fmt))
        if convert(value) != text:  # strptime reads 2011-366 as 2012-01-01: only exact round trips count
            raise ValueError(f"'{text}' is not a {type_name} written as '{fmt}'")
        return value

    return "".join(regex), convert, parse


def _slot(rule: n.Rule, spec: str, errors: list, index_of: dict) -> Optional[_Slot]:
    """Check one placeholder, `{name}` or `{date:%Y/%m/%d}`; index_of maps parameter names to positions."""
    name, colon, fmt = (part.strip() for part in spec.partition(":"))
    if name not in index_of:
        _output_error(rule, errors, "E201", f"output placeholder '{{{name}}}' is not a parameter of '{rule.name}'"
                      + suggest(name, index_of, "'{{{}}}'"))
        return None
    param = rule.params[index_of[name]]
    if not param.significant:
        _output_error(rule, errors, "E201", f"insignificant parameter '{name}' cannot be in the output",
                      hint="remove 'insignificant' or the placeholder")
    if not colon:
        return _Slot(index_of[name], name, t.PATTERN_REGEX[param.type], t.FORMATTERS[param.type],
                     lambda text, type_name=param.type: t.parse_value(type_name, text))
    if param.type not in _FORMAT_RULES:
        _output_error(rule, errors, "E207", f"only date, hour and minute parameters take a format, and '{name}' is "
                      f"{param.type}", hint=f"write {{{name}}}")
        return None
    made = _time_format(fmt, param.type)
    if isinstance(made, str):
        _output_error(rule, errors, "E207", made, hint=_FORMAT_EXAMPLES[param.type])
        return None
    regex, convert, parse = made
    return _Slot(index_of[name], name, regex, convert, parse)


def check_output(rule: n.Rule, errors: list) -> Optional[OutputPattern]:
    """The rule's output pattern, checked; problems are appended to errors (then None may be returned)."""
    output = rule.output
    pattern = output.pattern
    stripped = PLACEHOLDER.sub("", pattern)
    if "{" in stripped or "}" in stripped:
        _output_error(rule, errors, "E207", f"output pattern '{pattern}' has an unmatched brace")
        return None
    if not pattern:
        _output_error(rule, errors, "E207", "output pattern is empty")
        return None
    remote_problem = _remote_pattern_problem(pattern, output.kind)
    if remote_problem:
        _output_error(rule, errors, "E210", remote_problem[0], hint=remote_problem[1])
        return None
    index_of: dict = {}
    for index, param in enumerate(rule.params):
        index_of.setdefault(param.name, index)
    parts: list = []
    slots: list = []
    failed = set()  # placeholders already reported: no second error saying they are missing
    position = 0
    for match in PLACEHOLDER.finditer(pattern):
        if match.start() > position:
            parts.append(pattern[position:match.start()])
        position = match.end()
        slot = _slot(rule, match.group(1), errors, index_of)
        if slot is None:
            failed.add(match.group(1).partition(":")[0].strip())
        else:
            parts.append(slot.index)
            slots.append(slot)
    if position < len(pattern):
        parts.append(pattern[position:])
    used = {slot.name for slot in slots}
    placed = used | failed
    missing = [p.name for p in rule.params if p.significant and p.name not in placed]
    if missing and output.kind != "table":  # many tasks load one table; marker rows tell them apart
        names = ", ".join(f"'{m}'" for m in missing)
        _output_error(rule, errors, "E202", f"parameter{'s' * (len(missing) > 1)} {names} of '{rule.name}' "
                      f"not in its output: two tasks would write one file",
                      hint=f"put {{{missing[0]}}} in the output, or mark it 'insignificant' with a default")
        return None
    formatters = tuple((slot.index, slot.convert) for slot in slots)
    parsers = {slot.name: slot.parse for slot in slots}
    checked = tuple(dict.fromkeys((slot.index, slot.name) for slot in slots if rule.params[slot.index].type == "str"))
    if output.kind == "table":
        return OutputPattern("table", pattern, tuple(parts), None, None, formatters, parsers, rule.name, checked)
    if failed:
        return None
    regex = _regex_for(pattern, slots)
    # the last path component, for names given without their directory ('/' inside a {date:%Y/%m}
    # placeholder does not count)
    last = pattern[_last_separator(pattern) + 1:]
    last_slots = slots[len(slots) - len(PLACEHOLDER.findall(last)):]
    name_regex = None
    if {slot.name for slot in last_slots} == used:
        name_regex = _regex_for(last, last_slots)
    return OutputPattern(output.kind, pattern, tuple(parts), regex, name_regex, formatters, parsers, rule.name,
                         checked)


def _remote_pattern_problem(pattern: str, kind: str):
    """(message, hint) when an output names a store badly: an unknown scheme, a bucket from a parameter."""
    scheme, separator, rest = pattern.partition("://")
    if not separator:
        return None
    if kind == "table":
        return f"a table output is a table name, not a URL ('{pattern}')", 'write: output: table "schema.name"'
    if scheme.lower() not in REMOTE_SCHEMES:
        known = ", ".join(f"{name}://" for name in REMOTE_SCHEMES)
        return f"flow cannot store outputs at '{scheme}://' URLs", f"use a local path or one of {known}"
    bucket, slash, key = rest.partition("/")
    if "{" in bucket or not bucket and scheme.lower() != "hdfs":
        return (f"the bucket of '{pattern}' must be written out, not made from parameters",
                f"for example {scheme}://my-bucket/data/{{date}}.tsv")
    if not key.strip("/"):
        return f"output '{pattern}' names a whole bucket", f"add a key, for example {scheme}://{bucket}/data/{{date}}.tsv"
    return None


def _last_separator(pattern: str) -> int:
    depth = 0
    last = -1
    for index, char in enumerate(pattern):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "/" and depth == 0:
            last = index
    return last


def _regex_for(pattern: str, slots: list) -> str:
    """The regex matching what `pattern` produces; each parameter is captured once, then back-referenced."""
    out = []
    position = 0
    seen = set()
    for match, slot in zip(PLACEHOLDER.finditer(pattern), slots):
        out.append(re.escape(pattern[position:match.start()]))
        out.append(f"(?P={slot.name})" if slot.name in seen else f"(?P<{slot.name}>{slot.regex})")
        seen.add(slot.name)
        position = match.end()
    out.append(re.escape(pattern[position:]))
    return "".join(out)


# ---------------------------------------------------------------------------- clashes between rules


def _sample_values() -> dict:
    """A few values of each type, to find two output patterns that can name the same file."""
    day = datetime.date(2012, 6, 1)
    return {
        "date": [day],
        "hour": [t.Hour(2012, 6, 1, 13)],
        "minute": [t.Minute(2012, 6, 1, 13, 5)],
        "interval": [t.year(2012), t.month(2012, 6), t.week(2012, 23), t.day(day),
                     t.custom(day, datetime.date(2012, 6, 15))],
        "int": [7],
        "str": ["x"],
        "bool": [True],
    }


def _samples(info, samples: dict) -> list:
    """A few concrete locations the rule's output pattern can produce."""
    unique = sorted({index for index, _ in info.output.formatters})
    choices = [samples[info.param_types[i]] for i in unique]
    found = []
    for combo in itertools.islice(itertools.product(*choices), 50):
        values = [None] * len(info.param_types)
        for index, value in zip(unique, combo, strict=True):
            values[index] = value
        try:
            found.append(info.output.format(tuple(values)))
        except UsageError:  # a name too long for any file system: the build says so
            break
    return found


class _PatternIndex:
    """Output regexes indexed by their literal text before and after the placeholders.

    A location can only match a pattern that it starts with the prefix of and ends with the
    suffix of, so each sample is tried against a handful of patterns instead of all of them:
    the clash check is close to linear in the number of rules.
    """

    def __init__(self, patterns: list):
        self.by_prefix: dict = {}
        self.by_suffix: dict = {}
        for position, (_, info) in enumerate(patterns):
            prefix, suffix = _literal_ends(info.output)
            self.by_prefix.setdefault(prefix, []).append((position, suffix))
            self.by_suffix.setdefault(suffix, []).append((position, prefix))
        self.prefix_lengths = sorted({len(p) for p in self.by_prefix})
        self.suffix_lengths = sorted({len(s) for s in self.by_suffix})
        self.patterns = patterns
        self.tried = 0  # regex matches attempted: tests check the work stays linear

    def matching(self, location: str, own: int) -> list:
        """Positions of the patterns (other than `own`, which made it) whose regex matches `location` in full."""
        by_prefix = [(self.by_prefix[location[:k]], True) for k in self.prefix_lengths
                     if k <= len(location) and location[:k] in self.by_prefix]
        by_suffix = [(self.by_suffix[location[len(location) - k:]], False) for k in self.suffix_lengths
                     if k <= len(location) and location[len(location) - k:] in self.by_suffix]
        # scan the smaller side; check the other end of each candidate before its regex
        side = by_prefix if sum(len(b) for b, _ in by_prefix) <= sum(len(b) for b, _ in by_suffix) else by_suffix
        found = []
        for bucket, from_prefix in side:
            for position, other_end in bucket:
                if from_prefix and not location.endswith(other_end):
                    continue
                if not from_prefix and not location.startswith(other_end):
                    continue
                if position == own:
                    continue
                self.tried += 1
                if self.patterns[position][1].output.regex.fullmatch(location):
                    found.append(position)
        return found


def _literal_ends(pattern: OutputPattern) -> tuple:
    parts = pattern.parts
    prefix = parts[0] if parts and parts[0].__class__ is str else ""
    suffix = parts[-1] if parts and parts[-1].__class__ is str else ""
    if len(parts) == 1 and prefix:  # no placeholder at all: the whole text is both ends
        return prefix, ""
    return prefix, suffix


def output_clashes(infos: dict, index_out: Optional[list] = None) -> list:
    """E203 for every two rules whose file outputs can name the same location."""
    patterns = [(name, info) for name, info in infos.items() if info.output and info.output.regex_source is not None]
    index = _PatternIndex(patterns)
    if index_out is not None:
        index_out.append(index)
    values = _sample_values()
    samples = [_samples(info, values) for _, info in patterns]
    pairs = set()
    for position, locations in enumerate(samples):
        for location in locations:
            for other in index.matching(location, position):
                pairs.add((min(position, other), max(position, other)))
    found = []
    for i, j in sorted(pairs):
        (name_a, a), (name_b, b) = patterns[i], patterns[j]
        clash = next((s for s in samples[i] if b.output.regex.fullmatch(s)), None)
        if clash is None:
            clash = next((s for s in samples[j] if a.output.regex.fullmatch(s)), None)
        found.append(error(
            "E203", f"outputs of '{name_a}' and '{name_b}' can name the same file ('{clash}')",
            pattern_span(b.node.output), hint=f"'{name_a}' is at line {a.node.output.span.line}; "
            "make the patterns differ by a fixed part"))
    return found
