"""A pure-Python Lambda runtime interface client that behaves like awslambdaric 4.2.2.

Run as ``python -m lambdalab.runtime.ric.bootstrap module.function`` where AWS's ``awslambdaric`` cannot be
installed (it ships Linux wheels only). This module owns, for one worker process: the Runtime API
loop (``/invocation/next``, ``/response``, ``/error``, ``/init/error``) over one keep-alive
connection, handler loading and its init error types, error payloads and the ``[ERROR]`` log
line, the context object, JSON marshalling, the logging set-up, and exiting when the parent
(the local runtime) dies.

Its observable behaviour (payloads, headers, log text, context attributes, exit codes) is
re-implemented from awslambdaric 4.2.2 (Apache-2.0) and checked against it by
``tests/runtime/test_ric.py``. Known, deliberate differences:

* ``/invocation/{id}/error`` also carries ``Lambda-Runtime-Function-Error-Type`` (the errorType);
  awslambdaric 4.2.2 sends only the X-Ray cause header there.
* When ``/next`` fails (non-200, no request id, connection lost) awslambdaric 4.2.2 crashes with
  SIGSEGV; this client logs the same ``LAMBDA_RUNTIME`` line, raises
  ``RuntimeError("Failed to get next")`` and exits with status 1.
* SnapStart hooks and multi-concurrency (``AWS_LAMBDA_MAX_CONCURRENCY``) are not implemented.

It is stdlib-only (simplejson is used when installed, as awslambdaric does) and imports nothing
else from lambdalab, so that a cold start pays for as little as possible.
"""

from __future__ import annotations

import http.client
import importlib
import logging
import os
import socket
import sys
import threading
import time
import traceback

try:
    import simplejson as _json

    _HAS_SIMPLEJSON = True
except ImportError:  # pragma: no cover - exercised by a subprocess test with simplejson hidden
    import json as _json

    _HAS_SIMPLEJSON = False

__all__ = ["LambdaContext", "main", "run"]

ERROR_LOG_LINE_TERMINATE = "\r"
ERROR_LOG_IDENT = "\u00a0"  # NO-BREAK SPACE, as awslambdaric indents traceback lines
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
XRAY_ERROR_CAUSE_HEADER = "Lambda-Runtime-Function-XRay-Error-Cause"
INVOCATION_ID_HEADER = "Lambda-Runtime-Invocation-Id"
_API_PREFIX = "/2018-06-01/runtime"
_XRAY_HEADER_LIMIT = 1024 * 1024
_USER_AGENT = "aws-lambda-python/{}.{}.{}-lambdalab".format(*sys.version_info[:3])

_UNICODE_JSON_ENVS = frozenset({
    "AWS_Lambda_python3.12", "AWS_Lambda_python3.13", "AWS_Lambda_python3.14", "AWS_Lambda_python3.15",
})
PREVIEW_RUNTIME_ENVS = frozenset({"AWS_Lambda_python3.15"})

_LAMBDA_WARNING = "LAMBDA_WARNING"
_PREVIEW_DOC_LINK = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html"
_PREVIEW_DOC_LINK_CN = "https://docs.amazonaws.cn/lambda/latest/dg/lambda-runtimes.html"
UNHANDLED_EXCEPTION_WARNING = (
    f"{_LAMBDA_WARNING}: "
    "Unhandled exception. "
    "The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, "
    "or can be applied automatically. "
    "To determine if the runtime has been updated, check the runtime version in the INIT_START log entry. "
    "If this error correlates with a change in the runtime version, you may be able to mitigate this "
    "error by temporarily rolling back to the previous runtime version. "
    "For more information, see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)


class FaultException(Exception):
    """A failure the runtime reports under its own ``Runtime.*`` error type."""

    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type: str, msg: str, trace: list[str] | None = None) -> None:
        self.msg = msg
        self.exception_type = exception_type
        self.trace = trace


class LambdaRuntimeClientError(Exception):
    """The Runtime API answered a request with an unexpected status."""

    def __init__(self, endpoint: str, response_code: int, response_body: bytes) -> None:
        self.endpoint = endpoint
        self.response_code = response_code
        self.response_body = response_body
        super().__init__(
            f"Request to Lambda Runtime '{endpoint}' endpoint failed. Reason: '{response_code}'. "
            f"Response body: '{response_body}'"
        )


