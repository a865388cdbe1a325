"""EventBridge delivery for the local cloud: Lambda targets and schedules.

While an `EventBridgeDelivery` is open, every event moto hands a rule (through the patches in
`lambdalab.cloud.moto.events`) comes here:

- the rule must be ENABLED and have an event pattern, and the event must match it under AWS's
  pattern language (`lambdalab.cloud.eventbridge.patterns`);
- each Lambda target is invoked asynchronously with the event in AWS's shape, after the target's
  `Input`, `InputPath` or `InputTransformer` (`lambdalab.cloud.eventbridge.targets`);
- every other target (SQS, CloudWatch Logs, another bus, an archive) stays moto's business;
- a target EventBridge could not deliver to follows its `RetryPolicy` and ends on its
  `DeadLetterConfig` queue with EventBridge's message attributes (RULE_ARN, TARGET_ARN,
  ERROR_CODE, ERROR_MESSAGE, and EXHAUSTED_RETRY_CONDITION, RETRY_ATTEMPTS after retries):
  a missing function (NO_RESOURCE) or a missing permission (NO_PERMISSIONS) at once, throttling
  (THROTTLING) after retries. A function that raises was delivered: Lambda retries it
  asynchronously, under the function's own event invoke config (`lambdalab.cloud.eventbridge.retries`).

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
from lambdalab.cloud.eventbridge.retries import (
    Attempts,
    RetryPolicy,
    TargetError,
    dead_letter_queue,
    send_to_dead_letter_queue,
    with_retries,
)
from lambdalab.cloud.eventbridge.schedules import Clock, ScheduledRule
from lambdalab.cloud.eventbridge.targets import aws_event, iso_time, lambda_function_name, target_input
from lambdalab.cloud.lambda_service import LambdaService
from lambdalab.cloud.moto import Patches, every_backend
from lambdalab.cloud.moto import events as moto_events
from lambdalab.cloud.resource_policy import allows, function_statements

log = logging.getLogger(__name__)

# The invoke hook: (function name, payload, invocation_type="Event") -> anything (e.g. AsyncEvent).
InvokeFn = Callable[..., Any]
# Whether a function's resource policy lets EventBridge invoke it for a rule: (function, rule ARN).
PermitFn = Callable[[str, str], bool]


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
    error_code: str | None = None  # EventBridge's ERROR_CODE (NO_RESOURCE, NO_PERMISSIONS, THROTTLING, ...)
    attempts: int = 1
    dead_lettered: bool = False
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
    The runtime's `LocalRuntime.invoke` fits as is; it may raise `ResourceNotFoundException` or
    `TooManyRequestsException`. `permits(function, rule_arn)`, when given, is asked first (the
    function's resource policy). `clock` fires scheduled rules.
    """

    def __init__(self, invoke: InvokeFn, *, clock_start: datetime | None = None,
                 permits: PermitFn | None = None):
        if not callable(invoke):
            raise TypeError(f"invoke must be callable, got {invoke!r}")
        self._invoke = invoke
        self._permits = permits
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
        except ValueError as e:
            return self._failed(delivery, target, event, Attempts(1, [TargetError("INVALID_JSON", str(e))]))
        delivery.event = payload
        body = payload if isinstance(payload, (dict, list)) else json.dumps(payload).encode()
        outcome = with_retries(lambda _n: self._invoke_once(rule.arn, name, body), RetryPolicy.of(target))
        delivery.attempts = outcome.attempts
        if outcome.delivered:
            delivery.handle = outcome.result
            return delivery
        return self._failed(delivery, target, event, outcome)

    def _invoke_once(self, rule_arn: str, name: str | None, body: Any) -> Any:
        from lambdalab.runtime.errors import ResourceNotFoundException, TooManyRequestsException

        assert name is not None
        if self._permits is not None and not self._permits(name, rule_arn):
            raise TargetError("NO_PERMISSIONS", f"EventBridge is not allowed to invoke {name} for {rule_arn}: "
                              "the function's resource-based policy needs lambda:InvokeFunction for "
                              "events.amazonaws.com (lambda add_permission)")
        try:
            return self._invoke(name, body, invocation_type="Event")
        except ResourceNotFoundException as e:
            raise TargetError("NO_RESOURCE", f"{type(e).__name__}: {e}") from None
        except TooManyRequestsException as e:
            raise TargetError("THROTTLING", f"{type(e).__name__}: {e}", retriable=True) from None
        except TargetError:
            raise
        except Exception as e:
            raise TargetError("SDK_CLIENT_ERROR", f"{type(e).__name__}: {e}") from None

    def _failed(self, delivery: Delivery, target: dict, event: dict, outcome: Attempts) -> Delivery:
        """An event EventBridge gave up on: logged, and sent to the target's dead-letter queue."""
        error = outcome.last_error
        assert error is not None
        delivery.error, delivery.error_code, delivery.attempts = str(error), error.code, outcome.attempts
        log.warning("EventBridge rule %s could not deliver to %s: %s %s",
                    delivery.rule_arn, delivery.target_arn, error.code, error)
        queue = dead_letter_queue(target)
        if queue:
            attributes = {"RULE_ARN": delivery.rule_arn, "TARGET_ARN": delivery.target_arn,
                          "ERROR_CODE": error.code, "ERROR_MESSAGE": str(error)[:1024]}
            if outcome.exhausted:
                attributes["EXHAUSTED_RETRY_CONDITION"] = outcome.exhausted
                attributes["RETRY_ATTEMPTS"] = str(outcome.attempts - 1)
            delivery.dead_lettered = send_to_dead_letter_queue(queue, json.dumps(event), attributes)
        return delivery

    def _to_moto(self, rule: Any, targets: list[dict], moto_event: dict, transform_input: bool) -> list[Delivery]:
        # One target at a time: a target that fails (a deleted queue, a kind moto cannot serve)
        # must not fail PutEvents or the other targets, as on AWS.
        made = []
        for target in targets:
            error = moto_events.send_to_moto_target(rule, target, moto_event, transform_input)
            if error is not None:
                code = "NO_RESOURCE" if "NonExistent" in error or "does not exist" in error else "SDK_CLIENT_ERROR"
                delivery = Delivery(rule.arn, target["Id"], target["Arn"], None)
                made.append(self._failed(delivery, target, aws_event(moto_event),
                                         Attempts(1, [TargetError(code, error)])))
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


