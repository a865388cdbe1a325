"""The meter prices invocations at Lambda's published rates; every figure here is worked by hand."""

from __future__ import annotations

import sys
import threading

import pytest

from lambdalab.runtime.metering import FREE_TIER_GB_SECONDS, TOTAL, FunctionUsage, Meter, price, projected_cost
from lambdalab.runtime.records import Invocation

X86 = 0.0000166667  # $ per GB-second
ARM = 0.0000133334
REQUEST = 0.0000002  # $0.20 per million


def invocation(function: str = "f", memory_mb: int = 128, billed_ms: int = 1,
               architecture: str = "x86_64") -> Invocation:
    return Invocation(request_id="req", function_name=function, event={}, invocation_type="RequestResponse",
                      memory_mb=memory_mb, environment_id="env", cold=False, started_at=0.0,
                      billed_ms=billed_ms, architecture=architecture)


def test_a_million_one_ms_invocations_at_128_mb_and_the_request_free_tier():
    meter = Meter(free_tier=True)
    inv = invocation(memory_mb=128, billed_ms=1)
    for _ in range(1_000_003):
        meter.add(inv)
    # Before the free tier: 1,000,003 x 0.125 GB x 0.001 s = 125.000375 GB-s.
    usage = meter.totals()["f"]
    assert usage.requests == 1_000_003
    assert usage.gb_seconds == pytest.approx(125.000375, rel=1e-12)
    assert usage.compute_cost == pytest.approx(125.000375 * X86, rel=1e-12)
    assert usage.request_cost == pytest.approx(0.2000006, rel=1e-12)
    assert usage.total_cost == pytest.approx(0.0020833437500 + 0.2000006, rel=1e-9)
    # After it: the GB-s are all free, 3 requests are over the million.
    total = meter.total()
    assert total.function_name == TOTAL
    assert total.compute_cost == 0.0
    assert total.free_requests == 1_000_000
    assert total.request_cost == pytest.approx(3 * REQUEST, rel=1e-12)
    assert total.total_cost == pytest.approx(0.0000006, rel=1e-12)


def test_a_1769_mb_function_for_one_second_on_each_architecture():
    # 1769 MB is the size with one full vCPU: 1769/1024 = 1.7275390625 GB.
    x86 = price(invocation(memory_mb=1769, billed_ms=1000))
    arm = price(invocation(memory_mb=1769, billed_ms=1000, architecture="arm64"))
    assert x86 == pytest.approx(1.7275390625 * 0.0000166667 + 0.0000002, rel=1e-12)
    assert x86 == pytest.approx(0.00002899238, rel=1e-6)
    assert arm == pytest.approx(1.7275390625 * 0.0000133334 + 0.0000002, rel=1e-12)
    assert arm == pytest.approx(0.00002323397, rel=1e-6)
    # Arm's duration price is 20% lower; the request price is the same.
    assert (arm - REQUEST) / (x86 - REQUEST) == pytest.approx(0.8, rel=1e-5)


def test_a_function_redeployed_on_another_architecture_is_priced_per_architecture():
    meter = Meter()
    meter.add(invocation("resize", memory_mb=1024, billed_ms=2000))  # 2 GB-s on x86
    meter.add(invocation("resize", memory_mb=2048, billed_ms=500, architecture="arm64"))  # 1 GB-s on arm
    usage = meter.totals()["resize"]
    assert usage.requests == 2
    assert usage.gb_seconds == 3.0
    assert usage.gb_seconds_by_architecture == {"x86_64": 2.0, "arm64": 1.0}
    assert usage.compute_cost == pytest.approx(2 * X86 + 1 * ARM, rel=1e-12)
    assert usage.request_cost == pytest.approx(2 * REQUEST, rel=1e-12)


def test_the_free_tier_is_crossed_exactly_at_400000_gb_seconds():
    # 10,240 MB for 900 s = 10 GB x 900 s = 9,000 GB-s per invocation.
    meter = Meter(free_tier=True)
    big = invocation("etl", memory_mb=10240, billed_ms=900_000)
    for _ in range(44):
        meter.add(big)
    assert meter.total().gb_seconds == 396_000
    assert meter.total().total_cost == 0.0
    meter.add(big)  # 405,000 GB-s: 5,000 over
    total = meter.total()
    assert total.free_gb_seconds == FREE_TIER_GB_SECONDS
    assert total.compute_cost == pytest.approx(5_000 * X86, rel=1e-12)
    assert total.compute_cost == pytest.approx(0.0833335, rel=1e-12)
    assert total.request_cost == 0.0
    # The per-function figure is before the free tier.
    assert meter.totals()["etl"].compute_cost == pytest.approx(405_000 * X86, rel=1e-12)


