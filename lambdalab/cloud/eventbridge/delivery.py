"""EventBridge delivery for the local cloud: Lambda targets and schedules.

While an `EventBridgeDelivery` is open, every event moto hands a rule (through the patches in
`lambdalab.cloud.moto.events`) comes here:

- the rule must be ENABLED and have an event pattern, and the event must match it under AWS's
  pattern language (`lambdalab.cloud.eventbridge.patterns`);
- each Lambda target is invoked asynchronously with the event in AWS's shape, after the target's
  `Input`, `InputPath` or `InputTransformer` (`lambdalab.cloud.eventbridge.targets`);
- every other target (SQS, CloudWatch Logs, another bus, an archive) stays moto's business.

It also owns the `Clock` (`lambdalab.cloud.eventbridge.schedules`) that fires `rate()`/`cron()`
rules. Deliveries nest: the latest one opened receives the events, and moto gets its own
behaviour back when the last one closes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lambdalab.cloud.eventbridge.patterns import InvalidEventPatternError, cached_pattern
from lambdalab.cloud.eventbridge.schedules import Clock, ScheduledRule
from lambdalab.cloud.eventbridge.targets import aws_event, iso_time, lambda_function_name, target_input
from lambdalab.cloud.lambda_service import LambdaService
from lambdalab.cloud.moto import Patches, every_backend
from lambdalab.cloud.moto import events as moto_events

log = logging.getLogger(__name__)

# The invoke hook: (function name, payload, invocation_type="Event") -> anything (e.g. AsyncEvent).
InvokeFn = Callable[..., Any]


@dataclass
class Delivery:
    """One event handed to one Lambda target (or a target moto could not serve)."""

    rule_arn: str
    target_id: str
    target_arn: str
    event: Any  # what the target received, after Input/InputPath/InputTransformer
    function_name: str | None = None
    handle: Any = None  # what the invoke hook returned (the runtime's AsyncEvent)
    error: str | None = None
    at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.error is None


_lock = threading.RLock()
_active: list["EventBridgeDelivery"] = []
_patches: Patches | None = None


def _current() -> "EventBridgeDelivery | None":
    with _lock:
        return _active[-1] if _active else None


def _receive(rule: Any, moto_event: dict, transform_input: bool) -> None:
    """Where the patched `Rule.send_to_targets` sends each event: the latest open delivery."""
    delivery = _current()
    if delivery is None:  # the last delivery closed while this event was on its way
        moto_events.send_to_moto_targets(rule, moto_event, transform_input)
        return
    delivery.on_rule_event(rule, moto_event, transform_input)


def _open(delivery: "EventBridgeDelivery") -> None:
    global _patches
    with _lock:
        if not _active:
            _patches = Patches()
            moto_events.install(_patches, _receive)
        _active.append(delivery)


def _close(delivery: "EventBridgeDelivery") -> None:
    global _patches
    with _lock:
        if delivery in _active:
            _active.remove(delivery)
        if not _active and _patches is not None:
            _patches.remove()
            _patches = None


class EventBridgeDelivery:
    """Delivers EventBridge events and schedules to Lambda targets while open.

    `invoke(function_name, payload, invocation_type="Event")` is called once per matched Lambda
    target; payload is a dict or list, or bytes holding JSON text (a string or number input).
    The runtime's `LocalRuntime.invoke` fits as is. `clock` fires scheduled rules.
    """

    def __init__(self, invoke: InvokeFn, *, clock_start: datetime | None = None):
        if not callable(invoke):
            raise TypeError(f"invoke must be callable, got {invoke!r}")
        self._invoke = invoke
        self.deliveries: list[Delivery] = []
        self._deliveries_lock = threading.Lock()
        self._open = False
        self.clock = Clock(self, start=clock_start)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "EventBridgeDelivery":
        if not self._open:
            _open(self)
            self._open = True
        return self

    def close(self) -> None:
        """Stop the clock's real-time thread and give moto its own behaviour back."""
        self.clock.close()
        if self._open:
            _close(self)
            self._open = False

    def __enter__(self) -> "EventBridgeDelivery":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset(self) -> None:
        """Forget past deliveries and schedule state (after the cloud empties its services)."""
        with self._deliveries_lock:
            self.deliveries.clear()
        self.clock.forget()

    # -- events from moto ------------------------------------------------------------------
    def on_rule_event(self, rule: Any, moto_event: dict, transform_input: bool = True) -> list[Delivery]:
        """moto hands one event to one rule: deliver it if the rule is enabled and matches."""
        raw = rule.event_pattern.dump()
        if rule.state != "ENABLED" or not raw:
            return []  # disabled, or a schedule-only rule: EventBridge matches no events to it
        try:
            pattern = cached_pattern(raw)
        except InvalidEventPatternError as e:
            log.warning("rule %s has an invalid event pattern, nothing delivered: %s", rule.arn, e)
            return []
        event = aws_event(moto_event)
        if not pattern.matches(event):
            return []
        return self.deliver(rule, moto_event, event, transform_input)

    def deliver(self, rule: Any, moto_event: dict, event: dict | None = None,
                transform_input: bool = True) -> list[Delivery]:
        """Send one (already matched) event to every target of a moto rule."""
        event = aws_event(moto_event) if event is None else event
        lambda_targets, other_targets = [], []
        for target in list(rule.targets):
            (lambda_targets if lambda_function_name(target["Arn"]) else other_targets).append(target)
        made = [self._to_lambda(rule, target, event, moto_event) for target in lambda_targets]
        if other_targets:
            made += self._to_moto(rule, other_targets, moto_event, transform_input)
        with self._deliveries_lock:
            self.deliveries.extend(made)
        return made

    def _to_lambda(self, rule: Any, target: dict, event: dict, moto_event: dict) -> Delivery:
        name = lambda_function_name(target["Arn"])
        delivery = Delivery(rule.arn, target["Id"], target["Arn"], None, function_name=name)
        try:
            payload = target_input(target, event, rule_arn=rule.arn, rule_name=rule.name,
                                   ingestion_time=iso_time(moto_event.get("ingestion-time")))
            delivery.event = payload
            body = payload if isinstance(payload, (dict, list)) else json.dumps(payload).encode()
            delivery.handle = self._invoke(name, body, invocation_type="Event")
        except Exception as e:  # EventBridge keeps going with the other targets
            delivery.error = f"{type(e).__name__}: {e}"
            log.warning("EventBridge rule %s could not invoke %s: %s", rule.arn, name, delivery.error)
        return delivery

    def _to_moto(self, rule: Any, targets: list[dict], moto_event: dict, transform_input: bool) -> list[Delivery]:
        # One target at a time: a target that fails (a deleted queue, a kind moto cannot serve)
        # must not fail PutEvents or the other targets, as on AWS.
        made = []
        for target in targets:
            error = moto_events.send_to_moto_target(rule, target, moto_event, transform_input)
            if error is not None:
                log.warning("rule %s, target %s: %s", rule.arn, target["Id"], error)
                made.append(Delivery(rule.arn, target["Id"], target["Arn"], None, error=error))
        return made

    # -- schedules (the Clock's source) ----------------------------------------------------
    def scheduled_rules(self) -> list[ScheduledRule]:
        """Every rule with a ScheduleExpression, across moto's accounts and regions."""
        from moto.events.models import events_backends

        return [ScheduledRule(arn=rule.arn, expression=rule.scheduled_expression,
                              enabled=rule.state == "ENABLED", ref=rule)
                for backend in every_backend(events_backends)
                for bus in list(backend.event_buses.values())
                for rule in list(bus.rules.values()) if rule.scheduled_expression]

    def fire(self, rule: ScheduledRule, when: datetime) -> list[Delivery]:
        """Deliver one scheduled event (AWS's shape: source aws.events, detail-type Scheduled Event)."""
        moto_rule = rule.ref
        moto_event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": moto_rule.account_id,
            "time": when.timestamp(),  # moto's own targets expect epoch seconds
            "region": moto_rule.region_name,
            "resources": [moto_rule.arn],
            "detail": {},
            "ingestion-time": when.timestamp(),
        }
        return self.deliver(moto_rule, moto_event)


def attach(service: LambdaService) -> EventBridgeDelivery:
    """The delivery a `LocalCloud` opens as `cloud.events`: Lambda targets run in its runtime
    (asynchronously, so `Delivery.handle` is the runtime's AsyncEvent)."""

    def invoke(function_name: str, payload: Any, invocation_type: str = "Event") -> Any:
        # Through the Lambda service, so loop detection and the function's identity apply.
        handle = service.deliver(function_name, payload)
        if handle is None and function_name not in service.runtime.functions():
            from lambdalab.runtime.errors import ResourceNotFoundException
            raise ResourceNotFoundException(f"Function not found: {function_name}")
        return handle

    return EventBridgeDelivery(invoke).start()