# --------------------------------------------------------------------------- JSON marshalling

def _is_decimal(obj: object) -> bool:
    # A Decimal can only exist once `decimal` is imported, so there is no need to import it here.
    decimal = sys.modules.get("decimal")
    return decimal is not None and isinstance(obj, decimal.Decimal)


def _json_kwargs() -> dict:
    if os.environ.get("AWS_EXECUTION_ENV") in _UNICODE_JSON_ENVS:
        return {"ensure_ascii": False, "allow_nan": True}
    return {"allow_nan": True}


if _HAS_SIMPLEJSON:

    class Encoder(_json.JSONEncoder):
        """awslambdaric's encoder: Decimals as their exact digits, NaN Decimals as NaN."""

        def __init__(self) -> None:
            super().__init__(use_decimal=False, **_json_kwargs())

        def default(self, obj):
            if _is_decimal(obj):
                if obj.is_nan():
                    return float("nan")
                return _json.RawJSON(str(obj))
            return super().default(obj)

else:

    class Encoder(_json.JSONEncoder):  # type: ignore[no-redef]
        """The same output with stdlib json, which has no RawJSON.

        A Decimal is emitted as a placeholder string and replaced by its digits afterwards; the
        placeholder starts with NUL plus a per-process random token, so user strings cannot forge it.
        Like simplejson, bytes inside a result are decoded as UTF-8. (simplejson also writes
        namedtuples as objects; stdlib json writes them as arrays, and that difference remains.)
        """

        _MARK = "\x00" + os.urandom(8).hex() + ":"

        def __init__(self) -> None:
            super().__init__(**_json_kwargs())
            self._raw: list[str] = []

        def default(self, obj):
            if _is_decimal(obj):
                if obj.is_nan():
                    return float("nan")
                self._raw.append(str(obj))
                return f"{self._MARK}{len(self._raw) - 1}"
            if isinstance(obj, bytes):
                return obj.decode("utf-8")
            return super().default(obj)

        def encode(self, obj) -> str:
            self._raw = []
            text = super().encode(obj)
            if not self._raw:
                return text
            import re

            encoded_mark = '"\\u0000' + self._MARK[1:]
            pattern = re.compile(re.escape(encoded_mark) + r'(\d+)"')
            return pattern.sub(lambda m: self._raw[int(m.group(1))], text)


def to_json(obj: object) -> str:
    return Encoder().encode(obj)


# awslambdaric builds the marshaller's encoder once, at import; to_json builds a fresh one per call.
_RESPONSE_ENCODER = Encoder()


def _loads(body: bytes):
    if _HAS_SIMPLEJSON:
        return _json.loads(body)
    # Like simplejson: UTF-8 only, and NaN / Infinity are not JSON. (The wording of some syntax
    # errors still differs from simplejson's.)
    text = body.decode("utf-8")

    def reject(name: str):
        raise _json.JSONDecodeError("Expecting value", text, max(text.find(name), 0))

    return _json.loads(text, parse_constant=reject)


def unmarshal_request(body: bytes, content_type: str | None):
    if content_type != "application/json":
        return body
    try:
        return _loads(body)
    except Exception as e:
        raise FaultException(FaultException.UNMARSHAL_ERROR, "Unable to unmarshal input: {}".format(str(e)))


def marshal_response(response: object) -> tuple[bytes | str, str]:
    if isinstance(response, bytes):
        return response, "application/unknown"
    try:
        return _RESPONSE_ENCODER.encode(response), "application/json"
    except Exception as e:
        raise FaultException(FaultException.MARSHAL_ERROR, "Unable to marshal response: {}".format(str(e)))


# --------------------------------------------------------------------------- context object

W3C_ALLOWED_FIELDS = ("traceparent", "tracestate", "baggage")


