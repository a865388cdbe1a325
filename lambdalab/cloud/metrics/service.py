"""The local cloud's CloudWatch side, attached to its runtime: EMF extraction from function logs,
Lambda's `AWS/Lambda` metrics per invocation, and metric alarms evaluated on a timer.

CloudWatch evaluates a standard alarm about once a minute; the timer here runs every
`ALARM_INTERVAL_S` so a lesson sees the same transitions without the wait, and
`alarms.evaluate(now)` runs one round at a chosen time.
"""

from __future__ import annotations

from typing import Any

from lambdalab.cloud.metrics.alarms import AlarmEvaluator
from lambdalab.cloud.metrics.emf import EmfExtractor
from lambdalab.cloud.metrics.lambda_metrics import LambdaMetrics

ALARM_INTERVAL_S = 10.0


class CloudMetrics:
    """What `LocalCloud` attaches to its runtime; `close()` stops the alarm timer."""

    def __init__(self, runtime: Any, account_id: str, region: str):
        self.emf = EmfExtractor(runtime.log_sink, account_id, region)
        runtime.log_sink = self.emf
        self.lambda_metrics = LambdaMetrics(account_id, region)
        runtime.on_invocation = self.lambda_metrics.on_invocation
        runtime.on_throttle = self.lambda_metrics.on_throttle
        self.alarms = AlarmEvaluator()
        self.alarms.start(ALARM_INTERVAL_S)

    def reset(self) -> None:
        """Forget what was seen (the cloud's reset empties moto's CloudWatch itself)."""
        self.emf.rejected.clear()
        self.lambda_metrics.reset()

    def close(self) -> None:
        self.alarms.close()
