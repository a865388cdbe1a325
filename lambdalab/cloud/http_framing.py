"""Reading an HTTP/1.1 request's framing strictly, for the local endpoints that invoke functions.

The standard library's server takes a connection closed mid-headers for the end of the headers
and trusts `Content-Length` and chunk sizes; an endpoint that invokes a function must not act on
a request the client never finished. `HeaderEndReader` remembers whether the headers ended with
their blank line, and `read_body` reads a `Content-Length` or chunked body, raising `BadRequestError`
(answered 400, never invoked) when the body is incomplete or its framing malformed (RFC 9112
sections 6.3 and 7.1).
"""

from __future__ import annotations

import re
from email.message import Message
from typing import BinaryIO

_DIGITS = re.compile(rb"^[0-9]+$")
_HEX = re.compile(rb"^[0-9A-Fa-f]+$")
_LINE_LIMIT = 65537


class BadRequestError(ValueError):
    """The request is incomplete or its framing cannot be read; the message says which."""


class HeaderEndReader:
    """Wraps a connection's reader and remembers the last line read, so the server can tell the
    blank line that ends the headers from a connection closed before it."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._last = b""

    def readline(self, limit: int = -1) -> bytes:
        self._last = self._raw.readline(limit)
        return self._last

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)

    @property
    def headers_ended(self) -> bool:
        return self._last in (b"\r\n", b"\n")

    def __getattr__(self, name: str) -> object:
        return getattr(self._raw, name)


def _read_exactly(rfile: BinaryIO, size: int, what: str) -> bytes:
    try:
        data = rfile.read(size)
    except (TimeoutError, ConnectionError):
        data = b""
    if len(data) != size:
        raise BadRequestError(f"{what}: {size} bytes announced, {len(data)} arrived before the connection ended")
    return data


def _readline(rfile: BinaryIO, what: str) -> bytes:
    try:
        line = rfile.readline(_LINE_LIMIT)
    except (TimeoutError, ConnectionError):
        line = b""
    if not line.endswith(b"\n"):
        raise BadRequestError(f"{what} never ended")
    return line


def _content_length(headers: Message) -> int:
    values = {v.strip() for v in headers.get_all("Content-Length") or []}
    if not values:
        return 0
    if len(values) > 1:
        raise BadRequestError(f"conflicting Content-Length headers: {', '.join(sorted(values))}")
    value = values.pop()
    if not _DIGITS.match(value.encode()):
        raise BadRequestError(f"Content-Length {value!r} is not a number of bytes")
    return int(value)


def _chunked(rfile: BinaryIO, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_field = _readline(rfile, "a chunk size line").split(b";")[0].strip()
        if not _HEX.match(size_field):
            raise BadRequestError(f"chunk size {size_field[:20]!r} is not hexadecimal")
        size = int(size_field, 16)
        if size == 0:
            while _readline(rfile, "the chunked trailer") not in (b"\r\n", b"\n"):
                pass
            return b"".join(chunks)
        total += size
        if total > limit:
            return None
        chunks.append(_read_exactly(rfile, size, "a chunk"))
        if _readline(rfile, "a chunk") not in (b"\r\n", b"\n"):
            raise BadRequestError("a chunk is longer than its size")


def read_body(headers: Message, rfile: BinaryIO, limit: int) -> bytes | None:
    """The whole body, or None when it passes `limit` bytes; raises `BadRequestError`."""
    encoding = (headers.get("Transfer-Encoding") or "").strip().lower()
    if encoding:
        if encoding.split(",")[-1].strip() != "chunked":
            raise BadRequestError(f"Transfer-Encoding {encoding!r} is not chunked")
        return _chunked(rfile, limit)
    length = _content_length(headers)
    if length > limit:
        return None
    return _read_exactly(rfile, length, "the body") if length else b""