class LambdaContext:
    """The handler's ``context`` argument, attribute for attribute as awslambdaric builds it."""

    def __init__(
        self,
        invoke_id: str,
        client_context: dict | None,
        cognito_identity: dict | None,
        epoch_deadline_time_in_ms: int,
        invoked_function_arn: str | None = None,
        tenant_id: str | None = None,
    ) -> None:
        self.aws_request_id = invoke_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self._w3c_fields = self._extract_and_strip_w3c(client_context)

        self.client_context = make_obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = make_obj_from_dict(Client, self.client_context.client)

        self.identity = make_obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")

        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self) -> int:
        delta_ms = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta_ms if delta_ms > 0 else 0

    def w3c(self) -> dict:
        """The W3C trace-context fields the caller passed in ``clientContext.w3c``."""
        return dict(self._w3c_fields)

    @staticmethod
    def _extract_and_strip_w3c(client_context: object) -> dict:
        # awslambdaric pops "w3c" out of the client context, so handlers only see it via w3c().
        if not isinstance(client_context, dict) or "w3c" not in client_context:
            return {}
        raw_w3c = client_context.pop("w3c")
        if not isinstance(raw_w3c, dict):
            return {}
        return {key: raw_w3c[key] for key in W3C_ALLOWED_FIELDS if isinstance(raw_w3c.get(key), str)}

    def log(self, msg: object) -> None:
        for handler in logging.getLogger().handlers:
            if hasattr(handler, "log_sink"):
                handler.log_sink.log(str(msg))
                return
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(["
            f"aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},"
            f"identity={self.identity},"
            f"tenant_id={self.tenant_id}"
            "])"
        )


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(["
            f"cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}"
            "])"
        )


class Client:
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"]

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(["
            f"installation_id={self.installation_id},"
            f"app_title={self.app_title},"
            f"app_version_name={self.app_version_name},"
            f"app_version_code={self.app_version_code},"
            f"app_package_name={self.app_package_name}"
            "])"
        )


class ClientContext:
    __slots__ = ["custom", "env", "client"]

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}([custom={self.custom},env={self.env},client={self.client}])"


def make_obj_from_dict(_class: type, _dict: dict | None, fields: list[str] | None = None):
    if _dict is None:
        return None
    obj = _class()
    for field in fields if fields is not None else _class.__slots__:
        setattr(obj, field, _dict.get(field, None))
    return obj


# --------------------------------------------------------------------------- Runtime API client

class InvocationRequest:
    """One ``/next`` answer. (A plain class: importing dataclasses would cost ~10 ms per cold start.)"""

    __slots__ = (
        "invoke_id", "x_amzn_trace_id", "invoked_function_arn", "deadline_time_in_ms", "client_context",
        "cognito_identity", "tenant_id", "content_type", "event_body", "invocation_id",
    )

    def __init__(self, **fields) -> None:
        for name in self.__slots__:
            setattr(self, name, fields[name])


class _NoDelayConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        # Without it a request body written after its headers can wait for a delayed ACK (~40 ms);
        # recent Pythons already set it, this makes sure on every platform.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _runtime_log(message: str) -> None:
    # The line aws-lambda-cpp (inside awslambdaric) prints to stdout when the Runtime API fails.
    sys.stdout.write(f"[ERROR] [{int(time.time() * 1000)}] LAMBDA_RUNTIME {message}\n")
    sys.stdout.flush()


def _header(headers: http.client.HTTPMessage, name: str) -> str | None:
    value = headers.get(name)
    return value if value else None


def _leading_int(text: str | None) -> int:
    """The deadline as strtoul reads it: leading digits (optionally signed), else 0."""
    if not text:
        return 0
    text = text.lstrip()
    end = 1 if text[:1] in ("+", "-") else 0
    while end < len(text) and text[end].isdigit():
        end += 1
    try:
        return int(text[:end])
    except ValueError:
        return 0


class LambdaRuntimeClient:
    """Talks to the Runtime API over one persistent HTTP/1.1 connection."""

    def __init__(self, lambda_runtime_address: str) -> None:
        self.lambda_runtime_address = lambda_runtime_address
        self._conn = _NoDelayConnection(lambda_runtime_address)

    def _request(self, method: str, path: str, body: bytes | str | None = None,
                 headers: dict | None = None) -> tuple[int, bytes, http.client.HTTPMessage]:
        headers = dict(headers or {})
        headers.setdefault("User-Agent", _USER_AGENT)
        for attempt in (1, 2):
            reused = self._conn.sock is not None
            try:
                self._conn.request(method, path, body, headers)
                response = self._conn.getresponse()
                return response.status, response.read(), response.headers
            except (ConnectionError, http.client.BadStatusLine):
                self._conn.close()
                # A kept-alive connection the server has since closed fails on first use; retry
                # once on a fresh one. A fresh connection failing is a real failure.
                if not reused or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def wait_next_invocation(self) -> InvocationRequest:
        try:
            status, body, headers = self._request("GET", f"{_API_PREFIX}/invocation/next")
        except (OSError, http.client.HTTPException) as e:
            _runtime_log("Failed to get next invocation. No Response from endpoint")
            raise RuntimeError("Failed to get next") from e
        if status != 200:
            _runtime_log(f"Failed to get next invocation. Http Response code: {status}")
            raise RuntimeError("Failed to get next")
        invoke_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        if not invoke_id:
            _runtime_log("Failed to find header lambda-runtime-aws-request-id in response")
            raise RuntimeError("Failed to get next")
        return InvocationRequest(
            invoke_id=invoke_id,
            x_amzn_trace_id=_header(headers, "Lambda-Runtime-Trace-Id"),
            invoked_function_arn=headers.get("Lambda-Runtime-Invoked-Function-Arn") or "",
            deadline_time_in_ms=_leading_int(headers.get("Lambda-Runtime-Deadline-Ms")),
            client_context=_header(headers, "Lambda-Runtime-Client-Context"),
            cognito_identity=_header(headers, "Lambda-Runtime-Cognito-Identity"),
            tenant_id=_header(headers, "Lambda-Runtime-Aws-Tenant-Id"),
            content_type=_header(headers, "Content-Type"),
            event_body=body,
            invocation_id=_header(headers, INVOCATION_ID_HEADER),
        )

    def _post(self, path: str, body: bytes, headers: dict, invoke_id: str, failure: str) -> None:
        try:
            status, response_body, _ = self._request("POST", path, body, headers)
        except (OSError, http.client.HTTPException) as e:
            _runtime_log(f"Failed to send HTTP request for invocation {invoke_id}.")
            raise RuntimeError(failure) from e
        if not 200 <= status < 300:
            _runtime_log(
                f"Failed to post handler success response. Http response code: {status}. "
                f"{response_body.decode('utf-8', 'replace')}"
            )
            raise RuntimeError(failure)

    def post_invocation_result(self, invoke_id: str, result_data: bytes | str,
                               content_type: str = "application/json", invocation_id: str | None = None) -> None:
        body = result_data if isinstance(result_data, bytes) else result_data.encode("utf-8")
        headers = {"Content-Type": content_type}
        if invocation_id:
            headers[INVOCATION_ID_HEADER] = invocation_id
        self._post(f"{_API_PREFIX}/invocation/{invoke_id}/response", body, headers, invoke_id,
                   "Failed to post invocation response")

    def post_invocation_error(self, invoke_id: str, error_response_data: str, xray_fault: str,
                              error_type: str, invocation_id: str | None = None) -> None:
        xray_fault = xray_fault if len(xray_fault.encode()) < _XRAY_HEADER_LIMIT else ""
        headers = {"Content-Type": "application/json", ERROR_TYPE_HEADER: error_type.encode("utf-8")}
        if xray_fault:
            headers[XRAY_ERROR_CAUSE_HEADER] = xray_fault.encode("utf-8")
        if invocation_id:
            headers[INVOCATION_ID_HEADER] = invocation_id
        self._post(f"{_API_PREFIX}/invocation/{invoke_id}/error", error_response_data.encode("utf-8"), headers,
                   invoke_id, "Failed to post invocation error")

    def post_init_error(self, error_response_data: dict, error_type_override: str | None = None) -> None:
        endpoint = f"{_API_PREFIX}/init/error"
        headers = {ERROR_TYPE_HEADER: error_type_override or error_response_data["errorType"]}
        # The body goes as a str, so http.client encodes it as Latin-1, exactly like awslambdaric.
        status, body, _ = self._request("POST", endpoint, to_json(error_response_data), headers)
        if status != 202:
            raise LambdaRuntimeClientError(endpoint, status, body)


# --------------------------------------------------------------------------- handler loading

def _get_handler(handler: str):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(FaultException.MALFORMED_HANDLER_NAME, "Bad handler '{}': {}".format(handler, str(e)))

    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                "Cannot use built-in module {} as a handler module".format(modname),
            )
        m = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(
            FaultException.IMPORT_MODULE_ERROR, "Unable to import module '{}': {}".format(modname, str(e))
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR, "Syntax error in module '{}': {}".format(modname, str(e)), trace
        )

    try:
        return getattr(m, fname)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND, "Handler '{}' missing on module '{}'".format(fname, modname), None
        )


