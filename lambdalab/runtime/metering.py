"""What Lambda would bill for the invocations the local runtime ran: requests, GB-seconds, dollars.

Rates are Lambda's published on-demand prices in us-east-1 (first pricing tier): duration per
GB-second by architecture plus a price per request (`PRICES_SOURCE`, as of `PRICES_AS_OF`).
`Invocation.billed_ms` already includes INIT for on-demand cold starts, so GB-seconds are simply
memory (GB) x billed time (s). Provisioned concurrency has two rates of its own, listed here for
the course's cost lesson: per GB-second while it is enabled, and a lower duration rate for what
runs on it; the free tier does not apply to it. Not modelled: the volume discounts above 6 billion
GB-s a month, ephemeral storage above 512 MB, and data transfer.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdalab.runtime.config import ARCHITECTURES
from lambdalab.runtime.records import Invocation

PRICES_SOURCE = "https://aws.amazon.com/lambda/pricing/"  # us-east-1; the AWS Price List's AWSLambda offer
PRICES_AS_OF = "2026-12-07"
PRICE_PER_GB_SECOND: Mapping[str, float] = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
PRICE_PER_REQUEST = 0.20 / 1_000_000
FREE_TIER_GB_SECONDS = 400_000
FREE_TIER_REQUESTS = 1_000_000
PROVISIONED_PRICE_PER_GB_SECOND: Mapping[str, float] = {"x86_64": 0.0000041667, "arm64": 0.0000033334}
PROVISIONED_DURATION_PRICE_PER_GB_SECOND: Mapping[str, float] = {"x86_64": 0.0000097222, "arm64": 0.0000077778}
TOTAL = "TOTAL"
# Integer MB-milliseconds keep sums exact however many invocations are added.
_MB_MS_PER_GB_SECOND = 1024 * 1000
# AWS does not say which architecture's GB-seconds the shared free tier covers first;
# we apply it to the dearer one first.
_FREE_TIER_ORDER = sorted(ARCHITECTURES, key=lambda arch: -PRICE_PER_GB_SECOND[arch])


def _check_architecture(architecture: str) -> None:
    if architecture not in PRICE_PER_GB_SECOND:
        raise ValueError(f"unknown architecture {architecture!r}; Lambda prices {', '.join(PRICE_PER_GB_SECOND)}")


@dataclass(frozen=True)
class FunctionUsage:
    """Usage and cost of one function, or of all of them (`function_name == TOTAL`)."""

    function_name: str
    requests: int
    gb_seconds: float
    compute_cost: float
    request_cost: float
    total_cost: float
    gb_seconds_by_architecture: Mapping[str, float] = field(default_factory=dict)
    free_gb_seconds: float = 0.0  # free-tier GB-seconds deducted before pricing
    free_requests: int = 0  # free-tier requests deducted before pricing


@dataclass
class _Tally:
    requests: int = 0
    mb_ms: dict[str, int] = field(default_factory=dict)  # by architecture


def price(inv: Invocation) -> float:
    """Dollars for one invocation at the published rates (no free tier)."""
    _check_architecture(inv.architecture)
    return inv.gb_seconds * PRICE_PER_GB_SECOND[inv.architecture] + PRICE_PER_REQUEST


def projected_cost(invocations_per_second: float, mean_billed_ms: float, memory_mb: int,
                   architecture: str, seconds: float) -> float:
    """Dollars for a steady load over `seconds` (3600: an hour, 86400: a day), without the free tier."""
    _check_architecture(architecture)
    if invocations_per_second < 0:
        raise ValueError(f"invocations_per_second {invocations_per_second!r} must be >= 0")
    if mean_billed_ms < 1:
        raise ValueError(f"mean_billed_ms {mean_billed_ms!r} must be >= 1 (Lambda bills at least 1 ms)")
    if not isinstance(memory_mb, int) or not 128 <= memory_mb <= 10240:
        raise ValueError(f"memory_mb {memory_mb!r} must be an integer in 128-10240")
    if seconds < 0:
        raise ValueError(f"seconds {seconds!r} must be >= 0")
    requests = invocations_per_second * seconds
    gb_seconds = requests * memory_mb / 1024 * mean_billed_ms / 1000
    return gb_seconds * PRICE_PER_GB_SECOND[architecture] + requests * PRICE_PER_REQUEST


def _usage(name: str, requests: int, mb_ms: Mapping[str, int], free_tier: bool = False) -> FunctionUsage:
    by_arch = {arch: mb_ms[arch] / _MB_MS_PER_GB_SECOND for arch in ARCHITECTURES if arch in mb_ms}
    free_left = FREE_TIER_GB_SECONDS if free_tier else 0.0
    compute_cost = 0.0
    for arch in _FREE_TIER_ORDER:
        used = by_arch.get(arch, 0.0)
        covered = min(used, free_left)
        free_left -= covered
        compute_cost += (used - covered) * PRICE_PER_GB_SECOND[arch]
    free_requests = min(requests, FREE_TIER_REQUESTS) if free_tier else 0
    request_cost = (requests - free_requests) * PRICE_PER_REQUEST
    total_gb_seconds = sum(mb_ms.values()) / _MB_MS_PER_GB_SECOND
    return FunctionUsage(
        function_name=name, requests=requests, gb_seconds=total_gb_seconds, compute_cost=compute_cost,
        request_cost=request_cost, total_cost=compute_cost + request_cost, gb_seconds_by_architecture=by_arch,
        free_gb_seconds=(FREE_TIER_GB_SECONDS - free_left) if free_tier else 0.0, free_requests=free_requests)


class Meter:
    """Accumulates invocations (from any thread) and prices them per function and in total.

    With `free_tier=True` the monthly free tier (400,000 GB-s, 1,000,000 requests) is deducted
    once, from the all-functions total; per-function figures are always before the free tier."""

    def __init__(self, free_tier: bool = False):
        self.free_tier = free_tier
        self._lock = threading.Lock()
        self._tallies: dict[str, _Tally] = {}

    def add(self, inv: Invocation) -> None:
        _check_architecture(inv.architecture)
        if not isinstance(inv.billed_ms, int) or inv.billed_ms < 0:
            raise ValueError(f"invocation {inv.request_id}: billed_ms {inv.billed_ms!r} must be a whole number >= 0")
        if not isinstance(inv.memory_mb, int) or inv.memory_mb <= 0:
            raise ValueError(f"invocation {inv.request_id}: memory_mb {inv.memory_mb!r} must be a positive integer")
        mb_ms = inv.memory_mb * inv.billed_ms
        with self._lock:
            tally = self._tallies.setdefault(inv.function_name, _Tally())
            tally.requests += 1
            tally.mb_ms[inv.architecture] = tally.mb_ms.get(inv.architecture, 0) + mb_ms

    def _snapshot(self) -> dict[str, _Tally]:
        with self._lock:
            return {name: _Tally(t.requests, dict(t.mb_ms)) for name, t in self._tallies.items()}

    def totals(self) -> dict[str, FunctionUsage]:
        """Per function, before the free tier, sorted by name."""
        return {name: _usage(name, t.requests, t.mb_ms) for name, t in sorted(self._snapshot().items())}

    def total(self) -> FunctionUsage:
        """All functions together, after the free tier when the meter has one."""
        requests = 0
        mb_ms: dict[str, int] = {}
        for tally in self._snapshot().values():
            requests += tally.requests
            for arch, value in tally.mb_ms.items():
                mb_ms[arch] = mb_ms.get(arch, 0) + value
        return _usage(TOTAL, requests, mb_ms, free_tier=self.free_tier)

    def table(self) -> list[dict[str, Any]]:
        """One row per function, then the TOTAL row (after the free tier, if any)."""
        usages = [*self.totals().values(), self.total()]
        return [{"function": u.function_name, "requests": u.requests, "GB-s": u.gb_seconds,
                 "compute $": u.compute_cost, "requests $": u.request_cost, "total $": u.total_cost}
                for u in usages]

    def reset(self) -> None:
        with self._lock:
            self._tallies.clear()

    def __str__(self) -> str:
        rows = [[str(r["function"]), f"{r['requests']:,}", f"{r['GB-s']:,.3f}",
                 *(f"${r[k]:,.10f}" for k in ("compute $", "requests $", "total $"))] for r in self.table()]
        if self.free_tier:
            rows[-1][0] += " (after free tier)"
        header = ["function", "requests", "GB-s", "compute", "requests", "total"]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines = [[cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
                 for row in [header, *rows]]
        return "\n".join("  ".join(line).rstrip() for line in lines)
