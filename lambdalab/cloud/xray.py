"""The local cloud's X-Ray side: the daemon functions send segments to, and the segments Lambda
itself records for each traced invocation.

On Lambda a function's X-Ray SDK (or Powertools Tracer) sends segment documents over UDP to the
daemon at `AWS_XRAY_DAEMON_ADDRESS`; each datagram is the header `{"format": "json",
"version": 1}`, a newline, then one document, and the daemon uploads them in batches with
PutTraceSegments. `XRayDaemon` is that daemon on loopback, uploading to moto's X-Ray.
https://docs.aws.amazon.com/xray/latest/devguide/xray-api-sendingdata.html

Lambda decides whether to trace a request (Active tracing samples the first request each second
and 5% of the rest; PassThrough follows the upstream `Sampled` decision), hands the function a
trace header whose `Parent` is the function's segment, and records two segments itself: the
service's (`AWS::Lambda`) and the function's (`AWS::Lambda::Function`, with `Initialization`
and `Invocation` subsegments). `LambdaTracer` does both.
https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html

A REST API stage with `tracingEnabled` samples by the same default rule (its own reservoir),
records an `AWS::ApiGateway::Stage` segment named `{api name}/{stage}` per sampled request and
hands Lambda a header whose `Parent` is that segment, so Lambda's service segment hangs under it.
HTTP APIs record nothing: they do not support X-Ray. `StageTracer` is that part.
https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-xray.html
https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-understanding-xray-traces.html
"""

from __future__ import annotations

import json
import logging
import random
import select
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from lambdalab._util.xray import new_segment_id, new_trace_id
from lambdalab.cloud.loops import TraceHeader

log = logging.getLogger(__name__)

DAEMON_HEADER = {"format": "json", "version": 1}
MAX_DATAGRAM = 64 * 1024  # the daemon's UDP buffer: a larger document is cut and lost
BATCH = 50  # PutTraceSegments takes at most 50 documents per call
RESERVOIR_PER_S = 1  # X-Ray's default sampling rule: the first request each second...
FIXED_RATE = 0.05  # ...and 5% of the others


def parse_datagram(data: bytes) -> str | None:
    """The segment document in one daemon datagram, or None if it lacks the daemon header."""
    head, sep, body = data.partition(b"\n")
    try:
        if not sep or json.loads(head) != DAEMON_HEADER:
            return None
        json.loads(body)
    except ValueError:
        return None
    return body.decode("utf-8")


class XRayDaemon:
    """A UDP listener on loopback that uploads each segment document it receives with
    `put(documents)` (PutTraceSegments), batching as the X-Ray daemon does."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.setblocking(False)
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._put: Callable[[list[str]], Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0  # datagrams that were not daemon-formatted segment documents
        self.unprocessed: list[dict[str, Any]] = []  # what PutTraceSegments refused, as it said

    @property
    def address(self) -> str:
        """`host:port`, the value of `AWS_XRAY_DAEMON_ADDRESS`."""
        host, port = self._sock.getsockname()
        return f"{host}:{port}"

    def start(self, put: Callable[[list[str]], Any]) -> None:
        """Upload with `put` (a PutTraceSegments call taking `TraceSegmentDocuments`)."""
        self._put = put
        self._thread = threading.Thread(target=self._serve, name="xray-daemon", daemon=True)
        self._thread.start()

    def submit(self, document: dict[str, Any]) -> None:
        """A segment recorded by the cloud itself (Lambda's own), uploaded with the rest."""
        with self._lock:
            self._pending.append(json.dumps(document))

    def flush(self) -> None:
        """Upload every datagram received so far (a function's segments are in the socket's
        buffer once its invocation has returned: loopback UDP is delivered on send)."""
        with self._lock:
            self._drain()
            while self._pending:
                batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
                self._upload(batch)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                select.select([self._sock], [], [], 0.5)
            except (OSError, ValueError):  # closed under us
                return
            if not self._stop.is_set():
                self.flush()

    def _drain(self) -> None:
        while True:
            try:
                data = self._sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, OSError):
                return
            document = parse_datagram(data)
            if document is None:
                self.dropped += 1
            else:
                self._pending.append(document)

    def _upload(self, batch: list[str]) -> None:
        if self._put is None:
            return
        try:
            answer = self._put(batch) or {}
        except Exception as e:  # a daemon logs a failed upload and carries on
            log.warning("PutTraceSegments failed: %s", e)
            return
        self.unprocessed.extend(answer.get("UnprocessedTraceSegments") or [])


