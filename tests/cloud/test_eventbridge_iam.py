"""EventBridge calls under IAM enforcement are checked against the bus or rule they act on.

AWS: PutEvents is authorized on the event bus (`event-bus/NAME`), rule calls on the rule
(`rule/[BUS/]NAME`): https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridge.html
"""

from __future__ import annotations

PUBLISH = """
import boto3

def handler(event, context):
    try:
        boto3.client("events").put_events(Entries=[{"EventBusName": event["bus"], "Source": "shop",
                                                    "DetailType": "OrderPlaced", "Detail": "{}"}])
        return "sent"
    except Exception as e:
        return type(e).__name__ + ": " + str(e)
"""


def test_a_role_allowed_one_bus_publishes_there_and_nowhere_else(fresh, code):
    events = fresh.client("events")
    mine = events.create_event_bus(Name="orders")["EventBusArn"]
    events.create_event_bus(Name="payments")
    role = fresh.create_role("publisher", [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": mine}])
    fresh.deploy("publisher", code(PUBLISH), "handler.handler", role=role, timeout=10)
    fresh.enforce_iam(True)
    try:
        allowed = fresh.invoke("publisher", {"bus": "orders"}).result
        denied = fresh.invoke("publisher", {"bus": "payments"}).result
    finally:
        fresh.enforce_iam(False)
    assert allowed == "sent"
    assert denied.startswith("AccessDeniedException") and "events:PutEvents" in denied
