"""The Starlette application: HTML pages and JSON endpoints over one project, read-only.

Handlers are plain functions, so Starlette runs them in its thread pool and a slow view (a large
target's output checks) never blocks the others.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import pages, views
from .project import Project

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


class BadRequest(Exception):
    """A query parameter that cannot be read; the message names it."""


def make_app(project: Project) -> Starlette:
    """The application serving `project`."""
    name = os.path.basename(project.directory) or project.directory

    def html(render):
        def endpoint(request: Request):
            try:
                return HTMLResponse(render(request))
            except (views.NotFound, BadRequest) as exc:
                return HTMLResponse(pages.error_page(str(exc), name), status_code=_code(exc))
            except Exception as exc:
                message = _flow_error(exc)
                if message is None:
                    raise
                code = _failure_code(exc)
                heading = "The history cannot be read now" if code == 503 else "Not here"
                return HTMLResponse(pages.error_page(message, name, heading), status_code=code)
        return endpoint

    def api(answer):
        def endpoint(request: Request):
            try:
                return JSONResponse(answer(request))
            except (views.NotFound, BadRequest) as exc:
                return JSONResponse({"error": str(exc)}, status_code=_code(exc))
            except Exception as exc:
                message = _flow_error(exc)
                if message is None:
                    raise
                return JSONResponse({"error": message}, status_code=_failure_code(exc))
        return endpoint

    # ------------------------------------------------------------------ pages

    def index(request):
        offset, limit = _paging(request)
        return pages.runs_page(views.runs(project, offset, limit), _targets(project), name)

    def targets(request):
        return pages.targets_page(project.target_names(), name)

    def graph(request):
        return pages.graph_page(views.graph(project), project.target_names()[1], name)

    def run(request):
        view = views.run(project, request.path_params["run_id"], **_filters(request))
        return pages.run_page(view, views.graph(project, view["rules"], view["tasks"]["hide_done"]), name)

    def target(request):
        view = views.target(project, _required(request, "name"), **_filters(request))
        return pages.target_page(view, views.graph(project, view["rules"], view["tasks"]["hide_done"]), name)

    def task(request):
        return pages.task_page(views.task(project, _required(request, "id"), views.PAGE_DEPENDENTS_WAIT), name)

    # ------------------------------------------------------------------ JSON

    def api_runs(request):
        offset, limit = _paging(request)
        return views.runs(project, offset, limit)

    def api_run(request):
        return views.run(project, request.path_params["run_id"], with_tasks=False)

    def api_run_tasks(request):
        return views.run(project, request.path_params["run_id"], **_filters(request))["tasks"]

    def api_targets(request):
        names, default = project.target_names()
        return {"targets": names, "default": default}

    def api_target(request):
        return views.target(project, _required(request, "name"), with_tasks=False)

    def api_target_tasks(request):
        return views.target(project, _required(request, "name"), **_filters(request))["tasks"]

    def api_graph(request):
        params = request.query_params
        hide_done = params.get("hide_done", "") not in ("", "0")
        if "run" in params:
            rules = views.run(project, _int(params["run"], "run"), with_tasks=False)["rules"]
            return views.graph(project, rules, hide_done)
        if "target" in params:
            return views.graph(project, views.target(project, params["target"], with_tasks=False)["rules"], hide_done)
        return views.graph(project)

    def api_task(request):
        return views.task(project, _required(request, "id"))

    routes = [
        Route("/", html(index)),
        Route("/targets", html(targets)),
        Route("/graph", html(graph)),
        Route("/runs/{run_id:int}", html(run)),
        Route("/target", html(target)),
        Route("/task", html(task)),
        Route("/api/runs", api(api_runs)),
        Route("/api/runs/{run_id:int}", api(api_run)),
        Route("/api/runs/{run_id:int}/tasks", api(api_run_tasks)),
        Route("/api/targets", api(api_targets)),
        Route("/api/target", api(api_target)),
        Route("/api/target/tasks", api(api_target_tasks)),
        Route("/api/graph", api(api_graph)),
        Route("/api/task", api(api_task)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes)


def _targets(project: Project) -> tuple:
    """The named targets, or none when the Flowfile cannot be read (the history still shows)."""
    try:
        return project.target_names()
    except Exception as exc:
        if _flow_error(exc) is None:
            raise
        return [], None


def _code(exc: Exception) -> int:
    return 404 if isinstance(exc, views.NotFound) else 400


def _failure_code(exc: Exception) -> int:
    """400 for a Flowfile or target the request named wrongly; 503 when the history cannot be read now."""
    from flow.runtime.history import StateError

    return 503 if isinstance(exc, StateError) else 400


def _flow_error(exc: Exception):
    """The rendered message of a Flowfile, target or history error (a coordinator down), or None for anything else."""
    from flow.compiler.errors import FlowError
    from flow.runtime.history import StateError

    if isinstance(exc, FlowError):
        from flow.runtime.commands import render_error

        return render_error(exc)
    if isinstance(exc, StateError):  # already one redacted line
        return f"error: cannot read the history: {exc}"
    return None


def _int(text: str, name: str, low: int = 0, high: int = 10 ** 9) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"'{name}' must be a whole number, not '{text}'") from None
    if not low <= value <= high:
        raise BadRequest(f"'{name}' must be between {low} and {high}")
    return value


def _paging(request: Request) -> tuple:
    params = request.query_params
    offset = _int(params.get("offset") or "0", "offset")
    limit = _int(params.get("limit") or str(views.PAGE_SIZE), "limit", 1, views.MAX_PAGE_SIZE)
    return offset, limit


def _filters(request: Request) -> dict:
    from .store import STATUSES

    params = request.query_params
    status = params.get("status", "")
    if status and status not in STATUSES:
        raise BadRequest(f"'status' must be one of {', '.join(STATUSES)}")
    offset, limit = _paging(request)
    return {"query": params.get("q", "").strip(), "status": status, "rule": params.get("rule", ""),
            "hide_done": params.get("hide_done", "") not in ("", "0"), "offset": offset, "limit": limit}


def _required(request: Request, key: str) -> str:
    value = request.query_params.get(key, "").strip()
    if not value:
        raise BadRequest(f"'{key}' is required")
    return value
