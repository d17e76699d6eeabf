"""Syntax nodes of a Flowfile: frozen dataclasses, each carrying the Span it was parsed from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union


@dataclass(frozen=True, slots=True)
class Span:
    """Where a node came from: 1-based line and column, end exclusive, in characters."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def to(self, other: "Span") -> "Span":
        """The span from the start of this one to the end of `other`."""
        return Span(self.file, self.line, self.column, other.end_line, other.end_column)


NO_SPAN = Span("<none>", 0, 0, 0, 0)


# ---------------------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal value. `kind` is 'int', 'str', 'bool' or 'temporal' (unparsed date/interval text)."""

    kind: str
    value: object
    span: Span
    text: Optional[str] = None  # as written, when that differs from the value's text: 0999 is a year, not 999


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Attribute:
    """`value.attr`, e.g. `interval.start`."""

    value: "Expr"
    attr: str
    span: Span


@dataclass(frozen=True, slots=True)
class BinOp:
    """`left op right` with op one of + - == != < <= > >= and or."""

    op: str
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class Not:
    value: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class SpanRange:
    """`a .. b`: an inclusive span of dates or intervals, used by days()/weeks()/months()/years()."""

    first: "Expr"
    last: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class FuncCall:
    """A call of a built-in function (days, weeks, months, years) or of a rule (a requirement)."""

    func: str
    args: tuple["Expr", ...]
    kwargs: tuple[tuple[str, "Expr", Span], ...]
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class Comprehension:
    """`element for var in iterable [if condition]`."""

    element: "Expr"
    var: str
    var_span: Span
    iterable: "Expr"
    condition: Optional["Expr"]
    span: Span


@dataclass(frozen=True, slots=True)
class Conditional:
    """`then if condition else otherwise`."""

    then: "Expr"
    condition: "Expr"
    otherwise: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple["Expr", ...]
    span: Span


Expr = Union[Literal, Name, Attribute, BinOp, Not, SpanRange, FuncCall, Comprehension, Conditional, ListExpr]


# ---------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class Param:
    """A typed rule parameter. Insignificant parameters do not tell tasks apart (Luigi's significant=False)."""

    name: str
    type: str
    default: Optional[Expr]
    significant: bool
    span: Span
    type_span: Span


@dataclass(frozen=True, slots=True)
class Output:
    """What a rule produces. kind is 'file', 'dir' or 'table'; pattern holds {param} placeholders."""

    kind: str
    pattern: str
    span: Span


@dataclass(frozen=True, slots=True)
class Setting:
    """One `key: value` line of a settings block; value is a plain Python value or a nested dict."""

    key: str
    value: object
    span: Span
    value_span: Span


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    span: Span


@dataclass(frozen=True, slots=True)
class PythonAction:
    """`python: module.function`: a plain function run in a worker process."""

    target: str
    span: Span
    kind: str = "python"


@dataclass(frozen=True, slots=True)
class SparkAction:
    """`spark: module.function`: a function given the build's shared SparkSession."""

    target: str
    span: Span
    kind: str = "spark"


# What a `spark-submit:` block may set: Luigi's SparkSubmitTask options and a few more.
SPARK_SUBMIT_SETTINGS = frozenset({
    "master", "conf", "args", "spark-submit", "name", "deploy-mode", "entry-class", "properties-file",
    "packages", "exclude-packages", "repositories", "jars", "py-files", "files", "archives", "driver-memory",
    "driver-java-options", "driver-library-path", "driver-class-path", "driver-cores", "executor-memory",
    "executor-cores", "total-executor-cores", "num-executors", "queue", "principal", "keytab", "proxy-user",
    "supervise", "verbose", "pyspark-python", "pyspark-driver-python", "hadoop-user-name", "hadoop-conf-dir",
})


