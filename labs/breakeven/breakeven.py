# Generated from solutions/breakeven/breakeven.py by `lambdalab labs build`. This copy is yours: edit it.
# Replace each `raise NotImplementedError` with your code, then run `lambdalab check breakeven`.
# `lambdalab labs build` never overwrites your edits (unless you pass --force).
"""Lab `breakeven` (notebook 14): at how many requests a month does Lambda cost as much as a server?

An always-on server (an EC2 instance, a Fargate task) costs the same every month however many
requests it serves; Lambda costs nothing at rest and a little per request. So there is a monthly
volume below which Lambda is cheaper and above which the server is: the break-even. You get a
workload as it was measured (the Duration of its REPORT lines and its memory size) and the
server's monthly price; return the break-even in whole requests a month.

Lambda's prices are in `lambdalab.runtime.metering`: `PRICE_PER_REQUEST` (dollars per request),
`PRICE_PER_GB_SECOND[architecture]` (dollars per GB-second of billed duration; a GB here is 1,024
MB), and the monthly free tier `FREE_TIER_REQUESTS` and `FREE_TIER_GB_SECONDS`.
"""

from __future__ import annotations

import math

from lambdalab.runtime.metering import FREE_TIER_GB_SECONDS, FREE_TIER_REQUESTS, PRICE_PER_GB_SECOND, PRICE_PER_REQUEST


def break_even_requests(duration_ms: float, memory_mb: int, monthly_usd: float, *, architecture: str = "x86_64",
                        free_tier: bool = False) -> int:
    """The fewest whole requests a month whose Lambda bill is at least `monthly_usd`, for requests
    that each ran `duration_ms` (as measured) at `memory_mb`; with `free_tier`, the monthly free
    tier is deducted from the bill first."""
    if not duration_ms > 0:
        raise ValueError(f"duration_ms {duration_ms!r} must be > 0")
    if not 128 <= memory_mb <= 10240:
        raise ValueError(f"memory_mb {memory_mb!r} must be 128-10240")
    if not monthly_usd > 0:
        raise ValueError(f"monthly_usd {monthly_usd!r} must be > 0")
    if architecture not in PRICE_PER_GB_SECOND:
        raise ValueError(f"architecture {architecture!r} must be one of {', '.join(PRICE_PER_GB_SECOND)}")
    # TODO(break_even_requests): Lambda bills each request's duration rounded UP to the next whole millisecond, at memory_mb / 1024 GB,
    # so one request costs PRICE_PER_REQUEST + its GB-seconds x PRICE_PER_GB_SECOND[architecture]. With
    # free_tier, the first FREE_TIER_REQUESTS requests and FREE_TIER_GB_SECONDS GB-seconds of the month
    # cost nothing. Write the month's bill for n requests, then find the smallest whole n whose bill
    # reaches monthly_usd (the bill never shrinks as n grows: a binary search over whole numbers works).
    raise NotImplementedError("Exercise 'break_even_requests' in labs/breakeven/breakeven.py: Lambda bills each request's duration rounded UP to the next whole millisecond, at memory_mb / 1024 GB, so one request costs PRICE_PER_REQUEST + its GB-seconds x PRICE_PER_GB_SECOND[architecture]. With free_tier, the first FREE_TIER_REQUESTS requests and FREE_TIER_GB_SECONDS GB-seconds of the month cost nothing. Write the month's bill for n requests, then find the smallest whole n whose bill reaches monthly_usd (the bill never shrinks as n grows: a binary search over whole numbers works).")
