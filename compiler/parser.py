"""Parse Flowfile text into nodes: the cached lark parser, the node-building Transformer, lark errors translated."""

from __future__ import annotations

import ast
import functools
import os
import re
import warnings

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.indenter import DedentError, Indenter

from . import nodes as n
from .errors import FlowError, FlowSyntaxError, error, suggest

GRAMMAR = os.path.join(os.path.dirname(__file__), "flowfile.lark")

# Limits (E011). Python itself stops at about 1,000 nested calls and at 4,300-digit integers; a
# Flowfile stays far below both, so every later pass (checks, the parse cache's pickle, lint)
# can walk the nodes recursively without meeting either.
MAX_NESTING = 100  # levels of the parse tree: statements, blocks and expressions together
MAX_INT_DIGITS = 100

LOAD_SETTINGS = ("format", "header", "before", "after")


class FlowIndenter(Indenter):
    """Turn leading spaces into _INDENT/_DEDENT tokens; newlines inside brackets do not count."""

    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8


@functools.lru_cache(maxsize=None)
def _lark() -> Lark:
    # cache=True keeps the compiled LALR tables in the temp dir, keyed by the grammar's hash,
    # so every later start-up skips grammar analysis.
    return Lark.open(
        GRAMMAR,
        parser="lalr",
        postlex=FlowIndenter(),
        propagate_positions=True,
        maybe_placeholders=True,
        cache=True,
    )


# ---------------------------------------------------------------------------- entry point


def parse(text: str, path: str = "Flowfile") -> n.Flowfile:
    """Parse a Flowfile's text; raise FlowSyntaxError with a rendered-ready diagnostic on bad input."""
    _check_tabs(text, path)
    source = text if text.endswith("\n") else text + "\n"
    try:
        tree = _lark().parse(source)
    except UnexpectedInput as exc:
        raise FlowSyntaxError(_translate(exc, source, path)) from None
    except DedentError as exc:
        line = _dedent_line(source, str(exc))
        raise FlowSyntaxError(
            error("E001", "unindent does not match any outer indentation level", _line_span(path, source, line))
        ) from None
    _check_nesting(tree, path)
    builder = ToNodes(path)
    try:
        flowfile = builder.transform(tree)
    except VisitError as exc:  # lark wraps what a Transformer raises
        if isinstance(exc.orig_exc, FlowError):
            raise exc.orig_exc from None
        raise
    if builder.errors:  # every problem found while building nodes, not only the first
        raise FlowSyntaxError(builder.errors)
    return n.Flowfile(
        path=flowfile.path,
        rules=flowfile.rules,
        ranges=flowfile.ranges,
        targets=flowfile.targets,
        default=flowfile.default,
        spark=flowfile.spark,
        database=flowfile.database,
        timezone=flowfile.timezone,
        storage=flowfile.storage,
        resources=flowfile.resources,
        coordinator=flowfile.coordinator,
        suppressions=find_suppressions(text),
    )


def _check_nesting(tree: Tree, path: str) -> None:
    """E011 when the parse tree is deeper than MAX_NESTING, pointing at where it crosses the limit.

    Iterative on purpose: this runs before anything walks the tree recursively.
    """
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            meta = node.meta
            line = getattr(meta, "line", None)
            span = None
            if line is not None:
                span = n.Span(path, line, meta.column, meta.end_line, meta.end_column)
            raise FlowSyntaxError(error("E011", f"nested too deeply: more than {MAX_NESTING} levels", span,
                                        hint="split the expression, or use days()/weeks()/months()/years() "
                                        "for long spans"))
        for child in node.children:
            if isinstance(child, Tree):
                stack.append((child, depth + 1))


def parse_file(path: str) -> n.Flowfile:
    with open(path, encoding="utf-8") as handle:
        return parse(handle.read(), path)


_NOQA = re.compile(r"#.*?\bnoqa\b(?::\s*(?P<codes>[A-Z]\d{3}(?:\s*,\s*[A-Z]\d{3})*))?")


def find_suppressions(text: str) -> dict:
    """Lines with a `# noqa` or `# noqa: W301,E201` comment -> the codes silenced there (None: all)."""
    found = {}
    if "noqa" not in text:
        return found
    for number, line in enumerate(text.splitlines(), 1):
        match = _NOQA.search(line)
        if match:
            codes = match.group("codes")
            found[number] = None if codes is None else {c.strip() for c in codes.split(",")}
    return found


