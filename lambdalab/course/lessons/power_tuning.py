"""AWS Lambda Power Tuning, run locally: one function measured at several memory sizes.

For each memory size the function is re-deployed at that size (the runtime ties its CPU share
to memory: 1,769 MB = 1 vCPU), warmed up, then invoked `num` times in series with the same
payload. Durations are read from each invocation's REPORT line, as Power Tuning reads them from
the log tail; the duration of a size is the trimmed mean of Billed Duration (the fastest and
slowest `discard_top_bottom` fraction dropped, 20% by default, as in Power Tuning's executor),
and its cost is what `lambdalab.runtime.metering.price` charges for those invocations (duration at the
GB-second rate plus the request charge). Three picks follow Power Tuning's analyzer: "cost"
(cheapest; ties go to the faster), "speed" (fastest; ties go to the cheaper) and "balanced"
(least `w * cost / max cost + (1 - w) * duration / max duration`, `w = balanced_weight`).

Each size's p50 and p95 of Duration are the course's own addition (Power Tuning's analyzer
uses only the trimmed mean): they use the course's one percentile, linear interpolation as in numpy.

This module owns the measuring, the statistics, the picks, the result record and the chart. It
re-exports the runtime's CPU model (`vcpus_for`, `MB_PER_VCPU`, `PERIOD_US`) for notebook 09,
which shows how a memory size becomes a CPU share.
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lambdalab._util.stats import percentile
from lambdalab.course.target.reports import parse_report_line
from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.cpu import MB_PER_VCPU, PERIOD_US, vcpus_for
from lambdalab.runtime.errors import LambdaLabError
from lambdalab.runtime.metering import price, projected_cost
from lambdalab.runtime.records import Invocation, Report

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lambdalab.runtime.service import LocalRuntime

DEFAULT_POWER_VALUES = (128, 256, 512, 1024, 1769, 3008)
DISCARD_TOP_BOTTOM = 0.2  # Power Tuning's default `discardTopBottom`
MAX_DISCARD_TOP_BOTTOM = 0.4  # the most Power Tuning lets you discard from each end
BALANCED_WEIGHT = 0.5  # Power Tuning's default `balancedWeight` (0 = speed, 1 = cost)
STRATEGIES = ("cost", "speed", "balanced")


class PowerTuningError(LambdaLabError):
    """A power-tuning run could not measure a memory size (an invocation failed, or no REPORT)."""


# --- statistics on plain numbers -------------------------------------------------------------


def trimmed_mean(values: Iterable[float], discard_top_bottom: float = DISCARD_TOP_BOTTOM) -> float:
    """The mean after dropping `int(n * discard_top_bottom)` values from each end, as Power Tuning
    does: with 10 values and 0.2, the 2 fastest and the 2 slowest go."""
    data = sorted(values)
    if not data:
        raise ValueError("trimmed_mean needs at least one value")
    _check_discard(discard_top_bottom)
    drop = int(len(data) * discard_top_bottom)
    kept = data[drop:len(data) - drop]
    return math.fsum(kept) / len(kept)


def _check_discard(discard_top_bottom: float) -> None:
    if not 0 <= discard_top_bottom <= MAX_DISCARD_TOP_BOTTOM:
        raise ValueError(f"discard_top_bottom {discard_top_bottom!r} must be between 0 and "
                         f"{MAX_DISCARD_TOP_BOTTOM} (the fraction dropped from each end)")


# --- one memory size -------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerStats:
    """What one memory size measured. `billed_ms` (trimmed mean Billed Duration) is the duration
    the picks and the chart use; `p95_ms` is over every measured Duration, untrimmed."""

    memory_mb: int
    samples: int
    duration_ms: float  # trimmed mean of Duration
    billed_ms: float  # trimmed mean of Billed Duration
    p50_ms: float  # of Duration, untrimmed
    p95_ms: float  # of Duration, untrimmed
    cost_per_invocation: float  # dollars, trimmed mean of each invocation's price
    cold_starts: int = 0  # measured invocations that were cold (0 after a warm-up)
    durations_ms: tuple[float, ...] = field(default=(), repr=False)  # every measured Duration
    billed_samples_ms: tuple[int, ...] = field(default=(), repr=False)  # every measured Billed Duration

    def __post_init__(self) -> None:
        if not isinstance(self.memory_mb, int) or not 128 <= self.memory_mb <= 10240:
            raise ValueError(f"memory_mb {self.memory_mb!r} must be an integer in 128-10240")
        for name in ("duration_ms", "billed_ms", "p50_ms", "p95_ms", "cost_per_invocation"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} {value!r} of {self.memory_mb} MB must be a finite number >= 0")
        if self.samples < 1:
            raise ValueError(f"samples {self.samples!r} of {self.memory_mb} MB must be >= 1")

    @property
    def cost_per_million(self) -> float:
        """Dollars per million invocations."""
        return self.cost_per_invocation * 1_000_000

    @property
    def vcpus(self) -> float:
        """Lambda's CPU share at this memory size."""
        return vcpus_for(self.memory_mb)


