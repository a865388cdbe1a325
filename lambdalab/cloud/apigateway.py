"""A local API Gateway endpoint on 127.0.0.1: HTTP requests in, Lambda proxy events out.

`HttpApi` serves an HTTP API (payload format 2.0, or 1.0 per route) or, with `kind="rest"`, a REST
API proxy integration (payload 1.0). Routes are API Gateway route keys: `GET /items/{id}`,
`ANY /{proxy+}`, `$default`; the most specific match wins. Each request becomes the event
API Gateway would send (shaped by `lambdalab.events.apigateway`), the function runs synchronously through
the `invoke` hook, and its result becomes the HTTP response as API Gateway reads it:

- 2.0: a result with `statusCode` gives the status, `headers`, `cookies` (one `Set-Cookie` each),
  `body`, `isBase64Encoded`; any other JSON result is a 200 `application/json` body.
- 1.0: `statusCode`, `headers` merged with `multiValueHeaders`, `body`, `isBase64Encoded`.
- Errors as API Gateway answers them (see `ERRORS`): a failed or malformed function response,
  a rejected invoke, the integration timeout (30 s HTTP API, 29 s REST), an unknown route, and
  the API's own throttle (429).

A learner can `curl http://127.0.0.1:PORT/hello`. Closing the API frees its port and threads.
Route matching and response reading follow API Gateway's rules in `lambdalab.cloud.apigateway_proxy`.
"""

from __future__ import annotations

import inspect
import re
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from lambdalab._util.xray import new_trace_header
from lambdalab.cloud.apigateway_proxy import (
    PAYLOAD_VERSIONS,
    HttpResponse,
    Malformed,
    Route,
    json_response,
    parse_route,
    path_parts,
    response_v1,
    response_v2,
)
from lambdalab.cloud.http_framing import BadRequestError, HeaderEndReader, read_body
from lambdalab.events import apigateway as events
from lambdalab.runtime.config import ACCOUNT_ID, REGION

KINDS = ("http", "rest")
# API Gateway's maximum integration timeouts: HTTP APIs 30 s, REST APIs 29 s (default quota).
INTEGRATION_TIMEOUT_S = {"http": 30.0, "rest": 29.0}
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
# HTTP APIs pass these bodies as text and base64-encode everything else (a form post included).
_TEXT_TYPES = re.compile(r"^(text/.*|application/(json|javascript|xml|yaml|x-yaml|graphql)"
                         r"|application/.*\+(json|xml))$")

# (status, body) API Gateway answers with, per kind of API. HTTP APIs report integration
# failures as 500 {"message":"Internal Server Error"}; REST APIs as 502 for a function error
# or malformed response and 500 when Lambda rejects the invoke, with {"message": "Internal
# server error"} (Lambda developer guide, "Handling Lambda errors with an API Gateway API").
ERRORS: dict[str, dict[str, tuple[int, dict]]] = {
    "http": {
        "function_error": (500, {"message": "Internal Server Error"}),
        "malformed": (500, {"message": "Internal Server Error"}),
        "invoke_rejected": (500, {"message": "Internal Server Error"}),
        "timeout": (503, {"message": "Service Unavailable"}),
        "no_route": (404, {"message": "Not Found"}),
        "throttled": (429, {"message": "Too Many Requests"}),
        "too_large": (413, {"message": "Request Entity Too Large"}),
        "bad_request": (400, {"message": "Bad Request"}),
    },
    "rest": {
        "function_error": (502, {"message": "Internal server error"}),
        "malformed": (502, {"message": "Internal server error"}),
        "invoke_rejected": (500, {"message": "Internal server error"}),
        "timeout": (504, {"message": "Endpoint request timed out"}),
        "no_route": (403, {"message": "Missing Authentication Token"}),
        "throttled": (429, {"message": "Too Many Requests"}),
        "too_large": (413, {"message": "Request Too Long"}),
        "bad_request": (400, {"message": "Bad Request"}),
    },
}


# --- requests -----------------------------------------------------------------------------------


@dataclass
class HttpExchange:
    """One request served: what came in, the event sent, what went out."""

    method: str
    path: str
    route_key: str | None
    status: int
    event: dict | None = None
    invocation: Any = None
    error: str | None = None
    duration_ms: float = 0.0


@dataclass
class _Request:
    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes
    client_ip: str
    host: str


