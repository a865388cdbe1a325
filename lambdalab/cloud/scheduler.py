"""EventBridge Scheduler, run by the local cloud's clock: moto stores schedules, this fires them.

`SchedulerSource` is a schedule source for the `Clock` that also fires EventBridge rules
(`lambdalab.cloud.eventbridge.schedules`): every ENABLED schedule in moto's Scheduler backend,
with its `rate()`, `cron()` or one-time `at()` expression evaluated in its
`ScheduleExpressionTimezone`, inside its StartDate/EndDate, moved by its flexible time window.
A Lambda target gets exactly the target's `Input` as its event (context attributes such as
`<aws.scheduler.scheduled-time>` replaced), not the scheduled-rule envelope, invoked
asynchronously as Scheduler does. When the invoke fails, Scheduler retries up to the target's
`RetryPolicy.MaximumRetryAttempts` and then sends the payload to the `DeadLetterConfig` queue
with Scheduler's message attributes (ERROR_CODE, ERROR_MESSAGE, EXECUTION_ID, ...). The retry
loop and the dead-letter send are EventBridge's too (`lambdalab.cloud.eventbridge.retries`).
"""

from __future__ import annotations

import json
import logging
import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lambdalab.cloud.eventbridge.retries import (
    RetryPolicy,
    TargetError,
    dead_letter_queue,
    send_to_dead_letter_queue,
    with_retries,
)
from lambdalab.cloud.eventbridge.schedules import (
    UTC,
    Schedule,
    ScheduledRule,
    ScheduleExpressionError,
    parse_schedule,
)
from lambdalab.cloud.eventbridge.targets import lambda_function_name
from lambdalab.cloud.lambda_service import LambdaService
from lambdalab.cloud.moto import every_backend

log = logging.getLogger(__name__)
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")


# --- expressions: at(), time zones, flexible windows -------------------------------------------


@dataclass(frozen=True)
class AtSchedule:
    """`at(yyyy-mm-ddThh:mm:ss)`: fires once, at that time."""

    expression: str
    when: datetime

    def next_after(self, t: datetime, anchor: datetime | None = None) -> datetime | None:
        return self.when if self.when > t else None


@dataclass(frozen=True)
class ZonedSchedule:
    """A cron() expression read in a time zone: its fields are that zone's wall-clock time."""

    inner: Schedule
    zone: ZoneInfo

    def next_after(self, t: datetime, anchor: datetime | None = None) -> datetime | None:
        local = t.astimezone(self.zone).replace(tzinfo=UTC)  # the zone's wall clock, as if UTC
        found = self.inner.next_after(local, anchor)
        return None if found is None else found.replace(tzinfo=self.zone).astimezone(UTC)


@dataclass(frozen=True)
class WindowedSchedule:
    """A schedule inside StartDate/EndDate, each firing moved by up to `window` (FLEXIBLE mode).

    The delay is drawn per nominal time from a generator seeded with the schedule's ARN, so a
    schedule's firings are reproducible while different schedules spread out."""

    inner: Schedule
    arn: str
    window: timedelta = timedelta(0)
    start: datetime | None = None
    end: datetime | None = None

    def _delay(self, nominal: datetime) -> timedelta:
        if not self.window:
            return timedelta(0)
        seconds = random.Random(f"{self.arn}@{nominal.isoformat()}").uniform(0, self.window.total_seconds())
        return timedelta(seconds=int(seconds))

    def next_after(self, t: datetime, anchor: datetime | None = None) -> datetime | None:
        nominal = self.inner.next_after(max(t - self.window, self.start or t - self.window), anchor)
        while nominal is not None:
            if self.end is not None and nominal >= self.end:
                return None
            fires = nominal + self._delay(nominal)
            if fires > t and (self.start is None or nominal >= self.start):
                return fires
            nominal = self.inner.next_after(nominal, anchor)
        return None


def parse_scheduler_expression(expression: str, timezone: str = "UTC") -> Schedule:
    """A Scheduler expression (`rate()`, `cron()`, `at()`) in `timezone`, checked as Scheduler does."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleExpressionError(f"ScheduleExpressionTimezone {timezone!r} is not a time zone name") from None
    text = (expression or "").strip()
    m = _AT.match(text)
    if m:
        when = datetime.fromisoformat(m.group(1)).replace(tzinfo=zone).astimezone(UTC)
        return AtSchedule(text, when)
    if text.startswith("at("):
        raise ScheduleExpressionError(f"{expression!r}: a one-time schedule is at(yyyy-mm-ddThh:mm:ss)")
    schedule = parse_schedule(text)
    return ZonedSchedule(schedule, zone) if text.startswith("cron(") else schedule


def _date(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def schedule_of(moto_schedule: Any) -> Schedule:
    """The fire times of one of moto's Scheduler schedules."""
    inner = parse_scheduler_expression(moto_schedule.schedule_expression,
                                       moto_schedule.schedule_expression_timezone)
    window = moto_schedule.flexible_time_window or {}
    minutes = (window.get("MaximumWindowInMinutes") or 0) if window.get("Mode") == "FLEXIBLE" else 0
    return WindowedSchedule(inner, moto_schedule.arn, timedelta(minutes=minutes),
                            _date(moto_schedule.start_date), _date(moto_schedule.end_date))


