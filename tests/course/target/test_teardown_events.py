"""The teardown finds a run's custom event buses and the rules on them, and deletes rules first.

AWS: a rule lives on one bus and is listed per bus (ListRules' EventBusName,
https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_ListRules.html); custom buses are
listed by ListEventBuses (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_ListEventBuses.html).
"""

from __future__ import annotations

import json

import pytest

from lambdalab.cloud.local_cloud import LocalCloud
from lambdalab.course.target import teardown

PREFIX = "lw-t3st-"


@pytest.fixture(scope="module")
def cloud():
    with LocalCloud(cpu_limit=False) as c:
        yield c


def test_a_runs_bus_and_its_rules_are_found_and_removed(cloud) -> None:
    events = cloud.client("events")
    events.create_event_bus(Name=PREFIX + "orders")
    events.put_rule(Name="to-email", EventBusName=PREFIX + "orders", EventPattern=json.dumps({"source": ["shop"]}))
    events.put_targets(Rule="to-email", EventBusName=PREFIX + "orders",
                       Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:{cloud.region}:{cloud.account_id}:nowhere"}])
    events.put_rule(Name=PREFIX + "hourly", ScheduleExpression="rate(1 hour)")
    events.create_event_bus(Name="someone-elses")
    found = teardown.inventory(cloud.client, PREFIX)
    assert [(r.kind, r.name, r.ident) for r in found if r.service == "events"] == [
        ("rule", PREFIX + "hourly", "default"), ("rule", "to-email", PREFIX + "orders"),
        ("event bus", PREFIX + "orders", "")]
    assert teardown.teardown(cloud.client, PREFIX, pause_s=0) == []
    assert [b["Name"] for b in events.list_event_buses()["EventBuses"]] == ["default", "someone-elses"]
