"""The seam between moto and the local runtime: where moto would run Lambda, the runtime does.

moto runs Lambda functions only in Docker, drops S3 notifications to Lambda without it, calls
every trigger synchronously inside the request that caused it, sends each SQS message alone and
never redelivers, and leaves no room for the trace header that carries Lambda's loop count.
This module owns the patches applied to moto while a `LocalCloud` is open (and removed when it
closes), the WSGI layer in front of moto's server (it remembers, per request, who called and with
which `X-Amzn-Trace-Id`, and serves the Lambda APIs moto lacks), and the pollers that play
Lambda's event source mappings for SQS queues and DynamoDB streams.

What happens to an invocation is decided by a `LambdaService` (the local cloud); this module
only translates between moto's objects and that service.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol
from urllib.parse import parse_qs, unquote

from werkzeug.serving import ThreadedWSGIServer

from lambdalab.events import s3 as s3events

TRACE_ATTRIBUTE = "AWSTraceHeader"


# --- who is calling: remembered per HTTP request --------------------------------------------


@dataclass(frozen=True)
class RequestContext:
    """What the front end of an AWS service knows about the request it is serving."""

    trace_header: str | None
    source_ip: str
    access_key: str | None
    request_id: str = field(default_factory=s3events.request_id)
    host_id: str = field(default_factory=s3events.host_id)


_local = threading.local()


def current() -> RequestContext | None:
    """The request this thread is serving, if any."""
    return getattr(_local, "context", None)


def current_trace() -> str | None:
    ctx = current()
    return ctx.trace_header if ctx else None


@contextmanager
def serving(ctx: RequestContext | None) -> Iterator[None]:
    """Run a block as if serving `ctx` (pollers use it so that what they cause carries the trace)."""
    previous = current()
    _local.context = ctx
    try:
        yield
    finally:
        _local.context = previous


_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")


def _context_from_environ(environ: dict[str, Any]) -> RequestContext:
    match = _ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION", ""))
    # botocore percent-encodes the header (a lineage's '|' arrives as %7C).
    return RequestContext(trace_header=unquote(environ.get("HTTP_X_AMZN_TRACE_ID", "")) or None,
                          source_ip=environ.get("REMOTE_ADDR") or "127.0.0.1",
                          access_key=match.group(1) if match else None)


def _signing_service(environ: dict[str, Any]) -> str | None:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", auth)
    return match.group(1) if match else None


# --- what the seam asks of the local cloud ---------------------------------------------------


class LambdaApiError(Exception):
    """An error the Lambda API returns: HTTP status, error type, message, extra body fields."""

    def __init__(self, status: int, error_type: str, message: str, **fields: Any):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.fields = fields


class LambdaService(Protocol):
    """The local cloud's Lambda service, as the seam sees it."""

    def function_created(self, fn: Any) -> None: ...
    def function_changed(self, fn: Any) -> None: ...
    def function_deleted(self, name: str) -> None: ...
    def invoke_api(self, fn: Any, payload: bytes, invocation_type: str, log_type: str | None,
                   trace_header: str | None, response_headers: dict[str, Any]) -> bytes: ...
    def deliver(self, function_ref: str, event: dict, trace_header: str | None) -> None: ...
    def invoke_batch(self, function_arn: str, event: dict, trace_header: str | None) -> "BatchOutcome": ...
    def provisioned_concurrency(self, function_name: str, qualifier: str | None, method: str,
                                body: dict) -> tuple[int, dict]: ...
    def recursion_config(self, function_name: str, method: str, body: dict) -> tuple[int, dict]: ...


@dataclass(frozen=True)
class BatchOutcome:
    """What became of a batch handed to a function by an event source mapping."""

    invoked: bool  # False when throttled or stopped before the handler ran
    ok: bool
    result: Any = None


# --- the WSGI layer in front of moto ---------------------------------------------------------

_PROVISIONED = re.compile(r"^/2019-09-30/functions/(?P<name>[^/]+)/provisioned-concurrency/?$")
_RECURSION = re.compile(r"^/2024-08-31/functions/(?P<name>[^/]+)/recursion-config/?$")


