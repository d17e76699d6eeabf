"""The `serve` command: check the web extra is installed, load the project, bind the port, run uvicorn."""

from __future__ import annotations

import socket
import sys
import threading

from flow.runtime.commands import EXIT_FAILED, EXIT_OK, EXIT_USAGE

MISSING_EXTRA = "error: flow serve needs the web extra: pip install 'flow[web]'"


def run_serve(flowfile: str, host: str, port: int) -> int:
    """Serve the project's page until Ctrl-C; return the exit code."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        print(MISSING_EXTRA, file=sys.stderr)
        return EXIT_USAGE
    from flow.compiler.errors import FlowError
    from flow.runtime.commands import render_error
    from flow.runtime.history import StateError

    from .app import make_app
    from .project import Project
    from .store import Reader

    project = Project(flowfile)
    try:
        project.session()  # a broken Flowfile is reported now, not on the first request
    except FlowError as exc:
        print(render_error(exc), file=sys.stderr)
        return exc.exit_code
    try:
        reader = project.reader  # the coordinator's history when the project has one; nothing connects yet
    except StateError as exc:  # its setting names an unset variable
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    # Bind here rather than in uvicorn: a port in use is one line, and --port 0 picks a free one.
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)  # connections wait in the backlog from now on, before uvicorn accepts them
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"flow serve: http://{shown}:{bound}/  (read-only; Ctrl-C to stop)", flush=True)
    if reader.where != Reader.where:
        print(f"flow serve: every host's runs from {reader.where}", flush=True)
    # The newest run is read while the browser is being opened (SQLite works without holding the GIL).
    threading.Thread(target=_warm_start, args=(project,), name="flow-serve-warm", daemon=True).start()
    config = uvicorn.Config(make_app(project), log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _warm_start(project) -> None:
    """Read the newest run ahead of the first view; a history that cannot be read (a coordinator down) is one
    line here, and the page says so until it can be read."""
    from flow.runtime.history import StateError

    try:
        project.warm_start()
    except StateError as exc:
        print(f"warning: cannot read the history: {exc} (the page says so until it can)", file=sys.stderr,
              flush=True)
