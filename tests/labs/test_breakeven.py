"""Checks for lab `breakeven` (notebook 14): `break_even_requests` in the track's `breakeven/breakeven.py`.

Each check compares the learner's answer with Lambda's bill as AWS prices it
(https://aws.amazon.com/lambda/pricing/): the request charge plus GB-seconds of duration rounded
up to the millisecond, a GB being 1,024 MB, and the monthly free tier of 1M requests and 400,000
GB-seconds. The answer must be the fewest whole requests whose bill reaches the server's price:
the bill for one request fewer stays below it. One check uses a duration measured now (the resize
job of lesson 09 in the local runtime). Run them with `check("breakeven")` or `lambdalab check breakeven`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

import pytest

from lambdalab.course.labs import find_root
from lambdalab.course.lessons.cost import ec2_instance
from lambdalab.course.paths import package
from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.metering import FREE_TIER_GB_SECONDS, FREE_TIER_REQUESTS, PRICE_PER_GB_SECOND, PRICE_PER_REQUEST
from lambdalab.runtime.service import LocalRuntime

BreakEven = Callable[..., int]
SLACK = 1e-9  # relative: the learner's sums may round differently from ours


@pytest.fixture(scope="module")
def break_even_requests(lab_module: Callable[[str], object]) -> BreakEven:
    """The track's `break_even_requests`, imported from its file."""
    return lab_module("breakeven/breakeven.py").break_even_requests


@pytest.fixture(scope="module")
def measured_ms() -> float:
    """The median warm Duration (ms, unrounded) of the resize job at 1024 MB, measured now."""
    solutions = find_root() / "solutions"
    code = package(solutions / "tuning", include=(solutions / "thumbnail" / "thumbnail.py",))
    config = FunctionConfig(name="resize", code_dir=code, handler="resize.lambda_handler", memory_mb=1024,
                            timeout_s=30, environment={"IMAGE_SIZE": "600x450"})
    with LocalRuntime(cpu_limit=True) as rt:
        rt.deploy(config)
        invocations = [rt.invoke("resize", {}) for _ in range(4)]
    assert all(i.error is None for i in invocations), [i.error for i in invocations]
    return statistics.median(i.duration_ms for i in invocations[1:])


def bill(requests: int, duration_ms: float, memory_mb: int, architecture: str = "x86_64",
         free_tier: bool = False) -> float:
    gb_seconds = requests * memory_mb / 1024 * math.ceil(duration_ms) / 1000
    if free_tier:
        requests = max(0, requests - FREE_TIER_REQUESTS)
        gb_seconds = max(0.0, gb_seconds - FREE_TIER_GB_SECONDS)
    return requests * PRICE_PER_REQUEST + gb_seconds * PRICE_PER_GB_SECOND[architecture]


def assert_break_even(got: object, duration_ms: float, memory_mb: int, monthly_usd: float, **options) -> None:
    assert isinstance(got, int) and not isinstance(got, bool), f"return a whole number of requests, not {got!r}"
    at, below = bill(got, duration_ms, memory_mb, **options), bill(got - 1, duration_ms, memory_mb, **options)
    assert at >= monthly_usd * (1 - SLACK), (
        f"{got:,} requests of {duration_ms} ms at {memory_mb} MB ({options or 'x86_64, no free tier'}) cost "
        f"${at:,.6f}, still less than the server's ${monthly_usd:,.2f}")
    assert below < monthly_usd * (1 + SLACK), (
        f"{got - 1:,} requests already cost ${below:,.6f} >= ${monthly_usd:,.2f}: {got:,} is not the fewest")


def test_a_measured_workload_against_an_instance(break_even_requests: BreakEven, measured_ms: float):
    """Finds the break-even of a workload measured now against an m5.large running all month.

    Hint: one request costs PRICE_PER_REQUEST + (memory_mb / 1024) x (billed ms / 1000) x
    PRICE_PER_GB_SECOND[architecture]; find the fewest whole requests whose total reaches monthly_usd.
    """
    server = ec2_instance("m5.large", "x86_64")
    got = break_even_requests(measured_ms, 1024, server.monthly_usd)
    assert_break_even(got, measured_ms, 1024, server.monthly_usd)


def test_duration_is_billed_rounded_up(break_even_requests: BreakEven):
    """Bills the duration rounded up to the next millisecond, as Lambda does.

    Hint: math.ceil(duration_ms) is the billed duration: 10.2 ms is billed as 11 ms.
    """
    for duration in (10.2, 10.0, 0.4):
        assert_break_even(break_even_requests(duration, 2048, 50.0), duration, 2048, 50.0)
    assert break_even_requests(10.2, 2048, 50.0) == break_even_requests(11.0, 2048, 50.0)


def test_the_request_charge_counts(break_even_requests: BreakEven):
    """Counts the $0.20 per million request charge, which dominates for short functions.

    Hint: at 1 ms and 128 MB a request's duration costs about 100 times less than the request
    itself; add PRICE_PER_REQUEST for every request.
    """
    assert_break_even(break_even_requests(1.0, 128, 15.0), 1.0, 128, 15.0)


def test_memory_is_in_mebibytes(break_even_requests: BreakEven):
    """Converts memory to GB as Lambda does: 1,024 MB is 1 GB.

    Hint: GB-seconds = memory_mb / 1024 x billed seconds, not memory_mb / 1000.
    """
    for memory in (1024, 1769, 10240):
        assert_break_even(break_even_requests(250.0, memory, 70.08), 250.0, memory, 70.08)


def test_arm64_has_its_own_rate(break_even_requests: BreakEven):
    """Prices arm64 at its own, lower, GB-second rate.

    Hint: use PRICE_PER_GB_SECOND[architecture], not the x86_64 rate.
    """
    got = break_even_requests(120.0, 1024, 56.21, architecture="arm64")
    assert_break_even(got, 120.0, 1024, 56.21, architecture="arm64")
    assert got > break_even_requests(120.0, 1024, 56.21), "arm64 is cheaper, so its break-even is further out"


def test_the_free_tier_moves_the_break_even(break_even_requests: BreakEven):
    """Deducts the monthly free tier (1M requests, 400,000 GB-s) before pricing, when asked.

    Hint: with free_tier, the bill for n requests prices max(0, n - FREE_TIER_REQUESTS) requests and
    max(0, GB-seconds - FREE_TIER_GB_SECONDS) GB-seconds; the two run out at different volumes.
    """
    for duration, memory, monthly in ((120.0, 1024, 36.04), (1.0, 128, 1.0), (3000.0, 3008, 15.18)):
        got = break_even_requests(duration, memory, monthly, free_tier=True)
        assert_break_even(got, duration, memory, monthly, free_tier=True)
        assert got > break_even_requests(duration, memory, monthly), "the free tier pushes the break-even out"
