"""Lambda's own metrics in the `AWS/Lambda` namespace, published per invocation as Lambda does.

Invocations, Errors (binary per invocation: 1 for a function error, else 0, stamped with the
invocation's start), Duration (milliseconds), Throttles (1 per request refused for concurrency;
a throttled request is not an invocation) and ConcurrentExecutions (the most environments of
the function busy at once while an invocation ran), each with the `FunctionName` dimension.
The runtime always runs `$LATEST`, so there is no version or alias `Resource` dimension to add.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from lambdalab.cloud.metrics.publish import Datum, put

NAMESPACE = "AWS/Lambda"
_KEEP_S = 900.0  # intervals kept for concurrency: longer than Lambda's 15-minute maximum timeout


def peak_concurrency(start: float, end: float, intervals: list[tuple[float, float]]) -> tuple[int, float]:
    """How many of `intervals` overlapped at most at one moment within [start, end], and when.

    Concurrency only rises when an interval starts, so the peak is at `start` or at a later start."""
    moments = [start] + [s for s, _ in intervals if start < s <= end]
    best, when = 0, start
    for t in moments:
        count = sum(1 for s, e in intervals if s <= t <= e)
        if count > best:
            best, when = count, t
    return best, when


class LambdaMetrics:
    """The runtime's `on_invocation` and `on_throttle` hooks: datapoints into moto's CloudWatch."""

    def __init__(self, account_id: str, region: str):
        self.account_id = account_id
        self.region = region
        self._lock = threading.Lock()
        self._intervals: dict[str, deque[tuple[float, float]]] = {}

    def on_invocation(self, inv: Any) -> None:
        name, start, end = inv.function_name, inv.started_at, inv.ended_at
        with self._lock:
            recent = self._intervals.setdefault(name, deque())
            recent.append((start, end))
            while recent and recent[0][1] < end - _KEEP_S:
                recent.popleft()
            peak, when = peak_concurrency(start, end, list(recent))
        dims = {"FunctionName": name}
        put(self.account_id, self.region, [
            Datum.of(NAMESPACE, "Invocations", 1, start, dims, "Count"),
            Datum.of(NAMESPACE, "Errors", 0 if inv.ok else 1, start, dims, "Count"),
            Datum.of(NAMESPACE, "Duration", inv.duration_ms, start, dims, "Milliseconds"),
            Datum.of(NAMESPACE, "ConcurrentExecutions", peak, when, dims, "Count"),
        ])

    def on_throttle(self, function_name: str, when: float) -> None:
        put(self.account_id, self.region,
            [Datum.of(NAMESPACE, "Throttles", 1, when, {"FunctionName": function_name}, "Count")])

    def reset(self) -> None:
        with self._lock:
            self._intervals.clear()
