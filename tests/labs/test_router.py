"""Checks for lab `router` (notebook 01): one handler that tells six triggers' events apart.

The track's handler is deployed as "router" in the local cloud, behind real triggers: an S3
upload notification, an SQS queue and a DynamoDB stream (event source mappings), an EventBridge
rule, an EventBridge Scheduler schedule, and an HTTP API (`lambdalab.course.lessons.triggers.connect`).
Each check fires one of them the way a client would and reads the summaries the handler returned.
Run them with `check("router")` in a notebook or `lambdalab check router` in a shell.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from lambdalab.course.lessons.triggers import Firing, Triggers, connect, role_statements
from lambdalab.course.target.local import LocalTarget

PREFIX = "router"


@pytest.fixture(scope="module")
def target(lab_dir) -> Iterator[LocalTarget]:
    with LocalTarget() as t:
        role = t.create_role("router", role_statements(t, "router", PREFIX))
        t.create_function("router", lab_dir("router"), "handler.lambda_handler", role=role, timeout=3)
        # A failing event is reported at once instead of being retried for minutes.
        t.client("lambda").put_function_event_invoke_config(FunctionName=t.name("router"), MaximumRetryAttempts=0)
        yield t


@pytest.fixture(scope="module")
def cloud(target):
    """The local cloud under the target: its Invoke records the handler's result and error."""
    return target.cloud


@pytest.fixture(scope="module")
def triggers(target) -> Triggers:
    return connect(target, "router", prefix=PREFIX, sqs_max_receives=1, stream_retries=0)


def summaries(firing: Firing) -> list[Any]:
    """What the handler returned for each invocation; the check fails with the handler's error."""
    assert firing.invocations, f"the {firing.source} trigger fired but the function never ran"
    for inv in firing.invocations:
        if not inv.ok:
            pytest.fail(f"{inv.error_type}: {inv.error.get('errorMessage', '')}", pytrace=False)
    results = [inv.result for inv in firing.invocations]
    for result in results:
        assert isinstance(result, dict), f"the handler should return a dict (the summary), got {result!r}"
        assert result.get("source") == firing.source, \
            f'a {firing.source} event should give "source": "{firing.source}", got {result.get("source")!r}'
    return results


def test_s3_upload(triggers):
    """Summarises an S3 upload, with the object's key decoded.

    Hint: Records[0]["eventSource"] is "aws:s3"; each record gives bucket/key from
    r["s3"]["bucket"]["name"] and unquote_plus(r["s3"]["object"]["key"]).
    """
    key = "inbox/summer holiday+2024 (1).jpg"
    (summary,) = summaries(triggers.fire_s3(key=key, body=b"photo"))
    assert summary == {"source": "s3", "objects": [f"{triggers.bucket}/{key}"]}, \
        f"uploading {key!r} to {triggers.bucket} should give objects [{triggers.bucket + '/' + key!r}], got {summary}"


def test_sqs_batch(triggers):
    """Summarises a batch of SQS messages: the queue's name and every body, in order.

    Hint: the queue name is the part after the last ":" of a record's eventSourceARN; the
    bodies are r["body"] for each record, strings as they were sent.
    """
    bodies = ["first", '{"order": 7}', "third"]
    results = summaries(triggers.fire_sqs(*bodies))
    queue = triggers.queue_arn.rsplit(":", 1)[-1]
    queues = {r.get("queue") for r in results}
    assert queues == {queue}, f'"queue" should be {queue!r}, got {sorted(map(str, queues))}'
    got = [body for r in results for body in r.get("bodies", [])]
    assert got == bodies, f"the messages sent were {bodies}, the summaries list {got}"


def test_dynamodb_changes(triggers):
    """Summarises DynamoDB stream records: the table and each change with its plain keys.

    Hint: the table name sits between "table/" and "/stream" in eventSourceARN; each change is
    {"event": r["eventName"], "keys": {name: the value inside its type tag}}.
    """
    item = {"id": {"S": "order-7"}, "status": {"S": "NEW"}}
    results = summaries(triggers.fire_dynamodb(item, update={"status": {"S": "PAID"}}, delete=True))
    tables = {r.get("table") for r in results}
    assert tables == {triggers.table}, f'"table" should be {triggers.table!r}, got {sorted(map(str, tables))}'
    changes = [c for r in results for c in r.get("changes", [])]
    expected = [{"event": e, "keys": {"id": "order-7"}} for e in ("INSERT", "MODIFY", "REMOVE")]
    assert changes == expected, f"a put, an update and a delete should give {expected}, got {changes}"


