"""Order statistics for measured samples (durations, latencies, counts).

One method everywhere: linear interpolation between the closest ranks (numpy's and pandas'
default, "type 7"), so a learner who checks a number with numpy or pandas gets the same value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """The `q`th percentile (0 to 100) of `values`, interpolating between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile needs at least one value")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0-100, not {q!r}")
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Iterable[float]) -> float:
    return percentile(values, 50)
