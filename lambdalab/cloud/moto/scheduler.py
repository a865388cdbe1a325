"""Patches to moto's EventBridge Scheduler (`moto.scheduler`): expressions checked as Scheduler does.

moto stores any `ScheduleExpression`, time zone and flexible time window; Scheduler rejects a bad
`rate()`/`cron()`/`at()`, an unknown time zone or a FLEXIBLE window without
`MaximumWindowInMinutes` (1-1440) with a ValidationException naming the problem. Firing is
`lambdalab.cloud.scheduler`'s business (the local cloud's clock).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdalab.cloud.moto import Patches
from lambdalab.cloud.scheduler import parse_scheduler_expression


def install(patches: Patches) -> None:
    from moto.scheduler.models import EventBridgeSchedulerBackend

    def checked(original: Callable) -> Callable:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            _check(kwargs)
            return original(self, *args, **kwargs)
        return call

    patches.replace(EventBridgeSchedulerBackend, "create_schedule", checked)
    patches.replace(EventBridgeSchedulerBackend, "update_schedule", checked)


def _check(spec: dict[str, Any]) -> None:
    from moto.scheduler.exceptions import ValidationException

    try:
        parse_scheduler_expression(spec.get("schedule_expression") or "",
                                   spec.get("schedule_expression_timezone") or "UTC")
    except ValueError as e:
        raise ValidationException(f"Invalid Schedule Expression {spec.get('schedule_expression')!r}: {e}") from None
    window = spec.get("flexible_time_window") or {}
    if window.get("Mode") == "FLEXIBLE" and not 1 <= int(window.get("MaximumWindowInMinutes") or 0) <= 1440:
        raise ValidationException("FlexibleTimeWindow: Mode FLEXIBLE needs MaximumWindowInMinutes from 1 to 1440")
