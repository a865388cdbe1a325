"""The local cloud's CloudWatch side, attached to its runtime: EMF extraction from function logs."""

from __future__ import annotations

from typing import Any

from lambdalab.cloud.metrics.emf import EmfExtractor


class CloudMetrics:
    """What `LocalCloud` attaches to its runtime."""

    def __init__(self, runtime: Any, account_id: str, region: str):
        self.emf = EmfExtractor(runtime.log_sink, account_id, region)
        runtime.log_sink = self.emf

    def close(self) -> None:
        """Nothing runs in the background yet."""