def _check_tabs(text: str, path: str) -> None:
    if "\t" not in text:
        return
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip(" \t")
        indent = line[: len(line) - len(stripped)]
        if "\t" in indent and stripped and not stripped.startswith("#"):
            column = indent.index("\t") + 1
            raise FlowSyntaxError(
                error(
                    "E002",
                    "indentation contains a tab",
                    n.Span(path, number, column, number, column + 1),
                    hint="indent with spaces only (4 per level is usual)",
                )
            )


def _line_span(path: str, source: str, line: int) -> n.Span:
    lines = source.splitlines()
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    column = len(text) - len(text.lstrip()) + 1
    return n.Span(path, line, column, line, len(text) + 1)


def _dedent_line(source: str, message: str) -> int:
    # lark's DedentError has no position; find the first line whose indent matches no open level.
    levels = [0]
    for number, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent > levels[-1]:
            levels.append(indent)
        else:
            while indent < levels[-1]:
                levels.pop()
            if indent != levels[-1]:
                return number
    return 1


# ---------------------------------------------------------------------------- lark errors

_READABLE = {
    "_NL": "end of line",
    "_INDENT": "an indented block",
    "_DEDENT": "end of block",
    "NAME": "a name",
    "STRING": "a string",
    "LONG_STRING": 'a """string"""',
    "INT": "a number",
    "TEMPORAL": "a date or interval",
    "DURATION": "a duration like 30m",
    "COLON": "':'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "EQUAL": "'='",
    "DOT": "'.'",
    "DOTDOT": "'..'",
    "MINUS": "'-'",
    "PLUS": "'+'",
    "COMPARE": "a comparison",
    "$END": "end of file",
    "SPARK_SUBMIT": "'spark-submit'",
    "OUTPUT_KIND": "'dir' or 'table'",
    "EXTERNAL": "'external'",
    "INSIGNIFICANT": "'insignificant'",
    "TRUE": "'true'",
    "FALSE": "'false'",
    "ARRAY": "'[]'",
}


def _readable(terminal: str) -> str:
    if terminal in _READABLE:
        return _READABLE[terminal]
    name = _lark().get_terminal(terminal) if terminal in _terminal_names() else None
    if name is not None and hasattr(name.pattern, "value") and name.pattern.type == "str":
        return f"'{name.pattern.value}'"
    return terminal.lower()


@functools.lru_cache(maxsize=1)
def _terminal_names() -> frozenset:
    return frozenset(t.name for t in _lark().terminals)


def _token_text(token: Token) -> str:
    if token.type == "_NL":
        return "end of line"
    if token.type == "_INDENT":
        return "an indented block"
    if token.type == "_DEDENT":
        return "end of block"
    if token.type == "$END":
        return "end of file"
    return f"'{token}'"


def _translate(exc: UnexpectedInput, source: str, path: str):
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        expected = sorted({_readable(t) for t in exc.expected if not t.startswith("__")})
        if token.type == "_INDENT":
            line = token.end_line or token.line
            return error("E003", "unexpected indentation", _line_span(path, source, line),
                         hint="only rule bodies, settings and requires lists are indented")
        if token.type in ("_NL", "_DEDENT", "$END"):
            line = token.line if token.type != "_NL" else _nl_line(token)
            span = _end_of_line_span(path, source, line)
        else:
            span = _token_span(path, token)
        if token.type == "$END" and ("RPAR" in exc.expected or "RSQB" in exc.expected):
            bracket = "(" if "RPAR" in exc.expected else "["
            return error("E004", f"unexpected end of file: a '{bracket}' is never closed", span,
                         hint=f"close it with '{')' if bracket == '(' else ']'}'")
        if token.type == "DOTDOT":
            return error("E004", "a '..' range is only allowed inside days(), weeks(), months() or years()", span,
                         hint="for example: days(2012-06-01 .. 2012-06-30)")
        message = f"unexpected {_token_text(token)}"
        if expected:
            shown = expected if len(expected) <= 6 else expected[:5] + [f"{len(expected) - 5} more"]
            listed = " or ".join(shown) if len(shown) <= 2 else "one of: " + ", ".join(shown)
            message += ", expected " + listed
        if _line_of(source, token).lstrip().startswith("resources"):
            return error("E004", message, span, hint="write each resource as name=N: resources: postgres=1, memory=4")
        return error("E004", message, span)
    if isinstance(exc, UnexpectedCharacters):
        char = source[exc.pos_in_stream] if exc.pos_in_stream < len(source) else ""
        span = n.Span(path, exc.line, exc.column, exc.line, exc.column + 1)
        if char == "'":
            return error("E005", "strings use double quotes", span, hint='write "text" instead of \'text\'')
        if char == '"':
            return error("E005", "unterminated string", span)
        return error("E005", f"unexpected character {char!r}", span)
    if isinstance(exc, UnexpectedEOF):
        lines = source.rstrip("\n").splitlines()
        return error("E004", "unexpected end of file", _end_of_line_span(path, source, len(lines)))
    return error("E004", str(exc).splitlines()[0], None)