# --------------------------------------------------------------------------- errors

def make_error(error_message: str | None, error_type: str | None, stack_trace: list[str] | None,
               invoke_id: str | None = None) -> dict:
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def replace_line_indentation(line: str, indent_char: str, new_indent_char: str) -> str:
    count = len(line) - len(line.lstrip(indent_char))
    return new_indent_char * count + line[count:]


def extract_traceback(tb) -> list[tuple]:
    return [(frame.filename, frame.lineno, frame.name, frame.line) for frame in traceback.extract_tb(tb)]


def _user_frames(tb) -> list[tuple]:
    """The traceback from the first frame outside a ``bootstrap.py`` (the runtime's own frames)."""
    tb_tuples = extract_traceback(tb)
    for i in range(len(tb_tuples)):
        if "/bootstrap.py" not in tb_tuples[i][0]:
            return tb_tuples[i:]
    return tb_tuples


def build_fault_result(exc_info: tuple, msg: str | None) -> dict:
    etype, value, tb = exc_info
    return make_error(msg if msg else str(value), etype.__name__, traceback.format_list(_user_frames(tb)))


def make_xray_fault(ex_type: str, ex_msg: str, working_dir: str, tb_tuples: list[tuple]) -> dict:
    stack = []
    files = set()
    for tb_file, tb_line, tb_method, _code in tb_tuples:
        stack.append({"label": tb_method, "path": tb_file, "line": tb_line})
        files.add(tb_file)
    return {
        "working_directory": working_dir,
        "exceptions": [{"message": ex_msg, "type": ex_type, "stack": stack}],
        "paths": list(files),
    }


