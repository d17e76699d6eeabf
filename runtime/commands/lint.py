"""`flow lint`: print every problem of a Flowfile as text, JSON or GitHub annotations.

Exit codes: 0 nothing reported; 1 at least one error or warning reported (CI should fail on
warnings too: silence a deliberate one with `# noqa: CODE`); 2 the Flowfile cannot be read, or
lint itself failed (an internal error, reported without a traceback).
"""

from __future__ import annotations

import json
import sys

from . import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def run_lint(path: str, fmt: str = "text", out=None, err=None) -> int:
    """Lint the Flowfile at `path` and print the result in `fmt`; return the exit code."""
    from flow.compiler.errors import UsageError, render
    from flow.compiler.lint import as_github, as_json, as_text, lint_source

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        diagnostics, display, text = lint_source(path)
    except UsageError as exc:
        print("\n".join(render(d) for d in exc.diagnostics), file=err)
        return EXIT_USAGE
    except Exception as exc:  # a bug in flow: say so in one line, never with a traceback
        print(f"flow lint: internal error: {type(exc).__name__}: {exc} (please report this)", file=err)
        return EXIT_USAGE
    if fmt == "json":
        print(json.dumps([as_json(d) for d in diagnostics], indent=2), file=out)
    elif fmt == "github":
        for diagnostic in diagnostics:
            print(as_github(diagnostic), file=out)
    else:
        print(as_text(diagnostics, display, text), file=out)
    return EXIT_FAILED if diagnostics else EXIT_OK