@dataclass
class _Reservoir:
    second: int = -1
    used: int = 0


class Sampler:
    """X-Ray's default sampling rule for one service: the first request each second, then
    `rate` of the others."""

    def __init__(self, *, rate: float = FIXED_RATE, chooser: Callable[[], float] = random.random,
                 clock: Callable[[], float] = time.time):
        self._rate = rate
        self._chooser = chooser
        self._clock = clock
        self._reservoir = _Reservoir()
        self._lock = threading.Lock()

    def sample(self) -> bool:
        with self._lock:
            now = int(self._clock())
            if self._reservoir.second != now:
                self._reservoir = _Reservoir(second=now)
            if self._reservoir.used < RESERVOIR_PER_S:
                self._reservoir.used += 1
                return True
        return self._chooser() < self._rate


class LambdaTracer:
    """Lambda's part in tracing: the sampling decision for each request, and the service and
    function segments of each traced invocation, handed to the daemon's uploader."""

    def __init__(self, daemon: XRayDaemon, account_id: str, region: str, *,
                 rate: float = FIXED_RATE, chooser: Callable[[], float] = random.random,
                 clock: Callable[[], float] = time.time):
        self._daemon = daemon
        self._account_id = account_id
        self._region = region
        self._sampler = Sampler(rate=rate, chooser=chooser, clock=clock)
        self._lock = threading.Lock()
        # function segment id -> the caller's segment id (None: the trace starts at Lambda);
        # kept a while, since an asynchronous event's retries run with the same header.
        self._parents: OrderedDict[str, str | None] = OrderedDict()

    def decide(self, mode: str, incoming: str | None) -> str | None:
        """The trace header to admit a request with: the upstream decision kept, else
        Active tracing samples by the default rule and PassThrough does not trace."""
        header = TraceHeader.parse(incoming)
        if header is not None and header.sampled in ("0", "1"):
            return incoming
        if mode != "Active":
            return incoming
        sampled = "1" if self._sampler.sample() else "0"
        return str(replace(header, sampled=sampled)) if header else str(replace(TraceHeader.new(), sampled=sampled))

    def admitted(self, incoming: str | None, header: str) -> None:
        """The function runs under `header`: remember which segment called it."""
        ours = TraceHeader.parse(header)
        if ours is None or ours.sampled != "1" or ours.parent is None:
            return
        upstream = TraceHeader.parse(incoming)
        with self._lock:
            self._parents[ours.parent] = upstream.parent if upstream else None
            while len(self._parents) > 10_000:
                self._parents.popitem(last=False)

    def on_invocation(self, inv: Any) -> None:
        """The runtime's observer: record Lambda's two segments for a traced invocation."""
        header = TraceHeader.parse(inv.trace_id)
        if header is None or header.sampled != "1" or header.parent is None:
            return
        with self._lock:
            if header.parent not in self._parents:
                return  # not admitted through the cloud (a bare runtime call): nothing traced it
            upstream = self._parents[header.parent]
        for document in lambda_segments(inv, header.root, header.parent, upstream,
                                        self._function_arn(inv.function_name)):
            self._daemon.submit(document)

    def reset(self) -> None:
        with self._lock:
            self._parents.clear()

    def _function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self._region}:{self._account_id}:function:{name}"


