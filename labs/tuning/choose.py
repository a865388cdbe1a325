# Generated from solutions/tuning/choose.py by `lambdalab labs build`. This copy is yours: edit it.
# Replace each `raise NotImplementedError` with your code, then run `lambdalab check tuning`.
# `lambdalab labs build` never overwrites your edits (unless you pass --force).
"""Lab `tuning` (notebook 09): choose a memory size from measured power-tuning results.

Power Tuning's own picks optimise an average: the cheapest, the fastest, or a blend. A service
usually has a latency target on the tail instead ("95% of requests within 300 ms"), and then
the right size is the cheapest one whose p95 meets the target. `results` is what
`lambdalab.course.lessons.power_tuning.power_tune` returns: `results.stats` holds one `PowerStats` per memory
size, with `.memory_mb`, `.p95_ms` (p95 of the measured Durations) and `.cost_per_invocation`
(dollars).
"""

from __future__ import annotations

from lambdalab.course.lessons.power_tuning import TuningResult


def choose_memory(results: TuningResult, p95_target_ms: float) -> int:
    """The memory size (MB) of the cheapest measured configuration whose p95 is at most
    `p95_target_ms`; ValueError, naming the best p95 measured, when none meets the target."""
    if not p95_target_ms > 0:
        raise ValueError(f"p95_target_ms {p95_target_ms!r} must be a positive number of milliseconds")
    # TODO(choose_memory): Keep the sizes whose p95_ms is at or under the target, and return the memory_mb of the one
    # with the least cost_per_invocation. If no size meets the target, raise ValueError saying so
    # and naming the best (lowest) p95 measured, e.g. "best p95 was 41.9 ms at 1769 MB".
    raise NotImplementedError("Exercise 'choose_memory' in labs/tuning/choose.py: Keep the sizes whose p95_ms is at or under the target, and return the memory_mb of the one with the least cost_per_invocation. If no size meets the target, raise ValueError saying so and naming the best (lowest) p95 measured, e.g. \"best p95 was 41.9 ms at 1769 MB\".")
