"""Fuzz the compiler: every input yields a task graph or a located FlowError, never another exception.

Four generators, each counted so the CI run holds at least 10,000 cases (1,000 + 1,500 + 6,000 +
1,100 + 400, plus the fixed cases):

- grammar-aware Flowfiles built by hypothesis: free combinations of the grammar's pieces (mostly
  wrong, so every check meets odd input), and well-typed ones that compile and grow task graphs,
  asked for their targets and for command-line requests with hostile values;
- byte mutations of real Flowfiles (the root Flowfile's statements, the golden files);
- deep nesting of every construct that nests, around the nesting limit and far beyond it;
- huge literals: long numbers, strings, names, lines and lists.

The CI run is derandomized (the same cases every time, so it cannot flake); FLOW_FUZZ_LONG=1 runs
twenty times as many random cases.
"""

from __future__ import annotations

import datetime
import os
import pickle
import random
from pathlib import Path

import pytest
from flow.compiler.checks import check
from flow.compiler.errors import FlowError, SourceCache, render
from flow.compiler.graph import TaskFactory, build_graph
from flow.compiler.loader import read_flowfile
from flow.compiler.parser import parse
from flow.compiler.resolve import resolve
from flow.compiler.types import Clock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
LONG = os.environ.get("FLOW_FUZZ_LONG") == "1"
SCALE = 20 if LONG else 1
FUZZ = settings(deadline=None, database=None, derandomize=not LONG, print_blob=True,
                suppress_health_check=list(HealthCheck))

MAX_TASKS = 500  # a graph this big has shown what it can; the rest is the runtime's task limit
MAX_ROOTS = 20
CLOCK = Clock.at_midnight(datetime.date(2012, 7, 1))  # a pinned build date, for ranges relative to today


class _Enough(Exception):
    """The graph grew past MAX_TASKS: the case passed, building more would only take time."""


def _budget():
    seen = [0]

    def complete(level):
        seen[0] += len(level)
        if seen[0] > MAX_TASKS:
            raise _Enough
        return set()

    return complete


def _assert_located(exc: FlowError, text: str) -> None:
    """Errors about the Flowfile point into it; every error renders and survives a pickle (workers)."""
    lines = text.count("\n") + 2
    assert exc.diagnostics, exc
    for diagnostic in exc.diagnostics:
        assert diagnostic.message and diagnostic.code[0] in "EW", diagnostic
        if diagnostic.span is not None:
            assert 1 <= diagnostic.span.line <= lines and diagnostic.span.column >= 1, diagnostic
        render(diagnostic, SourceCache({"Flowfile": text}))
    assert pickle.loads(pickle.dumps(exc)).diagnostics == exc.diagnostics


def exercise(text: str, requests=()) -> str:
    """Compile `text`, then resolve its targets and `requests` into graphs; 'graph' or 'error'."""
    try:
        checked = check(parse(text, "Flowfile"), text)
    except FlowError as exc:
        for diagnostic in exc.diagnostics:  # a compile error always says where
            assert diagnostic.span is not None, diagnostic
        _assert_located(exc, text)
        return "error"
    factory = TaskFactory(checked, clock=CLOCK)
    names = list(checked.targets)[:3] + ([checked.default] if checked.default else []) + list(requests)
    outcome = "graph"
    for name in names:
        try:
            roots = resolve(factory, name)[:MAX_ROOTS]
            build_graph(factory, roots, complete=_budget())
        except _Enough:
            pass
        except FlowError as exc:
            _assert_located(exc, text)
            outcome = "error"
    return outcome


# ---------------------------------------------------------------------------- grammar-aware

NAMES = ["day", "date", "interval", "region", "n", "month", "x", "streams", "top", "undefined"]
RULE_NAMES = ["streams", "top", "daily", "r"]
TYPES = ["date", "interval", "int", "str", "bool", "hour", "minute", "dat"]
NEAR = ["2012-06-01", "2012-06-03", "2012-06", "2012-07", "2012-W23", "2012", "2012-06-01T13"]
TEMPORALS = NEAR + ["2012-06-01-2012-06-15", "9999-12-31", "9999-12-30", "0001-01-01", "9999", "9999-W52",
                    "0999", "2012-13", "2012-02-30", "2012-W60", "2012-06-01T25", "2012-06-01T1365",
                    "2012-06-15-2012-06-01"]
