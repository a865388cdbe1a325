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
    # BEGIN SOLUTION break_even_requests
    # Lambda bills each request's duration rounded UP to the next whole millisecond, at memory_mb / 1024 GB,
    # so one request costs PRICE_PER_REQUEST + its GB-seconds x PRICE_PER_GB_SECOND[architecture]. With
    # free_tier, the first FREE_TIER_REQUESTS requests and FREE_TIER_GB_SECONDS GB-seconds of the month
    # cost nothing. Write the month's bill for n requests, then find the smallest whole n whose bill
    # reaches monthly_usd (the bill never shrinks as n grows: a binary search over whole numbers works).
    gb_seconds_each = memory_mb / 1024 * math.ceil(duration_ms) / 1000

    def bill(requests: int) -> float:
        gb_seconds = requests * gb_seconds_each
        if free_tier:
            requests = max(0, requests - FREE_TIER_REQUESTS)
            gb_seconds = max(0.0, gb_seconds - FREE_TIER_GB_SECONDS)
        return requests * PRICE_PER_REQUEST + gb_seconds * PRICE_PER_GB_SECOND[architecture]

    low, high = 0, 1  # bill(low) < monthly_usd <= bill(high), once high has grown far enough
    while bill(high) < monthly_usd:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if bill(middle) < monthly_usd else (low, middle)
    return high
    # END SOLUTION
