"""API Gateway requests as a Lambda proxy integration receives them: the `apigateway-v1` (REST API,
payload 1.0) and `apigateway-v2` (HTTP API and function URLs, payload 2.0) sample events.

This module owns both payload shapes (see shared/aws-events/apigateway-rest-v1.json and
apigateway-http-v2.json); the local HTTP endpoint (`lambdalab.cloud.apigateway`) builds the
events it sends with these builders.
"""

from __future__ import annotations

import base64
import secrets
import string
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from lambdalab._util.timefmt import epoch_ms, utc_now
from lambdalab._util.xray import new_trace_header
from lambdalab.events._checks import JSON, check_account, check_region, json_text, require
from lambdalab.runtime.config import ACCOUNT_ID, REGION

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _clf_time(when: datetime) -> str:
    """API Gateway's request time, `04/Mar/2020:19:15:17 +0000`, in English whatever the locale."""
    return f"{when.day:02d}/{_MONTHS[when.month - 1]}/{when.year}:{when:%H:%M:%S} +0000"


def _random_text(length: int, alphabet: str = string.ascii_uppercase + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def short_request_id() -> str:
    """The 16-character base64 request ids API Gateway uses (`JKJaXmPLvHcESHA=`)."""
    return base64.b64encode(secrets.token_bytes(11)).decode()[:15] + "="


def _pairs(value: str | Mapping[str, Any] | Iterable[tuple[str, str]] | None, name: str) -> list[tuple[str, str]]:
    """Name/value pairs from a query string, a mapping (a list value repeats the name) or pairs."""
    if value is None:
        return []
    if isinstance(value, str):
        return parse_qsl(value.lstrip("?"), keep_blank_values=True)
    items = value.items() if isinstance(value, Mapping) else value
    pairs: list[tuple[str, str]] = []
    for item in items:
        require(isinstance(item, tuple) and len(item) == 2,
                f"{name} must be a mapping or (name, value) pairs, got {item!r}")
        key, values = item
        require(isinstance(key, str) and key != "", f"{name}: names must be non-empty strings, got {key!r}")
        for v in values if isinstance(values, (list, tuple)) else [values]:
            require(isinstance(v, str), f"{name}[{key!r}] must be a str or a list of str, got {v!r}")
            pairs.append((key, v))
    return pairs


def _grouped(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return grouped


@dataclass(frozen=True)
class _Request:
    """An HTTP request checked once and shared by the 1.0 and 2.0 payload builders."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    query: list[tuple[str, str]]
    raw_query: str
    body: str | None
    base64_encoded: bool
    when: datetime


def _request(method: str, path: str, body: Any, headers: Any, query: Any, domain: str) -> _Request:
    require(isinstance(method, str) and method.upper() in HTTP_METHODS,
             f"method {method!r} is not one of {', '.join(HTTP_METHODS)}")
    require(isinstance(path, str) and path.startswith("/") and "?" not in path,
             f"path {path!r} must start with '/' (pass the query string as query)")
    given = _pairs(headers, "headers")
    names = {k.lower() for k, _ in given}
    when = utc_now()
    defaults = [("Accept", "*/*"), ("Host", domain), ("User-Agent", "lambdalab"),
                ("X-Amzn-Trace-Id", new_trace_header(when.timestamp(), parent=False, sampled=None)),
                ("X-Forwarded-For", "127.0.0.1"),
                ("X-Forwarded-Port", "443"), ("X-Forwarded-Proto", "https")]
    text, encoded = None, False
    if body is not None:
        if isinstance(body, (bytes, bytearray)):
            text, encoded = base64.b64encode(bytes(body)).decode(), True
            defaults.append(("Content-Type", "application/octet-stream"))
        else:
            text = json_text(body, "body")
            defaults.append(("Content-Type", "text/plain" if isinstance(body, str) else "application/json"))
    merged = [(k, v) for k, v in defaults if k.lower() not in names] + given
    pairs = _pairs(query, "query")
    return _Request(method=method.upper(), path=path, headers=merged, query=pairs,
                    raw_query=query.lstrip("?") if isinstance(query, str) else urlencode(pairs),
                    body=text, base64_encoded=encoded, when=when)


def _path_parameters(template: str, path: str) -> dict[str, str]:
    """Match a resource or route template (`/items/{id}`, `/{proxy+}`) against a path."""
    require(isinstance(template, str) and template.startswith("/"), f"template {template!r} must start with '/'")
    want, have = template.strip("/").split("/"), path.strip("/").split("/")
    params: dict[str, str] = {}
    for i, part in enumerate(want):
        if part.startswith("{") and part.endswith("+}"):
            require(i < len(have) and have[i] != "", f"path {path!r} does not match {template!r}")
            params[part[1:-2]] = "/".join(have[i:])
            return params
        require(i < len(have), f"path {path!r} does not match {template!r}")
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = have[i]
        else:
            require(part == have[i], f"path {path!r} does not match {template!r}")
    require(len(want) == len(have), f"path {path!r} does not match {template!r}")
    return params


def new_api_id() -> str:
    """An API id as API Gateway makes them: 10 lower-case letters and digits."""
    return _random_text(10, string.ascii_lowercase + string.digits)


def _api_ids(region: str, account: str) -> tuple[str, str]:
    check_region(region)
    check_account(account)
    api_id = new_api_id()
    return api_id, f"{api_id}.execute-api.{region}.amazonaws.com"


def apigateway_v1_event(method: str = "GET", path: str = "/", *, body: Any = None, headers: Any = None,
                        query: Any = None, resource: str | None = None, stage: str = "prod",
                        region: str = REGION, account: str = ACCOUNT_ID) -> JSON:
    """A REST API proxy-integration request (payload 1.0). `resource` is the route template, e.g.
    '/items/{id}', from which `pathParameters` are read; AWS sends null where there is nothing."""
    api_id, domain = _api_ids(region, account)
    req = _request(method, path, body, headers, query, domain)
    resource = resource or path
    params = _path_parameters(resource, path)
    header_values = _grouped(req.headers)
    query_values = _grouped(req.query)
    user_agent = next((v[-1] for k, v in header_values.items() if k.lower() == "user-agent"), "lambdalab")
    identity = dict.fromkeys(("accessKey", "accountId", "caller", "cognitoAuthenticationProvider",
                              "cognitoAuthenticationType", "cognitoIdentityId", "cognitoIdentityPoolId",
                              "principalOrgId"))
    identity.update({"sourceIp": "127.0.0.1", "user": None, "userAgent": user_agent, "userArn": None,
                     "clientCert": None})
    return {
        "version": "1.0",
        "resource": resource,
        "path": path,
        "httpMethod": req.method,
        "headers": {k: v[-1] for k, v in header_values.items()},
        "multiValueHeaders": header_values,
        "queryStringParameters": {k: v[-1] for k, v in query_values.items()} or None,
        "multiValueQueryStringParameters": query_values or None,
        "requestContext": {
            "accountId": account,
            "apiId": api_id,
            "authorizer": {"claims": None, "scopes": None},
            "domainName": domain,
            "domainPrefix": api_id,
            "extendedRequestId": short_request_id(),
            "httpMethod": req.method,
            "identity": identity,
            "path": f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": _clf_time(req.when),
            "requestTimeEpoch": epoch_ms(req.when),
            "resourceId": _random_text(6, string.ascii_lowercase + string.digits),
            "resourcePath": resource,
            "stage": stage,
        },
        "pathParameters": params or None,
        "stageVariables": None,
        "body": req.body,
        "isBase64Encoded": req.base64_encoded,
    }


def apigateway_v2_event(method: str = "GET", path: str = "/", *, body: Any = None, headers: Any = None,
                        query: Any = None, cookies: Sequence[str] | None = None, route: str | None = None,
                        stage: str = "$default", region: str = REGION, account: str = ACCOUNT_ID) -> JSON:
    """An HTTP API / function URL request (payload 2.0): header names lower-cased, repeated values
    comma-joined, cookies split out of the Cookie header, empty parts left out as AWS does."""
    api_id, domain = _api_ids(region, account)
    req = _request(method, path, body, headers, query, domain)
    require(cookies is None or (not isinstance(cookies, str) and all(isinstance(c, str) for c in cookies)),
             f"cookies must be a list of 'name=value' strings, got {cookies!r}")
    jar = list(cookies or [])
    header_values: dict[str, list[str]] = {}
    for name, value in req.headers:
        if name.lower() == "cookie":
            jar += [c.strip() for c in value.split(";") if c.strip()]
        else:
            header_values.setdefault(name.lower(), []).append(value)
    route_key = "$default" if route is None else f"{req.method} {route}"
    params = _path_parameters(route, path) if route is not None else {}
    event: JSON = {"version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": req.raw_query}
    if jar:
        event["cookies"] = jar
    event["headers"] = {k: ",".join(v) for k, v in header_values.items()}
    if req.query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in _grouped(req.query).items()}
    event["requestContext"] = {
        "accountId": account,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": api_id,
        "http": {"method": req.method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                 "userAgent": header_values.get("user-agent", ["lambdalab"])[-1]},
        "requestId": short_request_id(),
        "routeKey": route_key,
        "stage": stage,
        "time": _clf_time(req.when),
        "timeEpoch": epoch_ms(req.when),
    }
    if req.body is not None:
        event["body"] = req.body
    if params:
        event["pathParameters"] = params
    event["isBase64Encoded"] = req.base64_encoded
    return event
