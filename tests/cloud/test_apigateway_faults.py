"""The local API Gateway endpoint under incomplete and malformed requests: a 400, never an invoke.

API Gateway only forwards complete requests to its integration. HTTP/1.1 (RFC 9112, section 6.3)
says a message whose body ends before its `Content-Length` is incomplete and must not be acted
on, and an invalid `Content-Length` or chunk size is unrecoverable: the server answers
`400 Bad Request` and closes the connection. The endpoint does that and never invokes.
"""

from __future__ import annotations

import socket
import threading
from types import SimpleNamespace

import pytest

from lambdalab.cloud.apigateway import HttpApi


@pytest.fixture
def api():
    calls: list[dict] = []

    def invoke(name: str, event: dict):
        calls.append(event)
        return SimpleNamespace(result={"statusCode": 200, "body": "ok"}, error=None, payload=None)

    with HttpApi(invoke, {"ANY /pay": "f"}).start() as a:
        a.calls = calls
        yield a


def exchange(port: int, data: bytes, *, half_close: bool = True, timeout: float = 10) -> bytes:
    """Send raw bytes, optionally close our sending side, and read whatever comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    return b"".join(chunks)


def status_of(reply: bytes) -> int | None:
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.") else None


def test_a_body_shorter_than_content_length_is_a_400_and_never_invoked(api) -> None:
    reply = exchange(api.port, b"POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"amount\": 1")
    assert status_of(reply) == 400
    assert api.calls == []


def test_headers_that_never_end_are_a_400_and_never_invoked(api) -> None:
    reply = exchange(api.port, b"POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n")
    assert status_of(reply) == 400
    assert api.calls == []


@pytest.mark.parametrize("length", [b"abc", b"-5", b"1e3", b"5, 6"])
def test_a_malformed_content_length_is_a_400(api, length: bytes) -> None:
    reply = exchange(api.port, b"POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\nhello")
    assert status_of(reply) == 400
    assert b"Traceback" not in reply
    assert api.calls == []


@pytest.mark.parametrize("body", [
    b"zz\r\nhello\r\n0\r\n\r\n",            # not hexadecimal
    b"5\r\nhel",                              # the chunk never arrives
    b"5\r\nhello\r\n",                        # no last chunk
    b"-1\r\nhello\r\n0\r\n\r\n",              # negative
])
def test_malformed_or_truncated_chunked_bodies_are_a_400(api, body: bytes) -> None:
    reply = exchange(api.port, b"POST /pay HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert status_of(reply) == 400
    assert api.calls == []


def test_a_complete_chunked_body_still_invokes(api) -> None:
    reply = exchange(api.port, b"POST /pay HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                               b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert status_of(reply) == 200
    assert [c["body"] for c in api.calls] == ["hello"]


def test_the_endpoint_stays_up_under_200_connections_with_slow_and_truncated_clients(api) -> None:
    good = b"POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    bad = b"POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{}"
    slow = [socket.create_connection(("127.0.0.1", api.port)) for _ in range(50)]
    for s in slow:
        s.sendall(b"POST /pay HTTP/1.1\r\nHost: x\r\n")  # a slow client that never finishes
    statuses: list[int | None] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        reply = exchange(api.port, bad if i % 4 == 0 else good, half_close=i % 4 == 0)
        with lock:
            statuses.append(status_of(reply))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(150)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for s in slow:
        s.close()
    assert statuses.count(400) == len(range(0, 150, 4))
    assert statuses.count(200) == 150 - len(range(0, 150, 4))
    assert len(api.calls) == statuses.count(200)


def test_a_response_that_is_not_json_is_api_gateways_500_not_a_raw_200() -> None:
    """HTTP APIs read a payload 2.0 response as JSON; anything else is a malformed Lambda
    proxy response, 500 Internal Server Error
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html)."""
    def invoke(name: str, event: dict):
        return SimpleNamespace(result=b"\xffraw", error=None, payload=b"\xffraw")

    with HttpApi(invoke, {"ANY /pay": "f"}).start() as api:
        reply = exchange(api.port, b"GET /pay HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(reply) == 500
    assert b"\xffraw" not in reply