STRINGS = ['"eu"', '""', '"a/b"', '".."', '"/tmp/x"', '"a\\nb"', '"\\x00"', '"\\x4"', '"\\N{nope}"',
           '"ünï"', '"' + "x" * 300 + '"', '"{date}"', '"%"']
ATTRIBUTES = ["start", "end", "prev", "next", "days", "kind", "year", "month", "day", "weekday", "hour", "nope"]
OPERATORS = ["+", "-", "==", "!=", "<", "<=", ">", ">=", "and", "or"]

leaf = st.one_of(
    st.sampled_from(NAMES),
    st.integers(-5, 10**6).map(str),
    st.sampled_from(TEMPORALS),
    st.sampled_from(STRINGS),
    st.sampled_from(["true", "false", "[]"]),
)


def _compound(inner):
    call_args = st.lists(inner, max_size=3).map(", ".join)
    return st.one_of(
        st.tuples(inner, st.sampled_from(OPERATORS), inner).map(" ".join),
        inner.map(lambda x: f"not {x}"),
        st.tuples(inner, inner, inner).map(lambda p: f"{p[0]} if {p[1]} else {p[2]}"),
        st.tuples(st.sampled_from(RULE_NAMES + ["days", "months", "weeks", "years", "hours"]), call_args)
        .map(lambda p: f"{p[0]}({p[1]})"),
        st.tuples(st.sampled_from(RULE_NAMES), st.sampled_from(NAMES), inner).map(lambda p: f"{p[0]}({p[1]}={p[2]})"),
        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.tuples(inner, st.sampled_from(ATTRIBUTES)).map(lambda p: f"{p[0]}.{p[1]}"),
        inner.map(lambda x: f"({x})"),
        st.tuples(st.sampled_from(["days", "months", "weeks", "years", "hours"]), st.sampled_from(NEAR),
                  st.sampled_from(NEAR)).map(lambda p: f"{p[0]}({p[1]} .. {p[2]})"),
        st.tuples(inner, st.sampled_from(["d", "day", "m"]), inner, inner)
        .map(lambda p: f"{p[0]} for {p[1]} in {p[2]} if {p[3]}"),
    )


expressions = st.recursive(leaf, _compound, max_leaves=10)


@st.composite
def patterns(draw, params):
    pieces = [draw(st.sampled_from(["data/", "out_", "", "s3://bucket/", "/abs/", "x"]))]
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(params + ["nope"])) if params else "nope"
        fmt = draw(st.sampled_from(["", ":%Y/%m/%d", ":%Y-%j", ":%Q", ":%Y/%m/%d/%H", ":"]))
        pieces.append("{" + name + fmt + "}")
        pieces.append(draw(st.sampled_from(["/", "_", ".tsv", "", "{", "}"])))
    return "".join(pieces)


ACTIONS = [
    "    python: m.f\n",
    "    spark: m.f\n",
    '    sql: "SELECT :date"\n',
    '    sql: """\n        INSERT INTO t SELECT :interval.start\n    """\n',
    "    load:\n        columns: day date, n int\n        header: true\n",
    "    load:\n        delimiter: \",\"\n",
    '    spark-submit: "app.py"\n        master: "local"\n        args: ["{output}"]\n',
    '    command: ["gzip", "-c", "{input}"]\n',
    '    command: "gzip {input}"\n',
    '    shell: "cat {inputs} > {output}"\n',
    '    shell: "echo {nope.x} {"\n',
    "",
]


