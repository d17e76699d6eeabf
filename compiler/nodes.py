"""Syntax nodes of a Flowfile: frozen value classes (`node`), each carrying the Span it was parsed from."""

from __future__ import annotations

from dataclasses import MISSING, Field, FrozenInstanceError, field
from operator import attrgetter
from typing import Optional, Union

_FACTORY = object()  # the default of an __init__ argument whose field has a default_factory


def node(cls):
    """The class as @dataclass(frozen=True, slots=True) makes it, for a fraction of the cost.

    Every command imports these 26 classes, and a dataclass compiles six methods for each (~0.8 ms
    a class, ~20 ms a start). Here only `__init__` is compiled per class; equality, hash, repr,
    freezing and pickling are shared methods over the fields. Like a namedtuple, the class has
    `_fields` and `_field_defaults`. Fields take defaults and `field(default=...)` or
    `field(default_factory=...)`.
    """
    names = tuple(cls.__dict__.get("__annotations__", {}))
    if len(names) < 2:  # `_values` returns a tuple only for two fields or more
        raise TypeError(f"{cls.__name__}: a node has at least two fields (its value and its span)")
    defaults, factories = {}, {}
    for name in names:
        value = cls.__dict__.get(name, MISSING)
        if isinstance(value, Field):
            if value.default_factory is not MISSING:
                factories[name] = value.default_factory
                continue
            value = value.default
        if value is not MISSING:
            defaults[name] = value
    namespace = {key: value for key, value in cls.__dict__.items()
                 if key not in names and key not in ("__dict__", "__weakref__")}
    namespace.update(__slots__=names, _fields=names, _values=attrgetter(*names),
                     _field_defaults={**defaults, **{name: make() for name, make in factories.items()}},
                     __init__=_make_init(cls.__qualname__, names, defaults, factories),
                     __eq__=_eq, __hash__=_hash, __repr__=_repr, __setattr__=_refuse_set,
                     __delattr__=_refuse_delete, __reduce__=_reduce)
    return type(cls)(cls.__name__, cls.__bases__, namespace)


def _make_init(qualname: str, names: tuple, defaults: dict, factories: dict):
    arguments, lines = [], []
    for name in names:
        if name in factories:
            arguments.append(f"{name}=_FACTORY")
            lines.append(f" _set(self, {name!r}, _factories[{name!r}]() if {name} is _FACTORY else {name})")
        else:
            arguments.append(f"{name}=_defaults[{name!r}]" if name in defaults else name)
            lines.append(f" _set(self, {name!r}, {name})")
    source = f"def __init__(self, {', '.join(arguments)}):\n" + "\n".join(lines)
    scope = {"_set": object.__setattr__, "_defaults": defaults, "_factories": factories, "_FACTORY": _FACTORY}
    exec(source, scope)  # noqa: S102 - the source is made above from the class's own field names
    init = scope["__init__"]
    init.__qualname__ = f"{qualname}.__init__"
    return init


def _eq(self, other):
    if other.__class__ is self.__class__:
        return self._values(self) == other._values(other)
    return NotImplemented


def _hash(self):
    return hash(self._values(self))


def _repr(self):
    fields = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self._values(self)))
    return f"{self.__class__.__qualname__}({fields})"


def _refuse_set(self, name, value):
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _refuse_delete(self, name):
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _reduce(self):
    return self.__class__, self._values(self)


@node
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


@node
class Literal:
    """A literal value. `kind` is 'int', 'str', 'bool' or 'temporal' (unparsed date/interval text)."""

    kind: str
    value: object
    span: Span
    text: Optional[str] = None  # as written, when that differs from the value's text: 0999 is a year, not 999


@node
class Name:
    name: str
    span: Span


@node
class Attribute:
    """`value.attr`, e.g. `interval.start`."""

    value: "Expr"
    attr: str
    span: Span


@node
class BinOp:
    """`left op right` with op one of + - == != < <= > >= and or."""

    op: str
    left: "Expr"
    right: "Expr"
    span: Span


@node
class Not:
    value: "Expr"
    span: Span


@node
class SpanRange:
    """`a .. b`: an inclusive span of dates or intervals, used by days()/weeks()/months()/years()."""

    first: "Expr"
    last: "Expr"
    span: Span


@node
class FuncCall:
    """A call of a built-in function (days, weeks, months, years) or of a rule (a requirement)."""

    func: str
    args: tuple["Expr", ...]
    kwargs: tuple[tuple[str, "Expr", Span], ...]
    span: Span
    name_span: Span


@node
class Comprehension:
    """`element for var in iterable [if condition]`."""

    element: "Expr"
    var: str
    var_span: Span
    iterable: "Expr"
    condition: Optional["Expr"]
    span: Span


@node
class Conditional:
    """`then if condition else otherwise`."""

    then: "Expr"
    condition: "Expr"
    otherwise: "Expr"
    span: Span


@node
class ListExpr:
    items: tuple["Expr", ...]
    span: Span


Expr = Union[Literal, Name, Attribute, BinOp, Not, SpanRange, FuncCall, Comprehension, Conditional, ListExpr]


# ---------------------------------------------------------------------------- rules


@node
class Param:
    """A typed rule parameter. Insignificant parameters do not tell tasks apart (Luigi's significant=False)."""

    name: str
    type: str
    default: Optional[Expr]
    significant: bool
    span: Span
    type_span: Span


@node
class Output:
    """What a rule produces. kind is 'file', 'dir' or 'table'; pattern holds {param} placeholders."""

    kind: str
    pattern: str
    span: Span


@node
class Setting:
    """One `key: value` line of a settings block; value is a plain Python value or a nested dict."""

    key: str
    value: object
    span: Span
    value_span: Span


@node
class Column:
    name: str
    type: str
    span: Span


@node
class PythonAction:
    """`python: module.function`: a plain function run in a worker process."""

    target: str
    span: Span
    kind: str = "python"


@node
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


@node
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


@node
class SqlAction:
    """`sql:` inline text (text_span locates it) or a `.sql` file next to the Flowfile."""

    text: Optional[str]
    file: Optional[str]
    span: Span
    text_span: Span
    kind: str = "sql"


@node
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


@node
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


@node
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


@node
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


@node
class RangeDecl:
    """`range NAME = months(2012-01 .. 2012-12)`."""

    name: str
    value: Expr
    span: Span
    name_span: Span
    doc: Optional[str] = None


@node
class TargetDecl:
    """`target NAME: requirement expressions`."""

    name: str
    requires: tuple[Expr, ...]
    span: Span
    name_span: Span
    doc: Optional[str] = None
    settings: tuple[Setting, ...] = ()  # `priority: N` lines at the top of its block


@node
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
