"""moto's server for the local cloud, with a WSGI layer in front and a clean shutdown.

`Middleware` sits between the HTTP server and moto's app: it records each request's caller and
trace header (`lambdalab.cloud.request_context`) for moto's patched services, serves the Lambda
APIs moto lacks (provisioned concurrency, recursion config) from the `LambdaService` and REST API
stages under `/_aws/execute-api/` (`lambdalab.cloud.http_endpoints`), and turns
moto's XML access-denied errors into the JSON that JSON-protocol services answer. `make_moto_server`
builds moto's threaded server around it, raising when the port is taken and freeing the port,
its connections and their threads on stop.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from werkzeug.serving import ThreadedWSGIServer

from lambdalab.cloud.admin_auth import control_plane_refused, is_signed, missing_authentication, signed_by_admin
from lambdalab.cloud.http_endpoints import EXECUTE_API_PREFIX, HttpEndpoints
from lambdalab.cloud.lambda_service import LambdaApiError, LambdaService, function_name_from
from lambdalab.cloud.request_context import RequestContext, serving


def _signing_service(environ: dict[str, Any]) -> str | None:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", auth)
    return match.group(1) if match else None


# --- the WSGI layer in front of moto ---------------------------------------------------------

_PROVISIONED = re.compile(r"^/2019-09-30/functions/(?P<name>[^/]+)/provisioned-concurrency/?$")
_RECURSION = re.compile(r"^/2024-08-31/functions/(?P<name>[^/]+)/recursion-config/?$")


class Middleware:
    """Remembers each request's caller and trace header; serves Lambda APIs moto lacks."""

    def __init__(self, app: Callable, service: LambdaService, admin: tuple[str, str] | None = None,
                 endpoints: HttpEndpoints | None = None):
        self.app = app
        self.service = service
        self.admin = admin  # (access key id, secret) that may use /moto-api; None: nobody may
        self.endpoints = endpoints  # REST API stages served under EXECUTE_API_PREFIX

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        if self.endpoints is not None and path.startswith(EXECUTE_API_PREFIX):
            # A client of the API, not of AWS's control plane: no SigV4, no IAM enforcement.
            response = self.endpoints.serve_rest(environ)
            headers = [(k, v) for k, v in response.headers if k.lower() not in ("content-length", "connection")]
            start_response(f"{response.status} {http.client.responses.get(response.status, 'Unknown')}",
                           headers + [("Content-Length", str(len(response.body)))])
            return [response.body]
        refusal = self._refusal(environ, path)
        if refusal is not None:
            status, headers, data = refusal
            start_response(status, headers)
            return [data]
        if _signing_service(environ) == "lambda":
            for pattern, handler in ((_PROVISIONED, self._provisioned), (_RECURSION, self._recursion)):
                match = pattern.match(path)
                if match:
                    return self._json_api(environ, start_response, handler, match["name"])
        if not _answers_json(environ):
            with serving(RequestContext.from_environ(environ)):
                return self.app(environ, start_response)
        captured: list[Any] = []
        with serving(RequestContext.from_environ(environ)):
            body = self.app(environ, lambda status, headers, exc_info=None: captured.extend([status, headers]))
        status, headers = captured[0], list(captured[1])
        if status.startswith("403"):
            status, headers, body = _json_access_denied(environ, status, headers, body)
        start_response(status, headers)
        return body

    def _refusal(self, environ: dict[str, Any], path: str) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """moto's control plane only for the administrator's signature; under IAM enforcement,
        AWS's 403 for a request without any signature (moto would fail with a traceback)."""
        if path.startswith("/moto-api"):
            body = _buffer_input(environ)
            if self.admin is None or not signed_by_admin(environ, body, *self.admin):
                return control_plane_refused()
            return None
        if _iam_enforcing() and not is_signed(environ):
            return missing_authentication(environ)
        return None

    def _provisioned(self, environ: dict[str, Any], name: str, body: dict) -> tuple[int, dict]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if query.get("List") == ["ALL"]:
            return self.service.provisioned_concurrency(name, None, "LIST", body)
        qualifier = (query.get("Qualifier") or [None])[0]
        return self.service.provisioned_concurrency(name, qualifier, environ["REQUEST_METHOD"], body)

    def _recursion(self, environ: dict[str, Any], name: str, body: dict) -> tuple[int, dict]:
        return self.service.recursion_config(name, environ["REQUEST_METHOD"], body)

    def _json_api(self, environ: dict[str, Any], start_response: Callable,
                  handler: Callable[[dict, str, dict], tuple[int, dict]], raw_name: str) -> list[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            body = json.loads(raw) if raw.strip() else {}
            status, payload = handler(environ, function_name_from(raw_name), body)
            headers = [("Content-Type", "application/json")]
        except json.JSONDecodeError:
            status, payload, headers = _error_response(LambdaApiError(
                400, "InvalidRequestContentException", "Could not parse request body into json"))
        except LambdaApiError as e:
            status, payload, headers = _error_response(e)
        data = b"" if status == 204 else json.dumps(payload).encode()
        headers.append(("Content-Length", str(len(data))))
        headers.append(("x-amzn-RequestId", str(uuid.uuid4())))
        start_response(f"{status} {_REASONS.get(status, 'OK')}", headers)
        return [data]


def _buffer_input(environ: dict[str, Any]) -> bytes:
    """Read the request body, leaving an unread copy for the app behind."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


# REST-JSON services: their errors are JSON whatever the request's content type (GETs have none).
_REST_JSON_SERVICES = {"lambda", "apigateway", "scheduler"}


def _answers_json(environ: dict[str, Any]) -> bool:
    """Whether the service called answers errors in JSON (JSON and REST-JSON protocols)."""
    return (environ.get("CONTENT_TYPE", "").startswith("application/x-amz-json")
            or _signing_service(environ) in _REST_JSON_SERVICES)


def _iam_enforcing() -> bool:
    """moto's own test for whether requests are being authenticated now."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


_XML_ERROR = re.compile(rb"<Code>(?P<code>[^<]+)</Code>\s*<Message>(?P<message>[^<]*)</Message>")


def _json_access_denied(environ: dict[str, Any], status: str, headers: list[tuple[str, str]],
                        body: Any) -> tuple[str, list[tuple[str, str]], Any]:
    """moto answers IAM denials in XML even to JSON-protocol services (SQS, DynamoDB, Logs...);
    rewrite them as those services answer, so a handler sees `AccessDeniedException`
    (`AccessDenied` for SQS) in `e.response["Error"]["Code"]` instead of "403"."""
    data = b"".join(body)
    if hasattr(body, "close"):
        body.close()
    match = _XML_ERROR.search(data)
    if match is None:
        return status, headers, [data]
    code, message = match["code"].decode(), match["message"].decode()
    sqs = environ.get("HTTP_X_AMZ_TARGET", "").startswith("AmazonSQS")
    if code == "AccessDenied" and not sqs:
        code = "AccessDeniedException"
    payload = json.dumps({"__type": code, "message": message}).encode()
    kept = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")]
    kept += [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(payload))),
             ("x-amzn-ErrorType", code)]
    if sqs:
        kept.append(("x-amzn-query-error", f"{code};Sender"))
    return status, kept, [payload]


