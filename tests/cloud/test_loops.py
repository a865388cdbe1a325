"""Recursive loop detection: the lineage in the trace header, and loops through S3 and SQS stopped at 16."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from lambdalab.cloud.local_cloud import LocalCloud
from lambdalab.cloud.loops import MAX_HOPS, RecursionGuard, TraceHeader, function_hash

ARN = "arn:aws:lambda:us-east-1:123456789012:function:fn"


# --- the header ---------------------------------------------------------------------------


def test_header_round_trips_every_field():
    text = ("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Self=1-abc;"
            "Lineage=a87bd80c:1|68fd508a:5")
    header = TraceHeader.parse(text)
    assert header.root == "1-5759e988-bd862e3fe1be46a994272793"
    assert header.parent == "53995c3f42cd8ad8"
    assert header.sampled == "1"
    assert header.lineage == (("a87bd80c", 1), ("68fd508a", 5))
    assert TraceHeader.parse(str(header)) == header
    assert "Self=1-abc" in str(header)


@pytest.mark.parametrize("text", [None, "", "Parent=1;Sampled=0", "garbage"])
def test_header_without_root_starts_no_chain(text):
    assert TraceHeader.parse(text) is None


def test_hop_counts_per_function_and_keeps_the_root():
    start = TraceHeader.new()
    mine, other = function_hash(ARN), function_hash(ARN + "2")
    once = start.hop(mine)
    twice = once.hop(mine).hop(other)
    assert twice.root == start.root
    assert twice.count(mine) == 2 and twice.count(other) == 1
    assert once.parent != twice.parent
    assert str(twice).endswith(f"Lineage={mine}:2|{other}:1")


def test_malformed_lineage_entries_are_ignored():
    header = TraceHeader.parse("Root=1-a-b;Lineage=zz|abc:x|12345678:3")
    assert header.lineage == (("12345678", 3),)


# --- the guard ----------------------------------------------------------------------------


def _chain(guard: RecursionGuard, hops: int, name: str = "fn") -> list:
    header, out = None, []
    for _ in range(hops):
        admission = guard.admit(name, ARN, header)
        out.append(admission)
        header = admission.header
    return out


def test_guard_stops_the_seventeenth_invocation_and_counts_it():
    guard = RecursionGuard()
    chain = _chain(guard, MAX_HOPS + 1)
    assert [a.hop for a in chain] == list(range(1, MAX_HOPS + 2))
    assert not any(a.stopped for a in chain[:MAX_HOPS])
    assert chain[MAX_HOPS].stopped
    assert guard.dropped("fn") == 1


def test_guard_allow_mode_never_stops():
    guard = RecursionGuard()
    guard.set_mode("fn", "Allow")
    assert not any(a.stopped for a in _chain(guard, 40))
    assert guard.dropped("fn") == 0


def test_guard_rejects_unknown_mode():
    with pytest.raises(ValueError, match="Allow, Terminate"):
        RecursionGuard().set_mode("fn", "Stop")


def test_new_chains_start_at_one():
    guard = RecursionGuard()
    _chain(guard, MAX_HOPS)
    assert guard.admit("fn", ARN, None).hop == 1
    assert guard.admit("fn", ARN, "Root=1-00000000-000000000000000000000000").hop == 1


# --- loops through real services ----------------------------------------------------------

S3_LOOP = '''
import os
import boto3
from urllib.parse import unquote_plus

s3 = boto3.client("s3")

def lambda_handler(event, context):
    record = event["Records"][0]
    key = unquote_plus(record["s3"]["object"]["key"])
    print("TRACE", os.environ["_X_AMZN_TRACE_ID"])
    stop_at = int(os.environ.get("STOP_AT", "0"))
    if stop_at and len(key) - len("in/k") >= stop_at:
        return "done"
    s3.put_object(Bucket=record["s3"]["bucket"]["name"], Key=key + "x", Body=b"again")
    return key
'''

SQS_LOOP = '''
import boto3

sqs = boto3.client("sqs")

def lambda_handler(event, context):
    for record in event["Records"]:
        url = sqs.get_queue_url(QueueName=record["eventSourceARN"].split(":")[-1])["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=record["body"] + "x")
'''


def _code(tmp_path: Path, source: str, name: str) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "handler.py").write_text(textwrap.dedent(source))
    return directory


def _queue(cloud: LocalCloud, name: str, **attributes: str) -> tuple[str, str]:
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _s3_loop(cloud: LocalCloud, code: Path, start: bool = True, **deploy) -> None:
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket="loop-bucket")
    role = cloud.create_role("looper", [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])
    fn = cloud.deploy("looper", code, "handler.lambda_handler", role=role, timeout=30, **deploy)
    s3.put_bucket_notification_configuration(Bucket="loop-bucket", NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"LambdaFunctionArn": fn["FunctionArn"], "Events": ["s3:ObjectCreated:*"],
                                          "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/"}]}}}]})
    if start:
        s3.put_object(Bucket="loop-bucket", Key="in/k", Body=b"first")


def test_s3_write_back_loop_is_stopped_after_16_and_dead_lettered(fresh, tmp_path):
    dlq_url, dlq_arn = _queue(fresh, "looper-dlq")
    _s3_loop(fresh, _code(tmp_path, S3_LOOP, "s3loop"), DeadLetterConfig={"TargetArn": dlq_arn})
    assert fresh.client("lambda").get_function_configuration(FunctionName="looper")["DeadLetterConfig"] == \
        {"TargetArn": dlq_arn}
    assert fresh.settle(60)
    records = fresh.records("looper")
    assert len(records) == MAX_HOPS and all(r.ok for r in records)
    # Each hop's handler saw the lineage count Lambda put in its trace header.
    counts = sorted(int(r.trace_id.rsplit(":", 1)[1]) for r in records)
    assert counts == list(range(1, MAX_HOPS + 1))
    assert len({r.trace_id.split(";")[0] for r in records}) == 1  # one chain, one root
    assert fresh.metrics("looper")["RecursiveInvocationsDropped"] == 1
    messages = fresh.client("sqs").receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10,
                                                   MessageAttributeNames=["All"])["Messages"]
    assert len(messages) == 1
    stopped = json.loads(messages[0]["Body"])
    assert stopped["Records"][0]["s3"]["object"]["key"] == "in/k" + "x" * MAX_HOPS
    assert "RecursiveInvocation" in messages[0]["MessageAttributes"]["ErrorMessage"]["StringValue"]


def test_recursion_config_allow_lets_the_loop_run(fresh, tmp_path):
    _s3_loop(fresh, _code(tmp_path, S3_LOOP, "s3allow"), start=False, Environment={"Variables": {"STOP_AT": "19"}})
    lam = fresh.client("lambda")
    lam.put_function_recursion_config(FunctionName="looper", RecursiveLoop="Allow")
    assert lam.get_function_recursion_config(FunctionName="looper")["RecursiveLoop"] == "Allow"
    fresh.client("s3").put_object(Bucket="loop-bucket", Key="in/k", Body=b"first")
    assert fresh.settle(60)
    assert len(fresh.records("looper")) == 20  # the handler itself ends the chain at 19 suffixes
    assert fresh.metrics("looper")["RecursiveInvocationsDropped"] == 0


def test_sqs_loop_carries_the_lineage_and_ends_in_the_queue_dlq(fresh, tmp_path):
    dlq_url, dlq_arn = _queue(fresh, "loopq-dlq")
    url, arn = _queue(fresh, "loopq", VisibilityTimeout="5",
                      RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1}))
    role = fresh.create_role("sqslooper", [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}])
    fresh.deploy("sqslooper", _code(tmp_path, SQS_LOOP, "sqsloop"), "handler.lambda_handler", role=role, timeout=30)
    fresh.client("lambda").create_event_source_mapping(FunctionName="sqslooper", EventSourceArn=arn, BatchSize=1)
    fresh.client("sqs").send_message(QueueUrl=url, MessageBody="m")
    deadline = time.monotonic() + 30
    messages: list = []
    while time.monotonic() < deadline and not messages:
        messages = fresh.client("sqs").receive_message(QueueUrl=dlq_url).get("Messages", [])
        time.sleep(0.2)
    assert [m["Body"] for m in messages] == ["m" + "x" * MAX_HOPS]
    assert len(fresh.records("sqslooper")) == MAX_HOPS
    assert fresh.metrics("sqslooper")["RecursiveInvocationsDropped"] >= 1


def test_a_trace_header_sent_to_s3_continues_its_chain(fresh, tmp_path):
    from urllib.parse import quote

    s3 = fresh.client("s3")
    s3.create_bucket(Bucket="traced-bucket")
    fn = fresh.deploy("traced", _code(tmp_path, "def lambda_handler(e, c):\n    return 1\n", "traced"),
                      "handler.lambda_handler")
    s3.put_bucket_notification_configuration(Bucket="traced-bucket", NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"LambdaFunctionArn": fn["FunctionArn"], "Events": ["s3:ObjectCreated:*"]}]})
    mine = function_hash(fn["FunctionArn"])
    header = f"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0;Lineage=0badf00d:3|{mine}:5"

    def add_header(request, **_):
        # Encoded as botocore encodes the header it copies from _X_AMZN_TRACE_ID.
        request.headers["X-Amzn-Trace-Id"] = quote(header, safe="-=;:+&[]{}\"',")

    s3.meta.events.register("before-sign.s3.PutObject", add_header)
    s3.put_object(Bucket="traced-bucket", Key="k", Body=b"x")
    assert fresh.settle(20)
    [inv] = fresh.records("traced")
    assert TraceHeader.parse(inv.trace_id).root == "1-5759e988-bd862e3fe1be46a994272793"
    assert TraceHeader.parse(inv.trace_id).lineage == (("0badf00d", 3), (mine, 6))
