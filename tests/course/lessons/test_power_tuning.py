"""Power tuning: the statistics and picks on numbers worked by hand, then real runs of a CPU-bound
handler in a LocalRuntime whose CPU share follows memory, checked against the runtime's records."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.collections import PathCollection

from lambdalab.course.lessons.power_tuning import (
    PowerStats,
    PowerTuningError,
    TuningResult,
    balanced_score,
    find_balanced,
    find_cheapest,
    find_fastest,
    plot,
    plot_samples,
    power_tune,
    summarise,
    summarise_reports,
    tail_report,
    trimmed_mean,
)
from lambdalab.course.paths import package
from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.metering import PRICE_PER_GB_SECOND, PRICE_PER_REQUEST, price
from lambdalab.runtime.records import Invocation, Report
from lambdalab.runtime.service import LocalRuntime

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[3]
RESIZE = package(ROOT / "solutions" / "tuning", include=(ROOT / "solutions" / "thumbnail" / "thumbnail.py",))
HANDLERS = Path(__file__).resolve().parents[2] / "handlers"
X86 = PRICE_PER_GB_SECOND["x86_64"]


# --- statistics on given numbers -----------------------------------------------------------------

def test_trimmed_mean_drops_a_fifth_at_each_end_like_power_tuning():
    values = [10, 1, 9, 2, 8, 3, 7, 4, 6, 1000]  # 10 values: int(10 * 0.2) = 2 dropped at each end
    assert trimmed_mean(values) == (3 + 4 + 6 + 7 + 8 + 9) / 6
    assert trimmed_mean(values, 0) == sum(values) / 10
    assert trimmed_mean(values, 0.4) == (6 + 7) / 2  # 4 dropped at each end


def test_trimmed_mean_of_few_values_drops_nothing():
    assert trimmed_mean([1, 2, 3, 100]) == 26.5  # int(4 * 0.2) = 0, as in Power Tuning
    assert trimmed_mean([5, 1, 100, 2, 3]) == (2 + 3 + 5) / 3  # int(5 * 0.2) = 1


@pytest.mark.parametrize("values, discard, message", [
    ([], 0.2, "at least one value"),
    ([1.0], -0.1, "between 0 and 0.4"),
    ([1.0], 0.5, "between 0 and 0.4"),
])
def test_trimmed_mean_rejects_bad_input(values, discard, message):
    with pytest.raises(ValueError, match=message):
        trimmed_mean(values, discard)


def test_p50_and_p95_interpolate_between_ranks_like_numpy():
    # Power Tuning's analyzer uses only the trimmed mean; the p50 and p95 are the course's own, with
    # its one percentile (numpy's default), so a learner's np.percentile gives the same numbers.
    stats = summarise(512, [invocation(512, d) for d in (160.0, 100.0, 400.0, 120.0, 140.0)])
    assert stats.p50_ms == 140.0
    assert stats.p95_ms == pytest.approx(352.0)  # 0.8 of the way from the 4th (160) to the 5th (400)
    assert summarise(512, [invocation(512, 7.0)]).p95_ms == 7.0


def invocation(memory_mb: int, duration_ms: float, *, ok: bool = True, report: bool = True,
               report_memory_mb: int | None = None, cold: bool = False) -> Invocation:
    billed = math.ceil(duration_ms)
    rid = f"req-{duration_ms}"
    lines = [f"START RequestId: {rid} Version: $LATEST"]
    if report:
        lines.append(str(Report(request_id=rid, duration_ms=duration_ms, billed_ms=billed,
                                memory_mb=report_memory_mb or memory_mb, max_memory_used_mb=50)))
    return Invocation(request_id=rid, function_name="f", event={}, invocation_type="RequestResponse",
                      memory_mb=memory_mb, environment_id="env", cold=cold, started_at=0.0,
                      duration_ms=duration_ms, billed_ms=billed, log_lines=lines,
                      error=None if ok else {"errorType": "ValueError", "errorMessage": "bad input"})


def test_summarise_reads_report_lines_and_prices_the_kept_invocations():
    durations = [100.25, 99.5, 101.75, 400.0, 98.0, 100.0, 97.5, 102.0, 100.5, 10.0]
    stats = summarise(1024, [invocation(1024, d) for d in durations])
    kept = sorted(durations)[2:-2]  # 98.0 .. 101.75
    assert stats.memory_mb == 1024 and stats.samples == 10 and stats.cold_starts == 0
    assert stats.duration_ms == pytest.approx(sum(kept) / 6)
    billed_kept = [math.ceil(d) for d in kept]  # 98, 99, 100, 100, 101, 101... ceil of each
    assert stats.billed_ms == pytest.approx(sum(billed_kept) / 6)
    assert stats.p95_ms == pytest.approx(265.9) and stats.p50_ms == pytest.approx(100.125)  # interpolated
    # 1 GB at the x86 rate for the mean billed time, plus the request charge
    assert stats.cost_per_invocation == pytest.approx(1.0 * stats.billed_ms / 1000 * X86 + PRICE_PER_REQUEST)
    assert stats.cost_per_million == pytest.approx(stats.cost_per_invocation * 1e6)
    assert stats.durations_ms == tuple(durations)


def test_summarise_refuses_what_it_cannot_measure():
    with pytest.raises(PowerTuningError, match=r"failed at 512 MB: ValueError: bad input"):
        summarise(512, [invocation(512, 10.0), invocation(512, 11.0, ok=False)])
    with pytest.raises(PowerTuningError, match="no REPORT line"):
        summarise(512, [invocation(512, 10.0, report=False)])
    with pytest.raises(PowerTuningError, match="ran at 256 MB, not 512 MB"):
        summarise(512, [invocation(512, 10.0, report_memory_mb=256)])
    with pytest.raises(ValueError, match="no invocations measured at 512 MB"):
        summarise(512, [])


def stat(memory_mb: int, billed_ms: float, p95_ms: float | None = None) -> PowerStats:
    """A memory size that measured `billed_ms`, priced the way Lambda prices it."""
    cost = memory_mb / 1024 * billed_ms / 1000 * X86 + PRICE_PER_REQUEST
    return PowerStats(memory_mb=memory_mb, samples=10, duration_ms=billed_ms, billed_ms=billed_ms,
                      p50_ms=billed_ms, p95_ms=p95_ms or billed_ms * 1.2, cost_per_invocation=cost)


# A CPU-bound profile: time halves with memory until 1 vCPU, then stays.
CPU_BOUND = [stat(128, 2000), stat(256, 1000), stat(512, 500), stat(1024, 240), stat(1769, 150), stat(3008, 150)]


def test_cost_and_speed_picks_follow_the_table():
    assert find_cheapest(CPU_BOUND).memory_mb == 1024  # 1024 x 240 is the least MB-ms
    assert find_fastest(CPU_BOUND).memory_mb == 1769  # ties with 3008 on speed: the cheaper wins


def test_equal_costs_go_to_the_faster_and_equal_speeds_to_the_cheaper():
    a = PowerStats(memory_mb=128, samples=5, duration_ms=10, billed_ms=10, p50_ms=10, p95_ms=10,
                   cost_per_invocation=1e-6)
    b = PowerStats(memory_mb=256, samples=5, duration_ms=5, billed_ms=5, p50_ms=5, p95_ms=5,
                   cost_per_invocation=1e-6)
    assert find_cheapest([a, b]).memory_mb == 256
    c = PowerStats(memory_mb=512, samples=5, duration_ms=5, billed_ms=5, p50_ms=5, p95_ms=5,
                   cost_per_invocation=2e-6)
    assert find_fastest([c, b]).memory_mb == 256


def test_balanced_weight_runs_from_speed_to_cost():
    assert find_balanced(CPU_BOUND, 0.0).memory_mb == find_fastest(CPU_BOUND).memory_mb
    assert find_balanced(CPU_BOUND, 1.0).memory_mb == find_cheapest(CPU_BOUND).memory_mb
    # Worked by hand for weight 0.5: the largest cost is 3008 MB's, the longest time 128 MB's.
    max_cost = CPU_BOUND[-1].cost_per_invocation
    for s in CPU_BOUND:
        expected = 0.5 * s.cost_per_invocation / max_cost + 0.5 * s.billed_ms / 2000
        assert balanced_score(s, CPU_BOUND) == pytest.approx(expected)
    scores = {s.memory_mb: balanced_score(s, CPU_BOUND) for s in CPU_BOUND}
    assert find_balanced(CPU_BOUND).memory_mb == min(scores, key=scores.get)
    with pytest.raises(ValueError, match="between 0 \\(speed\\) and 1 \\(cost\\)"):
        find_balanced(CPU_BOUND, 1.5)


def test_result_sorts_sizes_and_refuses_duplicates_or_nothing():
    result = TuningResult("f", tuple(reversed(CPU_BOUND)))
    assert result.memory_sizes == [128, 256, 512, 1024, 1769, 3008]
    assert result.picks == {"cost": 1024, "speed": 1769, "balanced": find_balanced(CPU_BOUND).memory_mb}
    assert result.stat(512).billed_ms == 500
    with pytest.raises(KeyError, match="640 MB was not measured"):
        result.stat(640)
    with pytest.raises(ValueError, match="distinct"):
        TuningResult("f", (stat(128, 10), stat(128, 12)))
    with pytest.raises(ValueError, match="no memory sizes"):
        TuningResult("f", ())
    with pytest.raises(ValueError, match="memory_mb 64"):
        stat(64, 10)
    rows = result.table()
    assert [r["memory MB"] for r in rows] == result.memory_sizes
    assert rows[3]["picked by"].startswith("cost")
    assert "1024 MB" in str(result)


# --- real runs ----------------------------------------------------------------------------------

SMALL_JOB = FunctionConfig(name="resize", code_dir=RESIZE, handler="resize.lambda_handler", timeout_s=30,
                           environment={"IMAGE_SIZE": "400x300"})


@pytest.fixture(scope="module")
def measured():
    """One real run at three sizes, and the runtime's own records of it."""
    with LocalRuntime(cpu_limit=True) as rt:
        rt.deploy(SMALL_JOB)
        result = power_tune(rt, SMALL_JOB, {"max_size": [100, 100]}, power_values=(1769, 128, 512), num=5)
        yield result, rt.records("resize"), rt.get("resize"), rt.cpu.mechanism