def function_name_from(ref: str) -> str:
    """A function name from a name, a partial ARN or a full ARN (qualifier dropped)."""
    ref = unquote(ref)
    if ":function:" in ref:
        ref = ref.split(":function:", 1)[1]
    return ref.split(":", 1)[0]


class Middleware:
    """Remembers each request's caller and trace header; serves Lambda APIs moto lacks."""

    def __init__(self, app: Callable, service: LambdaService):
        self.app = app
        self.service = service

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        if _signing_service(environ) == "lambda":
            for pattern, handler in ((_PROVISIONED, self._provisioned), (_RECURSION, self._recursion)):
                match = pattern.match(path)
                if match:
                    return self._json_api(environ, start_response, handler, match["name"])
        if not environ.get("CONTENT_TYPE", "").startswith("application/x-amz-json"):
            with serving(_context_from_environ(environ)):
                return self.app(environ, start_response)
        captured: list[Any] = []
        with serving(_context_from_environ(environ)):
            body = self.app(environ, lambda status, headers, exc_info=None: captured.extend([status, headers]))
        status, headers = captured[0], list(captured[1])
        if status.startswith("403"):
            status, headers, body = _json_access_denied(environ, status, headers, body)
        start_response(status, headers)
        return body

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


def make_moto_server(service: LambdaService, host: str = "127.0.0.1", port: int = 0) -> Any:
    """A `ThreadedMotoServer` whose app sits behind `Middleware` and whose stop frees the port."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

    class QuietHandler(MotoRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass  # one line per AWS call would drown the notebook's output

    class Server(ThreadedMotoServer):
        def start(self) -> None:
            # Bind here, not in the thread, so a busy port raises OSError to the caller
            # (moto's own start() would wait forever for a server that never came up).
            app = Middleware(DomainDispatcherApplication(create_backend_app), service)
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


# --- the patches ----------------------------------------------------------------------------


class Patches:
    """Attributes replaced on moto's classes and modules; `remove()` puts the originals back."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def replace(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        self._saved.append((owner, name, original))
        setattr(owner, name, make(original))

    def remove(self) -> None:
        while self._saved:
            owner, name, original = self._saved.pop()
            setattr(owner, name, original)


def _moto_error(error_type: str, message: str, status: int = 400, **fields: Any) -> Exception:
    from moto.core.exceptions import JsonRESTError

    class LambdaError(JsonRESTError):
        code = status

        def __init__(self) -> None:
            super().__init__(error_type, message)
            self.description = json.dumps({"__type": error_type, "Type": "User", "message": message, **fields})

        def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
            headers = super().get_headers(*args, **kwargs)
            if status == 429:
                headers.append(("Retry-After", "1"))
            return headers

    return LambdaError()


def as_moto_error(e: LambdaApiError) -> Exception:
    return _moto_error(e.error_type, e.message, e.status, **e.fields)