def lambda_segments(inv: Any, trace_id: str, function_segment_id: str, upstream: str | None,
                    function_arn: str) -> list[dict[str, Any]]:
    """The `AWS::Lambda` and `AWS::Lambda::Function` segments of one invocation."""
    init_s = (inv.init_ms or 0.0) / 1000
    began = inv.started_at - init_s
    service: dict[str, Any] = {
        "name": inv.function_name, "id": new_segment_id(), "trace_id": trace_id, "origin": "AWS::Lambda",
        "start_time": began, "end_time": inv.ended_at, "resource_arn": function_arn,
        "aws": {"request_id": inv.request_id}, "http": {"response": {"status": 200}},
    }
    if upstream:
        service["parent_id"] = upstream
    subsegments = []
    if init_s:
        subsegments.append({"name": "Initialization", "id": new_segment_id(),
                            "start_time": began, "end_time": inv.started_at})
    invocation: dict[str, Any] = {"name": "Invocation", "id": new_segment_id(),
                                  "start_time": inv.started_at, "end_time": inv.ended_at}
    function: dict[str, Any] = {
        "name": inv.function_name, "id": function_segment_id, "trace_id": trace_id,
        "parent_id": service["id"], "origin": "AWS::Lambda::Function", "resource_arn": function_arn,
        "start_time": began, "end_time": inv.ended_at, "subsegments": subsegments + [invocation],
        "aws": {"function_arn": function_arn, "resource_names": [inv.function_name]},
    }
    if inv.error is not None:
        # An unhandled error is a fault of the function, with the exception as its cause.
        cause = {"exceptions": [{"id": new_segment_id(), "message": str(inv.error.get("errorMessage", "")),
                                 "type": str(inv.error.get("errorType", ""))}]}
        for segment in (function, invocation):
            segment.update(fault=True, cause=cause)
    return [service, function]


@dataclass(frozen=True)
class StageRequest:
    """One request a REST API stage served, as its X-Ray segment tells it."""

    api_id: str
    api_name: str
    stage: str
    method: str
    url: str
    client_ip: str
    status: int
    content_length: int
    request_id: str
    start: float
    end: float


class StageTracer:
    """API Gateway's part in tracing, for REST API stages with `tracingEnabled`."""

    def __init__(self, daemon: XRayDaemon, account_id: str, region: str, *, sampler: Sampler | None = None):
        self._daemon = daemon
        self._account_id = account_id
        self._region = region
        self._sampler = sampler or Sampler()

    def decide(self, incoming: str | None) -> TraceHeader:
        """The header the stage passes on: the caller's trace (or a new one), the caller's
        sampling decision if it made one, else the default rule's; `Parent` is the stage's
        segment id."""
        header = TraceHeader.parse(incoming) or TraceHeader(root=new_trace_id())
        sampled = header.sampled if header.sampled in ("0", "1") else ("1" if self._sampler.sample() else "0")
        return replace(header, parent=new_segment_id(), sampled=sampled)

    def record(self, header: TraceHeader, upstream: str | None, request: StageRequest) -> None:
        """Send the stage's segment for a request served under `header` (if it was sampled)."""
        if header.sampled == "1" and header.parent:
            self._daemon.submit(stage_segment(header.root, header.parent, upstream, request,
                                              self._account_id, self._region))


def stage_segment(trace_id: str, segment_id: str, upstream: str | None, request: StageRequest,
                  account_id: str, region: str) -> dict[str, Any]:
    """The `AWS::ApiGateway::Stage` segment of one request, shaped as API Gateway's example."""
    segment: dict[str, Any] = {
        "name": f"{request.api_name}/{request.stage}", "id": segment_id, "trace_id": trace_id,
        "origin": "AWS::ApiGateway::Stage", "start_time": request.start, "end_time": request.end,
        "resource_arn": f"arn:aws:apigateway:{region}::/restapis/{request.api_id}/stages/{request.stage}",
        "http": {"request": {"url": request.url, "method": request.method, "client_ip": request.client_ip,
                             "x_forwarded_for": True},
                 "response": {"status": request.status, "content_length": request.content_length}},
        "aws": {"xray": {"sampling_rule_name": "Default"},
                "api_gateway": {"account_id": account_id, "rest_api_id": request.api_id,
                                "stage": request.stage, "request_id": request.request_id}},
        "annotations": {"aws:api_id": request.api_id, "aws:api_stage": request.stage},
        "metadata": {"default": {"request_id": request.request_id}},
    }
    if upstream:
        segment["parent_id"] = upstream
    # X-Ray's flags: `fault` for a 5xx answer, `error` for a 4xx, `throttle` for a 429 as well.
    if request.status >= 500:
        segment["fault"] = True
    elif request.status >= 400:
        segment["error"] = True
        if request.status == 429:
            segment["throttle"] = True
    return segment
