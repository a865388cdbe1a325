"""Who may use moto's control plane, and what an unsigned request gets under IAM enforcement.

moto's `/moto-api/*` endpoints reset all state or switch IAM enforcement off; a handler (which
knows `AWS_ENDPOINT_URL`) must not reach them. `signed_by_admin` checks that a request carries a
valid Signature Version 4 made with the cloud's administrator key, which only the cloud and its
owner hold (handlers get their role's STS credentials). `sign_admin_request` is how the cloud and
tests sign such calls. `missing_authentication` is AWS's 403 for a request with no signature at
all, shaped as each protocol answers it (moto itself fails with a KeyError traceback).
"""

from __future__ import annotations

import hmac
import json
import re
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_AUTH = re.compile(r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
                   r"(?P<service>[^/]+)/aws4_request,\s*SignedHeaders=(?P<signed>[^,]+),\s*Signature=(?P<sig>[0-9a-f]+)$")
_LAMBDA_PATH = re.compile(r"^/20\d\d-\d\d-\d\d/")


def _url(environ: dict[str, Any]) -> str:
    query = environ.get("QUERY_STRING", "")
    url = f"http://{environ.get('HTTP_HOST', 'localhost')}{environ.get('PATH_INFO', '')}"
    return f"{url}?{query}" if query else url


def _header(environ: dict[str, Any], name: str) -> str | None:
    key = name.upper().replace("-", "_")
    if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        return environ.get(key)
    return environ.get(f"HTTP_{key}")


def signed_by_admin(environ: dict[str, Any], body: bytes, key_id: str, secret: str) -> bool:
    """True when the request is signed (SigV4) with the administrator's key and secret."""
    m = _AUTH.match(environ.get("HTTP_AUTHORIZATION", ""))
    if m is None or m["key"] != key_id:
        return False
    headers = {}
    for name in m["signed"].split(";"):
        value = _header(environ, name)
        if value is None:
            return False
        headers[name] = value
    if "x-amz-date" not in headers:
        return False
    request = AWSRequest(method=environ.get("REQUEST_METHOD", "GET"), url=_url(environ), data=body, headers=headers)
    request.context["timestamp"] = headers["x-amz-date"]
    auth = SigV4Auth(Credentials(key_id, secret), m["service"], m["region"])
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    return hmac.compare_digest(expected, m["sig"])


def sign_admin_request(method: str, url: str, body: bytes, key_id: str, secret: str,
                       region: str) -> dict[str, str]:
    """The headers that sign a call to the cloud's control plane with the administrator key."""
    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(Credentials(key_id, secret), "moto", region).add_auth(request)
    return dict(request.headers.items())


def is_signed(environ: dict[str, Any]) -> bool:
    """Whether the request carries any signature: a header, or a presigned URL's query."""
    return bool(environ.get("HTTP_AUTHORIZATION")) or "X-Amz-Signature=" in environ.get("QUERY_STRING", "")


def missing_authentication(environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """AWS's 403 for an unsigned request: `MissingAuthenticationToken` in the protocol's shape
    (S3 answers an anonymous request to a private resource `AccessDenied`)."""
    content_type = environ.get("CONTENT_TYPE", "")
    message = "Missing Authentication Token"
    if content_type.startswith("application/x-amz-json") or environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": "MissingAuthenticationTokenException", "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"),
                   ("x-amzn-ErrorType", "MissingAuthenticationTokenException")]
    elif _LAMBDA_PATH.match(environ.get("PATH_INFO", "")):
        body = json.dumps({"message": message}).encode()
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", "MissingAuthenticationTokenException")]
    elif content_type.startswith("application/x-www-form-urlencoded") or "Action=" in environ.get("QUERY_STRING", ""):
        body = (b"<ErrorResponse><Error><Type>Sender</Type><Code>MissingAuthenticationToken</Code>"
                b"<Message>Request is missing Authentication Token</Message></Error></ErrorResponse>")
        headers = [("Content-Type", "text/xml")]
    else:
        body = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
                b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>")
        headers = [("Content-Type", "application/xml")]
    return "403 Forbidden", headers + [("Content-Length", str(len(body)))], body


def control_plane_refused() -> tuple[str, list[tuple[str, str]], bytes]:
    """The answer to an unsigned or non-administrator call to `/moto-api/*`."""
    message = "the local cloud's control plane (/moto-api) needs the administrator's signature"
    body = json.dumps({"__type": "AccessDeniedException", "message": message}).encode()
    return "403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body