@st.composite
def rules(draw):
    name = draw(st.sampled_from(RULE_NAMES))
    params = []
    param_text = []
    for _ in range(draw(st.integers(0, 3))):
        param = draw(st.sampled_from(NAMES))
        params.append(param)
        text = f"{param}: {draw(st.sampled_from(TYPES))}"
        if draw(st.booleans()):
            text += f" = {draw(leaf)}"
        if draw(st.integers(0, 4)) == 0:
            text += " insignificant"
        param_text.append(text)
    lines = [f"{'external ' if draw(st.integers(0, 5)) == 0 else ''}rule {name}({', '.join(param_text)}):\n"]
    if draw(st.booleans()):
        lines.append('    """A rule."""\n')
    kind = draw(st.sampled_from(["", "dir ", "table "]))
    lines.append(f'    output: {kind}"{draw(patterns(params))}"\n')
    for _ in range(draw(st.integers(0, 2))):
        lines.append(f"    requires: {draw(expressions)}\n")
    lines.append(draw(st.sampled_from(ACTIONS)))
    for _ in range(draw(st.integers(0, 1))):
        lines.append(draw(st.sampled_from(["    retries: 2\n", "    timeout: 30m\n", "    retries: -1\n",
                                           "    timout: 5s\n", '    doc: "x"\n'])))
    return "".join(lines)


@st.composite
def flowfiles(draw):
    parts = draw(st.lists(rules(), min_size=1, max_size=3))
    for _ in range(draw(st.integers(0, 2))):
        parts.append(f"range {draw(st.sampled_from(['span', 'x', 'day']))} = {draw(expressions)}\n")
    for _ in range(draw(st.integers(0, 2))):
        parts.append(f"target {draw(st.sampled_from(['all', 'some', 'top']))}: {draw(expressions)}\n")
    if draw(st.booleans()):
        parts.append(f"default: {draw(st.sampled_from(['all', 'top', 'missing']))}\n")
    if draw(st.integers(0, 4)) == 0:
        parts.append('spark:\n    master: "local[2]"\n    conf:\n        spark.x: "1"\n')
    parts = draw(st.permutations(parts))
    return "\n".join(parts)


# Well-typed Flowfiles: rules over one parameter each, requiring earlier rules (or themselves, under a
# condition) with arguments of the right type, so most cases compile and reach graph building,
# where values that escape an output, leave the calendar or never stop are found.
KINDS = {
    "date": ("d", ["d", "d - 1", "d + 1", "d.next", "d.prev", "2012-06-01", "9999-12-31", "0001-01-01",
                   "interval.start"], '"{}"'),
    "interval": ("interval", ["interval", "interval.prev", "interval - 1", "interval + 1", "2012-06", "2012-W23",
                              "2012-06-01-2012-06-15", "9999-12", "0999"], '"{}"'),
    "str": ("name", ['name', 'name + "x"', '"eu"', '"/tmp/x"', '".."', '""', '"a\\nb"', 'name + "/.."'], '"{}"'),
    "int": ("n", ["n", "n - 1", "n + 1", "7", "0 - 3"], '"{}"'),
    "hour": ("h", ["h", "h - 1", "h + 1", "2012-06-01T13", "now"], '"{}"'),
}
CONDITIONS = {"date": ["d > 2012-06-01", "d.year > 1", "d >= 2012-05-30", "true"],
              "interval": ["interval > 2012-01", "interval <= 2012-08", "interval.start.year > 2000"],
              "str": ['name != ""', "true"], "int": ["n > 0", "n > -5"], "hour": ["h > 2012-06-01T10"]}


@st.composite
def typed_flowfiles(draw):
    count = draw(st.integers(1, 4))
    rules_made = []  # (name, type)
    texts = []
    for index in range(count):
        type_name = draw(st.sampled_from(sorted(KINDS)))
        param, _, _ = KINDS[type_name]
        name = f"r{index}"
        lines = [f"rule {name}({param}: {type_name}):\n"]
        directory = draw(st.sampled_from(["data/", "out/", "s3://bucket/data/", "", "x/"]))
        lines.append(f'    output: "{directory}{name}_{{{param}}}.tsv"\n')
        requirements = []
        for _ in range(draw(st.integers(0, 2))):
            callee, callee_type = draw(st.sampled_from(rules_made + [(name, type_name)]))
            argument = _argument(draw, callee_type, type_name)
            call = f"{callee}({argument})"
            form = draw(st.sampled_from(["plain", "conditional", "comprehension", "list"]))
            if callee == name or form == "conditional":
                condition = draw(st.sampled_from(CONDITIONS[type_name]))
                call = f"{call} if {condition} else []"
            elif form == "comprehension" and type_name == "interval" and callee_type == "date":
                call = f"{callee}(day) for day in interval"
            elif form == "list":
                call = f"[{call}]"
            requirements.append(call)
        if requirements:
            lines.append(f"    requires: {', '.join(requirements)}\n")
        lines.append("    python: m.f\n")
        texts.append("".join(lines))
        rules_made.append((name, type_name))
    for target in range(draw(st.integers(1, 2))):
        callee, callee_type = draw(st.sampled_from(rules_made))
        literal = draw(st.sampled_from([v for v in KINDS[callee_type][1] if not _uses_parameter(v)]))
        texts.append(f"target t{target}: {callee}({literal})\n")
    if draw(st.booleans()):
        texts.append("range june = days(2012-06-01 .. 2012-06-03)\n")
    return "\n".join(texts)