def _line_of(source: str, token: Token) -> str:
    """The text of the line a token sits on (empty when it has no position)."""
    line = getattr(token, "line", None)
    lines = source.splitlines()
    return lines[line - 1] if line and 0 < line <= len(lines) else ""


def _nl_line(token: Token) -> int:
    # an _NL token starts at the end of the line that it ends
    return token.line


def _end_of_line_span(path: str, source: str, line: int) -> n.Span:
    lines = source.splitlines()
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    column = len(text.rstrip()) + 1
    return n.Span(path, line, column, line, column + 1)


def _token_span(path: str, token: Token) -> n.Span:
    return n.Span(path, token.line, token.column, token.end_line, token.end_column)


# ---------------------------------------------------------------------------- tree -> nodes


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text)
    number = float(match[1])
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


class _BadString(Exception):
    """A "..." string whose escapes Python cannot read ("\\N", "\\x4"); parse() turns it into E005."""

    def __init__(self, token: Token, reason: str):
        super().__init__(reason)
        self.token = token
        self.reason = reason


def _unquote(token: Token) -> str:
    if token.type == "LONG_STRING":
        return str(token)[3:-3]  # raw: SQL keeps its backslashes
    try:
        with warnings.catch_warnings():
            # "\d" stays a backslash and a d, as it always has; Python would warn about it on stderr
            warnings.simplefilter("ignore")
            return ast.literal_eval(str(token))
    except (SyntaxError, ValueError) as exc:
        reason = str(exc.msg if isinstance(exc, SyntaxError) else exc).split(": ", 1)[-1]
        raise _BadString(token, reason) from None


