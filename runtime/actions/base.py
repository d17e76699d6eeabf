"""What every action runner shares: the task's context, the failure type, and calling user functions."""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass, field


@dataclass
class ActionContext:
    """Everything an action needs to know about the task it runs; picklable, sent to workers."""

    task_id: str
    rule: str
    params: dict
    inputs: list
    output: str  # the temporary path for files and directories, the qualified name for tables
    update_id: str
    flowfile_dir: str = "."
    extra: dict = field(default_factory=dict)


_RUNTIME_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_traceback(exc: BaseException) -> str:
    """The traceback of an action's exception without flow's own frames: users read their code only."""
    import traceback

    summary = traceback.TracebackException.from_exception(exc)
    frames = [f for f in summary.stack if not os.path.abspath(f.filename).startswith(_RUNTIME_DIR + os.sep)]
    if frames:
        summary.stack = traceback.StackSummary.from_list(frames)
    # no user frame at all: the error is flow's own, and its frames are what a bug report needs
    return "".join(summary.format())


class ActionFailed(Exception):
    """An action failed in a way the user should read in one line (no traceback needed)."""


_functions: dict = {}


def resolve_function(target: str):
    """Import `package.module.function` once per process and return the function."""
    function = _functions.get(target)
    if function is None:
        module_name, _, name = target.rpartition(".")
        if not module_name:
            raise ActionFailed(f"'{target}' is not of the form module.function")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ActionFailed(f"cannot import module '{module_name}': {exc}") from None
        function = getattr(module, name, None)
        if not callable(function):
            raise ActionFailed(f"module '{module_name}' has no function '{name}'")
        _functions[target] = function
    return function


_signatures: dict = {}


def call_with_injection(function, ctx: ActionContext, **available):
    """Call `function` with the arguments it names, taken from the task (inputs, input, output, params)."""
    signature = _signatures.get(function)
    if signature is None:  # read once per function: a worker may call it for 100,000 quick tasks
        parameters = inspect.signature(function).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in parameters):
            names = None  # **kwargs: give it everything
        else:
            names = tuple(
                (p.name, p.default is not p.empty)
                for p in parameters
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            )
        signature = _signatures[function] = (names, names is None or any(n == "input" for n, _ in names))
    names, wants_input = signature
    pool = dict(ctx.params)
    pool.update(available)
    pool["inputs"] = list(ctx.inputs)
    if ctx.extra.get("batch"):
        # a batched run: the partition parameter holds the run's partitions, `inputs` one list per
        # partition, and `outputs` one path per partition (see docs/flowfile.md, "Batched runs")
        pool["outputs"] = list(ctx.output)
        pool["partitions"] = ctx.extra["partitions"]
    else:
        pool["output"] = ctx.output
    if wants_input:
        if len(ctx.inputs) == 1:
            pool["input"] = ctx.inputs[0]
        elif names is not None:
            raise ActionFailed(
                f"'{function.__name__}' asks for 'input' but the task has {len(ctx.inputs)} inputs; ask for 'inputs'"
            )
    if names is None:
        return function(**pool)
    missing = [n for n, optional in names if n not in pool and not optional]
    if missing:
        asked = ", ".join(repr(m) for m in missing)
        raise ActionFailed(f"'{function.__name__}' asks for {asked}, which the task does not provide")
    return function(**{n: pool[n] for n, _ in names if n in pool})