# --------------------------------------------------------------------------- logging

_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Frame types of the telemetry log protocol, by log level (NOTSET, DEBUG, INFO, WARNING, ERROR, CRITICAL).
_JSON_FRAME_TYPES = {
    level: code.to_bytes(4, "big")
    for level, code in zip((0, 10, 20, 30, 40, 50), (0xA55A0002, 0xA55A000A, 0xA55A000E, 0xA55A0012, 0xA55A0016, 0xA55A001A))
}
_TEXT_FRAME_TYPES = {
    level: code.to_bytes(4, "big")
    for level, code in zip((0, 10, 20, 30, 40, 50), (0xA55A0003, 0xA55A000B, 0xA55A000F, 0xA55A0013, 0xA55A0017, 0xA55A001B))
}
_DEFAULT_FRAME_TYPE = _TEXT_FRAME_TYPES[logging.NOTSET]
_RESERVED_FIELDS = frozenset({
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info", "exc_text",
    "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread", "threadName",
    "processName", "process", "aws_request_id", "tenant_id", "_frame_type",
})
_LOG_FORMAT_JSON = 0
_LOG_FORMAT_TEXT = 1


def _log_format_from_env(value: str | None) -> int:
    return _LOG_FORMAT_JSON if value and value.upper() == "JSON" else _LOG_FORMAT_TEXT


def _get_log_level_from_env_var(log_level: str | None) -> str:
    return {None: "", "TRACE": "DEBUG"}.get(log_level, log_level).upper()


