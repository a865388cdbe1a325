"""The Runtime API client: ``/invocation/next``, ``/response``, ``/error`` and ``/init/error``.

awslambdaric's lambda_runtime_client.py (with the behaviour of its native aws-lambda-cpp part),
over one keep-alive HTTP/1.1 connection.
"""

from __future__ import annotations

import http.client
import socket
import sys
import time

from .marshalling import to_json

ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
XRAY_ERROR_CAUSE_HEADER = "Lambda-Runtime-Function-XRay-Error-Cause"
INVOCATION_ID_HEADER = "Lambda-Runtime-Invocation-Id"
_API_PREFIX = "/2018-06-01/runtime"
_XRAY_HEADER_LIMIT = 1024 * 1024
_USER_AGENT = "aws-lambda-python/{}.{}.{}-lambdalab".format(*sys.version_info[:3])


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


