"""EventBridge events as a rule delivers them, and the `eventbridge` and `schedule` sample events.

This module owns the shape of an EventBridge event (see shared/aws-events/eventbridge.json),
including the one a schedule rule sends (source `aws.events`, detail-type `Scheduled Event`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from lambdalab._util.timefmt import iso_seconds
from lambdalab.events._checks import JSON, check_account, check_region, event_time, json_text, require
from lambdalab.runtime.config import ACCOUNT_ID, REGION

_RULE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def eventbridge_event(source: str = "com.example.app", detail_type: str = "ExampleEvent",
                      detail: Mapping[str, Any] | None = None, *, resources: Sequence[str] = (),
                      region: str = REGION, account: str = ACCOUNT_ID, time: datetime | None = None,
                      replay_name: str | None = None) -> JSON:
    """An event as an EventBridge rule delivers it (`replay-name` only on replayed events)."""
    require(isinstance(source, str) and 0 < len(source) <= 256, f"source {source!r} must be 1-256 characters")
    require(isinstance(detail_type, str) and 0 < len(detail_type) <= 128,
             f"detail_type {detail_type!r} must be 1-128 characters")
    detail = {} if detail is None else detail
    require(isinstance(detail, Mapping), f"detail must be a JSON object (dict), got {type(detail).__name__}")
    json_text(dict(detail), "detail")
    require(not isinstance(resources, str) and all(isinstance(r, str) for r in resources),
             f"resources must be a list of ARNs, got {resources!r}")
    check_region(region)
    check_account(account)
    event: JSON = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": iso_seconds(event_time(time)),
        "region": region,
        "resources": list(resources),
        "detail": dict(detail),
    }
    if replay_name is not None:
        require(isinstance(replay_name, str) and replay_name != "", "replay_name must be a non-empty string")
        event["replay-name"] = replay_name
    return event


def schedule_event(rule: str = "my-schedule", *, region: str = REGION, account: str = ACCOUNT_ID,
                   time: datetime | None = None) -> JSON:
    """What a schedule rule (rate/cron, default bus) sends: source aws.events, the rule ARN, detail {}."""
    require(isinstance(rule, str) and bool(_RULE.match(rule)),
            f"rule {rule!r} must be 1-64 letters, digits, '.', '-' or '_'")
    return eventbridge_event("aws.events", "Scheduled Event", {}, region=region, account=account, time=time,
                             resources=[f"arn:aws:events:{region}:{account}:rule/{rule}"])
