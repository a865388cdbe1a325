"""Lesson 01's trigger wiring: six real sources reach one handler, timed from the caller's side.

AWS: a Scheduler schedule invokes Lambda with an execution role trusted by scheduler.amazonaws.com
and sends the target's Input (https://docs.aws.amazon.com/lambda/latest/dg/with-eventbridge-scheduler.html,
https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-templated.html); an HTTP API
made by quick create routes everything ($default) to its target, once the function's policy lets
apigateway.amazonaws.com invoke it (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop.html).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import matplotlib
import pytest

from lambdalab.course.lessons.triggers import (
    ABSENT,
    SCHEDULE_INPUT,
    SOURCES,
    RawEvents,
    caller_timeline,
    connect,
    invoke_api,
    key_field_rows,
    role_statements,
    shape,
    shape_rows,
    value_at,
)
from lambdalab.course.target.local import LocalTarget

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "events"))
from contract import contract_problems, sample  # noqa: E402  (tests/events/contract.py)

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "solutions" / "lesson01"
# Scheduler has no sample: it sends exactly the target's Input (checked on its own below).
CONTRACT = {"s3": "s3-put", "sqs": "sqs", "dynamodb": "dynamodb", "eventbridge": "eventbridge", "http": "apigateway-v2"}


# --- looking at events (no cloud) -------------------------------------------------------------


def test_value_at_walks_keys_and_indexes():
    event = {"Records": [{"s3": {"object": {"key": "a+b.jpg"}}}], "detail-type": "X", "n": None}
    assert value_at(event, "Records[0].s3.object.key") == "a+b.jpg"
    assert value_at(event, "detail-type") == "X"
    assert value_at(event, "n") is None  # present but null is not missing
    assert value_at(event, "Records[1].s3", "dflt") == "dflt"
    with pytest.raises(KeyError, match=r"no Records\[0\]\.s3\.bucket"):
        value_at(event, "Records[0].s3.bucket.name")
    with pytest.raises(KeyError, match=r"no Records\[3\]"):
        value_at(event, "Records[3].s3")
    for bad in ("", "a..b", "Records[x]", "Records[0"):
        with pytest.raises(ValueError, match="is not a path"):
            value_at(event, bad)


def test_shape_outlines_nesting_and_lists():
    event = {"Records": [{"a": 1, "b": {"c": {"d": 2}}}, {"a": 2}], "detail": {}, "tags": []}
    assert shape(event, 1) == "{Records: [{a, b: {…}}] ×2, detail, tags}"
    assert shape(event, 2) == "{Records: [{a, b: {c: {…}}}] ×2, detail, tags}"
    assert shape(["x"]) == "[str]" and shape({}) == "{}" and shape(3) == "int"


def test_connect_refuses_bad_prefixes_and_unknown_functions(target):
    with pytest.raises(ValueError, match="does not exist in this cloud"):
        connect(target, "no-such-function")
    with pytest.raises(ValueError, match="prefix 'Bad_Prefix' must be"):
        connect(target, "inspector", prefix="Bad_Prefix")
    with pytest.raises(ValueError, match="sqs_max_receives"):
        connect(target, "inspector", prefix="other", sqs_max_receives=0)


# --- the six triggers, for real ---------------------------------------------------------------


@pytest.fixture(scope="module")
def target():
    with LocalTarget(cpu_limit=False, async_retry_delays=(0.1, 0.2)) as t:
        role = t.create_role("inspector", role_statements(t, "inspector"))
        t.create_function("inspector", DEMO, "inspector.lambda_handler", role=role, env={"WORK_MS": "150"})
        yield t


@pytest.fixture(scope="module")
def fired(target):
    triggers = connect(target, "inspector")
    return triggers, {f.source: f for f in triggers.fire_all()}


def test_every_source_reaches_the_handler_once_with_its_own_event(fired):
    triggers, firings = fired
    assert list(firings) == list(SOURCES)
    for source, firing in firings.items():
        [inv] = firing.invocations
        assert inv.ok, inv.error
        if source in CONTRACT:
            assert contract_problems(CONTRACT[source], inv.event, sample(CONTRACT[source])) == [], source
        assert ABSENT not in [v for k, v in firing.key_fields().items() if k != "body"], source
    assert value_at(firings["s3"].event, "Records[0].s3.object.key") == "uploads/cat+photo+1.jpg"
    assert value_at(firings["s3"].event, "Records[0].s3.bucket.name") == triggers.bucket
    assert value_at(firings["sqs"].event, "Records[0].eventSourceARN") == triggers.queue_arn
    assert value_at(firings["dynamodb"].event, "Records[0].eventSourceARN") == triggers.stream_arn
    assert firings["eventbridge"].event["source"] == "shop.orders"
    # The schedule's Input, its context attributes filled in, and nothing else (no EventBridge envelope).
    schedule_event = firings["schedule"].event
    assert set(schedule_event) == set(SCHEDULE_INPUT) and schedule_event["job"] == "tidy-up"
    assert schedule_event["schedule_arn"] == triggers.schedule_arn
    assert triggers.schedule_arn.endswith(f":schedule/default/{triggers.target.name('inspector-schedule')}")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", schedule_event["scheduled_time"])
    assert firings["http"].event["rawPath"] == "/orders/42"
    assert firings["http"].event["routeKey"] == "$default"  # quick create: one catch-all route
    assert firings["http"].event["queryStringParameters"] == {"expand": "items"}
    # The handler's own log line carries the same event it was given.
    [logged] = [line for line in firings["sqs"].invocations[0].log_lines if line.startswith("EVENT ")]
    assert json.loads(logged[len("EVENT "):]) == firings["sqs"].event


def test_push_sources_are_async_and_polled_and_http_ones_sync(fired):
    _, firings = fired
    kinds = {s: f.invocation_type for s, f in firings.items()}
    assert kinds == {"s3": "Event", "sqs": "RequestResponse", "dynamodb": "RequestResponse",
                     "eventbridge": "Event", "schedule": "Event", "http": "RequestResponse"}
    http = firings["http"]
    [inv] = http.invocations
    assert http.returned_at >= inv.ended_at, "the HTTP caller waits for the function"
    assert http.caller_ms >= 150
    status, body = http.reply
    assert status == 200 and json.loads(body)["inspected_by"] == inv.request_id
    for source in ("s3", "sqs", "dynamodb", "eventbridge", "schedule"):
        f = firings[source]
        assert f.returned_at < f.invocations[0].ended_at, f"the {source} caller should not wait for the function"


def test_a_dynamodb_put_update_delete_arrives_as_three_changes_in_order(target, fired):
    triggers, _ = fired
    firing = triggers.fire_dynamodb({"id": {"S": "x1"}, "n": {"N": "1"}}, update={"n": {"N": "2"}}, delete=True)
    records = [r for inv in firing.invocations for r in inv.event["Records"]]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    assert records[1]["dynamodb"]["OldImage"]["n"] == {"N": "1"}
    assert records[1]["dynamodb"]["NewImage"]["n"] == {"N": "2"}
    with pytest.raises(ValueError, match="key attribute 'id'"):
        triggers.fire_dynamodb({"name": {"S": "no key"}})


def test_tables_and_raw_events_describe_the_firings(fired):
    _, firings = fired
    rows = key_field_rows(firings.values())
    assert [r["source"] for r in rows if r["source"]] == [
        "S3 upload", "SQS message", "DynamoDB change", "EventBridge event", "Scheduler schedule", "HTTP request"]
    assert {"source": "", "where in the event": "Records[0].s3.object.key", "value": "uploads/cat+photo+1.jpg"} in rows
    shapes = {r["source"]: r for r in shape_rows(firings.values())}
    assert shapes["S3 upload"]["event shape"].startswith("{Records: [{eventVersion, eventSource,")
    assert shapes["Scheduler schedule"]["invocation type"] == "Event" and shapes["HTTP request"]["bytes"] > 300
    assert shapes["Scheduler schedule"]["event shape"] == "{job, schedule_arn, scheduled_time}"
    raw = RawEvents(firings.values(), max_lines=5)
    text = str(raw)
    assert text.count("── ") == 6 and "more lines" in text
    assert raw._repr_html_().count("<details>") == 6


def test_the_schedule_invokes_through_its_own_execution_role(target, fired):
    triggers, _ = fired
    schedule_target = target.client("scheduler").get_schedule(Name=triggers.schedule_name)["Target"]
    iam = target.client("iam")
    role = schedule_target["RoleArn"].split("/")[-1]
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "scheduler.amazonaws.com"}]
    [name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
    policy = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    assert policy["Statement"] == [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                    "Resource": triggers.function_arn}]
    # Unlike the rule, the schedule needs no statement in the function's policy.
    policy = target.client("lambda").get_policy(FunctionName=target.name("inspector"))["Policy"]
    statements = json.loads(policy)["Statement"]
    assert {s["Principal"]["Service"] for s in statements} == {
        "s3.amazonaws.com", "events.amazonaws.com", "apigateway.amazonaws.com"}


def test_connect_adopts_an_api_and_a_schedule_made_with_the_aws_calls(target):
    """What lesson 01 does: create_api(Target=...) and create_schedule(...) first, then connect."""
    role = target.create_role("adopted", [target.logging_statement(target.name("adopted"))])
    arn = target.create_function("adopted", DEMO, "inspector.lambda_handler", role=role)["FunctionArn"]
    api = target.client("apigatewayv2").create_api(Name=target.name("mine"), ProtocolType="HTTP", Target=arn)
    target.client("lambda").add_permission(
        FunctionName=target.name("adopted"), StatementId="api", Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{target.region}:{target.account_id}:{api['ApiId']}/*/$default")
    sch = target.client("scheduler")
    sch.create_schedule(Name=target.name("mine"), ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "OFF"},
                        Target={"Arn": arn, "RoleArn": target.cloud.default_role(), "Input": '{"hello": "schedule"}'})
    triggers = connect(target, "adopted", api_id=api["ApiId"], schedule_name=target.name("mine"))
    assert triggers.base_url == api["ApiEndpoint"]
    assert (triggers.schedule, triggers.schedule_name) == ("rate(1 hour)", target.name("mine"))
    assert triggers.fire_schedule().event == {"hello": "schedule"}
    http = triggers.fire_http("GET", "x")
    assert http.reply[0] == 200 and http.event["rawPath"] == "/x"
    with pytest.raises(ValueError, match="no schedule 'nope'"):
        connect(target, "adopted", prefix="adopt2", api_id=api["ApiId"], schedule_name="nope")
    with pytest.raises(ValueError, match="no HTTP API 'nope'"):
        connect(target, "adopted", prefix="adopt3", schedule_name=target.name("mine"), api_id="nope")
    with pytest.raises(ValueError, match="targets .*adopted, not inspector"):
        connect(target, "inspector", prefix="adopt4", schedule_name=target.name("mine"))


def test_invoke_api_sync_waits_and_async_retries(target):
    role = target.create_role("worker", [target.logging_statement(target.name("worker"))])
    target.create_function("worker", DEMO, "worker.lambda_handler", role=role)
    ok = invoke_api(target, "worker", {"job": 1, "work_ms": 200})
    failed = invoke_api(target, "worker", {"job": 2, "work_ms": 50, "fail": True})
    queued = invoke_api(target, "worker", {"job": 3, "work_ms": 200}, "Event")
    retried = invoke_api(target, "worker", {"job": 4, "work_ms": 50, "fail": True}, "Event")
    assert ok.reply == (200, '{"job": 1, "status": "done"}') and ok.caller_ms >= 200
    assert failed.reply[0] == 200 and "FunctionError Unhandled" in failed.answer
    assert json.loads(failed.reply[1])["errorType"] == "JobFailed" and len(failed.invocations) == 1
    assert queued.reply == (202, "") and queued.returned_at < queued.invocations[0].ended_at
    assert retried.reply == (202, "") and [i.attempt for i in retried.invocations] == [1, 2, 3]
    assert len({i.request_id for i in retried.invocations}) == 1  # retries keep the request id
    ax = caller_timeline([ok, failed, queued, retried])
    assert [t.get_text().split("\n")[1] for t in ax.get_yticklabels()] == [
        "RequestResponse (sync)", "RequestResponse (sync)", "Event (async)", "Event (async)"]
    with pytest.raises(ValueError, match="invocation_type"):
        invoke_api(target, "worker", {}, "DryRun")
    with pytest.raises(ValueError, match="no firings"):
        caller_timeline([])
