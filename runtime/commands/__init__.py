"""The flow commands, the only code that prints: each loads, resolves and reports errors one way, returns its exit code.

build.py (`flow build` and its dry run), clean.py, status.py (`flow status`, `flow log`), lint.py,
graph.py (`flow graph`, `flow list`). `cli.py` parses the arguments with click and calls one of them.
A new command is one module here and one click function there.
"""

from __future__ import annotations

import sys

# The exit codes of every flow command (documented in the README).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_MISSING_EXTERNAL = 3
EXIT_INTERRUPTED = 130


def render_error(exc) -> str:
    """A FlowError's diagnostics as the user reads them: position, message, source line and caret."""
    from flow.compiler.errors import SourceCache, render_all

    if getattr(exc, "one_line", False):  # a settings error names its file and line itself
        return str(exc)
    return render_all(exc.diagnostics, SourceCache())


def on_project(flowfile: str, names: list, today, body) -> int:
    """Load the Flowfile, resolve `names` into root tasks, return `body(project, roots)`, and close the project.

    A Flowfile or usage error prints its diagnostics and exits with its code (2); a place outputs
    live in that cannot be reached (a database down) is one line and exit code 1.
    """
    from flow.compiler.errors import FlowError

    from .. import collector
    from ..project import Project
    from ..targets import TargetUnavailable

    project = None
    collector.hold()  # until a build starts running its tasks (build.py), or the command ends
    try:
        project = Project(flowfile, today)
        return body(project, project.roots(names))
    except FlowError as exc:
        print(render_error(exc), file=sys.stderr)
        return exc.exit_code
    except TargetUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:  # what the command made is freed as it returns, or lives until flow exits: no pass walks it
        collector.release(freeze=True)
        if project is not None:
            project.close()
