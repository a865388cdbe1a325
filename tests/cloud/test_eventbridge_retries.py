"""EventBridge target retry policies and dead-letter queues in the local cloud.

AWS: "Event retry policy and using dead-letter queues"
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html): retriable errors are
retried under the target's RetryPolicy (by default 24 hours and 185 times); a missing permission
or a target that no longer exists goes to the DLQ without retries; each DLQ message carries
RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE (and EXHAUSTED_RETRY_CONDITION, RETRY_ATTEMPTS).
RetryPolicy's limits: https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_RetryPolicy.html
A Lambda target is invoked asynchronously, so a function that raises was delivered and Lambda
retries it (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from lambdalab.cloud.eventbridge.delivery import EventBridgeDelivery
from lambdalab.cloud.eventbridge.retries import RetryPolicy, TargetError, with_retries
from lambdalab.runtime.errors import TooManyRequestsException

ECHO = """
def handler(event, context):
    return event
"""

FAILS = """
def handler(event, context):
    raise RuntimeError("email provider down")
"""


def queue(cloud, name: str) -> tuple[str, str]:
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def dead_letters(cloud, url: str) -> list[tuple[dict, dict]]:
    messages = cloud.client("sqs").receive_message(QueueUrl=url, MessageAttributeNames=["All"],
                                                   MaxNumberOfMessages=10)
    return [(json.loads(m["Body"]), {k: v["StringValue"] for k, v in m["MessageAttributes"].items()})
            for m in messages.get("Messages", [])]


def rule_to(cloud, name: str, target: dict) -> str:
    eb = cloud.client("events")
    arn = eb.put_rule(Name=name, EventPattern=json.dumps({"source": ["shop"]}))["RuleArn"]
    eb.put_targets(Rule=name, Targets=[target])
    return arn


def order(cloud) -> str:
    response = cloud.client("events").put_events(Entries=[
        {"Source": "shop", "DetailType": "OrderPlaced", "Detail": json.dumps({"order": "o-1"})}])
    assert response["FailedEntryCount"] == 0
    return response["Entries"][0]["EventId"]


@pytest.fixture
def bus(fresh):
    fresh.events.reset()
    return fresh


def test_a_missing_function_goes_to_the_dlq_at_once_with_eventbridges_attributes(bus):
    """No such function: no retries (eb-rule-dlq.html), the event itself on the DLQ."""
    url, dlq = queue(bus, "eb-missing-dlq")
    missing = f"arn:aws:lambda:{bus.region}:{bus.account_id}:function:gone"
    rule_arn = rule_to(bus, "to-gone", {"Id": "gone", "Arn": missing, "DeadLetterConfig": {"Arn": dlq},
                                        "RetryPolicy": {"MaximumRetryAttempts": 5}})
    event_id = order(bus)
    [delivery] = bus.events.deliveries
    assert (delivery.error_code, delivery.attempts, delivery.dead_lettered) == ("NO_RESOURCE", 1, True)
    [(body, attrs)] = dead_letters(bus, url)
    assert body["id"] == event_id and body["detail"] == {"order": "o-1"}
    assert attrs["RULE_ARN"] == rule_arn and attrs["TARGET_ARN"] == missing
    assert attrs["ERROR_CODE"] == "NO_RESOURCE" and "gone" in attrs["ERROR_MESSAGE"]
    assert "EXHAUSTED_RETRY_CONDITION" not in attrs


def test_without_a_permission_for_eventbridge_the_event_is_dead_lettered(bus, code):
    """Under IAM enforcement the function's resource-based policy must allow events.amazonaws.com
    for the rule (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-lambda-permissions);
    without it: NO_PERMISSIONS on the DLQ, no invocation."""
    url, dlq = queue(bus, "eb-perm-dlq")
    fn = bus.deploy("inventory", code(ECHO), "handler.handler")["FunctionArn"]
    rule_arn = rule_to(bus, "to-inventory", {"Id": "inv", "Arn": fn, "DeadLetterConfig": {"Arn": dlq}})
    bus.enforce_iam(True)
    try:
        order(bus)
        [(_, attrs)] = dead_letters(bus, url)
        assert attrs["ERROR_CODE"] == "NO_PERMISSIONS" and attrs["TARGET_ARN"] == fn
        bus.client("lambda").add_permission(FunctionName="inventory", StatementId="eb", Action="lambda:InvokeFunction",
                                            Principal="events.amazonaws.com", SourceArn=rule_arn)
        order(bus)
        assert bus.settle(30)
    finally:
        bus.enforce_iam(False)
    assert dead_letters(bus, url) == []
    assert [r.ok for r in bus.records("inventory")] == [True]


def test_a_function_that_raises_was_delivered_and_lambda_retries_it(bus, code):
    """EventBridge's part ends when Lambda accepts the event: nothing on the rule's DLQ; Lambda
    runs it three times (two asynchronous retries)."""
    url, dlq = queue(bus, "eb-raises-dlq")
    fn = bus.deploy("email", code(FAILS), "handler.handler")["FunctionArn"]
    rule_to(bus, "to-email", {"Id": "email", "Arn": fn, "DeadLetterConfig": {"Arn": dlq}})
    order(bus)
    [delivery] = bus.events.deliveries
    assert delivery.ok and delivery.handle.wait(30)
    assert bus.settle(30)
    assert [r.ok for r in bus.records("email")] == [False, False, False]
    assert dead_letters(bus, url) == []


def throttled(*_args, **_kwargs):
    raise TooManyRequestsException("email", 0)


@pytest.mark.parametrize("policy, attempts, condition", [
    ({"MaximumRetryAttempts": 3}, 4, "MaximumRetryAttempts"),
    # nominal backoff 1+2+4+8+16 s = 31 s, the sixth retry would start at 63 s > 60 s
    ({"MaximumEventAgeInSeconds": 60}, 6, "MaximumEventAgeInSeconds"),
    ({"MaximumRetryAttempts": 0}, 1, "MaximumRetryAttempts"),
])
def test_throttling_is_retried_until_the_policy_ends_then_dead_lettered(bus, policy, attempts, condition):
    url, dlq = queue(bus, "eb-throttle-dlq")
    target = {"Id": "email", "Arn": f"arn:aws:lambda:{bus.region}:{bus.account_id}:function:email",
              "RetryPolicy": policy, "DeadLetterConfig": {"Arn": dlq}}
    rule = SimpleNamespace(arn=f"arn:aws:events:{bus.region}:{bus.account_id}:rule/r", name="r", targets=[target])
    delivery_service = EventBridgeDelivery(throttled)  # not started: only this call goes through it
    [delivery] = delivery_service.deliver(rule, {"source": "shop", "detail-type": "OrderPlaced", "detail": {}})
    assert (delivery.error_code, delivery.attempts) == ("THROTTLING", attempts)
    [(_, attrs)] = dead_letters(bus, url)
    assert attrs["EXHAUSTED_RETRY_CONDITION"] == condition
    assert attrs["RETRY_ATTEMPTS"] == str(attempts - 1)


def test_retry_loop_stops_at_once_for_errors_that_are_not_retriable():
    calls = []

    def send(n):
        calls.append(n)
        raise TargetError("NO_PERMISSIONS", "denied")

    outcome = with_retries(send, RetryPolicy())
    assert calls == [1] and not outcome.delivered and outcome.exhausted is None


def test_retry_policy_defaults_are_24_hours_and_185_attempts():
    assert RetryPolicy.of({}) == RetryPolicy(185, 86_400)
    assert RetryPolicy.of({"RetryPolicy": {"MaximumRetryAttempts": 2}}) == RetryPolicy(2, 86_400)
