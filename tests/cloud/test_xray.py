"""The local X-Ray daemon and Lambda's own segments.

The daemon's UDP protocol (a `{"format": "json", "version": 1}` header line, then one segment
document per datagram) and PutTraceSegments:
https://docs.aws.amazon.com/xray/latest/devguide/xray-api-sendingdata.html
Lambda's tracing (AWS_XRAY_DAEMON_ADDRESS; Active samples, PassThrough follows the upstream
decision; the AWS::Lambda and AWS::Lambda::Function segments, with Initialization and Invocation
subsegments): https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html
Segment documents (parent_id, subsegments, fault and cause):
https://docs.aws.amazon.com/xray/latest/devguide/xray-api-segmentdocuments.html
"""

import json
import socket
import time

from lambdalab._util.xray import new_segment_id, new_trace_id
from lambdalab.cloud.xray import LambdaTracer, XRayDaemon, parse_datagram

# A handler that sends one subsegment under the function's segment, as the X-Ray SDK does on
# Lambda: trace id and parent from _X_AMZN_TRACE_ID, sent to AWS_XRAY_DAEMON_ADDRESS.
SENDER = """
import json, os, secrets, socket, time

def handler(event, context):
    fields = dict(p.split("=", 1) for p in os.environ["_X_AMZN_TRACE_ID"].split(";"))
    host, port = os.environ["AWS_XRAY_DAEMON_ADDRESS"].split(":")
    now = time.time()
    doc = {"name": "work", "id": secrets.token_hex(8), "trace_id": fields["Root"],
           "parent_id": fields["Parent"], "type": "subsegment", "start_time": now, "end_time": now + 0.01,
           "annotations": {"order": event.get("order", "none")}}
    if fields["Sampled"] == "1":  # the SDK sends nothing for an unsampled request
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
            b'{"format": "json", "version": 1}\\n' + json.dumps(doc).encode(), (host, int(port)))
    if event.get("fail"):
        raise KeyError("missing")
    return fields
"""