def report_of(inv: Invocation) -> Report:
    """The invocation's REPORT line, parsed from its log (where Power Tuning reads it)."""
    for line in reversed(inv.log_lines):
        if line.startswith("REPORT "):
            return Report.parse(line)
    raise PowerTuningError(f"invocation {inv.request_id} of {inv.function_name} has no REPORT line in its log")


def summarise(memory_mb: int, invocations: Sequence[Invocation],
              discard_top_bottom: float = DISCARD_TOP_BOTTOM) -> PowerStats:
    """The statistics of one memory size from its measured invocations (all must have succeeded)."""
    for inv in invocations:
        if not inv.ok:
            raise PowerTuningError(f"{inv.function_name} failed at {memory_mb} MB: {inv.error_type}: "
                                   f"{(inv.error or {}).get('errorMessage', '')}")
    # price() grows with billed time at a fixed memory size, so trimming prices drops the same
    # invocations as trimming billed durations.
    return summarise_reports(memory_mb, [report_of(inv) for inv in invocations], discard_top_bottom,
                             prices=[price(inv) for inv in invocations])


def report_price(report: Report, architecture: str = "x86_64") -> float:
    """Dollars for the invocation a REPORT line describes, at the meter's rates (no free tier)."""
    return projected_cost(1.0, max(report.billed_ms, 1), report.memory_mb, architecture, 1.0)


def summarise_reports(memory_mb: int, reports: Sequence[Report], discard_top_bottom: float = DISCARD_TOP_BOTTOM,
                      *, prices: Sequence[float] | None = None, architecture: str = "x86_64") -> PowerStats:
    """The statistics of one memory size from its REPORT lines (on either target, where only the
    logs tell); `prices` default to each line's Billed Duration at the meter's rates."""
    if not reports:
        raise ValueError(f"no invocations measured at {memory_mb} MB")
    for report in reports:
        if report.memory_mb != memory_mb:
            raise PowerTuningError(f"invocation {report.request_id} ran at {report.memory_mb} MB, not {memory_mb} MB")
    durations = [r.duration_ms for r in reports]
    billed = [r.billed_ms for r in reports]
    prices = list(prices) if prices is not None else [report_price(r, architecture) for r in reports]
    return PowerStats(
        memory_mb=memory_mb, samples=len(reports),
        duration_ms=trimmed_mean(durations, discard_top_bottom),
        billed_ms=trimmed_mean(billed, discard_top_bottom),
        p50_ms=percentile(durations, 50), p95_ms=percentile(durations, 95),
        cost_per_invocation=trimmed_mean(prices, discard_top_bottom),
        cold_starts=sum(r.init_ms is not None for r in reports),
        durations_ms=tuple(durations), billed_samples_ms=tuple(billed))


# --- the picks -------------------------------------------------------------------------------