def test_eventbridge_event(triggers):
    """Summarises an EventBridge event: its source, detail-type and detail.

    Hint: an event with "source" and "detail-type" is "eventbridge"; copy event["source"],
    event["detail-type"] and event["detail"] into the summary.
    """
    detail = {"order": 7, "items": [{"sku": "A1", "qty": 2}]}
    (summary,) = summaries(triggers.fire_eventbridge("OrderShipped", detail))
    expected = {"source": "eventbridge", "from": triggers.event_source, "detail_type": "OrderShipped", "detail": detail}
    assert summary == expected, f"expected {expected}, got {summary}"


def test_schedule(triggers):
    """Summarises a Scheduler schedule's firing: the schedule's name and the scheduled time.

    Hint: Scheduler sends the schedule's Input as it is; the course's Input has "schedule_arn"
    and "scheduled_time". The name is event["schedule_arn"] after its last "/"; the time is
    event["scheduled_time"].
    """
    firing = triggers.fire_schedule()
    (summary,) = summaries(firing)
    expected = {"source": "schedule", "schedule": triggers.schedule_name, "time": firing.event["scheduled_time"]}
    assert summary == expected, f"expected {expected}, got {summary}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", summary["time"])


def test_http_request(triggers):
    """Answers an HTTP request with the summary as its JSON body.

    Hint: a payload 2.0 event has requestContext["http"]; the method is
    requestContext["http"]["method"], the path rawPath, the query queryStringParameters (or {}
    when there is none) and the body event.get("body"). Return the dict: API Gateway sends it
    as a 200 JSON body.
    """
    firing = triggers.fire_http("POST", "orders/7?expand=items&lang=en", body='{"qty": 2}',
                                headers={"Content-Type": "application/json"})
    (summary,) = summaries(firing)
    expected = {"source": "http", "method": "POST", "path": "/orders/7",
                "query": {"expand": "items", "lang": "en"}, "body": '{"qty": 2}'}
    assert summary == expected, f"expected {expected}, got {summary}"
    status, body = firing.reply
    assert status == 200 and json.loads(body) == expected, f"the HTTP caller got {status} {body[:200]}"
    (plain,) = summaries(triggers.fire_http("GET", "health"))
    assert plain["query"] == {} and plain["body"] is None, \
        f'a GET without query or body should give "query": {{}} and "body": None, got {plain}'


@pytest.mark.parametrize("event, says", [
    ({"hello": "world"}, "hello"),
    ({"Records": []}, "Records"),
    ({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "hi"}}]}, "Records"),
    (["not", "an", "object"], "list"),
], ids=["unknown keys", "no records", "an SNS event", "a list"])
def test_unknown_events_are_refused(cloud, triggers, event, says):
    """Refuses an event it does not know with UnknownEventError saying what it was.

    Hint: when no rule matches, raise UnknownEventError(f"unknown event with keys {sorted(event)}")
    for a dict, and UnknownEventError(f"unknown event: a {type(event).__name__}") otherwise.
    """
    inv = cloud.invoke(triggers.function_name, event)
    assert not inv.ok, f"the handler returned {inv.result!r} for {event!r}; it should raise UnknownEventError"
    if inv.error_type == "NotImplementedError":  # an exercise not done yet: say which
        pytest.fail(f"NotImplementedError: {inv.error.get('errorMessage', '')}", pytrace=False)
    assert inv.error_type == "UnknownEventError", \
        f"expected UnknownEventError for {event!r}, got {inv.error_type}: {inv.error.get('errorMessage', '')}"
    message = inv.error.get("errorMessage", "")
    assert says in message, f"the error message should mention {says!r} (what the event was), got {message!r}"