def install(service: LambdaService, patches: Patches) -> None:
    """Route moto's Lambda service, triggers and event source mappings to `service`."""
    from moto.awslambda.models import LambdaBackend, LambdaFunction
    from moto.awslambda.responses import LambdaResponse
    from moto.s3 import notifications
    from moto.s3.models import Notification
    from moto.sns.models import Subscription
    from moto.sqs.models import SQSBackend

    def wrap_errors(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except LambdaApiError as e:
            raise as_moto_error(e) from None

    # -- function lifecycle: mirror every change into the runtime --
    def create_function(original: Callable) -> Callable:
        def create(self: Any, spec: dict[str, Any]) -> Any:
            runtime = spec.get("Runtime")
            if spec.get("PackageType", "Zip") != "Zip" or not (runtime or "").startswith("python3"):
                raise _moto_error("InvalidParameterValueException",
                                  f"The local cloud runs Python zip functions only (Runtime python3.x, "
                                  f"PackageType Zip); got Runtime={runtime!r}")
            fn = original(self, spec)
            latest = self.get_function(spec["FunctionName"])
            latest.lambdalab_dead_letter_arn = (spec.get("DeadLetterConfig") or {}).get("TargetArn")
            try:
                service.function_created(latest)
            except LambdaApiError as e:
                self._lambdas.del_function(spec["FunctionName"])
                raise as_moto_error(e) from None
            return fn
        return create

    def changed_after(original: Callable) -> Callable:
        def call(self: Any, function_name: str, *args: Any, **kwargs: Any) -> Any:
            result = original(self, function_name, *args, **kwargs)
            wrap_errors(lambda: service.function_changed(self.get_function(function_name)))
            return result
        return call

    def update_function_configuration(original: Callable) -> Callable:
        def call(self: Any, function_name: str, qualifier: Any, body: dict[str, Any]) -> Any:
            result = original(self, function_name, qualifier, body)
            fn = self.get_function(function_name)
            if "DeadLetterConfig" in body:
                fn.lambdalab_dead_letter_arn = (body.get("DeadLetterConfig") or {}).get("TargetArn") or None
                result = fn.get_configuration()
            wrap_errors(lambda: service.function_changed(fn))
            return result
        return call

    def put_event_invoke_config(original: Callable) -> Callable:
        def call(self: Any, function_name: str, config: dict[str, Any]) -> Any:
            result = original(self, function_name, config)
            fn = self.get_function(function_name)
            # moto appends and then reads the first one back; Lambda keeps the last put.
            fn.event_invoke_config = fn.event_invoke_config[-1:]
            wrap_errors(lambda: service.function_changed(fn))
            return result
        return call

    def delete_function(original: Callable) -> Callable:
        def call(self: Any, function_name: str, qualifier: str | None = None) -> None:
            name = function_name_from(function_name)
            original(self, function_name, qualifier)
            if qualifier in (None, "$LATEST") and ":" not in unquote(function_name).split(":function:")[-1]:
                service.function_deleted(name)
        return call

    def invoke_api(original: Callable) -> Callable:
        def call(self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
                 response_headers: dict[str, Any]) -> bytes:
            fn = self.get_function(function_name, qualifier)
            payload = body.encode() if isinstance(body, str) else (body or b"")
            return wrap_errors(lambda: service.invoke_api(
                fn, payload, headers.get("X-Amz-Invocation-Type") or "RequestResponse",
                headers.get("X-Amz-Log-Type"), current_trace(), response_headers))
        return call

    def function_invoke(original: Callable) -> Callable:
        # moto's other callers (InvokeAsync, Kinesis, CloudWatch Logs subscriptions) land here.
        def call(self: Any, body: Any, request_headers: Any, response_headers: dict[str, Any]) -> bytes:
            payload = body.encode() if isinstance(body, str) else (body or b"")
            kind = (request_headers or {}).get("x-amz-invocation-type") or "RequestResponse"
            return wrap_errors(lambda: service.invoke_api(self, payload, kind, None, current_trace(),
                                                          response_headers))
        return call

    patches.replace(LambdaBackend, "create_function", create_function)
    patches.replace(LambdaBackend, "update_function_code", changed_after)
    patches.replace(LambdaBackend, "update_function_configuration", update_function_configuration)
    patches.replace(LambdaBackend, "put_function_concurrency", changed_after)
    patches.replace(LambdaBackend, "delete_function_concurrency", changed_after)
    patches.replace(LambdaBackend, "put_function_event_invoke_config", put_event_invoke_config)
    patches.replace(LambdaBackend, "delete_function_event_invoke_config", changed_after)
    patches.replace(LambdaBackend, "delete_function", delete_function)
    def invoke_async_api(original: Callable) -> Callable:
        # The deprecated InvokeAsync API: an Event invocation answered with {"Status": 202}.
        def call(self: Any) -> Any:
            index = -3 if self.path.endswith("/") else -2
            fn = self.backend.get_function(unquote(self.path.rsplit("/", 3)[index]), None)
            body = self.body.encode() if isinstance(self.body, str) else (self.body or b"")
            wrap_errors(lambda: service.invoke_api(fn, body, "Event", None, current_trace(), {}))
            return 202, {"status": 202}, json.dumps({"Status": 202})
        return call

    def get_configuration(original: Callable) -> Callable:
        def call(self: Any, on_create: bool = False) -> dict[str, Any]:
            config = original(self, on_create)
            dead_letter = getattr(self, "lambdalab_dead_letter_arn", None)
            if dead_letter:  # moto accepts DeadLetterConfig but never shows it
                config["DeadLetterConfig"] = {"TargetArn": dead_letter}
            return config
        return call

    patches.replace(LambdaFunction, "get_configuration", get_configuration)
    patches.replace(LambdaBackend, "invoke", invoke_api)
    patches.replace(LambdaFunction, "invoke", function_invoke)
    patches.replace(LambdaResponse, "invoke_async", invoke_async_api)

    # -- event source mappings: Lambda polls; moto's synchronous push is switched off --
    def create_event_source_mapping(original: Callable) -> Callable:
        def call(self: Any, spec: dict[str, Any]) -> Any:
            esm = original(self, spec)
            _detach_push(self.account_id, self.region_name, esm)
            return esm
        return call

    patches.replace(LambdaBackend, "create_event_source_mapping", create_event_source_mapping)

    # -- S3: full events, asynchronous delivery, filters on the encoded key --
    def get_s3_event(original: Callable) -> Callable:
        def call(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
            ctx = current() or RequestContext(trace_header=None, source_ip="127.0.0.1", access_key=None)
            requester = s3events.Requester(
                principal_id=s3events.principal_id(ctx.access_key, bucket.account_id),
                source_ip=ctx.source_ip, request_id=ctx.request_id, host_id=ctx.host_id)
            return s3events.from_moto(event_name, bucket, key, notification_id, requester)
        return call

    def invoke_awslambda(original: Callable) -> Callable:
        def call(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
            service.deliver(fn_arn, event_body, current_trace())
        return call

    def key_matches(original: Callable) -> Callable:
        # S3 compares prefix and suffix filters with the key as it appears in the event
        # (URL-encoded: a space in a filter must be written '+').
        def call(self: Any, key_name: str) -> bool:
            return original(self, s3events.encode_key(key_name))
        return call

    patches.replace(notifications, "_get_s3_event", get_s3_event)
    patches.replace(notifications, "_invoke_awslambda", invoke_awslambda)
    patches.replace(Notification, "_key_matches", key_matches)

    # -- SQS: a message sent with a trace header keeps it, as SQS's AWSTraceHeader does --
    def send_message(original: Callable) -> Callable:
        def call(self: Any, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
            trace = current_trace()
            system = kwargs.get("system_attributes")
            if trace and not (system or {}).get(TRACE_ATTRIBUTE):
                kwargs["system_attributes"] = {**(system or {}),
                                               TRACE_ATTRIBUTE: {"StringValue": trace, "DataType": "String"}}
            return original(self, queue_name, message_body, *args, **kwargs)
        return call

    patches.replace(SQSBackend, "send_message", send_message)

    # -- SNS: Lambda subscriptions get the real message, asynchronously --
    def sns_publish(original: Callable) -> Callable:
        def call(self: Any, message: str, message_id: str, subject: str | None = None,
                 message_attributes: dict[str, Any] | None = None, group_id: str | None = None,
                 deduplication_id: str | None = None, message_structure: str | None = None) -> None:
            if self.protocol != "lambda":
                return original(self, message, message_id, subject, message_attributes, group_id,
                                deduplication_id, message_structure)
            matcher = self._filter_policy_matcher
            if matcher is not None and not matcher.matches(message_attributes, message):
                return None
            if message_structure == "json":
                message = self._parse_message_structure(message, self.protocol)
            service.deliver(self.endpoint, sns_event(self, message, message_id, subject, message_attributes),
                            current_trace())
            return None
        return call

    patches.replace(Subscription, "publish", sns_publish)


def _detach_push(account_id: str, region: str, esm: Any) -> None:
    """Take a new mapping out of moto's synchronous push path; the pollers serve it."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.sqs.models import sqs_backends

    for queue in sqs_backends[account_id][region].queues.values():
        for key, value in list(queue.lambda_event_source_mappings.items()):
            if value is esm:
                del queue.lambda_event_source_mappings[key]
    for table in dynamodb_backends[account_id][region].tables.values():
        for key, value in list(table.lambda_event_source_mappings.items()):
            if value is esm:
                del table.lambda_event_source_mappings[key]
                shard = table.stream_shard
                esm.lambdalab_cursor = (shard, len(shard.items) if shard is not None and
                                        esm.starting_position == "LATEST" else 0)


# --- event shapes moto gets wrong -----------------------------------------------------------


def sns_event(subscription: Any, message: str, message_id: str, subject: str | None,
              message_attributes: dict[str, Any] | None) -> dict[str, Any]:
    """The event SNS hands a subscribed Lambda function."""
    topic = subscription.topic
    region = topic.sns_backend.region_name
    attributes = {name: {"Type": value.get("Type", "String"), "Value": value.get("Value")}
                  for name, value in (message_attributes or {}).items()}
    return {"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription.arn,
        "Sns": {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": topic.arn,
            "Subject": subject,
            "Message": message,
            "Timestamp": s3events.event_time(),
            "SignatureVersion": "1",
            "Signature": base64.b64encode(uuid.uuid4().bytes * 8).decode(),
            "SigningCertUrl": f"https://sns.{region}.amazonaws.com/SimpleNotificationService-local.pem",
            "UnsubscribeUrl": f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={subscription.arn}",
            "MessageAttributes": attributes,
        },
    }]}


def _sqs_attribute(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        binary = value["BinaryValue"]
        out["binaryValue"] = base64.b64encode(binary).decode() if isinstance(binary, bytes) else binary
    out["stringListValues"] = list(value.get("StringListValues", []))
    out["binaryListValues"] = list(value.get("BinaryListValues", []))
    out["dataType"] = value.get("DataType", "String")
    return out


def sqs_record(message: Any, queue: Any) -> dict[str, Any]:
    """One received message as Lambda's SQS poller hands it to a function."""
    from lambdalab.events.samples import sqs_message_attributes_md5

    attributes = {
        "ApproximateReceiveCount": str(message.approximate_receive_count),
        "SentTimestamp": str(message.sent_timestamp),
        "SenderId": message.sender_id,
        "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
    }
    trace = (message.system_attributes or {}).get(TRACE_ATTRIBUTE)
    if trace:
        attributes[TRACE_ATTRIBUTE] = trace.get("StringValue")
    if queue.fifo_queue:
        attributes["SequenceNumber"] = message.sequence_number
        attributes["MessageGroupId"] = message.group_id
        attributes["MessageDeduplicationId"] = message.deduplication_id
    message_attributes = {k: _sqs_attribute(v) for k, v in (message.message_attributes or {}).items()}
    record: dict[str, Any] = {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.body_md5,
    }
    if message_attributes:
        record["md5OfMessageAttributes"] = sqs_message_attributes_md5(message_attributes)
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue.queue_arn, "awsRegion": queue.region})
    return record


def dynamodb_record(item: Any, source_arn: str, region: str) -> dict[str, Any]:
    """One stream record as Lambda's DynamoDB poller hands it to a function."""
    from datetime import datetime

    from lambdalab.events.samples import item_size

    record = item.to_json()
    stream = dict(record["dynamodb"])
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        stream["ApproximateCreationDateTime"] = float(int(created.timestamp()))
    stream["SizeBytes"] = sum(item_size(stream[k]) for k in ("Keys", "NewImage", "OldImage") if k in stream)
    return {"eventID": record["eventID"], "eventName": record["eventName"], "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": region, "dynamodb": stream,
            "eventSourceARN": source_arn}


# --- event source mappings: Lambda's pollers -------------------------------------------------

_SQS_DEFAULT_CONCURRENCY = 5  # Lambda starts five pollers per SQS mapping
_STREAM_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)


@dataclass
class _MappingState:
    in_flight: int = 0
    waiting_since: float | None = None  # when a partial batch started waiting for its window
    failures: int = 0
    retry_at: float = 0.0


class EventSourcePollers:
    """Polls SQS queues and DynamoDB streams for every enabled event source mapping."""

    def __init__(self, service: LambdaService, interval_s: float = 0.05, workers: int = 8):
        self.service = service
        self.interval_s = interval_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lambdalab-esm")
        self._state: dict[str, _MappingState] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lambdalab-pollers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def reset(self) -> None:
        with self._lock:
            self._state = {k: v for k, v in self._state.items() if v.in_flight}

    def busy(self) -> bool:
        """True while a batch is being handled or an enabled mapping's source has messages ready."""
        with self._lock:
            if any(s.in_flight for s in self._state.values()):
                return True
        return any(self._has_work(b, esm) for b, esm in self._mappings())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            for backend, esm in self._mappings():
                try:
                    self._poll(backend, esm)
                except Exception:  # a mapping whose queue or table vanished: skip it this round
                    continue

    @staticmethod
    def _mappings() -> list[tuple[Any, Any]]:
        from moto.awslambda.models import lambda_backends

        found = []
        for _, _, backend in list(lambda_backends.iter_backends()):
            for esm in list(backend._event_source_mappings.values()):
                if esm.enabled:
                    found.append((backend, esm))
        return found

    def _state_for(self, esm: Any) -> _MappingState:
        with self._lock:
            return self._state.setdefault(esm.uuid, _MappingState())

    def _has_work(self, backend: Any, esm: Any) -> bool:
        try:
            if ":sqs:" in esm.event_source_arn:
                # In-flight, delayed and to-be-redelivered messages are all work still to come.
                queue = _queue_for(backend, esm.event_source_arn)
                return bool(queue._messages) if queue else False
            shard, cursor = _stream_cursor(backend, esm)
            return shard is not None and cursor < len(shard.items)
        except Exception:
            return False

    def _poll(self, backend: Any, esm: Any) -> None:
        if ":sqs:" in esm.event_source_arn:
            self._poll_sqs(backend, esm)
        elif ":dynamodb:" in esm.event_source_arn:
            self._poll_stream(backend, esm)

    # -- SQS --
    def _poll_sqs(self, backend: Any, esm: Any) -> None:
        from moto.sqs.models import sqs_backends

        queue = _queue_for(backend, esm.event_source_arn)
        if queue is None:
            return
        state = self._state_for(esm)
        limit = int((esm.scaling_config or {}).get("MaximumConcurrency") or _SQS_DEFAULT_CONCURRENCY)
        if state.in_flight >= limit or time.monotonic() < state.retry_at:
            return
        visible = sum(1 for m in queue.messages if m.visible)
        if not visible:
            state.waiting_since = None
            return
        window = float(esm.max_batch_window or 0)
        if visible < esm.batch_size and window > 0:
            # Lambda waits up to the batching window for a full batch.
            state.waiting_since = state.waiting_since or time.monotonic()
            if time.monotonic() - state.waiting_since < window:
                return
        state.waiting_since = None
        sqs = sqs_backends[backend.account_id][backend.region_name]
        messages = sqs.receive_message(queue.name, min(esm.batch_size, 10_000), 0,
                                       queue.visibility_timeout, message_attribute_names=["All"])
        if not messages:
            return
        with self._lock:
            state.in_flight += 1
        self._pool.submit(self._run_sqs_batch, backend, esm, queue, messages, state)

    def _run_sqs_batch(self, backend: Any, esm: Any, queue: Any, messages: list[Any], state: _MappingState) -> None:
        from moto.sqs.models import sqs_backends

        try:
            event = {"Records": [sqs_record(m, queue) for m in messages]}
            traces = [(m.system_attributes or {}).get(TRACE_ATTRIBUTE) for m in messages]
            trace = next((t.get("StringValue") for t in traces if t), None)
            outcome = self.service.invoke_batch(esm.function_arn, event, trace)
            if not outcome.invoked:
                state.retry_at = time.monotonic() + 0.2  # throttled: back off, the messages return
                return
            if not outcome.ok:
                return  # the whole batch becomes visible again after the visibility timeout
            done = _succeeded(messages, outcome.result, "ReportBatchItemFailures" in (esm.function_response_types or []))
            sqs = sqs_backends[backend.account_id][backend.region_name]
            for message in done:
                try:
                    sqs.delete_message(queue.name, message.receipt_handle)
                except Exception:
                    pass  # already gone (deleted by the handler itself, or the queue was purged)
        finally:
            with self._lock:
                state.in_flight -= 1

    # -- DynamoDB Streams --
    def _poll_stream(self, backend: Any, esm: Any) -> None:
        state = self._state_for(esm)
        if state.in_flight or time.monotonic() < state.retry_at:
            return
        shard, cursor = _stream_cursor(backend, esm)
        if shard is None or cursor >= len(shard.items):
            return
        with self._lock:
            state.in_flight += 1
        self._pool.submit(self._run_stream_batch, backend, esm, shard, cursor, state)

    def _run_stream_batch(self, backend: Any, esm: Any, shard: Any, cursor: int, state: _MappingState) -> None:
        try:
            items = shard.items[cursor: cursor + esm.batch_size]
            event = {"Records": [dynamodb_record(i, esm.event_source_arn, backend.region_name) for i in items]}
            outcome = self.service.invoke_batch(esm.function_arn, event, None)
            if outcome.ok:
                state.failures = 0
                esm.lambdalab_cursor = (shard, cursor + len(items))
                return
            state.failures += 1
            retries = esm.max_retry_attempts if esm.max_retry_attempts is not None else -1
            if outcome.invoked and 0 <= retries < state.failures:
                # Retries used up: Lambda skips the batch (after recording it to OnFailure).
                state.failures = 0
                esm.lambdalab_cursor = (shard, cursor + len(items))
                return
            # The shard is blocked on this batch until it succeeds, as on Lambda.
            state.retry_at = time.monotonic() + _STREAM_BACKOFF_S[min(state.failures, len(_STREAM_BACKOFF_S)) - 1]
        finally:
            with self._lock:
                state.in_flight -= 1


def _queue_for(backend: Any, arn: str) -> Any:
    from moto.sqs.models import sqs_backends

    for queue in sqs_backends[backend.account_id][backend.region_name].queues.values():
        if queue.queue_arn == arn:
            return queue
    return None


def _stream_cursor(backend: Any, esm: Any) -> tuple[Any, int]:
    """The stream shard a mapping reads and how far it has got (a re-created stream restarts)."""
    from moto.dynamodb.models import dynamodb_backends

    for table in dynamodb_backends[backend.account_id][backend.region_name].tables.values():
        if table.stream_shard is not None and table.latest_stream_label and \
                f"{table.table_arn}/stream/{table.latest_stream_label}" == esm.event_source_arn:
            shard, cursor = getattr(esm, "lambdalab_cursor", (None, 0))
            if shard is not table.stream_shard:
                cursor = 0
                esm.lambdalab_cursor = (table.stream_shard, 0)
            return table.stream_shard, cursor
    return None, 0


def _succeeded(messages: list[Any], result: Any, partial: bool) -> list[Any]:
    """The messages of a successful batch that Lambda deletes (all, unless some are reported failed)."""
    if not partial or not isinstance(result, dict) or not result.get("batchItemFailures"):
        return list(messages)
    failures = result["batchItemFailures"]
    ids = {f.get("itemIdentifier") for f in failures if isinstance(f, dict)}
    if None in ids or "" in ids or not ids <= {m.id for m in messages}:
        return []  # a malformed report fails the whole batch, as on Lambda
    return [m for m in messages if m.id not in ids]