@v_args(meta=True)
class ToNodes(Transformer):
    """Build nodes from the parse tree, one method per grammar rule, named after it."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.errors: list = []  # problems found while building nodes; parse() raises them together

    def _unquote(self, token: Token) -> str:
        try:
            return _unquote(token)
        except _BadString as exc:
            self.errors.append(error("E005", f"invalid escape in string: {exc.reason}", self._tspan(token),
                                     hint='write a backslash as "\\\\"'))
            return str(token)[1:-1]

    def _span(self, meta) -> n.Span:
        return n.Span(self.path, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tspan(self, token: Token) -> n.Span:
        return n.Span(self.path, token.line, token.column, token.end_line, token.end_column)

    # ------------------------------------------------------------ expressions
    def name(self, meta, children):
        return n.Name(str(children[0]), self._span(meta))

    def int_lit(self, meta, children):
        token = str(children[0])
        if len(token) > MAX_INT_DIGITS:
            self.errors.append(error("E011", f"a number of {len(token):,} digits is longer than flow reads "
                                     f"(at most {MAX_INT_DIGITS})", self._span(meta)))
            return n.Literal("int", 0, self._span(meta))
        value = int(token)
        # 0999 keeps its text: as an interval it is the year 999, as the command line reads it
        return n.Literal("int", value, self._span(meta), token if token != str(value) else None)

    def negative_int(self, meta, children):
        # only as a setting's whole value (`priority: -1`): the expressions have no unary minus
        literal = self.int_lit(meta, children[1:])
        return n.Literal("int", -literal.value, self._span(meta))

    def str_lit(self, meta, children):
        return n.Literal("str", self._unquote(children[0]), self._span(meta))

    def temporal_lit(self, meta, children):
        return n.Literal("temporal", str(children[0]), self._span(meta))

    def true_lit(self, meta, children):
        return n.Literal("bool", True, self._span(meta))

    def false_lit(self, meta, children):
        return n.Literal("bool", False, self._span(meta))

    def list_items(self, meta, children):
        return tuple(children)

    def list_(self, meta, children):
        items = children[0] if children and children[0] is not None else ()
        return n.ListExpr(tuple(items), self._span(meta))

    def attribute(self, meta, children):
        value, attr = children
        return n.Attribute(value, str(attr), self._span(meta))

    def kwarg(self, meta, children):
        name, value = children
        return ("kwarg", str(name), value, self._span(meta))

    def span_range(self, meta, children):
        first, _, last = children
        return n.SpanRange(first, last, self._span(meta))

    def args(self, meta, children):
        return list(children)

    def call(self, meta, children):
        func, args = children
        positional, keywords = [], []
        for arg in args or ():
            if isinstance(arg, tuple) and arg and arg[0] == "kwarg":
                keywords.append((arg[1], arg[2], arg[3]))
            else:
                if keywords:
                    self.errors.append(
                        error("E006", "positional argument after a keyword argument", _expr_span(arg)))
                positional.append(arg)
        return n.FuncCall(str(func), tuple(positional), tuple(keywords), self._span(meta), self._tspan(func))

    def compare(self, meta, children):
        left, op, right = children
        return n.BinOp(str(op), left, right, self._span(meta))

    def arith(self, meta, children):
        left, op, right = children
        return n.BinOp(str(op), left, right, self._span(meta))

    def or_(self, meta, children):
        return n.BinOp("or", children[0], children[1], self._span(meta))

    def and_(self, meta, children):
        return n.BinOp("and", children[0], children[1], self._span(meta))

    def not_(self, meta, children):
        return n.Not(children[0], self._span(meta))

    def conditional(self, meta, children):
        then, condition, otherwise = children
        return n.Conditional(then, condition, otherwise, self._span(meta))

    def comprehension(self, meta, children):
        element, var, iterable, condition = children
        return n.Comprehension(element, str(var), self._tspan(var), iterable, condition, self._span(meta))

    def req_list(self, meta, children):
        return tuple(children)

    def req_lines(self, meta, children):
        return tuple(children)

    # ------------------------------------------------------------ settings
    def key(self, meta, children):
        if len(children) == 1 and children[0].type == "STRING":
            return self._unquote(children[0])
        return "".join(str(token) for token in children)

    anykey = key

    def duration(self, meta, children):
        return ("duration", _seconds(str(children[0])), str(children[0]))

    def long_string(self, meta, children):
        return n.Literal("str", self._unquote(children[0]), self._span(meta))

    def subsetting(self, meta, children):
        return self.setting(meta, children)

    def setting(self, meta, children):
        key = children[0]
        value = children[1:]
        if len(value) == 1 and not isinstance(value[0], n.Setting):
            plain = _plain(value[0])
            value_span = _expr_span(value[0]) or self._span(meta)
            return n.Setting(key, plain, self._span(meta), value_span)
        return n.Setting(key, tuple(value), self._span(meta), self._span(meta))

    def amount(self, meta, children):
        name, value = children
        return n.Setting(str(name), _plain(value), self._span(meta), _expr_span(value) or self._span(meta))

    def amounts(self, meta, children):
        return tuple(children)

    def resources_decl(self, meta, children):
        """`resources: a=1, b=2` (or one such list per indented line) as one Setting holding one per name."""
        return n.Setting("resources", tuple(a for group in children for a in group), self._span(meta),
                         self._span(meta))

    def target_setting(self, meta, children):
        name, value = children
        return n.Setting(str(name), _plain(value), self._span(meta), _expr_span(value) or self._span(meta))

    # ------------------------------------------------------------ rules
    def param(self, meta, children):
        name, type_name, default, insignificant = children
        return n.Param(
            str(name), str(type_name), default, insignificant is None, self._span(meta), self._tspan(type_name)
        )

    def params(self, meta, children):
        return tuple(children)

    def doc(self, meta, children):
        return ("doc", _clean_doc(self._unquote(children[0])))

    def dotted(self, meta, children):
        return ".".join(str(c) for c in children)

    def output_entry(self, meta, children):
        kind, pattern = children
        # the span ends with the pattern string, not the newline, so checks can point at the pattern
        span = n.Span(self.path, meta.line, meta.column, pattern.end_line, pattern.end_column)
        return n.Output(str(kind) if kind is not None else "file", self._unquote(pattern), span)

    def requires_entry(self, meta, children):
        return ("requires", children[0])

    def python_entry(self, meta, children):
        return n.PythonAction(children[0], self._span(meta))

    def spark_entry(self, meta, children):
        return n.SparkAction(children[0], self._span(meta))

    def spark_submit_entry(self, meta, children):
        app = children[1]
        nodes = [s for s in children[2:] if s is not None]
        settings = {s.key: _settings_value(s.value) for s in nodes}
        spans = {s.key: s.span for s in nodes}
        args = None
        if "args" in settings:
            value = settings.pop("args")
            args = tuple(value) if isinstance(value, list) else (value,)
        return n.SparkSubmitAction(self._unquote(app), settings, self._span(meta), args, setting_spans=spans)

    def sql_entry(self, meta, children):
        token = children[0]
        text = self._unquote(token)
        quote = 3 if token.type == "LONG_STRING" else 1
        start = n.Span(self.path, token.line, token.column + quote, token.end_line, token.end_column)
        if token.type == "STRING" and text.endswith(".sql") and "\n" not in text and " " not in text:
            return n.SqlAction(None, text, self._span(meta), start)
        return n.SqlAction(text, None, self._span(meta), start)

    def command_entry(self, meta, children):
        value, *settings = children
        items = value.items if isinstance(value, n.ListExpr) else ()
        strings = all(isinstance(item, n.Literal) and item.kind == "str" for item in items)
        if not items or not strings:
            bad = value if not items else next(i for i in items if not (isinstance(i, n.Literal) and i.kind == "str"))
            message = ("command: takes a list of strings, the program first" if not isinstance(value, n.ListExpr)
                       else "command: needs at least the program" if not items
                       else "each argument of command: is a string in double quotes")
            self.errors.append(error("E009", message, _expr_span(bad) or self._span(meta),
                                     hint='for example: command: ["gzip", "-c", "{input}"]; '
                                     'for a line with pipes or redirections, use shell:'))
            items = ()
        return n.CommandAction(tuple(item.value for item in items), self._span(meta),
                               tuple(item.span for item in items), tuple(s for s in settings if s is not None))

    def shell_entry(self, meta, children):
        token, *settings = children
        return n.ShellAction(_unquote(token), self._span(meta), self._tspan(token),
                             tuple(s for s in settings if s is not None))

    def column_type(self, meta, children):
        words = [str(c) for c in children if isinstance(c, Token) and c.type == "NAME"]
        numbers = [str(c) for c in children if isinstance(c, Token) and c.type == "INT"]
        text = " ".join(words)
        if numbers:
            text += "(" + ",".join(numbers) + ")"
        if any(isinstance(c, Token) and c.type == "ARRAY" for c in children):
            text += "[]"
        return text

    def column(self, meta, children):
        return n.Column(str(children[0]), children[1], self._span(meta))

    def columns_setting(self, meta, children):
        return ("columns", tuple(children), self._span(meta))

    def load_entry(self, meta, children):
        columns = ()
        options = {}
        spans = {}
        for child in children:
            if isinstance(child, tuple) and child[0] == "columns":
                columns = child[1]
            else:
                options[child.key] = child.value
                spans[child.key] = child.value_span
        for child in children:
            if isinstance(child, n.Setting) and child.key not in LOAD_SETTINGS:
                self.errors.append(error("E007", f"unknown load setting '{child.key}'"
                                         + suggest(child.key, ("columns",) + LOAD_SETTINGS), child.span,
                                         hint="a load block takes columns, format, header, before and after"))
        if not columns:
            self.errors.append(error("E007", "a load block needs 'columns: name type, ...'", self._span(meta)))
        return n.LoadAction(
            columns,
            self._span(meta),
            format=options.get("format", "text"),
            header=bool(options.get("header", False)),
            before=options.get("before"),
            after=options.get("after"),
            before_span=spans.get("before"),
            after_span=spans.get("after"),
        )

    def body(self, meta, children):
        return list(children)

    def rule_decl(self, meta, children):
        external, name, params, body = children
        doc = None
        output = None
        requires: tuple = ()
        action = None
        settings = []
        retries = 0
        timeout = None
        for entry in body:
            if isinstance(entry, tuple) and entry[0] == "doc":
                doc = entry[1]
            elif isinstance(entry, n.Output):
                if output is not None:
                    self.errors.append(error("E008", f"rule '{name}' has two outputs", entry.span))
                    continue
                output = entry
            elif isinstance(entry, tuple) and entry[0] == "requires":
                requires = requires + tuple(entry[1])
            elif isinstance(entry, (n.PythonAction, n.SparkAction, n.SparkSubmitAction, n.SqlAction, n.LoadAction,
                                    n.CommandAction, n.ShellAction)):
                if action is not None:
                    self.errors.append(
                        error("E008", f"rule '{name}' has two actions ({action.kind} and {entry.kind})", entry.span,
                              hint="a rule runs exactly one action")
                    )
                    continue
                action = entry
            elif isinstance(entry, n.Setting):
                settings.append(entry)
                if entry.key == "retries":
                    retries = entry.value
                elif entry.key == "timeout":
                    timeout = entry.value
                elif entry.key == "doc" and isinstance(entry.value, str):
                    doc = entry.value
        return n.Rule(
            name=str(name),
            params=params or (),
            output=output,
            requires=requires,
            action=action,
            external=external is not None,
            span=self._span(meta),
            name_span=self._tspan(name),
            doc=doc,
            retries=retries,
            timeout=timeout,
            settings=tuple(settings),
        )

    def range_decl(self, meta, children):
        name, value = children
        return n.RangeDecl(str(name), value, self._span(meta), self._tspan(name))

    def target_decl(self, meta, children):
        name = children[0]
        doc = None
        requires = children[-1]
        if len(children) >= 3 and isinstance(children[1], tuple) and children[1] and children[1][0] == "doc":
            doc = children[1][1]
        settings = tuple(c for c in children[1:-1] if isinstance(c, n.Setting))
        return n.TargetDecl(str(name), tuple(requires), self._span(meta), self._tspan(name), doc, settings)

    def default_decl(self, meta, children):
        return ("default", str(children[0]), self._tspan(children[0]))

    def database_decl(self, meta, children):
        return ("database", self._unquote(children[0]), self._tspan(children[0]))

    def coordinator_decl(self, meta, children):
        return ("coordinator", self._unquote(children[0]), self._tspan(children[0]))

    def timezone_decl(self, meta, children):
        return ("timezone", _unquote(children[0]), self._tspan(children[0]))

    def storage_block(self, meta, children):
        return ("storage", tuple(children))

    def spark_block(self, meta, children):
        return ("spark", tuple(children))

    def start(self, meta, children):
        rules, ranges, targets = [], [], []
        default = database = timezone = coordinator = None
        spark: tuple = ()
        storage: tuple = ()
        resources: tuple = ()
        for child in children:
            if isinstance(child, n.Setting):  # the top-level `resources:` limits
                resources = resources + child.value
            elif isinstance(child, n.Rule):
                rules.append(child)
            elif isinstance(child, n.RangeDecl):
                ranges.append(child)
            elif isinstance(child, n.TargetDecl):
                targets.append(child)
            elif child[0] == "default":
                default = (child[1], child[2])
            elif child[0] == "database":
                database = (child[1], child[2])
            elif child[0] == "timezone":
                timezone = (child[1], child[2])
            elif child[0] == "coordinator":
                coordinator = (child[1], child[2])
            elif child[0] == "spark":
                spark = spark + child[1]
            elif child[0] == "storage":
                storage = storage + child[1]
        return n.Flowfile(self.path, tuple(rules), tuple(ranges), tuple(targets), default, spark, database,
                          timezone=timezone, storage=storage, resources=resources, coordinator=coordinator)


def _settings_value(value):
    """A setting's value as plain data: a nested block becomes a dict of its keys."""
    if isinstance(value, tuple) and all(isinstance(v, n.Setting) for v in value):
        return {s.key: _settings_value(s.value) for s in value}
    return value


def _clean_doc(text: str) -> str:
    lines = text.strip().splitlines()
    if not lines:
        return ""
    import textwrap

    return (lines[0].strip() + "\n" + textwrap.dedent("\n".join(lines[1:]))).strip()


def _expr_span(value):
    return getattr(value, "span", None)


def _plain(value):
    """A settings value as plain Python: literals, lists, dotted names; other expressions stay nodes."""
    if isinstance(value, tuple) and value and value[0] == "duration":
        return value[1]
    if isinstance(value, n.Literal):
        return value.value
    if isinstance(value, n.ListExpr):
        return [_plain(item) for item in value.items]
    if isinstance(value, n.Name):
        return value.name
    if isinstance(value, n.Attribute):
        base = _plain(value.value)
        if isinstance(base, str):
            return base + "." + value.attr
    return value