def _format_log_level(record: logging.LogRecord) -> int:
    return min(50, max(0, record.levelno)) // 10 * 10


_AWS_LAMBDA_LOG_FORMAT = _log_format_from_env(os.environ.get("AWS_LAMBDA_LOG_FORMAT"))
_AWS_LAMBDA_LOG_LEVEL = _get_log_level_from_env_var(os.environ.get("AWS_LAMBDA_LOG_LEVEL"))
_ERROR_FRAME_TYPE = (_JSON_FRAME_TYPES if _AWS_LAMBDA_LOG_FORMAT == _LOG_FORMAT_JSON else _TEXT_FRAME_TYPES)[40]


class JsonFormatter(logging.Formatter):
    """Lambda's JSON log format (AWS_LAMBDA_LOG_FORMAT=JSON)."""

    def __init__(self) -> None:
        super().__init__(datefmt=_DATETIME_FORMAT)
        import json as stdlib_json

        # default=str: a value json cannot encode is stringified instead of losing the record.
        self._encode = stdlib_json.JSONEncoder(ensure_ascii=False, default=str).encode

    def format(self, record: logging.LogRecord) -> str:
        record.levelno = _format_log_level(record)
        record.levelname = logging.getLevelName(record.levelno)
        record._frame_type = _JSON_FRAME_TYPES.get(record.levelno, _JSON_FRAME_TYPES[logging.NOTSET])
        exc_info = record.exc_info
        result = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "message": record.msg if isinstance(record.msg, dict) and not record.args else record.getMessage(),
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
            "errorType": exc_info[0].__name__ if exc_info else None,
            "errorMessage": str(exc_info[1]) if exc_info else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": f"{record.pathname}:{record.funcName}:{record.lineno}" if exc_info else None,
        }
        if getattr(record, "tenant_id", None) is not None:
            result["tenantId"] = record.tenant_id
        result.update(
            (key, value) for key, value in record.__dict__.items() if key not in _RESERVED_FIELDS and key not in result
        )
        return self._encode({k: v for k, v in result.items() if v is not None}) + "\n"


class StandardLogSink:
    """Writes log text to stdout (the function's log stream)."""

    def __enter__(self) -> StandardLogSink:
        return self

    def __exit__(self, exc_type, exc_value, exc_tb) -> None:
        pass

    def log(self, msg: str, frame_type: bytes | None = None) -> None:
        sys.stdout.write(msg)

    def log_error(self, message_lines: list[str]) -> None:
        sys.stdout.write(ERROR_LOG_LINE_TERMINATE.join(message_lines) + "\n")


class FramedTelemetryLogSink:
    """Lambda's framed log protocol on ``_LAMBDA_TELEMETRY_LOG_FD``: type, length, µs timestamp, message."""

    def __init__(self, fd: str | int) -> None:
        self.fd = int(fd)

    def __enter__(self) -> FramedTelemetryLogSink:
        self.file = os.fdopen(self.fd, "wb", 0)
        return self

    def __exit__(self, exc_type, exc_value, exc_tb) -> None:
        self.file.close()

    def log(self, msg: str, frame_type: bytes | None = None) -> None:
        encoded = msg.encode("utf8")
        timestamp = int(time.time_ns() / 1000)
        self.file.write(
            (frame_type or _DEFAULT_FRAME_TYPE) + len(encoded).to_bytes(4, "big") + timestamp.to_bytes(8, "big") + encoded
        )

    def log_error(self, message_lines: list[str]) -> None:
        self.log("\n".join(message_lines), frame_type=_ERROR_FRAME_TYPE)


def create_log_sink() -> StandardLogSink | FramedTelemetryLogSink:
    if "_LAMBDA_TELEMETRY_LOG_FD" in os.environ:
        return FramedTelemetryLogSink(os.environ.pop("_LAMBDA_TELEMETRY_LOG_FD"))
    return StandardLogSink()


