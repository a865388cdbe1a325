"""The local API Gateway endpoint: routes, payload 2.0 and 1.0 events, responses and errors as API
Gateway gives them, with real handlers in the local runtime (issue 3, acceptance 5)."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import textwrap
import threading
import time
from pathlib import Path

import pytest
from contract import contract_problems

from lambdalab.cloud import apigateway
from lambdalab.cloud.apigateway import HttpApi
from lambdalab.cloud.apigateway_proxy import Malformed, parse_route, response_v1, response_v2
from lambdalab.cloud.local_cloud import LocalCloud

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "aws-events"  # copies of shared/aws-events

HANDLER = textwrap.dedent('''
    import base64, json, time

    def handler(event, context):
        path = event.get("rawPath") or event.get("path")
        method = event.get("httpMethod") or event["requestContext"]["http"]["method"]
        last = path.rstrip("/").rsplit("/", 1)[-1]
        if last == "raw":
            return {"hello": "world"}
        if last == "string":
            return "Hello from Lambda!"
        if last == "boom":
            raise ValueError("boom")
        if last == "malformed":
            return {"statusCode": 200, "body": {"not": "a string"}}
        if last == "slow":
            time.sleep(2)
            return {"statusCode": 200, "body": "late"}
        if last == "binary":
            return {"statusCode": 200, "headers": {"Content-Type": "image/png"},
                    "body": base64.b64encode(b"\\x89PNG\\x00\\x01").decode(), "isBase64Encoded": True}
        return {
            "statusCode": 201 if method == "POST" else 200,
            "headers": {"Content-Type": "application/json", "X-Route": event.get("routeKey") or event.get("resource"),
                        "X-Both": "single"},
            "multiValueHeaders": {"X-Both": ["multi-1", "multi-2"]},
            "cookies": ["session=abc; HttpOnly", "theme=dark"],
            "body": json.dumps({"event": event, "request_id": context.aws_request_id}),
        }
''')


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    code = tmp_path_factory.mktemp("api-handler")
    (code / "app.py").write_text(HANDLER)
    with LocalCloud(cpu_limit=False) as c:
        c.deploy("web", code, "app.handler")
        c.deploy("tight", code, "app.handler")
        c.client("lambda").put_function_concurrency(FunctionName="tight", ReservedConcurrentExecutions=0)
        yield c


@pytest.fixture
def api(cloud):
    with apigateway.attach(cloud, {"GET /hello": "web", "POST /items": "web", "GET /items/{id}": "web",
                                   "GET /raw": "web", "GET /string": "web", "GET /boom": "web",
                                   "GET /malformed": "web", "GET /binary": "web",
                                   "ANY /files/{path+}": "web", "GET /tight": "tight"}) as a:
        yield a


def call(api: HttpApi, method: str, path: str, body: bytes | str | None = None,
         headers: list[tuple[str, str]] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
    try:
        conn.putrequest(method, path)
        data = body.encode() if isinstance(body, str) else body
        for name, value in headers or []:
            conn.putheader(name, value)
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


# -- acceptance 5 --------------------------------------------------------------------------------


def test_get_and_post_through_the_local_endpoint_return_the_handlers_response(cloud, api) -> None:
    """Acceptance 5: a GET and a POST reach a real handler and come back as it answered."""
    status, headers, body = call(api, "GET", "/hello?name=Ada&x=1&x=2",
                                 headers=[("Cookie", "a=1; b=2"), ("X-Custom", "one"), ("X-Custom", "two")])
    assert status == 200
    assert headers["X-Route"] == "GET /hello" and headers["Content-Type"] == "application/json"
    assert headers.get_all("Set-Cookie") == ["session=abc; HttpOnly", "theme=dark"]
    assert headers["X-Both"] == "single"  # payload 2.0 has no multiValueHeaders
    assert headers["Apigw-Requestid"]
    answer = json.loads(body)
    event = answer["event"]
    assert contract_problems("apigateway-v2", event, sample("apigateway-http-v2.json")) == []
    assert event["version"] == "2.0" and event["routeKey"] == "GET /hello"
    assert event["rawPath"] == "/hello" and event["rawQueryString"] == "name=Ada&x=1&x=2"
    assert event["queryStringParameters"] == {"name": "Ada", "x": "1,2"}
    assert event["cookies"] == ["a=1", "b=2"] and "cookie" not in event["headers"]
    assert event["headers"]["x-custom"] == "one,two"
    assert event["headers"]["host"] == f"127.0.0.1:{api.port}"
    assert event["requestContext"]["http"] == {"method": "GET", "path": "/hello", "protocol": "HTTP/1.1",
                                               "sourceIp": "127.0.0.1",
                                               "userAgent": event["headers"].get("user-agent", "lambdalab")}
    assert "body" not in event and event["isBase64Encoded"] is False
    assert cloud.runtime.records("web")[-1].request_id == answer["request_id"]

    payload = json.dumps({"name": "widget", "price": 9.5})
    status, headers, body = call(api, "POST", "/items", payload, headers=[("Content-Type", "application/json")])
    assert status == 201
    event = json.loads(body)["event"]
    assert event["routeKey"] == "POST /items" and event["body"] == payload and event["isBase64Encoded"] is False
    assert contract_problems("apigateway-v2", event, sample("apigateway-http-v2.json")) == []

    status, _, body = call(api, "GET", "/items/caf%C3%A9%20noir")
    event = json.loads(body)["event"]
    assert status == 200 and event["pathParameters"] == {"id": "café noir"}
    assert event["routeKey"] == "GET /items/{id}" and event["rawPath"] == "/items/caf%C3%A9%20noir"


def test_a_result_without_status_code_is_a_200_json_body(api) -> None:
    status, headers, body = call(api, "GET", "/raw")
    assert (status, headers["Content-Type"], json.loads(body)) == (200, "application/json", {"hello": "world"})
    status, headers, body = call(api, "GET", "/string")
    assert (status, headers["Content-Type"], body) == (200, "application/json", b'"Hello from Lambda!"')


def test_binary_bodies_both_ways(api) -> None:
    status, headers, body = call(api, "GET", "/binary")
    assert (status, headers["Content-Type"], body) == (200, "image/png", b"\x89PNG\x00\x01")
    raw = bytes(range(256))
    _, _, body = call(api, "PUT", "/files/a/b.bin", raw, headers=[("Content-Type", "application/octet-stream")])
    event = json.loads(body)["event"]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == raw
    assert event["pathParameters"] == {"path": "a/b.bin"} and event["routeKey"] == "ANY /files/{path+}"
    # HTTP APIs base64-encode form posts too; text and JSON stay text.
    _, _, body = call(api, "POST", "/files/form", "a=1&b=2",
                      headers=[("Content-Type", "application/x-www-form-urlencoded")])
    event = json.loads(body)["event"]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"a=1&b=2"
    _, _, body = call(api, "POST", "/files/note", "héllo", headers=[("Content-Type", "text/plain; charset=utf-8")])
    assert json.loads(body)["event"]["body"] == "héllo"


def test_errors_are_api_gateways(cloud, api) -> None:
    internal = {"message": "Internal Server Error"}
    status, _, body = call(api, "GET", "/boom")
    assert (status, json.loads(body)) == (500, internal)
    assert "ValueError: boom" in api.exchanges[-1].error
    status, _, body = call(api, "GET", "/malformed")
    assert (status, json.loads(body)) == (500, internal)
    assert "body must be a string" in api.exchanges[-1].error
    status, _, body = call(api, "GET", "/tight")  # reserved concurrency 0: Lambda rejects the invoke
    assert (status, json.loads(body)) == (500, internal)
    assert "TooManyRequestsException" in api.exchanges[-1].error
    status, _, body = call(api, "DELETE", "/hello")
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    api.add_route("GET /ghost", "no-such-function")
    status, _, body = call(api, "GET", "/ghost")
    assert (status, json.loads(body)) == (500, internal)


def test_integration_timeout_answers_503_while_the_function_runs_on(cloud) -> None:
    with apigateway.attach(cloud, {"GET /slow": "web"}, integration_timeout_s=0.5) as api:
        started = time.monotonic()
        status, _, body = call(api, "GET", "/slow")
        assert (status, json.loads(body)) == (503, {"message": "Service Unavailable"})
        assert time.monotonic() - started < 1.5
        assert "timed out after 0.5 s" in api.exchanges[-1].error
    assert cloud.settle(10)
    assert cloud.runtime.records("web")[-1].result == {"statusCode": 200, "body": "late"}


def test_the_apis_own_throttle_answers_429(cloud) -> None:
    with apigateway.attach(cloud, {"GET /raw": "web"}, throttle=(0.01, 1)) as api:  # one token, refilled after 100 s
        assert call(api, "GET", "/raw")[0] == 200
        status, _, body = call(api, "GET", "/raw")
        assert (status, json.loads(body)) == (429, {"message": "Too Many Requests"})


def test_rest_api_payload_1_0(cloud) -> None:
    with apigateway.attach(cloud, {"ANY /{proxy+}": "web", "GET /boom": "web", "GET /string": "web"},
                           kind="rest", stage_variables={"env": "test"}) as api:
        status, headers, body = call(api, "GET", "/a/b?x=1&x=2&y=",
                                     headers=[("X-Multi", "one"), ("X-Multi", "two")])
        assert status == 200
        assert headers.get_all("X-Both") == ["multi-1", "multi-2"]  # multiValueHeaders win on a clash
        assert headers["X-Route"] == "/{proxy+}" and headers["x-amzn-RequestId"]
        event = json.loads(body)["event"]
        assert contract_problems("apigateway-v1", event, sample("apigateway-rest-v1.json")) == []
        assert event["version"] == "1.0" and event["httpMethod"] == "GET"
        assert event["resource"] == "/{proxy+}" and event["path"] == "/a/b"
        assert event["pathParameters"] == {"proxy": "a/b"} and event["stageVariables"] == {"env": "test"}
        assert event["queryStringParameters"] == {"x": "2", "y": ""}
        assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": [""]}
        assert event["multiValueHeaders"]["X-Multi"] == ["one", "two"] and event["headers"]["X-Multi"] == "two"
        assert event["requestContext"]["stage"] == "prod"
        assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
        assert event["body"] is None
        rest_error = {"message": "Internal server error"}
        status, _, body = call(api, "GET", "/boom")
        assert (status, json.loads(body)) == (502, rest_error)
        status, _, body = call(api, "GET", "/string")  # no statusCode: malformed for payload 1.0
        assert (status, json.loads(body)) == (502, rest_error)
        api.remove_route("ANY /{proxy+}")
        status, _, body = call(api, "GET", "/nowhere")
        assert (status, json.loads(body)) == (403, {"message": "Missing Authentication Token"})


def test_head_requests_and_keep_alive_connections(api) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
    try:
        for _ in range(3):  # one connection, several requests
            conn.request("GET", "/raw")
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b'{"hello": "world"}')
        conn.request("HEAD", "/files/raw")  # an ANY route takes HEAD
        response = conn.getresponse()
        assert response.status == 200 and response.read() == b""
        assert response.headers["Content-Length"] == str(len(b'{"hello": "world"}'))
        conn.request("HEAD", "/raw")  # a GET route does not
        response = conn.getresponse()
        assert response.status == 404 and response.read() == b""
    finally:
        conn.close()


def test_closing_frees_the_port_and_threads_even_with_an_open_connection(cloud) -> None:
    api = apigateway.attach(cloud, {"GET /raw": "web"})
    port = api.port
    idle = socket.create_connection(("127.0.0.1", port))  # a keep-alive client that never speaks
    assert call(api, "GET", "/raw")[0] == 200
    started = time.monotonic()
    api.close()
    assert time.monotonic() - started < 3
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    assert idle.recv(1) == b""  # the server closed its side
    idle.close()
    deadline = time.monotonic() + 3
    while any(t.name.startswith("lambdalab-api") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name.startswith(f"lambdalab-api-{port}") for t in threading.enumerate())


# -- routes and responses, without a server ------------------------------------------------------------


def route_keys(routes: dict[str, str]) -> HttpApi:
    return HttpApi(lambda name, event: None, routes)


@pytest.mark.parametrize("method,path,key,params", [
    ("GET", "/pets/dog", "GET /pets/dog", {}),
    ("GET", "/pets/7", "GET /pets/{id}", {"id": "7"}),
    ("DELETE", "/pets/7", "ANY /pets/{id}", {"id": "7"}),
    ("POST", "/pets", "POST /pets", {}),
    ("POST", "/pets/", "POST /pets", {}),
    ("GET", "/pets/7/toys/ball", "GET /pets/{id}/toys/{toy}", {"id": "7", "toy": "ball"}),
    ("GET", "/a/b/c", "ANY /{proxy+}", {"proxy": "a/b/c"}),
    ("GET", "/pets/hello%20world", "GET /pets/{id}", {"id": "hello world"}),
    ("GET", "/", "$default", {}),
    ("PUT", "/pets", "ANY /{proxy+}", {"proxy": "pets"}),
])
def test_the_most_specific_route_wins(method: str, path: str, key: str, params: dict) -> None:
    api = route_keys({"GET /pets/dog": "f", "GET /pets/{id}": "f", "ANY /pets/{id}": "f", "POST /pets": "f",
                      "GET /pets/{id}/toys/{toy}": "f", "ANY /{proxy+}": "f", "$default": "f"})
    route, found = api.find_route(method, path)
    assert (route.key, found) == (key, params)


def test_no_route_without_default() -> None:
    assert route_keys({"GET /pets": "f"}).find_route("GET", "/cats") is None
    assert route_keys({"ANY /{proxy+}": "f"}).find_route("GET", "/") is None  # greedy needs a segment


@pytest.mark.parametrize("key,kind,version,message", [
    ("GET items", "http", "2.0", "must look like"),
    ("FETCH /x", "http", "2.0", "method FETCH"),
    ("GET /{proxy+}/x", "http", "2.0", "must be the last segment"),
    ("GET /a{b}", "http", "2.0", "whole segment"),
    ("GET /{id}/{id}", "http", "2.0", "appears twice"),
    ("$default", "rest", "1.0", "no \\$default"),
    ("GET /x", "rest", "2.0", "payload 1.0"),
    ("GET /x", "http", "3.0", "payload version"),
])
def test_bad_route_keys_are_refused(key: str, kind: str, version: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_route(key, "f", version, kind)


def test_api_options_are_checked() -> None:
    with pytest.raises(ValueError, match="loopback only"):
        HttpApi(lambda n, e: None, host="0.0.0.0")
    with pytest.raises(ValueError, match="kind"):
        HttpApi(lambda n, e: None, kind="websocket")
    with pytest.raises(ValueError, match="integration_timeout_s"):
        HttpApi(lambda n, e: None, kind="rest", integration_timeout_s=30)
    with pytest.raises(ValueError, match="throttle"):
        HttpApi(lambda n, e: None, throttle=(0, 1))
    with pytest.raises(RuntimeError, match="not running"):
        HttpApi(lambda n, e: None).port  # noqa: B018 - the access itself must raise


def test_response_reading_rules() -> None:
    ok = response_v2({"statusCode": 404, "headers": {"X-N": 5, "X-B": True}, "body": "nope", "cookies": ["c=1"]})
    assert (ok.status, ok.headers, ok.body) == (404, [("X-N", "5"), ("X-B", "true"), ("Set-Cookie", "c=1")], b"nope")
    assert response_v2({"statusCode": "204"}).status == 204 and response_v2({"statusCode": 204}).body == b""
    inferred = response_v2({"message": "hi", "body": "ignored"})  # no statusCode: the whole result is the body
    assert json.loads(inferred.body) == {"message": "hi", "body": "ignored"}
    assert response_v2(None).body == b"null"
    merged = response_v1({"statusCode": 200, "headers": {"A": "1", "B": "x"}, "multiValueHeaders": {"B": ["2", "3"]}})
    assert sorted(merged.headers) == [("A", "1"), ("B", "2"), ("B", "3")]
    for bad in ({"statusCode": 99}, {"statusCode": True}, {"statusCode": 200, "body": 5},
                {"statusCode": 200, "isBase64Encoded": True, "body": "***"},
                {"statusCode": 200, "headers": ["A"]}, {"statusCode": 200, "cookies": "c=1"},
                {"statusCode": 200, "headers": {"A": {"nested": 1}}}):
        with pytest.raises(Malformed):
            response_v2(bad)
    with pytest.raises(Malformed, match="statusCode"):
        response_v1({"message": "hi"})
