"""Patches to moto's EventBridge (`moto.events`): AWS's pattern language, and delivery taken over.

moto matches events with an incomplete pattern language, delivers to disabled rules and to
schedule-only rules, and raises on a Lambda target. Every event passes through one place in moto,
`Rule.send_to_targets` (`PutEvents`, S3's EventBridge notifications, archive replays); the patch
hands it to a receiver (`lambdalab.cloud.eventbridge.delivery`), which decides with
`lambdalab.cloud.eventbridge.patterns` and gives back the targets that stay moto's business to
`send_to_moto_targets`. `PutRule` patterns and schedule expressions are validated, and
`TestEventPattern` answered, as EventBridge does. Under IAM enforcement a call is checked against
the bus or rule it acts on (moto checks `*`, so a least-privilege Allow on a bus ARN was denied).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from lambdalab.cloud.eventbridge.patterns import InvalidEventPatternError, cached_pattern
from lambdalab.cloud.eventbridge.schedules import parse_schedule
from lambdalab.cloud.moto import Patches, original

# (moto rule, moto's event, transform_input): what the patched Rule.send_to_targets calls.
Receiver = Callable[[Any, dict, bool], None]


def install(patches: Patches, receive: Receiver) -> None:
    from moto.events.models import EventsBackend, Rule
    from moto.events.responses import EventsHandler

    def send_to_targets(_original: Callable) -> Callable:
        def call(rule: Any, event: dict, transform_input: bool = True) -> None:
            receive(rule, event, transform_input)
        return call

    def put_rule(original_put_rule: Callable) -> Callable:
        def call(backend: Any, name: str, *args: Any, **kwargs: Any) -> Any:
            _check_rule(kwargs.get("event_pattern"), kwargs.get("scheduled_expression"))
            return original_put_rule(backend, name, *args, **kwargs)
        return call

    def test_event_pattern(_original: Callable) -> Callable:
        return _test_event_pattern

    patches.add(EventsHandler, "_determine_resource", _events_resource)
    patches.replace(Rule, "send_to_targets", send_to_targets)
    patches.replace(EventsBackend, "put_rule", put_rule)
    patches.replace(EventsHandler, "test_event_pattern", test_event_pattern)


_RULE_ACTIONS = {"PutRule", "DeleteRule", "DescribeRule", "EnableRule", "DisableRule", "PutTargets",
                 "RemoveTargets", "ListTargetsByRule"}
_BUS_ACTIONS = {"CreateEventBus", "DeleteEventBus", "DescribeEventBus"}


def _events_resource(handler: Any) -> str:
    """The resource IAM checks an EventBridge call against: PutEvents the bus (`event-bus/NAME`),
    rule calls the rule (`rule/NAME` on the default bus, `rule/BUS/NAME` on another), bus calls
    the bus; `*` otherwise (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridge.html)."""
    try:
        body = json.loads(handler.body or "{}")
    except (TypeError, ValueError):
        return "*"
    if not isinstance(body, dict):
        return "*"
    action = (handler.headers.get("X-Amz-Target") or "").rpartition(".")[2]
    prefix = f"arn:{handler.partition}:events:{handler.region}:{handler.current_account}"

    def bus_arn(name: str | None) -> str:
        name = name or "default"
        return name if name.startswith("arn:") else f"{prefix}:event-bus/{name}"

    if action == "PutEvents":
        buses = {bus_arn(e.get("EventBusName")) for e in body.get("Entries") or [] if isinstance(e, dict)}
        return buses.pop() if len(buses) == 1 else "*"
    if action in _BUS_ACTIONS and body.get("Name"):
        return bus_arn(body["Name"])
    rule = body.get("Rule") or body.get("Name")
    if action in _RULE_ACTIONS and rule:
        bus = (body.get("EventBusName") or "default").rpartition("/")[2]
        return f"{prefix}:rule/{rule}" if bus == "default" else f"{prefix}:rule/{bus}/{rule}"
    return "*"


def _check_rule(pattern: str | None, schedule: str | None) -> None:
    from moto.events.exceptions import InvalidEventPatternException, ValidationException

    if pattern:
        try:
            cached_pattern(pattern)
        except InvalidEventPatternError as e:
            raise InvalidEventPatternException(reason=str(e)) from None
    if schedule:
        try:
            parse_schedule(schedule)
        except ValueError as e:
            raise ValidationException(f"Parameter ScheduleExpression is not valid. {e}") from None


def _test_event_pattern(handler: Any) -> str:
    from moto.events.exceptions import InvalidEventPatternException, ValidationException

    try:
        event = json.loads(handler._get_param("Event") or "")
    except json.JSONDecodeError:
        raise ValidationException("Parameter Event is not valid JSON.") from None
    if not isinstance(event, dict):
        raise ValidationException("Parameter Event must be a JSON object.")
    missing = [k for k in ("id", "account", "source", "time", "region", "detail-type") if k not in event]
    if missing:
        raise ValidationException(f"Parameter Event is not valid. Missing fields: {', '.join(missing)}")
    try:
        pattern = cached_pattern(handler._get_param("EventPattern") or "")
    except InvalidEventPatternError as e:
        raise InvalidEventPatternException(reason=str(e)) from None
    return json.dumps({"Result": pattern.matches(event)})


def send_to_moto_targets(rule: Any, moto_event: dict, transform_input: bool = True) -> None:
    """moto's own delivery of an event to every target of `rule`, bypassing the patch."""
    from moto.events.models import Rule

    original(Rule, "send_to_targets")(rule, moto_event, transform_input)


def send_to_moto_target(rule: Any, target: dict, moto_event: dict, transform_input: bool) -> str | None:
    """Deliver an already matched event to one target moto serves; the error, if it failed."""
    from moto.events.models import EventPattern as MotoEventPattern

    # A copy of the rule with only this target and a pattern that matches everything: the
    # match was already decided by AWS's pattern language.
    clone = copy.copy(rule)
    clone.targets = [target]
    clone.event_pattern = MotoEventPattern(None, {})
    try:
        send_to_moto_targets(clone, copy.deepcopy(moto_event), transform_input)
        return None
    except NotImplementedError:
        from moto.utilities.arns import parse_arn

        try:
            service = parse_arn(target["Arn"]).service
        except ValueError:
            service = target["Arn"]
        return f"moto does not deliver EventBridge events to {service} targets"
    except Exception as e:
        return f"{type(e).__name__}: {e}"