def log_error(error_result: dict, log_sink) -> None:
    if _AWS_LAMBDA_LOG_FORMAT == _LOG_FORMAT_JSON:
        timestamp = time.strftime(_DATETIME_FORMAT, logging.Formatter.converter(time.time()))
        log_sink.log_error([to_json({"timestamp": timestamp, "level": "ERROR", **error_result})])
        return

    description = "[ERROR]"
    error_type = error_result.get("errorType")
    if error_type:
        description += " " + error_type
    error_message = error_result.get("errorMessage")
    if error_message:
        if error_type:
            description += ":"
        description += " " + error_message

    lines = [description]
    stack_trace = error_result.get("stackTrace")
    if stack_trace is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack_trace:
            if element == "":
                lines.append("")
            else:
                lines.extend(replace_line_indentation(line, " ", ERROR_LOG_IDENT) for line in element.splitlines())
    log_sink.log_error(lines)


class LambdaLoggerHandler(logging.Handler):
    def __init__(self, log_sink) -> None:
        logging.Handler.__init__(self)
        self.log_sink = log_sink

    def emit(self, record: logging.LogRecord) -> None:
        self.log_sink.log(self.format(record))


class LambdaLoggerHandlerWithFrameType(logging.Handler):
    def __init__(self, log_sink) -> None:
        super().__init__()
        self.log_sink = log_sink

    def emit(self, record: logging.LogRecord) -> None:
        self.log_sink.log(
            self.format(record),
            frame_type=getattr(record, "_frame_type", None) or _TEXT_FRAME_TYPES.get(_format_log_level(record)),
        )


_GLOBAL_AWS_REQUEST_ID: str | None = None
_GLOBAL_TENANT_ID: str | None = None


class LambdaLoggerFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _GLOBAL_AWS_REQUEST_ID or ""
        record.tenant_id = _GLOBAL_TENANT_ID
        return True