# --- firing --------------------------------------------------------------------------------------


@dataclass
class SchedulerInvocation:
    """One firing of a schedule: the payload sent, each attempt's error, where it ended."""

    schedule_arn: str
    target_arn: str
    scheduled_time: datetime
    payload: str
    execution_id: str
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    handle: Any = None  # the runtime's AsyncEvent when the invoke was accepted
    dead_lettered: bool = False

    @property
    def ok(self) -> bool:
        return self.handle is not None


def _failure(code: str, message: str) -> TargetError:
    # Scheduler retries every failed invoke until its RetryPolicy ends (its DLQ page lists no
    # error it gives up on at once, unlike EventBridge rules).
    return TargetError(code, message, retriable=True)


def render_input(text: str, schedule_arn: str, when: datetime, execution_id: str, attempt: int) -> str:
    """The target's Input with Scheduler's context attributes replaced."""
    values = {"schedule-arn": schedule_arn, "scheduled-time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
              "execution-id": execution_id, "attempt-number": str(attempt)}
    for key, value in values.items():
        text = text.replace(f"<aws.scheduler.{key}>", value)
    return text


class SchedulerSource:
    """The Clock's view of moto's Scheduler: lists schedules and fires their Lambda targets."""

    def __init__(self, service: LambdaService):
        self._service = service
        self.invocations: list[SchedulerInvocation] = []

    def scheduled_rules(self) -> list[ScheduledRule]:
        from moto.scheduler.models import scheduler_backends

        found = []
        for backend in every_backend(scheduler_backends):
            for group in list(backend.schedule_groups.values()):
                for schedule in list(group.schedules.values()):
                    try:
                        parsed: Any = schedule_of(schedule)
                    except ValueError as e:
                        log.warning("schedule %s is not valid, never fires: %s", schedule.arn, e)
                        continue
                    # The expression key changes when anything that moves fire times changes.
                    key = "|".join(str(x) for x in (
                        schedule.schedule_expression, schedule.schedule_expression_timezone,
                        schedule.flexible_time_window, schedule.start_date, schedule.end_date))
                    found.append(ScheduledRule(arn=schedule.arn, expression=key,
                                               enabled=schedule.state == "ENABLED", ref=schedule,
                                               schedule=parsed, starts=_date(schedule.start_date)))
        return found

    def fire(self, rule: ScheduledRule, when: datetime) -> list[SchedulerInvocation]:
        schedule = rule.ref
        target = schedule.target
        execution_id = uuid.uuid4().hex[:16]
        made = SchedulerInvocation(schedule.arn, target.get("Arn", ""), when, "", execution_id)

        def send(number: int) -> Any:
            made.payload = render_input(target.get("Input") or "{}", schedule.arn, when, execution_id, number)
            return self._invoke(target, made.payload)

        outcome = with_retries(send, RetryPolicy.of(target))
        made.attempts, made.handle = outcome.attempts, outcome.result
        made.errors = [f"{e.code}: {e}" for e in outcome.errors]
        if made.handle is None:
            self._dead_letter(schedule, target, made)
        if made.handle is not None and schedule.action_after_completion == "DELETE" \
                and isinstance(getattr(rule.schedule, "inner", None), AtSchedule):
            self._delete(schedule)
        self.invocations.append(made)
        return [made]

    def _invoke(self, target: dict, payload: str) -> Any:
        name = lambda_function_name(target.get("Arn", ""))
        if name is None:
            raise _failure("ValidationException",
                           f"the local cloud runs Lambda targets only, not {target.get('Arn')!r}")
        try:  # Lambda's Invoke API takes a JSON document and refuses anything else
            event = json.loads(payload)
        except ValueError as e:
            raise _failure("InvalidRequestContentException",
                           f"Could not parse request body into json: {e}") from None
        handle = self._service.deliver(target["Arn"], event)
        if handle is None:
            raise _failure("ResourceNotFoundException", f"Function not found: {target['Arn']}")
        return handle

    def _dead_letter(self, schedule: Any, target: dict, made: SchedulerInvocation) -> None:
        queue_arn = dead_letter_queue(target)
        if not queue_arn:
            log.warning("schedule %s could not invoke %s and has no dead-letter queue: %s",
                        schedule.arn, made.target_arn, made.errors[-1])
            return
        code, _, message = made.errors[-1].partition(": ")
        attributes = {"ERROR_CODE": code, "ERROR_MESSAGE": message, "EXECUTION_ID": made.execution_id,
                      "EXECUTION_TIME": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "SCHEDULE_ARN": schedule.arn,
                      "SCHEDULED_TIME": made.scheduled_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "TARGET_ARN": made.target_arn}
        made.dead_lettered = send_to_dead_letter_queue(queue_arn, made.payload, attributes)

    @staticmethod
    def _delete(schedule: Any) -> None:
        from moto.scheduler.models import scheduler_backends

        account, region = schedule.arn.split(":")[4], schedule.arn.split(":")[3]
        scheduler_backends[account][region].delete_schedule(schedule.group_name, schedule.name)