def _uses_parameter(text: str) -> bool:
    return any(text.startswith(p) for p in ("d", "interval", "name", "n", "h")) and not text.startswith("now")


def _argument(draw, wanted: str, have: str) -> str:
    """An argument of type `wanted` from a rule whose parameter has type `have`."""
    candidates = [v for v in KINDS[wanted][1] if not _uses_parameter(v) or KINDS[have][0] == KINDS[wanted][0]]
    if wanted == "date" and have == "interval":
        candidates.append("interval.start")
    else:
        candidates = [c for c in candidates if c != "interval.start"]
    return draw(st.sampled_from(candidates))


TYPED_CASES = 1_500 * SCALE


@settings(FUZZ, max_examples=TYPED_CASES)
@given(text=typed_flowfiles(), asked=st.lists(st.sampled_from(["r0(2012-06-01)", 'r0("/tmp/x")', "r0(0999)",
                                                              "r1(9999-12-31)", 'r0("..")', "r0(now)"]), max_size=2))
def test_well_typed_flowfiles_build_graphs_or_say_why(text, asked):
    assert exercise(text, asked) in ("graph", "error")


VALUES = ["2012-06-01", "2012-06", "9999-12-31", "\u0662\u0660\u0661\u0662", "0999", "/tmp/x/abs", "../../esc",
          '""', '"a\nb"', "x" * 300, "-5", "true", "", "2012-06-01T13"]
requests = st.one_of(
    st.tuples(st.sampled_from(RULE_NAMES), st.lists(st.sampled_from(VALUES), max_size=3))
    .map(lambda p: f"{p[0]}({', '.join(p[1])})"),
    st.sampled_from(["data/2012-06-01", "out_2012-06.tsv", "2012-06-01", "top", "nope", "",
                     "s3://bucket/2012-06-01", "/abs/2012-06"]),
)

GRAMMAR_CASES = 1_000 * SCALE


@settings(FUZZ, max_examples=GRAMMAR_CASES)
@given(text=flowfiles(), asked=st.lists(requests, max_size=2))
def test_grammar_aware_flowfiles(text, asked):
    assert exercise(text, asked) in ("graph", "error")


# ---------------------------------------------------------------------------- byte mutations


def _statements(text: str) -> list:
    """Top-level statements of a Flowfile (a line at column 0 starts one), comments dropped."""
    blocks, current = [], []
    for line in text.splitlines(keepends=True):
        if line[:1] not in (" ", "\n", "#", "") and current:
            blocks.append("".join(current))
            current = []
        if not line.startswith("#"):
            current.append(line)
    if current:
        blocks.append("".join(current))
    return [b for b in blocks if b.strip()]


def _seeds() -> list:
    """Real Flowfiles, small enough to mutate thousands of times: the root Flowfile's statements in
    groups, and every golden file."""
    seeds = []
    statements = _statements((ROOT / "Flowfile").read_text(encoding="utf-8"))
    seeds.append("".join(statements))
    for size in (1, 2, 3):
        for start in range(0, len(statements) - size + 1):
            seeds.append("\n".join(statements[start:start + size]))
    for folder in ("errors", "graphs"):
        for path in sorted((ROOT / "tests" / "golden" / folder).glob("*.flow")):
            seeds.append(path.read_text(encoding="utf-8"))
    return [seed.encode("utf-8") for seed in seeds]


