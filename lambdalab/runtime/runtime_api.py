"""The Lambda Runtime API (2018-06-01) served on loopback for one execution environment.

The server only speaks HTTP; what an endpoint means is decided by the `RuntimeAPIHandler`
protocol, which the execution environment implements.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import selectors
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

PREFIX = "/2018-06-01/runtime"
_INVOCATION = re.compile(rf"^{PREFIX}/invocation/(?P<id>[^/]+)/(?P<what>response|error)$")
# Lambda's limit on the payload a function returns (synchronous invocations): 6 MB plus 100 bytes,
# as its error message says; the request limit is 6 MiB exactly.
MAX_RESPONSE_BYTES = 6_291_556
# awslambdaric sends the X-Ray cause of an error as a header of up to 1 MiB (a deep
# RecursionError's stack is ~100 KB); http.server refuses header lines over 64 KiB.
http.client._MAXLINE = max(http.client._MAXLINE, 2 * 1024 * 1024)


@dataclass(frozen=True)
class NextInvocation:
    """What `/invocation/next` hands to the runtime client."""

    request_id: str
    body: bytes
    deadline_ms: int
    function_arn: str
    trace_id: str
    client_context: str | None = None
    cognito_identity: str | None = None


class Refused(Exception):
    """A request the Runtime API turns down with 403 and Lambda's error shape (the reason is the message)."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type


class RuntimeAPIHandler(Protocol):
    def accepts(self, client: tuple[str, int], server: tuple[str, int]) -> bool: ...
    def next_invocation(self) -> NextInvocation | None: ...
    def invocation_response(self, request_id: str, body: bytes, content_type: str) -> int: ...
    def invocation_error(self, request_id: str, body: bytes, error_type: str | None) -> int: ...
    def init_error(self, body: bytes, error_type: str | None) -> int: ...
    def restore_error(self, body: bytes, error_type: str | None) -> int: ...


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY every small response waits for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: "RuntimeAPIServer"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def _reply(self, status: int, payload: dict | bytes, headers: dict[str, str] | None = None,
               content_type: str = "application/json") -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def handle(self) -> None:
        # Once per connection (the runtime client keeps one open): only the environment's own worker may talk.
        if not self.server.api.accepts(self.client_address, self.server.server_address):
            self.close_connection = True
            try:
                self.raw_requestline = self.rfile.readline(65537)
                if self.parse_request():
                    self._reply(403, {"errorMessage": "this connection does not come from the execution "
                                      "environment's runtime process", "errorType": "Forbidden"})
            except OSError:
                pass
            return
        super().handle()

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if self.path == f"{PREFIX}/restore/next":  # a snapshot-restored runtime is ready to run its hooks
            self._reply(200, {})
            return
        if self.path != f"{PREFIX}/invocation/next":
            self._reply(404, {"errorMessage": f"unknown path {self.path}", "errorType": "InvalidRequest"})
            return
        try:
            nxt = self.server.api.next_invocation()
        except Refused as e:
            self._reply(403, {"errorMessage": str(e), "errorType": e.error_type})
            return
        if nxt is None:  # environment shutting down; the worker is about to be killed
            self._reply(410, {"errorMessage": "environment is shutting down", "errorType": "Shutdown"})
            return
        headers = {
            "Lambda-Runtime-Aws-Request-Id": nxt.request_id,
            "Lambda-Runtime-Deadline-Ms": str(nxt.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": nxt.function_arn,
            "Lambda-Runtime-Trace-Id": nxt.trace_id,
        }
        if nxt.client_context:
            headers["Lambda-Runtime-Client-Context"] = nxt.client_context
        if nxt.cognito_identity:
            headers["Lambda-Runtime-Cognito-Identity"] = nxt.cognito_identity
        # awslambdaric waits forever for a /next response without this content type.
        self._reply(200, nxt.body, headers)

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        body = self._body()
        error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
        api = self.server.api
        if self.path == f"{PREFIX}/init/error":
            status = api.init_error(body, error_type)
        elif self.path == f"{PREFIX}/restore/error":
            status = api.restore_error(body, error_type)
        elif m := _INVOCATION.match(self.path):
            if m["what"] == "response":
                status = api.invocation_response(m["id"], body, self.headers.get("Content-Type", "application/json"))
            else:
                status = api.invocation_error(m["id"], body, error_type)
        else:
            self._reply(404, {"errorMessage": f"unknown path {self.path}", "errorType": "InvalidRequest"})
            return
        if status == 202:
            self._reply(202, {"status": "OK"})
        else:
            self._reply(status, {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})


class RuntimeAPIServer(ThreadingHTTPServer):
    """A Runtime API endpoint on 127.0.0.1 with a free port, served from a daemon thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, api: RuntimeAPIHandler):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api = api
        self._wake_r, self._wake_w = os.pipe()
        self._close_lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="runtime-api", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        # Like serve_forever, but woken by a pipe instead of polling: closing an environment
        # must not wait for a poll interval (a notebook closes dozens at once).
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj == self._wake_r:
                        return
                    self._handle_request_noblock()

    def handle_error(self, request, client_address) -> None:
        pass  # a worker killed mid-request resets its connection; that is reported elsewhere

    @property
    def address(self) -> str:
        host, port = self.server_address[:2]
        return f"{host}:{port}"

    def close(self) -> None:
        """Stop serving and release the port. Idempotent (an environment may be destroyed twice)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=2)
        self.server_close()
        os.close(self._wake_r)
        os.close(self._wake_w)