def attach(service: LambdaService, *, checks_permissions: Callable[[], bool] = lambda: False) -> EventBridgeDelivery:
    """The delivery a `LocalCloud` opens as `cloud.events`: Lambda targets run in its runtime
    (asynchronously, so `Delivery.handle` is the runtime's AsyncEvent). While
    `checks_permissions()` is true (the cloud enforces IAM), a function's resource-based policy
    must let events.amazonaws.com invoke it for the rule, as on AWS."""

    def invoke(function_name: str, payload: Any, invocation_type: str = "Event") -> Any:
        # Through the Lambda service, so loop detection and the function's identity apply.
        handle = service.deliver(function_name, payload)
        if handle is None and function_name not in service.runtime.functions():
            from lambdalab.runtime.errors import ResourceNotFoundException
            raise ResourceNotFoundException(f"Function not found: {function_name}")
        return handle

    def permits(function_name: str, rule_arn: str) -> bool:
        if not checks_permissions():
            return True
        try:
            fn = service.function_or_404(function_name)
        except Exception:
            return True  # a missing function is NO_RESOURCE, reported by the invoke
        account = rule_arn.split(":")[4]
        return allows(function_statements(fn), "lambda:InvokeFunction", service="events.amazonaws.com",
                      context={"AWS:SourceArn": rule_arn, "AWS:SourceAccount": account})

    return EventBridgeDelivery(invoke, permits=permits).start()