class _TokenBucket:
    """API Gateway's throttle: `rate` requests per second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int):
        if rate <= 0 or burst < 1:
            raise ValueError(f"throttle needs rate > 0 and burst >= 1, got rate={rate!r}, burst={burst!r}")
        self.rate, self.burst = float(rate), int(burst)
        self._tokens = float(burst)
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


def incoming_trace(request: _Request) -> str | None:
    """The caller's `X-Amzn-Trace-Id` header, if it sent one."""
    return next((v for k, v in request.headers if k.lower() == "x-amzn-trace-id"), None)


# --- the API ------------------------------------------------------------------------------------


class HttpApi:
    """A local API Gateway API. `invoke(function_name, event)` runs a function synchronously and
    returns its `Invocation` (`LocalRuntime.invoke` fits); it may raise TooManyRequestsException
    or ResourceNotFoundException. Use as a context manager, or `start()` / `close()`."""

    def __init__(self, invoke: Callable[..., Any], routes: dict[str, str] | None = None, *,
                 kind: str = "http", payload_version: str | None = None, host: str = "127.0.0.1",
                 port: int = 0, stage: str | None = None, stage_variables: dict[str, str] | None = None,
                 integration_timeout_s: float | None = None, throttle: tuple[float, int] | None = None,
                 binary_media_types: tuple[str, ...] = (), region: str = REGION, account: str = ACCOUNT_ID):
        if not callable(invoke):
            raise TypeError(f"invoke must be callable, got {invoke!r}")
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the local API listens on loopback only, not {host!r}")
        self.kind = kind
        self.payload_version = payload_version or ("2.0" if kind == "http" else "1.0")
        if self.payload_version not in PAYLOAD_VERSIONS:
            raise ValueError(f"payload_version {self.payload_version!r} is not one of {', '.join(PAYLOAD_VERSIONS)}")
        self.integration_timeout_s = integration_timeout_s or INTEGRATION_TIMEOUT_S[kind]
        if not 0 < self.integration_timeout_s <= INTEGRATION_TIMEOUT_S[kind]:
            raise ValueError(f"integration_timeout_s must be in (0, {INTEGRATION_TIMEOUT_S[kind]:g}] for a {kind} API")
        self.stage = stage or ("$default" if kind == "http" else "prod")
        self.stage_variables = dict(stage_variables or {})
        self.binary_media_types = tuple(binary_media_types)
        self.region, self.account = region, account
        self.api_id = events.new_api_id()
        self._invoke = invoke
        try:
            self._takes_trace = "trace_header" in inspect.signature(invoke).parameters
        except (TypeError, ValueError):
            self._takes_trace = False
        self._throttle = _TokenBucket(*throttle) if throttle else None
        self._routes: dict[str, Route] = {}
        self._routes_lock = threading.Lock()
        self.exchanges: deque[HttpExchange] = deque(maxlen=1000)
        self._host, self._port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        for key, function in (routes or {}).items():
            self.add_route(key, function)

    # -- routes ----------------------------------------------------------------------------
    def add_route(self, key: str, function: str, *, payload_version: str | None = None) -> Route:
        """Route requests to a function (replaces a route with the same key)."""
        route = parse_route(key, function, payload_version or self.payload_version, self.kind)
        with self._routes_lock:
            self._routes[route.key] = route
        return route

    def remove_route(self, key: str) -> None:
        with self._routes_lock:
            if self._routes.pop(key, None) is None:
                raise KeyError(f"no route {key!r}; routes: {', '.join(self._routes) or 'none'}")

    @property
    def routes(self) -> list[Route]:
        with self._routes_lock:
            return list(self._routes.values())

    def find_route(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        parts = path_parts(path)
        best: tuple[Route, dict[str, str]] | None = None
        for route in self.routes:
            params = route.match(method, parts)
            if params is not None and (best is None or route.rank() > best[0].rank()):
                best = (route, params)
        return best

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "HttpApi":
        if self._server is None:
            self._server = _Server((self._host, self._port), self)
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                            name=f"lambdalab-api-{self.port}", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving: close the listening socket and every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> "HttpApi":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the API is not running; call start()")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- one request -----------------------------------------------------------------------
    def refused(self, method: str, path: str, reason: str) -> None:
        """Record a request answered 400 before any route or invoke: incomplete or malformed."""
        self.exchanges.append(HttpExchange(method, path, None, 400, error=f"bad request: {reason}"))

    def handle(self, request: _Request) -> HttpResponse:
        started = time.perf_counter()
        path = unquote(request.raw_path)
        exchange = HttpExchange(request.method, request.raw_path, None, 0)
        request_id = events.short_request_id()
        try:
            response = self._serve(request, exchange)
        except Exception as e:  # a bug here must still answer the client
            exchange.error = f"{type(e).__name__}: {e}"
            response = self._error("malformed")
        response.headers += self._response_ids(request_id)
        exchange.status = response.status
        exchange.duration_ms = (time.perf_counter() - started) * 1000
        exchange.path = path
        self.exchanges.append(exchange)
        return response

    def _serve(self, request: _Request, exchange: HttpExchange) -> HttpResponse:
        if len(request.body) > MAX_REQUEST_BYTES:
            return self._error("too_large")
        found = self.find_route(request.method, request.raw_path)
        if found is None:
            return self._error("no_route")
        route, params = found
        exchange.route_key = route.key
        if self._throttle is not None and not self._throttle.take():
            return self._error("throttled")
        trace = self._trace_header(request)
        event = self._event(route, params, request, trace)
        exchange.event = event
        outcome, value = self._call(route.function, event, trace)
        if outcome == "timeout":
            exchange.error = f"integration timed out after {self.integration_timeout_s:g} s"
            return self._error("timeout")
        if outcome == "raised":
            exchange.error = f"{type(value).__name__}: {value}"
            return self._error("invoke_rejected")
        exchange.invocation = value
        if getattr(value, "error", None) is not None:
            exchange.error = f"{value.error.get('errorType')}: {value.error.get('errorMessage')}"
            return self._error("function_error")
        try:
            if route.payload_version == "2.0":
                return response_v2(value.result, getattr(value, "payload", None) or None)
            return response_v1(value.result)
        except Malformed as e:
            exchange.error = f"malformed Lambda proxy response: {e}"
            return self._error("malformed")

    def _trace_header(self, request: _Request) -> str:
        """The `X-Amzn-Trace-Id` the integration gets: the caller's, or a new unsampled trace
        (an API that records no segment of its own leaves the decision to Lambda)."""
        return incoming_trace(request) or new_trace_header(parent=False, sampled=None)

    def _call(self, function: str, event: dict, trace: str) -> tuple[str, Any]:
        """Invoke synchronously, giving up (as API Gateway does) after the integration timeout;
        the function itself runs on to its own timeout."""
        box: dict[str, Any] = {}
        done = threading.Event()
        kwargs = {"trace_header": trace} if self._takes_trace else {}

        def run() -> None:
            try:
                box["value"] = self._invoke(function, event, **kwargs)
            except Exception as e:
                box["error"] = e
            finally:
                done.set()

        threading.Thread(target=run, name="lambdalab-api-invoke", daemon=True).start()
        if not done.wait(self.integration_timeout_s):
            return "timeout", None
        if "error" in box:
            return "raised", box["error"]
        return "ok", box["value"]

    def _error(self, what: str) -> HttpResponse:
        status, payload = ERRORS[self.kind][what]
        return json_response(status, payload)

    def _response_ids(self, request_id: str) -> list[tuple[str, str]]:
        if self.kind == "http":
            return [("Apigw-Requestid", request_id)]
        return [("x-amzn-RequestId", str(uuid.uuid4())), ("x-amz-apigw-id", request_id)]

    # -- the event -------------------------------------------------------------------------
    def _is_binary(self, content_type: str | None, body: bytes) -> bool:
        media = (content_type or "").split(";")[0].strip().lower()
        if self.kind == "rest":
            return any(t == "*/*" or t.lower() == media for t in self.binary_media_types)
        if media:
            return not _TEXT_TYPES.match(media)
        try:
            body.decode("utf-8")
            return False
        except UnicodeDecodeError:
            return True

    def _event(self, route: Route, params: dict[str, str], request: _Request, trace: str) -> dict:
        content_type = next((v for k, v in request.headers if k.lower() == "content-type"), None)
        body: str | bytes | None = None
        if request.body:
            body = request.body if self._is_binary(content_type, request.body) \
                else request.body.decode("utf-8", "replace")
        proxy_headers = [("X-Amzn-Trace-Id", trace), ("X-Forwarded-For", request.client_ip),
                         ("X-Forwarded-Port", str(self.port)), ("X-Forwarded-Proto", "http")]
        # The trace header is always the one the integration runs under (the caller's, or the
        # stage's when it traces); the others only when the caller did not send them.
        sent = [(k, v) for k, v in request.headers if k.lower() != "x-amzn-trace-id"]
        given = {k.lower() for k, _ in sent}
        headers = sent + [(k, v) for k, v in proxy_headers if k.lower() not in given]
        if route.payload_version == "2.0":
            return self._event_v2(route, params, request, headers, body)
        return self._event_v1(route, params, request, headers, body)

    def _common_context(self, context: dict, request: _Request) -> None:
        context["apiId"] = self.api_id
        context["domainName"] = request.host
        context["domainPrefix"] = self.api_id

    def _event_v2(self, route: Route, params: dict[str, str], request: _Request,
                  headers: list[tuple[str, str]], body: str | bytes | None) -> dict:
        event = events.apigateway_v2_event(
            request.method, request.raw_path, body=body, headers=headers,
            query=request.raw_query, stage=self.stage, region=self.region, account=self.account)
        event["routeKey"] = route.key
        # Only the headers that arrived (plus API Gateway's own): names lower-cased, repeats joined.
        joined: dict[str, list[str]] = {}
        for name, value in headers:
            if name.lower() != "cookie":
                joined.setdefault(name.lower(), []).append(value)
        event["headers"] = {k: ",".join(v) for k, v in joined.items()}
        event["requestContext"]["routeKey"] = route.key
        event["requestContext"]["http"]["sourceIp"] = request.client_ip
        self._common_context(event["requestContext"], request)
        # Keep AWS's key order: pathParameters and stageVariables come after body.
        tail = {k: event.pop(k) for k in ("body", "pathParameters", "isBase64Encoded") if k in event}
        if "body" in tail:
            event["body"] = tail["body"]
        if params:
            event["pathParameters"] = params
        event["isBase64Encoded"] = tail["isBase64Encoded"]
        if self.stage_variables:
            event["stageVariables"] = dict(self.stage_variables)
        return event

    def _event_v1(self, route: Route, params: dict[str, str], request: _Request,
                  headers: list[tuple[str, str]], body: str | bytes | None) -> dict:
        event = events.apigateway_v1_event(
            request.method, request.raw_path, body=body, headers=headers,
            query=request.raw_query, stage=self.stage, region=self.region, account=self.account)
        grouped: dict[str, list[str]] = {}
        for name, value in headers:
            grouped.setdefault(name, []).append(value)
        event["headers"] = {k: v[-1] for k, v in grouped.items()}
        event["multiValueHeaders"] = grouped
        resource = route.template if route.template is not None else "/{proxy+}"
        event["resource"] = resource
        context = event["requestContext"]
        context["resourcePath"] = resource
        context["identity"]["sourceIp"] = request.client_ip
        self._common_context(context, request)
        event["pathParameters"] = params or None
        event["stageVariables"] = dict(self.stage_variables) or None
        return event


# --- the HTTP server ----------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY every small response waits for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    # An idle keep-alive connection gives its thread back after this long.
    timeout = 30
    server_version = "lambdalab-apigateway"
    sys_version = ""
    server: "_Server"

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self.rfile = HeaderEndReader(self.rfile)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def _serve(self) -> None:
        api = self.server.api
        try:
            if not self.rfile.headers_ended:
                raise BadRequestError("the request's headers never ended")
            body = read_body(self.headers, self.rfile, MAX_REQUEST_BYTES)
        except BadRequestError as e:
            api.refused(self.command, self.path, str(e))
            response = api._error("bad_request")
            self.close_connection = True
        else:
            if body is None:
                response = api._error("too_large")
                self.close_connection = True
            else:
                split = urlsplit(self.path)
                request = _Request(method=self.command, raw_path=split.path or "/", raw_query=split.query,
                                   headers=list(self.headers.items()), body=body,
                                   client_ip=self.client_address[0],
                                   host=self.headers.get("Host") or f"127.0.0.1:{api.port}")
                response = api.handle(request)
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve  # noqa: N815 - http.server's method names


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False  # a second API must not share a port with the first
    request_queue_size = 256  # hundreds of clients connecting at once must not wait out SYN retries

    def __init__(self, address: tuple[str, int], api: HttpApi):
        self.api = api
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client left before its answer: nothing to report
        super().handle_error(request, client_address)

    def track(self, conn: socket.socket, open_: bool) -> None:
        with self._conns_lock:
            (self._conns.add if open_ else self._conns.discard)(conn)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def attach(cloud: Any, routes: dict[str, str] | None = None, **options: Any) -> HttpApi:
    """An HTTP API on loopback whose `routes` run functions of `cloud` (a `LocalCloud`) in its runtime.
    Each request starts a new trace (API Gateway is where a chain begins)."""

    def invoke(function_name: str, event: dict, trace_header: str | None = None) -> Any:
        return cloud.invoke(function_name, event, trace_header=trace_header)

    return HttpApi(invoke, routes, region=cloud.region, account=cloud.account_id, **options).start()