def test_a_real_run_measures_every_size_from_the_runtimes_records(measured):
    result, records, _, mechanism = measured
    assert result.memory_sizes == [128, 512, 1769] and result.num == 5
    assert result.cpu_mechanism == mechanism != "off"
    for s in result.stats:
        runs = [inv for inv in records if inv.memory_mb == s.memory_mb]
        assert len(runs) == 6 and runs[0].cold  # one warm-up, then the measured five
        measured_runs = runs[1:]
        assert all(inv.ok and not inv.cold for inv in measured_runs) and s.cold_starts == 0
        assert measured_runs[0].result["thumbnail"] == [100, 75]
        assert s.durations_ms == tuple(inv.duration_ms for inv in measured_runs)
        assert s.billed_samples_ms == tuple(inv.billed_ms for inv in measured_runs)
        assert s.duration_ms == pytest.approx(trimmed_mean(inv.duration_ms for inv in measured_runs))
        assert s.p95_ms == pytest.approx(float(np.percentile([inv.duration_ms for inv in measured_runs], 95)))
        assert s.cost_per_invocation == pytest.approx(trimmed_mean(price(inv) for inv in measured_runs))


def test_a_real_runs_picks_agree_with_its_measured_table(measured):
    result = measured[0]
    by_cost = min(result.stats, key=lambda s: (s.cost_per_invocation, s.billed_ms))
    by_speed = min(result.stats, key=lambda s: (s.billed_ms, s.cost_per_invocation))
    max_cost = max(s.cost_per_invocation for s in result.stats)
    max_time = max(s.billed_ms for s in result.stats)
    by_balance = min(result.stats, key=lambda s: (0.5 * s.cost_per_invocation / max_cost
                                                  + 0.5 * s.billed_ms / max_time, s.memory_mb))
    assert result.picks == {"cost": by_cost.memory_mb, "speed": by_speed.memory_mb,
                            "balanced": by_balance.memory_mb}
    # Each size's cost is Lambda's price for its mean billed time (price is linear in time).
    for s in result.stats:
        assert s.cost_per_invocation == pytest.approx(
            s.memory_mb / 1024 * s.billed_ms / 1000 * X86 + PRICE_PER_REQUEST)


