"""Who is calling: what the front end of an AWS service knows about the request it is serving.

The WSGI layer in front of moto (`lambdalab.cloud.server`) records, per HTTP request and thread,
the caller's `X-Amzn-Trace-Id`, address and access key; moto's patched services read it while
they serve that request (an S3 notification names its requester, a message sent by a handler
keeps its trace header, which carries Lambda's loop count). Work the cloud starts itself runs
`serving(None)`, so it inherits no caller's trace.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from lambdalab.events import s3 as s3events

_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")


@dataclass(frozen=True)
class RequestContext:
    """What the front end of an AWS service knows about the request it is serving."""

    trace_header: str | None
    source_ip: str
    access_key: str | None
    request_id: str = field(default_factory=s3events.request_id)
    host_id: str = field(default_factory=s3events.host_id)

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> "RequestContext":
        """The context of a WSGI request."""
        match = _ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION", ""))
        # botocore percent-encodes the header (a lineage's '|' arrives as %7C).
        return cls(trace_header=unquote(environ.get("HTTP_X_AMZN_TRACE_ID", "")) or None,
                   source_ip=environ.get("REMOTE_ADDR") or "127.0.0.1",
                   access_key=match.group(1) if match else None)


_local = threading.local()


def current() -> RequestContext | None:
    """The request this thread is serving, if any."""
    return getattr(_local, "context", None)


def current_trace() -> str | None:
    ctx = current()
    return ctx.trace_header if ctx else None


@contextmanager
def serving(ctx: RequestContext | None) -> Iterator[None]:
    """Run a block as if serving `ctx`."""
    previous = current()
    _local.context = ctx
    try:
        yield
    finally:
        _local.context = previous