class Unbuffered:
    """Flushes after every write, so output reaches the log pipe in order and immediately."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def __enter__(self) -> Unbuffered:
        return self

    def __exit__(self, exc_type, exc_value, exc_tb) -> None:
        pass

    def __getattr__(self, attr: str):
        return getattr(self.stream, attr)

    def write(self, msg: str) -> None:
        self.stream.write(msg)
        self.stream.flush()

    def writelines(self, msgs) -> None:
        self.stream.writelines(msgs)
        self.stream.flush()


def _setup_logging(log_format: int, log_level: str, log_sink) -> None:
    logging.Formatter.converter = time.gmtime
    logger = logging.getLogger()
    if log_format == _LOG_FORMAT_JSON or log_level:
        handler: logging.Handler = LambdaLoggerHandlerWithFrameType(log_sink)
    else:
        handler = LambdaLoggerHandler(log_sink)
    if log_format == _LOG_FORMAT_JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"
        ))
    if log_level in logging._nameToLevel:
        logger.setLevel(log_level)
    handler.addFilter(LambdaLoggerFilter())
    logger.addHandler(handler)


def _log_preview_runtime_warning() -> None:
    if os.environ.get("LAMBDA_DISABLE_PREVIEW_WARN", ""):
        return
    if os.environ.get("AWS_EXECUTION_ENV", "") not in PREVIEW_RUNTIME_ENVS:
        return
    link = _PREVIEW_DOC_LINK_CN if os.environ.get("AWS_REGION", "").startswith("cn-") else _PREVIEW_DOC_LINK
    logging.warning(
        f"{_LAMBDA_WARNING}: This is a preview runtime version and should not be used for production workloads. "
        f"For further information and to provide feedback, see {link}\r"
    )


# --------------------------------------------------------------------------- the loop

def update_xray_env_variable(xray_trace_id: str | None) -> None:
    if xray_trace_id is not None:
        os.environ["_X_AMZN_TRACE_ID"] = xray_trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)


def parse_json_header(header: str, name: str):
    import json as stdlib_json  # awslambdaric parses these two headers with stdlib json

    try:
        return stdlib_json.loads(header)
    except Exception as e:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR, "Unable to parse {} JSON: {}".format(name, str(e)), None
        )


def create_lambda_context(client_context_json: str | None, cognito_identity_json: str | None,
                          epoch_deadline_time_in_ms: int, invoke_id: str, invoked_function_arn: str,
                          tenant_id: str | None) -> LambdaContext:
    client_context = parse_json_header(client_context_json, "Client Context") if client_context_json else None
    cognito_identity = parse_json_header(cognito_identity_json, "Cognito Identity") if cognito_identity_json else None
    return LambdaContext(invoke_id, client_context, cognito_identity, epoch_deadline_time_in_ms,
                         invoked_function_arn, tenant_id)


def handle_event_request(client: LambdaRuntimeClient, request_handler, request: InvocationRequest, log_sink) -> None:
    error_result = None
    try:
        context = create_lambda_context(
            request.client_context, request.cognito_identity, request.deadline_time_in_ms,
            request.invoke_id, request.invoked_function_arn, request.tenant_id,
        )
        event = unmarshal_request(request.event_body, request.content_type)
        response = request_handler(event, context)
        result, result_content_type = marshal_response(response)
    except FaultException as e:
        xray_fault = make_xray_fault("LambdaValidationError", e.msg, os.getcwd(), [])
        error_result = make_error(e.msg, e.exception_type, e.trace, request.invoke_id)
    except Exception:
        etype, value, tb = sys.exc_info()
        tb_tuples = _user_frames(tb)
        xray_fault = make_xray_fault(etype.__name__, str(value), os.getcwd(), tb_tuples)
        error_result = make_error(str(value), etype.__name__, traceback.format_list(tb_tuples), request.invoke_id)

    if error_result is not None:
        log_error(error_result, log_sink)
        client.post_invocation_error(request.invoke_id, to_json(error_result), to_json(xray_fault),
                                     error_result["errorType"], request.invocation_id)
    else:
        client.post_invocation_result(request.invoke_id, result, result_content_type, request.invocation_id)


def run(handler: str, client: LambdaRuntimeClient) -> None:
    """Load the handler (reporting an init error and exiting 1 on failure), then serve forever."""
    global _GLOBAL_AWS_REQUEST_ID, _GLOBAL_TENANT_ID
    sys.stdout = Unbuffered(sys.stdout)
    sys.stderr = Unbuffered(sys.stderr)

    with create_log_sink() as log_sink:
        error_result = None
        try:
            _setup_logging(_AWS_LAMBDA_LOG_FORMAT, _AWS_LAMBDA_LOG_LEVEL, log_sink)
            _log_preview_runtime_warning()
            request_handler = _get_handler(handler)
        except FaultException as e:
            error_result = make_error(e.msg, e.exception_type, e.trace)
        except Exception:
            error_result = build_fault_result(sys.exc_info(), None)

        if error_result is not None:
            logging.warning(UNHANDLED_EXCEPTION_WARNING)
            log_error(error_result, log_sink)
            client.post_init_error(error_result)
            sys.exit(1)

        while True:
            request = client.wait_next_invocation()
            _GLOBAL_AWS_REQUEST_ID = request.invoke_id
            _GLOBAL_TENANT_ID = request.tenant_id
            update_xray_env_variable(request.x_amzn_trace_id)
            handle_event_request(client, request_handler, request, log_sink)


# --------------------------------------------------------------------------- parent watchdog

_PR_SET_PDEATHSIG = 1
_PARENT_POLL_S = 0.5


def _request_parent_death_signal() -> None:
    """On Linux, have the kernel SIGKILL this process when its parent dies (works even while stopped)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (ImportError, OSError, AttributeError):
        pass  # the polling below still covers it


def _watch_parent(parent_pid: int) -> None:
    _request_parent_death_signal()
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_S)
    os._exit(0)


def start_parent_watchdog() -> None:
    """Exit as soon as the runtime that started this worker is gone, so no worker outlives it."""
    parent_pid = os.getppid()  # read before the thread starts, so a parent dying meanwhile is noticed
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="lambdalab-parent-watchdog", daemon=True).start()


def main(args: list[str]) -> None:
    try:
        handler = args[1]
    except IndexError:
        raise ValueError("Handler not set")
    address = os.environ["AWS_LAMBDA_RUNTIME_API"]
    start_parent_watchdog()
    run(handler, LambdaRuntimeClient(address))


if __name__ == "__main__":
    main(sys.argv)