INSERTS = [b"(", b")", b"[", b"]", b":", b'"', b"'", b"\n", b"\t", b"    ", b"{", b"}", b"..", b"-", b"9",
           b"0", b"\xff", b"\xc3", b"\x00", b"\r\n", b"\\", b"#", b",", "٢".encode(), b"T25", b"-W53",
           b"if ", b"else ", b" for d in ", b"rule ", b"requires: ", b"9999-12-31", b"1" * 120]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four edits: delete, insert, duplicate or swap lines, or change a digit."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        position = rng.randrange(len(data) + 1)
        if choice < 0.25 and data:
            del data[position:position + rng.randint(1, 8)]
        elif choice < 0.55:
            data[position:position] = rng.choice(INSERTS)
        elif choice < 0.7:
            lines = bytes(data).split(b"\n")
            index = rng.randrange(len(lines))
            lines.insert(index, lines[rng.randrange(len(lines))])
            data = bytearray(b"\n".join(lines))
        elif choice < 0.8:
            lines = bytes(data).split(b"\n")
            a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[a], lines[b] = lines[b], lines[a]
            data = bytearray(b"\n".join(lines))
        else:
            digits = [i for i, byte in enumerate(data) if 48 <= byte <= 57]
            if digits:
                data[rng.choice(digits)] = rng.choice(b"0123456789")
    return bytes(data)


