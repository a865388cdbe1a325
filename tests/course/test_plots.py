"""The shared plots: timeline geometry, concurrency steps and percentiles exactly, drawings by
what they put on the Axes, and one timeline from a real runtime run."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from lambdalab.course import plots  # noqa: E402
from lambdalab.course.plots import Span  # noqa: E402
from lambdalab.runtime.config import FunctionConfig  # noqa: E402
from lambdalab.runtime.records import Invocation  # noqa: E402
from lambdalab.runtime.service import LocalRuntime  # noqa: E402

HANDLERS = Path(__file__).resolve().parents[1] / "handlers"
T = 1_800_000_000.0  # an arbitrary epoch second


def inv(env: str, start: float, end: float, *, cold: bool = False, init_ms: float | None = None,
        restore_ms: float | None = None, error: dict | None = None, status: str | None = None,
        rid: str | None = None, duration_ms: float | None = None) -> Invocation:
    """An Invocation as the runtime records it, at times relative to T."""
    return Invocation(request_id=rid or f"{env}-{start}", function_name="f", event={},
                      invocation_type="RequestResponse",
                      memory_mb=128, environment_id=env, cold=cold, started_at=T + start, ended_at=T + end,
                      init_ms=init_ms, restore_ms=restore_ms, error=error, status=status,
                      duration_ms=(end - start) * 1000 if duration_ms is None else duration_ms)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def rounded(spans: list[Span]) -> list[tuple[float, float, str]]:
    return [(round(s.start, 6), round(s.end, 6), s.kind) for s in spans]


# -- timeline geometry ---------------------------------------------------------------------------

def test_lanes_have_init_invocations_and_frozen_gaps():
    records = [
        inv("bbbbbbbb", 0.5, 0.7, cold=True, init_ms=300),     # second environment, INIT 0.2-0.5
        inv("aaaaaaaa", 0.2, 0.3, cold=True, init_ms=200),     # first environment, INIT 0.0-0.2
        inv("aaaaaaaa", 1.0, 1.1),                             # warm: frozen 0.3-1.0 before it
    ]
    a, b = plots.environment_lanes(records)
    assert (a.environment_id, a.label, a.invocations) == ("aaaaaaaa", "env 1 · aaaaaa", 2)
    assert rounded(a.spans) == [(0.0, 0.2, "init"), (0.2, 0.3, "invoke"), (0.3, 1.0, "frozen"), (1.0, 1.1, "invoke")]
    # b ends at 0.7 and stays frozen until the last event anywhere ends (1.1)
    assert (b.label, b.invocations) == ("env 2 · bbbbbb", 1)
    assert rounded(b.spans) == [(0.2, 0.5, "init"), (0.5, 0.7, "invoke"), (0.7, 1.1, "frozen")]
    assert [s.request_id for s in a.spans if s.kind == "invoke"] == ["aaaaaaaa-0.2", "aaaaaaaa-1.0"]


def test_lanes_origin_until_and_no_trailing_frozen():
    records = [inv("e", 0.0, 0.1, cold=True, init_ms=100)]
    (lane,) = plots.environment_lanes(records, origin=T - 1.0, until=T + 2.0)
    assert rounded(lane.spans) == [(0.9, 1.0, "init"), (1.0, 1.1, "invoke"), (1.1, 3.0, "frozen")]
    (lane,) = plots.environment_lanes(records, until=T + 2.0, trailing_frozen=False)
    assert [s.kind for s in lane.spans] == ["init", "invoke"]


def test_lanes_stop_for_environments_that_are_gone():
    records = [inv("old", 0.0, 0.1, cold=True, init_ms=100), inv("new", 0.5, 0.6, cold=True, init_ms=100),
               inv("new", 0.9, 1.0)]
    old, new = plots.environment_lanes(records, alive=["new"])
    assert [s.kind for s in old.spans] == ["init", "invoke"]  # retired: its row ends with its last call
    assert [s.kind for s in new.spans] == ["init", "invoke", "frozen", "invoke"]
    old, _ = plots.environment_lanes(records, alive=[])
    assert [s.kind for s in old.spans] == ["init", "invoke"]
    with pytest.raises(TypeError, match="not one string"):
        plots.environment_lanes(records, alive="new")
    old, _ = plots.environment_lanes(records)  # without `alive`, every environment is assumed alive
    assert [s.kind for s in old.spans] == ["init", "invoke", "frozen"]


def test_lanes_mark_errors_timeouts_restores_and_discarded_environments():
    handled = {"errorType": "ValueError", "errorMessage": "bad"}
    crashed = {"errorType": "Runtime.ExitError", "errorMessage": "killed"}
    timeout = {"errorType": "Sandbox.Timedout", "errorMessage": "late"}
    records = [
        inv("a", 0.0, 0.1, cold=True, restore_ms=50, error=handled),  # a handler error keeps the environment
        inv("b", 0.0, 0.2, cold=True, init_ms=10, error=timeout, status="timeout"),
        inv("c", 0.0, 0.3, cold=True, init_ms=10, error=crashed, status="error"),
        inv("d", 0.0, 1.0),  # provisioned: no INIT bar, sets the end of the timeline
    ]
    lanes = {lane.environment_id: lane for lane in plots.environment_lanes(records)}
    assert [s.kind for s in lanes["a"].spans] == ["restore", "error", "frozen"]
    assert [s.kind for s in lanes["b"].spans] == ["init", "timeout"]  # discarded: never frozen
    assert [s.kind for s in lanes["c"].spans] == ["init", "error"]
    assert [s.kind for s in lanes["d"].spans] == ["invoke"]
    assert lanes["a"].spans[0].width == pytest.approx(0.05)


def test_lanes_refuse_bad_input():
    with pytest.raises(ValueError, match="no invocations to plot"):
        plots.environment_lanes([])
    with pytest.raises(TypeError, match="expected lambdalab.runtime.records.Invocation records, got dict"):
        plots.environment_lanes([{"environment_id": "x"}])


# -- concurrency and groups -------------------------------------------------------------------------

def test_concurrency_steps_count_overlaps_and_back_to_back_calls():
    records = [
        inv("a", 0.1, 0.5, cold=True, init_ms=100),  # busy from 0.0 with its INIT
        inv("b", 0.2, 0.4),
        inv("a", 0.5, 0.6),  # starts when the first one ends: not concurrent with it
    ]
    steps = plots.concurrency_steps(records)
    assert [n for _, n in steps] == [1, 2, 1, 1, 0]
    assert [t for t, _ in steps] == pytest.approx([0.0, 0.2, 0.4, 0.5, 0.6], abs=1e-6)
    steps = plots.concurrency_steps(records, include_init=False)
    assert [n for _, n in steps] == [1, 2, 1, 1, 0] and steps[0][0] == pytest.approx(0.0, abs=1e-6)
    assert steps[1][0] == pytest.approx(0.1, abs=1e-6)


def test_duration_groups_refuse_an_unknown_metric():
    with pytest.raises(ValueError, match="metric 'latency' is not one of"):
        plots.duration_groups([inv("a", 0, 1)], metric="latency")
    with pytest.raises(ValueError, match="every group is empty"):
        plots.duration_groups({"a": []})
    with pytest.raises(ValueError, match="no invocation has a init_ms"):
        plots.duration_groups([inv("a", 0, 1)], metric="init_ms", split_cold=False)


def test_duration_groups_split_cold_and_warm_or_take_named_groups():
    records = [inv("a", 0, 0.5, cold=True, init_ms=80), inv("a", 1, 1.01), inv("a", 2, 2.02)]
    assert plots.duration_groups(records) == {"cold": [500.0], "warm": pytest.approx([10.0, 20.0])}
    assert plots.duration_groups(records, metric="init_ms") == {"cold": [80.0], "warm": []}
    assert plots.duration_groups(records, metric=lambda r: r.memory_mb, split_cold=False) == {"all": [128, 128, 128]}
    assert plots.duration_groups({"128 MB": [3, 1], "1024 MB": (2,)}) == {"128 MB": [3.0, 1.0], "1024 MB": [2.0]}


# -- drawings ----------------------------------------------------------------------------------------

def bar_collections(ax) -> list:
    return [c for c in ax.collections if c.get_paths()]


def test_timeline_draws_one_row_per_environment_with_a_legend_of_what_is_there():
    records = [inv("aaaaaaaa", 0.2, 0.3, cold=True, init_ms=200), inv("aaaaaaaa", 1.0, 1.1),
               inv("bbbbbbbb", 0.5, 0.7, cold=True, init_ms=300)]
    ax = plots.environment_timeline(records)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["env 1 · aaaaaa", "env 2 · bbbbbb"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["INIT (cold start)", "invocation", "frozen (idle)"]
    assert ax.get_xlabel() == "milliseconds since the first event"  # 1.1 s: short enough for ms
    # init, invoke and frozen bars for env 1; init, invoke, frozen for env 2
    assert sum(len(c.get_paths()) for c in bar_collections(ax)) == 7
    assert ax.get_ylim() == (1.5, -0.5)  # first environment on top


def test_timeline_caps_lanes_and_uses_seconds_for_long_runs():
    records = [inv(f"env{i:05d}", i * 1.0, i * 1.0 + 0.5, cold=True, init_ms=100) for i in range(5)]
    fig, ax = plt.subplots()
    assert plots.environment_timeline(records, ax, max_lanes=3, title="Burst") is ax
    assert len(ax.get_yticklabels()) == 3
    assert ax.get_title() == "Burst (first 3 of 5 environments)"
    assert ax.get_xlabel() == "seconds since the first event"
    with pytest.raises(ValueError, match="max_lanes must be >= 1"):
        plots.environment_timeline(records, max_lanes=0)


def test_histogram_legend_reports_count_median_and_p95():
    records = [inv("a", 0, 0.4, cold=True, init_ms=90)] + [inv("a", i, i + 1, duration_ms=10.0 + i)
                                                           for i in range(1, 22)]
    ax = plots.duration_histogram(records, bins=10, title="Durations")
    cold, warm = [t.get_text() for t in ax.get_legend().get_texts()]
    assert cold == "cold: n=1, median 400.0 ms, p95 400.0 ms"
    assert warm == "warm: n=21, median 21.0 ms, p95 30.0 ms"
    assert ax.get_xlabel() == "duration (ms)" and ax.get_title() == "Durations"
    ax = plots.duration_histogram({"128 MB": [100, 120, 140], "1024 MB": [20, 25]}, log=True, bins=5)
    assert [t.get_text().split(":")[0] for t in ax.get_legend().get_texts()] == ["128 MB", "1024 MB"]
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "count"
    with pytest.raises(ValueError, match="log bins need positive values"):
        plots.duration_histogram({"x": [0, 1]}, log=True)


def test_init_plus_duration_is_what_a_cold_request_took():
    records = [inv("a", 0, 0.4, cold=True, init_ms=90), inv("a", 1, 1.01)]
    groups = plots.duration_groups(records, metric="init_plus_duration_ms")
    assert groups["cold"] == pytest.approx([490.0]) and groups["warm"] == pytest.approx([10.0])


def test_init_and_duration_bars_stack_init_before_the_run():
    records = [inv("a", 0, 0.4, cold=True, init_ms=90), inv("a", 1, 1.01)]
    ax = plots.init_and_duration_bars(records)
    init, run = ax.containers
    assert [b.get_width() for b in init] == pytest.approx([90, 0])
    assert [b.get_x() for b in run] == pytest.approx([90, 0])
    assert [b.get_width() for b in run] == pytest.approx([400, 10])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["call 1\ncold", "call 2\nwarm"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Init Duration", "Duration"]
    with pytest.raises(ValueError, match="no invocations to plot"):
        plots.init_and_duration_bars([])


def test_concurrency_plot_draws_the_steps_and_the_limit():
    records = [inv("a", 0.0, 1.0), inv("b", 0.5, 1.5), inv("c", 0.6, 0.8)]
    ax = plots.concurrency_plot(records, limit=10)
    (line, limit) = ax.get_lines()
    assert list(line.get_ydata()) == [1, 2, 3, 2, 1, 0]
    assert list(limit.get_ydata()) == [10, 10] and ax.get_ylim() == (0, 11)


# -- from a real run -------------------------------------------------------------------------------

def test_timeline_of_a_real_burst_then_warm_reuse():
    with LocalRuntime(cpu_limit=False) as rt:
        rt.deploy(FunctionConfig(name="burst", code_dir=HANDLERS, handler="basic.sleep"))
        with ThreadPoolExecutor(3) as pool:
            first = list(pool.map(lambda _: rt.invoke("burst", {"seconds": 0.3}), range(3)))
        time.sleep(0.1)
        again = rt.invoke("burst", {"seconds": 0})
        records = rt.records("burst")
        alive = rt.environments("burst")
    lanes = plots.environment_lanes(records)
    assert len(lanes) == 3 and all(i.cold for i in first) and not again.cold
    assert sum(lane.invocations for lane in lanes) == 4
    (reused,) = [lane for lane in lanes if lane.environment_id == again.environment_id]
    kinds = [s.kind for s in reused.spans]
    assert kinds[:2] == ["init", "invoke"] and kinds[2] == "frozen" and kinds[3] == "invoke"
    assert reused.spans[2].width >= 0.1  # the pause between the calls, spent frozen
    for lane in lanes:
        for a, b in zip(lane.spans, lane.spans[1:]):
            assert a.end <= b.start + 1e-6, f"overlapping spans in {lane.label}: {a} {b}"
    assert max(n for _, n in plots.concurrency_steps(records)) == 3
    lanes_alive = plots.environment_lanes(records, alive=alive)  # environment objects work as well as ids
    assert [lane.spans[-1].kind for lane in lanes_alive] == [lane.spans[-1].kind for lane in lanes]
    ax = plots.environment_timeline(records)
    assert len(ax.get_yticklabels()) == 3