def _send(address: str, payload: bytes) -> None:
    host, port = address.split(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(payload, (host, int(port)))


LAMBDA_ORIGINS = frozenset({"AWS::Lambda", "AWS::Lambda::Function"})


def _documents(cloud, trace_id: str, expect: frozenset[str] = frozenset(), within: float = 10.0) -> list[dict]:
    """The trace's segment documents, once those of the `expect`ed origins have arrived.

    Lambda's segments are sent after the invocation ends (as on AWS, where a trace fills in over
    seconds): a flush can come between two of them, so a test that needs them waits for them."""
    deadline = time.monotonic() + within
    while True:
        cloud.xray.flush()
        traces = cloud.client("xray").batch_get_traces(TraceIds=[trace_id])["Traces"]
        documents = [json.loads(s["Document"]) for t in traces for s in t["Segments"]]
        if expect <= {d.get("origin") for d in documents} or time.monotonic() > deadline:
            return documents
        time.sleep(0.1)


def test_datagrams_need_the_daemon_header():
    document = {"name": "a", "id": "1", "trace_id": "t", "start_time": 1, "end_time": 2}
    good = b'{"format": "json", "version": 1}\n' + json.dumps(document).encode()
    assert json.loads(parse_datagram(good)) == document
    assert parse_datagram(json.dumps(document).encode()) is None  # no header line
    assert parse_datagram(b'{"format": "json", "version": 2}\n{}') is None
    assert parse_datagram(b'{"format": "json", "version": 1}\nnot json') is None


def test_the_daemon_uploads_what_it_receives_with_put_trace_segments(fresh):
    """A segment sent over UDP to the daemon is returned by BatchGetTraces; a datagram without
    the header is dropped and counted."""
    trace_id = new_trace_id()
    now = time.time()
    segment = {"name": "client", "id": new_segment_id(), "trace_id": trace_id,
               "start_time": now, "end_time": now + 0.5}
    dropped = fresh.xray.dropped
    _send(fresh.xray.address, b'{"format": "json", "version": 1}\n' + json.dumps(segment).encode())
    _send(fresh.xray.address, json.dumps(segment).encode())
    assert _documents(fresh, trace_id) == [segment]
    assert fresh.xray.dropped == dropped + 1


def test_batches_of_at_most_fifty():
    """PutTraceSegments takes at most 50 documents: 120 received become calls of 50, 50, 20."""
    daemon = XRayDaemon()
    calls = []
    daemon.start(lambda documents: calls.append(len(documents)) or {"UnprocessedTraceSegments": []})
    try:
        daemon._stop.set()  # upload only on flush, so the batches are what one flush makes
        daemon._thread.join()
        for i in range(120):
            _send(daemon.address, b'{"format": "json", "version": 1}\n' + json.dumps({"n": i}).encode())
        daemon.flush()
    finally:
        daemon.close()
    assert calls == [50, 50, 20]


def test_an_active_function_is_traced_with_lambdas_segments(fresh, code):
    """Active tracing: the function gets AWS_XRAY_DAEMON_ADDRESS and a sampled trace header; the
    trace holds the AWS::Lambda segment, the AWS::Lambda::Function segment under it (whose id is
    the Parent the function was given, with Initialization on a cold start and Invocation), and
    the function's own subsegment under the function segment."""
    fresh.deploy("traced", code(SENDER), "handler.handler", TracingConfig={"Mode": "Active"})
    inv = fresh.invoke("traced", {"order": "o-1"})
    fields = inv.result
    assert fields["Sampled"] == "1"
    docs = {d.get("origin", d["name"]): d for d in _documents(fresh, fields["Root"], LAMBDA_ORIGINS)}
    assert set(docs) == {"AWS::Lambda", "AWS::Lambda::Function", "work"}
    service, function, work = docs["AWS::Lambda"], docs["AWS::Lambda::Function"], docs["work"]
    assert "parent_id" not in service  # the trace starts at Lambda
    assert function["parent_id"] == service["id"] and function["id"] == fields["Parent"]
    assert work["parent_id"] == function["id"] and work["annotations"] == {"order": "o-1"}
    assert [s["name"] for s in function["subsegments"]] == ["Initialization", "Invocation"]
    assert service["resource_arn"].endswith(":function:traced")
    assert service["aws"]["request_id"] == inv.request_id
    assert function["end_time"] - function["start_time"] >= inv.duration_ms / 1000 - 0.001

    # Lambda samples the first request of each second and 5% of the rest: the next one goes into a new second.
    time.sleep(1.01 - time.time() % 1)
    warm = fresh.invoke("traced", {"fail": True})
    header = dict(p.split("=", 1) for p in warm.trace_id.split(";"))
    documents = _documents(fresh, header["Root"], LAMBDA_ORIGINS)
    function = next(d for d in documents if d.get("origin") == "AWS::Lambda::Function")
    assert [s["name"] for s in function["subsegments"]] == ["Invocation"]  # warm: no Initialization
    assert function["fault"] is True
    assert function["cause"]["exceptions"][0]["type"] == "KeyError"


def test_pass_through_follows_the_upstream_decision(fresh, code):
    """PassThrough (the default): no trace without an upstream decision; an upstream Sampled=1
    is traced, and Lambda's segment hangs under the caller's segment."""
    fresh.deploy("passing", code(SENDER), "handler.handler")
    untraced = fresh.invoke("passing", {}).result
    assert untraced["Sampled"] == "0"
    assert _documents(fresh, untraced["Root"]) == []

    trace_id, caller = new_trace_id(), new_segment_id()
    fields = fresh.invoke("passing", {}, trace_header=f"Root={trace_id};Parent={caller};Sampled=1").result
    assert fields["Root"] == trace_id and fields["Parent"] != caller
    docs = {d.get("origin", d["name"]): d for d in _documents(fresh, trace_id, LAMBDA_ORIGINS)}
    assert docs["AWS::Lambda"]["parent_id"] == caller
    assert docs["AWS::Lambda::Function"]["id"] == fields["Parent"]


def test_the_default_rule_samples_one_request_a_second_and_five_percent_more():
    """X-Ray's default sampling rule: a reservoir of 1 per second, then a fixed rate of 5%."""
    draws, now = iter([0.5, 0.01, 0.5]), [1000.2]
    daemon = XRayDaemon()
    tracer = LambdaTracer(daemon, "123456789012", "us-east-1", chooser=lambda: next(draws), clock=lambda: now[0])
    try:
        sampled = [tracer.decide("Active", None).endswith("Sampled=1") for _ in range(3)]
        assert sampled == [True, False, True]  # the reservoir's one, then 0.5 and 0.01 against 5%
        now[0] = 1001.1
        assert tracer.decide("Active", None).endswith("Sampled=1")  # a new second, a new reservoir
        assert tracer.decide("Active", None).endswith("Sampled=0")
        upstream = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
        assert tracer.decide("Active", upstream) == upstream  # an upstream decision stands
        assert tracer.decide("PassThrough", None) is None  # Lambda's header will say Sampled=0
    finally:
        daemon.close()


def test_invoke_api_and_asynchronous_events_are_traced_too(fresh, code):
    """The Invoke API (RequestResponse and Event) goes through the same sampling: an Active
    function's trace has Lambda's segments whichever way it was invoked, and the function's own
    subsegment of an asynchronous event reaches the daemon."""
    fresh.deploy("viaapi", code(SENDER), "handler.handler", TracingConfig={"Mode": "Active"})
    lam = fresh.client("lambda")
    time.sleep(1.0 - time.time() % 1.0)  # the first request of a second is always sampled
    fields = json.loads(lam.invoke(FunctionName="viaapi", Payload=b"{}")["Payload"].read())
    assert fields["Sampled"] == "1"
    origins = {d.get("origin") for d in _documents(fresh, fields["Root"], LAMBDA_ORIGINS)}
    assert {"AWS::Lambda", "AWS::Lambda::Function"} <= origins

    time.sleep(1.0 - time.time() % 1.0)
    lam.invoke(FunctionName="viaapi", InvocationType="Event", Payload=b'{"order": "async"}')
    deadline = time.monotonic() + 20
    while len(fresh.records("viaapi")) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    header = dict(p.split("=", 1) for p in fresh.records("viaapi")[-1].trace_id.split(";"))
    docs = _documents(fresh, header["Root"], LAMBDA_ORIGINS)
    assert {d.get("origin") for d in docs} >= {"AWS::Lambda", "AWS::Lambda::Function"}
    assert next(d for d in docs if d["name"] == "work")["annotations"] == {"order": "async"}
