"""A local S3 server for tests and benchmarks: moto's S3 in a process of its own, counting requests.

Run as `python -m tests.s3server` (or `python tests/s3server.py`): it binds 127.0.0.1 on a free
port, prints `listening on http://127.0.0.1:PORT` once it accepts connections, and serves until
killed. Every S3 request is counted by operation on the server side, so a count is what a client
really sent, whatever library sent it. `GET /_counts` answers the counts as JSON and
`POST /_counts/reset` zeroes them (bucket names cannot start with '_', so these never clash).
Failed requests are counted again under 'OPERATION STATUS' (e.g. 'PUT 412').

`POST /_hold/SUBSTRING` makes uploads (PUT) whose path contains SUBSTRING wait at the server until
`POST /_release`; `GET /_held` lists the paths waiting. Tests use it to kill a client while its
upload is in flight, then let the server see the cut connection as a real one would.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections import Counter
from urllib.parse import parse_qs

COUNTS_PATH = "/_counts"
HOLD_PATH, HELD_PATH, RELEASE_PATH = "/_hold/", "/_held", "/_release"


def operation(method: str, path: str, query: str) -> str:
    """The S3 operation a request is, in a few words a reader recognises ('LIST', 'PUT', 'HEAD', ...)."""
    keys = set(parse_qs(query, keep_blank_values=True))
    key_part = path.lstrip("/").partition("/")[2]
    if method == "GET" and not key_part and ("list-type" in keys or "prefix" in keys or not keys):
        return "LIST"
    if "uploads" in keys:
        return "CREATE-MULTIPART" if method == "POST" else "LIST-MULTIPART"
    if "uploadId" in keys:
        return {"PUT": "UPLOAD-PART", "POST": "COMPLETE-MULTIPART", "DELETE": "ABORT-MULTIPART"}.get(method, method)
    if method == "POST" and "delete" in keys:
        return "DELETE-MANY"
    return method


class CountingApp:
    """WSGI middleware: count each request by operation, answer the counts endpoint, pass the rest on."""

    def __init__(self, app):
        self.app = app
        self.counts: Counter = Counter()
        self.lock = threading.Lock()
        self.hold_pattern = None
        self.held: list = []
        self.released = threading.Event()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(COUNTS_PATH):
            if environ["REQUEST_METHOD"] == "POST":
                with self.lock:
                    self.counts.clear()
            with self.lock:
                body = json.dumps(dict(self.counts)).encode()
            return _json(start_response, body)
        if path.startswith(HOLD_PATH):
            with self.lock:
                self.held.clear()
            self.hold_pattern = path[len(HOLD_PATH):]
            self.released.clear()
            return _json(start_response, b"{}")
        if path == HELD_PATH:
            with self.lock:
                return _json(start_response, json.dumps(self.held).encode())
        if path == RELEASE_PATH:
            self.hold_pattern = None
            self.released.set()
            return _json(start_response, b"{}")
        kind = operation(environ["REQUEST_METHOD"], path, environ.get("QUERY_STRING", ""))
        with self.lock:
            self.counts[kind] += 1
        if self.hold_pattern and environ["REQUEST_METHOD"] == "PUT" and self.hold_pattern in path:
            with self.lock:
                self.held.append(path)
            self.released.wait(600)

        def counting_start_response(status, headers, *rest):
            if not status.startswith("2"):
                with self.lock:
                    self.counts[f"{kind} {status.split()[0]}"] += 1
            return start_response(status, headers, *rest)

        return self.app(environ, counting_start_response)


def _json(start_response, body: bytes):
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def main() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

    app = CountingApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)  # the socket is bound and listening
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