@dataclass(frozen=True, slots=True)
class SparkSubmitAction:
    """`spark-submit: "app.py"` with spark-submit settings (master, conf, packages, ..., args).

    `settings` holds plain values (`conf` a dict); `setting_spans` says where each key was written.
    """

    app: str
    settings: dict
    span: Span
    args: Optional[tuple[str, ...]] = None
    kind: str = "spark-submit"
    setting_spans: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SqlAction:
    """`sql:` inline text (text_span locates it) or a `.sql` file next to the Flowfile."""

    text: Optional[str]
    file: Optional[str]
    span: Span
    text_span: Span
    kind: str = "sql"


@dataclass(frozen=True, slots=True)
class LoadAction:
    """`load:` copy the input file into the output table with declared columns."""

    columns: tuple[Column, ...]
    span: Span
    format: str = "text"
    header: bool = False
    before: Optional[str] = None
    after: Optional[str] = None
    before_span: Optional[Span] = None
    after_span: Optional[Span] = None
    kind: str = "load"


# What the settings block under a `command:` or `shell:` may set.
COMMAND_SETTINGS = ("env", "cwd", "stdout")


@dataclass(frozen=True, slots=True)
class CommandAction:
    """`command: ["prog", "arg", "{output}", "{inputs}"]`: a program and its arguments, run without a shell.

    Each argument is a pattern over the task's parameters; `arg_spans` says where each was written
    (its quotes included). `settings` is the indented block under it (env, cwd, stdout).
    """

    args: tuple[str, ...]
    span: Span
    arg_spans: tuple[Span, ...] = ()
    settings: tuple[Setting, ...] = ()
    kind: str = "command"


@dataclass(frozen=True, slots=True)
class ShellAction:
    """`shell: "cut -f2 {inputs} | sort > {output}"`: one line for /bin/sh -c, each substituted value quoted.

    `script_span` is where the string was written, its quotes included.
    """

    script: str
    span: Span
    script_span: Span
    settings: tuple[Setting, ...] = ()
    kind: str = "shell"


Action = Union[PythonAction, SparkAction, SparkSubmitAction, SqlAction, LoadAction, CommandAction, ShellAction]


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    params: tuple[Param, ...]
    output: Optional[Output]
    requires: tuple[Expr, ...]
    action: Optional[Action]
    external: bool
    span: Span
    name_span: Span
    doc: Optional[str] = None
    retries: int = 0
    timeout: Optional[float] = None  # seconds
    settings: tuple[Setting, ...] = field(default=())  # every body line, for checks


@dataclass(frozen=True, slots=True)
class RangeDecl:
    """`range NAME = months(2012-01 .. 2012-12)`."""

    name: str
    value: Expr
    span: Span
    name_span: Span
    doc: Optional[str] = None


@dataclass(frozen=True, slots=True)
class TargetDecl:
    """`target NAME: requirement expressions`."""

    name: str
    requires: tuple[Expr, ...]
    span: Span
    name_span: Span
    doc: Optional[str] = None
    settings: tuple[Setting, ...] = ()  # `priority: N` lines at the top of its block


@dataclass(frozen=True, slots=True)
class Flowfile:
    """A parsed Flowfile, before checks."""

    path: str
    rules: tuple[Rule, ...]
    ranges: tuple[RangeDecl, ...]
    targets: tuple[TargetDecl, ...]
    default: Optional[tuple[str, Span]]
    spark: tuple[Setting, ...] = ()
    database: Optional[tuple[str, Span]] = None
    timezone: Optional[tuple[str, Span]] = None  # `timezone: "Europe/Paris"`: the clock of open periods
    storage: tuple[Setting, ...] = ()  # `storage:` block: per URL scheme, settings that are not secrets
    resources: tuple[Setting, ...] = ()  # top-level `resources: postgres=1`: the limits, one Setting per name
    coordinator: Optional[tuple[str, Span]] = None  # `coordinator:` a PostgreSQL URL or "$VARIABLE" naming one
    suppressions: dict = field(default_factory=dict)  # line -> set of lint codes silenced there
