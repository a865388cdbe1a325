"""EventBridge Scheduler schedules fire on the local cloud's clock.

AWS: schedule types rate/cron/at and time zones
(https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html), templated Lambda
targets receive the target's Input (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-templated.html),
context attributes (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html),
flexible time windows (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-flexible-time-windows.html),
retry policy and dead-letter queue (https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html).
"""

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from lambdalab.cloud.scheduler import parse_scheduler_expression

RECORD = """
def handler(event, context):
    return event
"""


@pytest.fixture
def fn(fresh, code):
    return fresh.deploy("tick", code(RECORD), "handler.handler")["FunctionArn"]


def schedule(cloud, name, expression, target, **kwargs):
    kwargs.setdefault("FlexibleTimeWindow", {"Mode": "OFF"})
    cloud.client("scheduler").create_schedule(Name=name, ScheduleExpression=expression,
                                              Target={"RoleArn": cloud.default_role(), **target}, **kwargs)


def test_rate_one_minute_fires_ten_times_in_ten_minutes_with_its_input(fresh, fn):
    schedule(fresh, "every-minute", "rate(1 minute)", {"Arn": fn, "Input": '{"job": "report"}'})
    fired = fresh.events.clock.advance(minutes=10)
    assert len(fired) == 10
    assert fresh.settle()
    events = [r.result for r in fresh.records("tick")]  # what the handler received
    # Exactly the configured payload, not the scheduled-rule envelope.
    assert events == [{"job": "report"}] * 10
    assert [r.event for r in fresh.records("tick")] == events  # recorded as the Invoke API records it


def test_an_input_that_is_not_json_is_refused_by_lambda_and_dead_lettered(fresh, fn):
    """Lambda's Invoke API refuses a payload that is not JSON (InvalidRequestContentException,
    https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors)."""
    sqs = fresh.client("sqs")
    queue = sqs.create_queue(QueueName="not-json-dlq")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    schedule(fresh, "not-json", "rate(1 minute)", {"Arn": fn, "Input": "plain text",
                                                   "RetryPolicy": {"MaximumRetryAttempts": 0},
                                                   "DeadLetterConfig": {"Arn": queue_arn}})
    fresh.events.clock.advance(minutes=1)
    [made] = fresh.scheduler.invocations
    assert made.dead_lettered and fresh.records("tick") == []
    [msg] = sqs.receive_message(QueueUrl=queue, MessageAttributeNames=["All"])["Messages"]
    assert msg["Body"] == "plain text"
    assert msg["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "InvalidRequestContentException"


def test_context_attributes_are_replaced(fresh, fn):
    schedule(fresh, "ctx", "rate(5 minutes)",
             {"Arn": fn, "Input": '{"at": "<aws.scheduler.scheduled-time>", "arn": "<aws.scheduler.schedule-arn>"}'})
    start = fresh.events.clock.now
    fresh.events.clock.advance(minutes=5)
    assert fresh.settle()
    [event] = [r.result for r in fresh.records("tick")]
    assert event["arn"].endswith(":schedule/default/ctx")
    assert event["at"] == (start + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_disabled_schedule_does_not_fire(fresh, fn):
    schedule(fresh, "off", "rate(1 minute)", {"Arn": fn}, State="DISABLED")
    fresh.events.clock.advance(minutes=3)
    assert fresh.scheduler.invocations == []


def test_at_fires_once_in_its_time_zone(fresh, fn):
    now = fresh.events.clock.now
    zone = "Europe/Paris"
    local = (now + timedelta(hours=2)).astimezone(ZoneInfo(zone))
    schedule(fresh, "once", f"at({local:%Y-%m-%dT%H:%M:%S})", {"Arn": fn, "Input": "{}"},
             ScheduleExpressionTimezone=zone)
    fired = fresh.events.clock.advance(hours=5)
    assert [f.time for f in fired] == [(now + timedelta(hours=2)).replace(microsecond=0)]


def test_cron_is_read_in_the_schedule_time_zone():
    cron = parse_scheduler_expression("cron(0 9 * * ? *)", "America/New_York")
    after = datetime(2024, 7, 1, 0, 0, tzinfo=timezone.utc)
    assert cron.next_after(after, after) == datetime(2024, 7, 1, 13, 0, tzinfo=timezone.utc)  # 09:00 EDT
    winter = datetime(2024, 1, 1, 0, 0, tzinfo=timezone.utc)
    assert cron.next_after(winter, winter) == datetime(2024, 1, 1, 14, 0, tzinfo=timezone.utc)  # 09:00 EST


def test_bad_expressions_are_refused_with_the_reason(fresh, fn):
    sch = fresh.client("scheduler")
    for expression, zone in (("rate(1 minutes)", "UTC"), ("at(2030-01-01)", "UTC"), ("rate(1 minute)", "Mars/Base")):
        with pytest.raises(sch.exceptions.ValidationException):
            sch.create_schedule(Name="bad", ScheduleExpression=expression, ScheduleExpressionTimezone=zone,
                                FlexibleTimeWindow={"Mode": "OFF"},
                                Target={"Arn": fn, "RoleArn": "arn:aws:iam::123456789012:role/r"})


def test_flexible_window_delays_each_firing_within_the_window(fresh, fn):
    schedule(fresh, "flex", "rate(1 hour)", {"Arn": fn},
             FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15})
    start = fresh.events.clock.now
    fired = fresh.events.clock.advance(hours=5)
    assert len(fired) in (4, 5)  # the fifth may fall after the five hours
    for k, firing in enumerate(fired, start=1):
        nominal = start + timedelta(hours=k)
        assert nominal <= firing.time < nominal + timedelta(minutes=15)
    assert len({(f.time - start).seconds % 3600 for f in fired}) > 1  # not one fixed offset


def test_a_failing_target_goes_to_the_dead_letter_queue_after_its_retries(fresh):
    sqs = fresh.client("sqs")
    queue = sqs.create_queue(QueueName="sched-dlq")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    missing = f"arn:aws:lambda:{fresh.region}:{fresh.account_id}:function:gone"
    schedule(fresh, "broken", "rate(1 minute)",
             {"Arn": missing, "Input": '{"n": 1}', "RetryPolicy": {"MaximumRetryAttempts": 2},
              "DeadLetterConfig": {"Arn": queue_arn}})
    fresh.events.clock.advance(minutes=1)
    [made] = fresh.scheduler.invocations
    assert made.attempts == 3 and made.dead_lettered
    [msg] = sqs.receive_message(QueueUrl=queue, MessageAttributeNames=["All"])["Messages"]
    assert json.loads(msg["Body"]) == {"n": 1}
    attrs = {k: v["StringValue"] for k, v in msg["MessageAttributes"].items()}
    assert attrs["ERROR_CODE"] == "ResourceNotFoundException"
    assert attrs["TARGET_ARN"] == missing
    assert attrs["SCHEDULE_ARN"].endswith(":schedule/default/broken")
    assert set(attrs) >= {"ERROR_MESSAGE", "EXECUTION_ID", "SCHEDULED_TIME"}