def find_cheapest(stats: Sequence[PowerStats]) -> PowerStats:
    """Power Tuning's "cost" strategy: least cost; equal costs go to the faster, then the smaller."""
    _check_stats(stats)
    return min(stats, key=lambda s: (s.cost_per_invocation, s.billed_ms, s.memory_mb))


def find_fastest(stats: Sequence[PowerStats]) -> PowerStats:
    """Power Tuning's "speed" strategy: least duration; equal durations go to the cheaper, then the smaller."""
    _check_stats(stats)
    return min(stats, key=lambda s: (s.billed_ms, s.cost_per_invocation, s.memory_mb))


def balanced_score(stat: PowerStats, stats: Sequence[PowerStats], weight: float = BALANCED_WEIGHT) -> float:
    """Power Tuning's balanced value (smaller is better): cost and duration, each as a fraction of
    the largest measured, mixed by `weight` (1 = only cost, 0 = only duration)."""
    _check_stats(stats)
    _check_weight(weight)
    max_cost = max(s.cost_per_invocation for s in stats)
    max_duration = max(s.billed_ms for s in stats)
    cost_part = stat.cost_per_invocation / max_cost if max_cost else 0.0
    duration_part = stat.billed_ms / max_duration if max_duration else 0.0
    return weight * cost_part + (1 - weight) * duration_part


def find_balanced(stats: Sequence[PowerStats], weight: float = BALANCED_WEIGHT) -> PowerStats:
    """Power Tuning's "balanced" strategy: the least `balanced_score`; ties go to the smaller size."""
    _check_stats(stats)
    _check_weight(weight)
    return min(stats, key=lambda s: (balanced_score(s, stats, weight), s.memory_mb))


def _check_stats(stats: Sequence[PowerStats]) -> None:
    if not stats:
        raise ValueError("no memory sizes measured")


def _check_weight(weight: float) -> None:
    if not 0 <= weight <= 1:
        raise ValueError(f"balanced_weight {weight!r} must be between 0 (speed) and 1 (cost)")


# --- the result of a run ---------------------------------------------------------------------