def test_a_real_run_restores_the_original_configuration(measured):
    _, _, config, _ = measured
    assert config == SMALL_JOB


def test_the_chart_draws_the_measured_numbers(measured):
    result = measured[0]
    duration_ax, cost_ax = plot(result)
    assert list(duration_ax.get_lines()[0].get_ydata()) == [s.billed_ms for s in result.stats]
    assert list(cost_ax.get_lines()[0].get_ydata()) == [s.cost_per_million for s in result.stats]
    assert [t.get_text() for t in duration_ax.get_xticklabels()] == ["128", "512", "1769"]
    labels = " ".join(t.get_text() for t in duration_ax.texts)
    assert all(strategy in labels for strategy in ("cost", "speed", "balanced"))
    ax = plot_samples(result)
    dots = [coll for coll in ax.collections if isinstance(coll, PathCollection)]
    plotted = sorted(y for coll in dots for _, y in coll.get_offsets())
    assert plotted == sorted(d for s in result.stats for d in s.durations_ms)
    matplotlib.pyplot.close("all")


def test_a_failing_function_stops_the_run_and_is_restored():
    config = FunctionConfig(name="fails", code_dir=HANDLERS, handler="basic.fail", timeout_s=5)
    with LocalRuntime(cpu_limit=False) as rt:
        rt.deploy(config)
        with pytest.raises(PowerTuningError, match=r"fails failed warming up at 256 MB: ValueError: bad input"):
            power_tune(rt, config, {}, power_values=(256, 512), num=3)
        assert rt.get("fails") == config
        with pytest.raises(PowerTuningError, match=r"failed at 256 MB: ValueError"):
            power_tune(rt, config, {}, power_values=(256,), num=2, warmups=0)