def _through_the_reader(data: bytes, tmp_path: Path) -> str | None:
    """Bytes that are not UTF-8 go through the real reader: a located UsageError, nothing else."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    path = tmp_path / "Flowfile"
    path.write_bytes(data)
    with pytest.raises(FlowError) as caught:
        read_flowfile(str(path))
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "E010" and diagnostic.span.line >= 1 and diagnostic.span.column >= 1
    return None


MUTATION_CASES = 6_000 * SCALE
MUTATIONS_PER_EXAMPLE = 20


@settings(FUZZ, max_examples=MUTATION_CASES // MUTATIONS_PER_EXAMPLE)
@given(seed=st.integers(0, 2**32 - 1))
def test_byte_mutations_of_real_flowfiles(seed, tmp_path_factory):
    rng = random.Random(seed)
    seeds = _SEEDS
    tmp_path = tmp_path_factory.mktemp("mutation", numbered=True)
    for _ in range(MUTATIONS_PER_EXAMPLE):
        data = mutate(rng.choice(seeds), rng)
        text = _through_the_reader(data, tmp_path)
        if text is not None:
            assert exercise(text) in ("graph", "error")


_SEEDS = _seeds()


def test_the_mutation_seeds_are_real_working_flowfiles():
    # mutations start from Flowfiles that work, so what breaks is the mutation's doing
    assert exercise(_SEEDS[0].decode()) == "graph"  # the root Flowfile, every statement
    graphs = sorted((ROOT / "tests" / "golden" / "graphs").glob("*.flow"))
    assert graphs and all(exercise(path.read_text(encoding="utf-8")) == "graph" for path in graphs)


# ---------------------------------------------------------------------------- deep nesting

NESTINGS = {
    "sum": lambda d: "range x = " + " + ".join(["1"] * (d + 1)) + "\n",
    "conditional": lambda d: "range x = " + "1 if true else " * d + "1\n",
    "list": lambda d: "range x = " + "[" * d + "]" * d + "\n",
    "parens": lambda d: "range x = " + "(" * d + "1" + ")" * d + "\n",
    "not": lambda d: "range x = " + "not " * d + "true\n",
    "attribute": lambda d: "range x = 2012-06" + ".next" * d + "\n",
    "call": lambda d: "target t: " + "r(" * d + "2012" + ")" * d + "\n" + _RULE_R,
    "comprehension": lambda d: "range x = " + "[" * d + "1" + " for a in [1]]" * d + "\n",
    "settings": lambda d: "spark:\n" + "".join("    " * (i + 1) + f"k{i}:\n" for i in range(d))
    + "    " * (d + 1) + 'leaf: "v"\n',
    "requires": lambda d: _RULE_R.replace("python: m.f", "requires: " + "r(interval.prev) if false else " * d
                                          + "[]\n    python: m.f"),
}
_RULE_R = 'rule r(interval: interval):\n    output: "r_{interval}"\n    python: m.f\n'
NESTING_CASES = 1_100 * SCALE
# Around the limit in the CI run (every depth up to 140 is cheap); far beyond it in the long run.
DEPTHS = st.integers(1, 140) if not LONG else st.one_of(st.integers(1, 140), st.integers(140, 3_000))
FLAT = ("parens", "attribute")  # parentheses and attribute chains add no level to the tree


@settings(FUZZ, max_examples=NESTING_CASES)
@given(kind=st.sampled_from(sorted(NESTINGS)), depth=DEPTHS)
def test_deep_nesting(kind, depth):
    outcome = exercise(NESTINGS[kind](depth))
    if depth > 110 and kind not in FLAT + ("settings",):
        assert outcome == "error"  # past the limit: E011, never a RecursionError


@pytest.mark.parametrize("depth", [400, 1_500])
@pytest.mark.parametrize("kind", sorted(set(NESTINGS) - set(FLAT)))
def test_deep_nesting_far_beyond_the_limit_says_so_with_its_code(kind, depth):
    with pytest.raises(FlowError) as caught:
        check(parse(NESTINGS[kind](depth), "Flowfile"))
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "E011" and diagnostic.span.line >= 1


@pytest.mark.parametrize("kind", FLAT)
def test_flat_chains_of_any_length_compile_or_fail_cleanly(kind):
    assert exercise(NESTINGS[kind](5_000)) in ("graph", "error")


# ---------------------------------------------------------------------------- huge literals

HUGE = {
    "int": lambda n: f"rule r(n: int = {'7' * n}):\n    output: \"r_{{n}}\"\n    python: m.f\ntarget t: r()\n",
    "year": lambda n: f"range x = months({'2' * n}-01 .. 2012-02)\n",
    "string": lambda n: f'rule r(s: str = "{"é" * n}"):\n    output: "r_{{s}}"\n    python: m.f\ntarget t: r()\n',
    "escapes": lambda n: 'range x = ["' + "\\n" * n + '"]\n',
    "name": lambda n: f"rule {'r' * n}(d: date):\n    output: \"x_{{d}}\"\n    python: m.f\n",
    "line": lambda n: "range x = [" + ", ".join(["2012-06"] * n) + "]\n",
    "params": lambda n: "rule r(" + ", ".join(f"p{i}: int" for i in range(n)) + "):\n    output: \"r"
    + "".join(f"_{{p{i}}}" for i in range(n)) + "\"\n    python: m.f\n",
    "pattern": lambda n: f'rule r(d: date):\n    output: "{"d/" * n}{{d}}"\n    python: m.f\ntarget t: r(2012-06-01)\n',
    "rules": lambda n: "".join(f'rule r{i}(d: date):\n    output: "r{i}/{{d}}"\n    python: m.f\n'
                               for i in range(min(n, 300))),
    "comment": lambda n: "# " + "x" * n + "\n" + _RULE_R,
    "blank": lambda n: "\n" * n + _RULE_R,
}
HUGE_CASES = 400 * SCALE
# Mostly ordinary sizes, a quarter past Python's 4,300-digit limit; far larger in the long run.
SIZES = st.one_of(st.integers(1, 300), st.integers(1, 300), st.integers(1, 300),
                  st.sampled_from([4_301, 6_000]) if not LONG else st.integers(4_000, 20_000))


@settings(FUZZ, max_examples=HUGE_CASES)
@given(kind=st.sampled_from(sorted(HUGE)), size=SIZES)
def test_huge_literals(kind, size):
    assert exercise(HUGE[kind](size), ["r()", f"r({'9' * size})"]) in ("graph", "error")


def test_a_number_past_pythons_digit_limit_is_a_located_error():
    with pytest.raises(FlowError) as caught:
        parse(HUGE["int"](4_301), "Flowfile")
    assert caught.value.diagnostics[0].code == "E011" and caught.value.diagnostics[0].span.line == 1