_REASONS = {200: "OK", 202: "Accepted", 204: "No Content", 400: "Bad Request", 404: "Not Found",
            409: "Conflict", 413: "Request Entity Too Large", 429: "Too Many Requests"}


def _error_response(e: LambdaApiError) -> tuple[int, dict, list[tuple[str, str]]]:
    payload = {"Type": "User", "message": e.message, **e.fields}
    return e.status, payload, [("Content-Type", "application/json"), ("X-Amzn-ErrorType", e.error_type)]


# --- moto's server, with our layer in front and a clean shutdown -----------------------------


class _BindError(Exception):
    """Carries a bind failure past werkzeug's handler (which would exit the process)."""


class _TrackingServer(ThreadedWSGIServer):
    """werkzeug's threaded server, remembering its connections so `close` can end them all."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._connections_lock = threading.Lock()

    def server_bind(self) -> None:
        # werkzeug turns a bind failure into print + sys.exit(1); a library must raise instead.
        try:
            super().server_bind()
        except OSError as e:
            self.socket.close()
            raise _BindError(e) from e

    def process_request(self, request: socket.socket, client_address: Any) -> None:  # noqa: D401
        thread = threading.Thread(target=self._serve_connection, args=(request, client_address),
                                  name="lambdalab-moto-request", daemon=True)
        with self._connections_lock:
            self._connections[thread] = request
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._connections_lock:
                self._connections.pop(threading.current_thread(), None)

    def close_connections(self, timeout: float = 5.0) -> None:
        """End every open keep-alive connection and wait for its thread."""
        with self._connections_lock:
            items = list(self._connections.items())
        for _, sock in items:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread, _ in items:
            thread.join(max(0.0, deadline - time.monotonic()))


def make_moto_server(service: LambdaService, host: str = "127.0.0.1", port: int = 0,
                     admin: tuple[str, str] | None = None, endpoints: HttpEndpoints | None = None) -> Any:
    """A `ThreadedMotoServer` whose app sits behind `Middleware` and whose stop frees the port;
    `/moto-api` answers only calls signed with `admin` (access key id, secret)."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

    class QuietHandler(MotoRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass  # one line per AWS call would drown the notebook's output

    class Dispatcher(DomainDispatcherApplication):
        """moto's dispatcher, remembering which backend serves each host.

        moto works the backend out again for every request, under one lock all requests share: it
        lists its package directory (a stat per service) and tries every service's URL patterns,
        about 1 ms each time, so concurrent requests queue behind it. The hosts it asks about are
        its own inferences (service and region), so the memo stays small."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.backends_by_host: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            try:
                return self.backends_by_host[host]
            except KeyError:
                backend = self.backends_by_host[host] = super().get_backend_for_host(host)
                return backend

    class Server(ThreadedMotoServer):
        def start(self) -> None:
            # Bind here, not in the thread, so a busy port raises OSError to the caller
            # (moto's own start() would wait forever for a server that never came up).
            app = Middleware(Dispatcher(create_backend_app), service, admin, endpoints)
            try:
                self._server = _TrackingServer(self._ip_address, self._port, app, QuietHandler)
            except _BindError as e:
                raise e.args[0] from None
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                            name="lambdalab-moto-server", daemon=True)
            self._thread.start()
            self._server_ready_event.set()

        def stop(self) -> None:
            if self._thread is None:
                return
            super().stop()
            if self._server is not None:
                self._server.server_close()
                self._server.close_connections()

    return Server(ip_address=host, port=port, verbose=False)