@pytest.mark.parametrize("kwargs, message", [
    ({"num": 0}, "num 0 must be a positive integer"),
    ({"power_values": ()}, "power_values is empty"),
    ({"power_values": (128, 64)}, "memory size 64"),
    ({"power_values": (128, 128)}, "repeated"),
    ({"discard_top_bottom": 0.45}, "between 0 and 0.4"),
    ({"balanced_weight": -1}, "balanced_weight -1"),
    ({"warmups": -1}, "warmups -1"),
])
def test_power_tune_rejects_bad_settings_before_running(kwargs, message):
    with LocalRuntime(cpu_limit=False) as rt:
        with pytest.raises(ValueError, match=message):
            power_tune(rt, SMALL_JOB, {}, **kwargs)
        assert rt.records() == []


# --- on either target: the Lambda API and the log tail -------------------------------------------


def test_the_report_is_read_from_the_log_tail_as_power_tuning_reads_it():
    """Invoke with LogType=Tail returns the last 4 KB of the log, base64-encoded, in LogResult
    (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html); an X-Ray part may follow the fields."""
    import base64

    report = Report("req-1", 41.5, 42, 512, 60)
    tail = f"START RequestId: req-1 Version: $LATEST\nhello\nEND RequestId: req-1\n{report}XRAY TraceId: 1-abc\n"
    assert tail_report({"LogResult": base64.b64encode(tail.encode()).decode()}) == report
    with pytest.raises(PowerTuningError, match="no REPORT line"):
        tail_report({"LogResult": base64.b64encode(b"START RequestId: x\n").decode()})


def test_summarise_reports_prices_each_line_at_the_meters_rates():
    reports = [Report(f"r{n}", d, math.ceil(d), 1024, 50, init_ms=300.0 if n == 0 else None)
               for n, d in enumerate((10.2, 20.0, 30.0, 40.0, 1000.0))]
    stats = summarise_reports(1024, reports)
    assert stats.billed_ms == pytest.approx((20 + 30 + 40) / 3)  # 11 and 1000 trimmed
    assert stats.cost_per_invocation == pytest.approx(1.0 * (20 + 30 + 40) / 3 / 1000 * X86 + PRICE_PER_REQUEST)
    assert stats.cold_starts == 1
    with pytest.raises(PowerTuningError, match="ran at 1024 MB, not 512 MB"):
        summarise_reports(512, reports)