@dataclass(frozen=True)
class TuningResult:
    """Every memory size measured in one run, smallest first, and the three picks."""

    function_name: str
    stats: tuple[PowerStats, ...]
    num: int = 0  # invocations measured per memory size
    payload: Any = None
    discard_top_bottom: float = DISCARD_TOP_BOTTOM
    balanced_weight: float = BALANCED_WEIGHT
    cpu_mechanism: str = "off"  # how the runtime enforced the CPU share: cgroup, duty or off

    def __post_init__(self) -> None:
        stats = tuple(sorted(self.stats, key=lambda s: s.memory_mb))
        _check_stats(stats)
        sizes = [s.memory_mb for s in stats]
        if len(set(sizes)) != len(sizes):
            raise ValueError(f"memory sizes must be distinct, got {sizes}")
        _check_discard(self.discard_top_bottom)
        _check_weight(self.balanced_weight)
        object.__setattr__(self, "stats", stats)

    @property
    def memory_sizes(self) -> list[int]:
        return [s.memory_mb for s in self.stats]

    def stat(self, memory_mb: int) -> PowerStats:
        for s in self.stats:
            if s.memory_mb == memory_mb:
                return s
        raise KeyError(f"{memory_mb} MB was not measured; measured {self.memory_sizes}")

    @property
    def cheapest(self) -> PowerStats:
        return find_cheapest(self.stats)

    @property
    def fastest(self) -> PowerStats:
        return find_fastest(self.stats)

    @property
    def balanced(self) -> PowerStats:
        return find_balanced(self.stats, self.balanced_weight)

    @property
    def picks(self) -> dict[str, int]:
        """Strategy ("cost", "speed", "balanced") -> the memory size it picks."""
        return {"cost": self.cheapest.memory_mb, "speed": self.fastest.memory_mb,
                "balanced": self.balanced.memory_mb}

    def table(self) -> list[dict[str, Any]]:
        """One row per memory size: what was measured, what it costs, and which strategy picks it."""
        picks = self.picks
        return [{"memory MB": s.memory_mb, "vCPU": round(s.vcpus, 2), "samples": s.samples,
                 "duration ms": s.duration_ms, "billed ms": s.billed_ms, "p50 ms": s.p50_ms,
                 "p95 ms": s.p95_ms, "$ per invocation": s.cost_per_invocation,
                 "$ per million": s.cost_per_million,
                 "picked by": ", ".join(k for k, v in picks.items() if v == s.memory_mb)}
                for s in self.stats]

    def __str__(self) -> str:
        header = ["memory", "vCPU", "n", "duration", "billed", "p95", "$/million", "picked by"]
        rows = [[f"{r['memory MB']} MB", f"{r['vCPU']:.2f}", str(r["samples"]), f"{r['duration ms']:.1f} ms",
                 f"{r['billed ms']:.1f} ms", f"{r['p95 ms']:.1f} ms", f"${r['$ per million']:.4f}",
                 r["picked by"]] for r in self.table()]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines = [[c.ljust(w) if i in (0, len(header) - 1) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
                 for row in [header, *rows]]
        note = (f"{self.function_name}: {self.num} warm invocations per size, trimmed means drop "
                f"{self.discard_top_bottom:.0%} at each end; balanced weight {self.balanced_weight}")
        return note + "\n" + "\n".join("  ".join(line).rstrip() for line in lines)


# --- running it ------------------------------------------------------------------------------


def _check_power_values(power_values: Sequence[int]) -> list[int]:
    values = list(power_values)
    if not values:
        raise ValueError("power_values is empty: give at least one memory size")
    for value in values:
        if not isinstance(value, int) or not 128 <= value <= 10240:
            raise ValueError(f"memory size {value!r} must be an integer in 128-10240 MB")
    if len(set(values)) != len(values):
        raise ValueError(f"power_values has repeated sizes: {values}")
    return sorted(values)


def power_tune(runtime: "LocalRuntime", config: FunctionConfig, payload: Any = None, *,
               power_values: Sequence[int] = DEFAULT_POWER_VALUES, num: int = 10, warmups: int = 1,
               discard_top_bottom: float = DISCARD_TOP_BOTTOM, balanced_weight: float = BALANCED_WEIGHT,
               progress: bool = False) -> TuningResult:
    """Measure `config`'s function at each memory size in `power_values` and return the result.

    At each size the function is re-deployed (fresh environments with that CPU share), invoked
    `warmups` times so the measured invocations are warm, then `num` times in series with
    `payload`. Any failed invocation stops the run with PowerTuningError, as it stops Power
    Tuning. At the end the function is re-deployed with its original configuration.
    """
    sizes = _check_power_values(power_values)
    if not isinstance(num, int) or num < 1:
        raise ValueError(f"num {num!r} must be a positive integer (Power Tuning suggests at least 5)")
    if not isinstance(warmups, int) or warmups < 0:
        raise ValueError(f"warmups {warmups!r} must be an integer >= 0")
    _check_discard(discard_top_bottom)
    _check_weight(balanced_weight)
    bar = _progress_bar(len(sizes) * (num + warmups), config.name) if progress else None
    stats = []
    try:
        for memory_mb in sizes:
            runtime.deploy(replace(config, memory_mb=memory_mb))
            for _ in range(warmups):
                warm = runtime.invoke(config.name, payload)
                if not warm.ok:
                    raise PowerTuningError(f"{config.name} failed warming up at {memory_mb} MB: "
                                           f"{warm.error_type}: {(warm.error or {}).get('errorMessage', '')}")
                _advance(bar, memory_mb)
            measured = []
            for _ in range(num):
                measured.append(runtime.invoke(config.name, payload))
                _advance(bar, memory_mb)
            stats.append(summarise(memory_mb, measured, discard_top_bottom))
    finally:
        if bar is not None:
            bar.close()
        runtime.deploy(config)
    return TuningResult(function_name=config.name, stats=tuple(stats), num=num, payload=payload,
                        discard_top_bottom=discard_top_bottom, balanced_weight=balanced_weight,
                        cpu_mechanism=runtime.cpu.mechanism)


def tail_report(answer: Mapping[str, Any]) -> Report:
    """The REPORT line in an Invoke answer's `LogResult` (LogType=Tail: the last 4 KB of the
    invocation's log, base64), where Power Tuning's executor reads it."""
    tail = base64.b64decode(answer.get("LogResult", "")).decode("utf-8", "replace")
    for line in reversed(tail.splitlines()):
        report = parse_report_line(line)
        if report is not None:
            return report
    raise PowerTuningError(f"invocation {answer.get('ResponseMetadata', {}).get('RequestId', '?')}: "
                           "no REPORT line in the log tail")


def _invoke_measured(lam: Any, function: str, body: bytes, memory_mb: int) -> Report:
    answer = lam.invoke(FunctionName=function, Payload=body, LogType="Tail")
    answer["Payload"].read()
    if answer.get("FunctionError"):
        raise PowerTuningError(f"{function} failed at {memory_mb} MB: {answer['FunctionError']}")
    return tail_report(answer)


def power_tune_function(lam: Any, function: str, payload: Any = None, *,
                        power_values: Sequence[int] = DEFAULT_POWER_VALUES, num: int = 10, warmups: int = 1,
                        discard_top_bottom: float = DISCARD_TOP_BOTTOM, balanced_weight: float = BALANCED_WEIGHT,
                        progress: bool = False, cpu_mechanism: str = "aws") -> TuningResult:
    """Power Tuning through the Lambda API, on any target: for each size `UpdateFunctionConfiguration`
    (MemorySize), wait until the update is done (new environments at that size), `warmups`
    invocations, then `num` measured ones with LogType=Tail, each read from its REPORT line.
    The function is set back to its memory size at the end."""
    sizes = _check_power_values(power_values)
    if not isinstance(num, int) or num < 1:
        raise ValueError(f"num {num!r} must be a positive integer (Power Tuning suggests at least 5)")
    _check_discard(discard_top_bottom)
    _check_weight(balanced_weight)
    original = lam.get_function_configuration(FunctionName=function)["MemorySize"]
    body = json.dumps(payload if payload is not None else {}).encode()
    bar = _progress_bar(len(sizes) * (num + warmups), function) if progress else None
    stats = []
    try:
        for memory_mb in sizes:
            _set_memory(lam, function, memory_mb)
            for _ in range(warmups):
                _invoke_measured(lam, function, body, memory_mb)
                _advance(bar, memory_mb)
            measured = []
            for _ in range(num):
                measured.append(_invoke_measured(lam, function, body, memory_mb))
                _advance(bar, memory_mb)
            stats.append(summarise_reports(memory_mb, measured, discard_top_bottom))
    finally:
        if bar is not None:
            bar.close()
        _set_memory(lam, function, original)
    return TuningResult(function_name=function, stats=tuple(stats), num=num, payload=payload,
                        discard_top_bottom=discard_top_bottom, balanced_weight=balanced_weight,
                        cpu_mechanism=cpu_mechanism)


def _set_memory(lam: Any, function: str, memory_mb: int) -> None:
    lam.update_function_configuration(FunctionName=function, MemorySize=memory_mb)
    lam.get_waiter("function_updated_v2").wait(FunctionName=function, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def _progress_bar(total: int, name: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"power-tuning {name}", unit="invocation")


def _advance(bar: Any, memory_mb: int) -> None:
    if bar is not None:
        bar.set_postfix_str(f"{memory_mb} MB", refresh=False)
        bar.update()


def local_cores(memory_mb: int) -> float:
    """The cores a worker can really use here: Lambda's share, capped at this machine's cores."""
    return min(vcpus_for(memory_mb), float(os.cpu_count() or 1))


# --- charts ----------------------------------------------------------------------------------

_PICK_MARKERS = {"cost": "$", "speed": "⚡", "balanced": "⚖"}


def plot(result: TuningResult, ax: "Axes | None" = None) -> tuple["Axes", "Axes"]:
    """Power Tuning's chart: trimmed mean duration (left axis) and cost per million invocations
    (right axis) for each memory size, with the picks labelled. Returns (duration axis, cost axis)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4.5))
    x = list(range(len(result.stats)))
    durations = [s.billed_ms for s in result.stats]
    costs = [s.cost_per_million for s in result.stats]
    ax.plot(x, durations, "o-", color="tab:red", label="duration (trimmed mean Billed Duration)")
    ax.set_xticks(x, [f"{s.memory_mb}" for s in result.stats])
    ax.set_xlabel("memory (MB)")
    ax.set_ylabel("duration (ms)", color="tab:red")
    ax.tick_params(axis="y", colors="tab:red")
    ax.set_ylim(bottom=0)
    cost_ax = ax.twinx()
    cost_ax.plot(x, costs, "s-", color="tab:blue", label="cost per million invocations")
    cost_ax.set_ylabel("$ per million invocations", color="tab:blue")
    cost_ax.tick_params(axis="y", colors="tab:blue")
    cost_ax.set_ylim(bottom=0)
    index = {s.memory_mb: i for i, s in enumerate(result.stats)}
    labels: dict[int, list[str]] = {}
    for strategy, memory_mb in result.picks.items():
        labels.setdefault(memory_mb, []).append(strategy)
    for memory_mb, names in labels.items():
        i = index[memory_mb]
        ax.annotate(" + ".join(names), (i, durations[i]), textcoords="offset points", xytext=(0, 12),
                    ha="center", fontsize=9, fontweight="bold")
    lines = ax.get_lines() + cost_ax.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="upper center", fontsize=9)
    ax.set_title(f"Power tuning {result.function_name}: {result.num} warm invocations per size")
    return ax, cost_ax


def plot_samples(result: TuningResult, ax: "Axes | None" = None) -> "Axes":
    """Every measured Duration per memory size (log scale): filled dots are the invocations the
    trimmed mean keeps, hollow ones the fastest and slowest it drops; a bar marks the p95."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4))
    for i, s in enumerate(result.stats):
        data = sorted(s.durations_ms)
        drop = int(len(data) * result.discard_top_bottom)
        # Spread the dots sideways in rank order so equal durations stay visible.
        xs = [i - 0.25 + 0.5 * rank / max(1, len(data) - 1) for rank in range(len(data))]
        kept = range(drop, len(data) - drop)
        dropped = [rank for rank in range(len(data)) if rank not in kept]
        ax.scatter([xs[r] for r in kept], [data[r] for r in kept], s=18, color="tab:red", alpha=0.8,
                   label="kept" if i == 0 else None)
        ax.scatter([xs[r] for r in dropped], [data[r] for r in dropped], s=18, facecolors="none",
                   edgecolors="tab:red", label="dropped (fastest/slowest)" if i == 0 and dropped else None)
        ax.hlines(s.p95_ms, i - 0.3, i + 0.3, color="black", linewidth=1.5, label="p95" if i == 0 else None)
    ax.set_xticks(range(len(result.stats)), [str(s.memory_mb) for s in result.stats])
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 10, 20, 50, 100, ... ms
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("memory (MB)")
    ax.set_ylabel("Duration (ms, log scale)")
    ax.legend(fontsize=9)
    ax.set_title("Every measured invocation")
    return ax


__all__ = ["BALANCED_WEIGHT", "DEFAULT_POWER_VALUES", "DISCARD_TOP_BOTTOM", "MB_PER_VCPU", "PERIOD_US", "PowerStats",
           "PowerTuningError", "TuningResult", "balanced_score", "find_balanced", "find_cheapest", "find_fastest",
           "local_cores", "plot", "plot_samples", "power_tune", "power_tune_function", "report_price", "summarise",
           "summarise_reports", "tail_report", "trimmed_mean", "vcpus_for"]
