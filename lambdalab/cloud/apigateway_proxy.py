"""API Gateway's Lambda proxy integration rules: route keys and matching, and reading a response.

`parse_route` checks a route key (`GET /items/{id}`, `ANY /{proxy+}`, `$default`) and `Route.match`
/ `Route.rank` decide which route serves a path, most specific first. `response_v2` and
`response_v1` read a function's result as API Gateway does for payload formats 2.0 and 1.0,
raising `Malformed` where API Gateway answers with an error. The server is `lambdalab.cloud.apigateway`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

PAYLOAD_VERSIONS = ("1.0", "2.0")
ROUTE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
_ROUTE_KEY = re.compile(r"^(?P<method>[A-Z]+) (?P<path>/\S*)$")
_PARAM = re.compile(r"^\{(?P<name>[A-Za-z0-9._-]+)(?P<greedy>\+)?\}$")


# --- routes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One route key and the function behind it."""

    key: str  # "GET /items/{id}", "ANY /{proxy+}" or "$default"
    function: str
    payload_version: str
    method: str | None = None  # None for $default
    template: str | None = None  # "/items/{id}"
    segments: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return bool(self.segments) and self.segments[-1].endswith("+}")

    def match(self, method: str, parts: list[str]) -> dict[str, str] | None:
        """Path parameters (URL-decoded) when this route takes the request, else None."""
        if self.method is None:
            return {}
        if self.method != "ANY" and self.method != method:
            return None
        params: dict[str, str] = {}
        for i, segment in enumerate(self.segments):
            m = _PARAM.match(segment)
            if m and m.group("greedy"):
                if i >= len(parts):
                    return None
                params[m.group("name")] = unquote("/".join(parts[i:]))
                return params
            if i >= len(parts):
                return None
            if m:
                params[m.group("name")] = unquote(parts[i])
            elif unquote(parts[i]) != segment:
                return None
        return params if len(parts) == len(self.segments) else None

    def rank(self) -> tuple[int, int, int, int, int]:
        """Higher is more specific: not $default, not greedy, literal segments, depth, a named method."""
        literals = sum(1 for s in self.segments if not _PARAM.match(s))
        return (self.method is not None, not self.greedy, literals, len(self.segments),
                self.method not in (None, "ANY"))


def parse_route(key: str, function: str, payload_version: str, kind: str = "http") -> Route:
    """Check a route key as API Gateway does; raises ValueError naming the problem."""
    if not isinstance(function, str) or not function:
        raise ValueError(f"route {key!r}: function must be a function name")
    if payload_version not in PAYLOAD_VERSIONS:
        raise ValueError(f"route {key!r}: payload version {payload_version!r} "
                         f"is not one of {', '.join(PAYLOAD_VERSIONS)}")
    if kind == "rest" and payload_version != "1.0":
        raise ValueError(f"route {key!r}: REST API proxy integrations use payload 1.0")
    if key == "$default":
        if kind == "rest":
            raise ValueError("REST APIs have no $default route; use 'ANY /{proxy+}'")
        return Route(key, function, payload_version)
    m = _ROUTE_KEY.match(key) if isinstance(key, str) else None
    if not m:
        raise ValueError(f"route key {key!r} must look like 'GET /items/{{id}}', 'ANY /{{proxy+}}' or '$default'")
    method, template = m.group("method"), m.group("path")
    if method not in ROUTE_METHODS:
        raise ValueError(f"route {key!r}: method {method} is not one of {', '.join(ROUTE_METHODS)}")
    segments = tuple(s for s in template.strip("/").split("/") if s) if template.strip("/") else ()
    names = set()
    for i, segment in enumerate(segments):
        p = _PARAM.match(segment)
        if "{" in segment or "}" in segment:
            if not p:
                raise ValueError(f"route {key!r}: a path parameter fills a whole segment, like {{id}}")
            if p.group("greedy") and i != len(segments) - 1:
                raise ValueError(f"route {key!r}: a greedy parameter {segment} must be the last segment")
            if p.group("name") in names:
                raise ValueError(f"route {key!r}: parameter {p.group('name')!r} appears twice")
            names.add(p.group("name"))
    return Route(f"{method} {template}", function, payload_version, method, template, segments)


def path_parts(path: str) -> list[str]:
    stripped = path.strip("/")
    return stripped.split("/") if stripped else []


# --- responses ----------------------------------------------------------------------------------


@dataclass
class HttpResponse:
    """What goes back to the HTTP client."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class Malformed(ValueError):
    """The function's result is not a response API Gateway can read."""


def json_response(status: int, payload: dict) -> HttpResponse:
    return HttpResponse(status, [("Content-Type", "application/json")], json.dumps(payload).encode())


def _header_text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise Malformed(f"header {name!r} has a {type(value).__name__} value")


def _status(result: dict) -> int:
    status = result.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise Malformed(f"statusCode {status!r} is not an HTTP status code")
    return status


def _body(result: dict) -> bytes:
    body = result.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise Malformed(f"body must be a string, got {type(body).__name__} (json.dumps it)")
    if result.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise Malformed("isBase64Encoded is true but body is not base64") from None
    return body.encode("utf-8")


def _headers(result: dict, multi: bool) -> list[tuple[str, str]]:
    single = result.get("headers") or {}
    many = (result.get("multiValueHeaders") or {}) if multi else {}
    if not isinstance(single, dict) or not isinstance(many, dict):
        raise Malformed("headers and multiValueHeaders must be objects")
    out: list[tuple[str, str]] = []
    taken = {k.lower() for k in many}
    for name, values in many.items():
        if not isinstance(values, list):
            raise Malformed(f"multiValueHeaders[{name!r}] must be a list")
        out += [(name, _header_text(name, v)) for v in values]
    # A name in both: only multiValueHeaders' values are sent (API Gateway's merge rule).
    out += [(name, _header_text(name, v)) for name, v in single.items() if name.lower() not in taken]
    return out


def response_v2(result: Any, raw: bytes | None = None) -> HttpResponse:
    """An HTTP API reads a payload 2.0 result; raises _Malformed when it cannot."""
    if isinstance(result, bytes):
        raise Malformed("the function's response is not JSON")
    if not (isinstance(result, dict) and "statusCode" in result):
        # Any JSON without statusCode: 200, application/json, the function's response as body.
        body = raw if raw else json.dumps(result).encode()
        return HttpResponse(200, [("Content-Type", "application/json")], body)
    headers = _headers(result, multi=False)
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
        raise Malformed("cookies must be a list of strings")
    headers += [("Set-Cookie", c) for c in cookies]
    return HttpResponse(_status(result), headers, _body(result))


def response_v1(result: Any) -> HttpResponse:
    """API Gateway reads a payload 1.0 (proxy integration) result; raises _Malformed when it cannot."""
    if not isinstance(result, dict) or "statusCode" not in result:
        raise Malformed("a payload 1.0 response is an object with statusCode, headers, body")
    return HttpResponse(_status(result), _headers(result, multi=True), _body(result))
