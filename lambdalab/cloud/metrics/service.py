"""The local cloud's CloudWatch side, attached to its runtime: EMF extraction from function logs
and Lambda's `AWS/Lambda` metrics per invocation."""

from __future__ import annotations

from typing import Any

from lambdalab.cloud.metrics.emf import EmfExtractor
from lambdalab.cloud.metrics.lambda_metrics import LambdaMetrics


class CloudMetrics:
    """What `LocalCloud` attaches to its runtime."""

    def __init__(self, runtime: Any, account_id: str, region: str):
        self.emf = EmfExtractor(runtime.log_sink, account_id, region)
        runtime.log_sink = self.emf
        self.lambda_metrics = LambdaMetrics(account_id, region)
        runtime.on_invocation = self.lambda_metrics.on_invocation
        runtime.on_throttle = self.lambda_metrics.on_throttle

    def close(self) -> None:
        """Nothing runs in the background yet."""