def test_the_free_tier_spans_functions_and_covers_x86_before_arm():
    meter = Meter(free_tier=True)
    for _ in range(30):  # 30 x 10,000 GB-s = 300,000 GB-s on x86
        meter.add(invocation("a", memory_mb=10240, billed_ms=1_000_000))
    for _ in range(20):  # 200,000 GB-s on arm
        meter.add(invocation("b", memory_mb=10240, billed_ms=1_000_000, architecture="arm64"))
    total = meter.total()
    assert total.gb_seconds == 500_000
    # 400,000 free: all 300,000 x86 then 100,000 arm; 100,000 arm GB-s are billed.
    assert total.compute_cost == pytest.approx(100_000 * ARM, rel=1e-12)
    assert total.compute_cost == pytest.approx(1.33334, rel=1e-12)
    assert meter.totals()["a"].compute_cost == pytest.approx(300_000 * X86, rel=1e-12)
    assert Meter(free_tier=False).total().total_cost == 0.0


def test_projected_cost_of_a_steady_load():
    # 100 req/s for an hour at 512 MB, 50 ms: 360,000 requests, 360,000 x 0.5 x 0.05 = 9,000 GB-s.
    hour = projected_cost(100, 50, 512, "x86_64", 3600)
    assert hour == pytest.approx(9_000 * X86 + 360_000 * REQUEST, rel=1e-12)
    assert hour == pytest.approx(0.2220003, rel=1e-12)
    day = projected_cost(100, 50, 512, "arm64", 86_400)
    assert day == pytest.approx(216_000 * ARM + 8_640_000 * REQUEST, rel=1e-12)
    assert projected_cost(0, 50, 512, "x86_64", 3600) == 0.0


def test_projection_agrees_with_metering_the_same_invocations():
    meter = Meter()
    inv = invocation(memory_mb=256, billed_ms=120, architecture="arm64")
    for _ in range(500):
        meter.add(inv)
    assert meter.total().total_cost == pytest.approx(projected_cost(5, 120, 256, "arm64", 100), rel=1e-12)
    assert meter.total().total_cost == pytest.approx(500 * price(inv), rel=1e-12)


@pytest.mark.parametrize("call", [
    lambda: price(invocation(architecture="sparc")),
    lambda: Meter().add(invocation(architecture="sparc")),
    lambda: projected_cost(1, 1, 128, "sparc", 1),
])
def test_an_unknown_architecture_is_named(call):
    with pytest.raises(ValueError, match=r"unknown architecture 'sparc'.*x86_64, arm64"):
        call()


@pytest.mark.parametrize("args, name", [
    ((-1, 10, 128, "x86_64", 1), "invocations_per_second"),
    ((1, 0.5, 128, "x86_64", 1), "mean_billed_ms"),
    ((1, 10, 64, "x86_64", 1), "memory_mb"),
    ((1, 10, 128, "x86_64", -5), "seconds"),
])
def test_projection_rejects_impossible_inputs(args, name):
    with pytest.raises(ValueError, match=name):
        projected_cost(*args)


def test_an_invocation_without_a_whole_billed_duration_is_rejected():
    with pytest.raises(ValueError, match="billed_ms"):
        Meter().add(invocation(billed_ms=-1))


def test_concurrent_adds_lose_nothing():
    meter = Meter()
    threads_n, per_thread = 8, 50_000
    # Mostly one function and architecture, so that the threads fight over the same tally.
    invs = [invocation("hot" if i else "cold", memory_mb=128 + i, billed_ms=i + 1,
                       architecture="arm64" if i == 7 else "x86_64") for i in range(threads_n)]
    start = threading.Barrier(threads_n)

    def work(inv: Invocation) -> None:
        start.wait()
        for _ in range(per_thread):
            meter.add(inv)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible so that races would show
    try:
        threads = [threading.Thread(target=work, args=(inv,)) for inv in invs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    totals = meter.totals()
    assert sum(u.requests for u in totals.values()) == threads_n * per_thread
    for name in ("hot", "cold"):
        mine = [inv for inv in invs if inv.function_name == name]
        assert totals[name].requests == len(mine) * per_thread
        expected = sum(inv.memory_mb * inv.billed_ms for inv in mine) * per_thread / 1024 / 1000
        assert totals[name].gb_seconds == pytest.approx(expected, rel=1e-12)


def test_table_rows_and_text_and_reset():
    meter = Meter(free_tier=True)
    meter.add(invocation("beta", memory_mb=1024, billed_ms=1000))
    meter.add(invocation("alpha", memory_mb=512, billed_ms=2000))
    rows = meter.table()
    assert [r["function"] for r in rows] == ["alpha", "beta", TOTAL]
    assert set(rows[0]) == {"function", "requests", "GB-s", "compute $", "requests $", "total $"}
    assert rows[0]["GB-s"] == 1.0 and rows[0]["total $"] == pytest.approx(X86 + REQUEST, rel=1e-12)
    assert rows[-1]["requests"] == 2 and rows[-1]["total $"] == 0.0  # all inside the free tier
    text = str(meter)
    assert "alpha" in text and "TOTAL (after free tier)" in text and "$0.0000168667" in text
    assert isinstance(meter.total(), FunctionUsage)
    meter.reset()
    assert meter.totals() == {}
    assert meter.total().requests == 0 and meter.table()[-1]["total $"] == 0.0
