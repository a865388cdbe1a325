"""Plots the lessons share: execution-environment timelines, duration histograms, concurrency.

Every plot takes `Invocation` records (from `LocalRuntime.records()`, `LocalCloud.records()`,
or a list of `invoke` results), draws onto a matplotlib Axes (a new figure when none is given)
and returns that Axes, so a notebook can add titles or annotations. The geometry (which bar
goes where, how many requests were in flight when) is computed by small pure functions
(`environment_lanes`, `concurrency_steps`) that the tests check without drawing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lambdalab._util.stats import percentile
from lambdalab.runtime.records import Invocation

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# Span kinds, in legend order, with their colours (colour-blind-safe Dark2 palette, grey for frozen).
KIND_COLOURS: dict[str, str] = {
    "init": "#d95f02",
    "restore": "#7570b3",
    "invoke": "#1b9e77",
    "error": "#e7298a",
    "timeout": "#a6061c",
    "frozen": "#d9d9d9",
}
KIND_LABELS: dict[str, str] = {
    "init": "INIT (cold start)",
    "restore": "snapshot restore",
    "invoke": "invocation",
    "error": "invocation (error)",
    "timeout": "invocation (timed out)",
    "frozen": "frozen (idle)",
}
# An invocation of a millisecond is invisible on a timeline of seconds: draw every bar at
# least this fraction of the time axis wide.
_MIN_BAR_FRACTION = 0.004


@dataclass(frozen=True)
class Span:
    """One bar of a timeline lane, in seconds since the timeline's origin."""

    start: float
    end: float
    kind: str  # one of KIND_COLOURS
    request_id: str | None = None

    @property
    def width(self) -> float:
        return self.end - self.start


@dataclass
class Lane:
    """One execution environment's row: its INIT, its invocations, and its frozen gaps."""

    environment_id: str
    label: str
    spans: list[Span] = field(default_factory=list)

    @property
    def invocations(self) -> int:
        return sum(1 for s in self.spans if s.kind in ("invoke", "error", "timeout"))


def _check_invocations(invocations: Iterable[Any], what: str) -> list[Invocation]:
    records = list(invocations)
    if not records:
        raise ValueError(f"{what}: no invocations to plot (the list is empty)")
    for r in records:
        if not isinstance(r, Invocation):
            raise TypeError(f"{what}: expected lambdalab.runtime.records.Invocation records, got {type(r).__name__}")
    return records


def _warmup_s(inv: Invocation) -> float:
    """How long before the event the environment spent starting up (cold starts only)."""
    if not inv.cold:
        return 0.0
    return ((inv.restore_ms if inv.restore_ms is not None else inv.init_ms) or 0.0) / 1000


def _ends_environment(inv: Invocation) -> bool:
    """Lambda discards an environment after a timeout, a runtime crash, or a failed INIT."""
    if inv.status == "timeout":
        return True
    return inv.status == "error" and (inv.error_type or "").startswith("Runtime.")


def _invocation_kind(inv: Invocation) -> str:
    if inv.status == "timeout":
        return "timeout"
    return "invoke" if inv.ok else "error"


def environment_lanes(invocations: Iterable[Invocation], *, origin: float | None = None,
                      until: float | None = None, trailing_frozen: bool = True,
                      alive: Iterable[Any] | None = None) -> list[Lane]:
    """One `Lane` per execution environment, ordered by when each started.

    Times are seconds since `origin` (default: the earliest INIT or invocation start). Between
    two invocations of one environment it was frozen; after its last one it stays frozen until
    `until` (default: the last invocation's end), unless `trailing_frozen` is False, or the
    environment was discarded (timeout, runtime crash, failed INIT), or `alive` (the environments
    still running, e.g. `LocalRuntime.environments(name)`, or their ids) does not list it:
    records alone cannot tell that a redeploy or the reaper destroyed an environment.
    """
    if isinstance(alive, str):
        raise TypeError("environment_lanes: alive must be a collection of environments or ids, not one string")
    living = None if alive is None else {getattr(a, "id", a) for a in alive}
    records = _check_invocations(invocations, "environment_lanes")
    t0 = min(r.started_at - _warmup_s(r) for r in records) if origin is None else origin
    t_end = max(r.ended_at for r in records) if until is None else until
    by_env: dict[str, list[Invocation]] = {}
    for r in sorted(records, key=lambda r: r.started_at):
        by_env.setdefault(r.environment_id, []).append(r)
    lanes = []
    for env_id, runs in sorted(by_env.items(), key=lambda kv: kv[1][0].started_at - _warmup_s(kv[1][0])):
        spans: list[Span] = []
        for previous, inv in zip([None, *runs], runs):
            start, end = inv.started_at - t0, inv.ended_at - t0
            if inv.cold and _warmup_s(inv) > 0:
                kind = "restore" if inv.restore_ms is not None else "init"
                spans.append(Span(start - _warmup_s(inv), start, kind))
            if previous is not None and inv.started_at > previous.ended_at:
                spans.append(Span(previous.ended_at - t0, start, "frozen"))
            spans.append(Span(start, end, _invocation_kind(inv), inv.request_id))
        last = runs[-1]
        still_there = not _ends_environment(last) and (living is None or env_id in living)
        if trailing_frozen and still_there and t_end > last.ended_at:
            spans.append(Span(last.ended_at - t0, t_end - t0, "frozen"))
        lanes.append(Lane(env_id, f"env {len(lanes) + 1} · {env_id[:6]}", spans))
    return lanes


def axes_or_new(ax: "Axes | None", width: float, height: float) -> "Axes":
    """`ax` when the caller gave one, else the axes of a new figure of that size (inches)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(width, height))
    return ax


def _time_unit(total_s: float) -> tuple[float, str]:
    """Milliseconds for short timelines, seconds otherwise: (scale from seconds, axis label)."""
    return (1000.0, "milliseconds") if total_s < 2.0 else (1.0, "seconds")


def environment_timeline(invocations: Iterable[Invocation], ax: "Axes | None" = None, *,
                         title: str | None = "Execution environments over time", max_lanes: int = 30,
                         origin: float | None = None, until: float | None = None,
                         trailing_frozen: bool = True, alive: Iterable[Any] | None = None) -> "Axes":
    """One row per execution environment: INIT, invocation bars, and frozen gaps between them.

    `origin`, `until`, `trailing_frozen` and `alive` are as for `environment_lanes`. With more
    than `max_lanes` environments only the first `max_lanes` are drawn (the title says how many
    were left out). Returns the Axes.
    """
    if max_lanes < 1:
        raise ValueError(f"environment_timeline: max_lanes must be >= 1, not {max_lanes!r}")
    lanes = environment_lanes(invocations, origin=origin, until=until, trailing_frozen=trailing_frozen, alive=alive)
    shown = lanes[:max_lanes]
    ax = axes_or_new(ax, 10.0, 1.3 + 0.38 * len(shown))
    total = max((s.end for lane in shown for s in lane.spans), default=0.0)
    scale, unit = _time_unit(total)
    min_width = max(total * scale * _MIN_BAR_FRACTION, 1e-9)
    present: set[str] = set()
    for row, lane in enumerate(shown):
        for kind in KIND_COLOURS:
            bars = [(s.start * scale, max(s.width * scale, min_width)) for s in lane.spans if s.kind == kind]
            if not bars:
                continue
            present.add(kind)
            height = 0.5 if kind == "frozen" else 0.8
            ax.broken_barh(bars, (row - height / 2, height), facecolors=KIND_COLOURS[kind],
                           edgecolor="white" if kind != "frozen" else "none", linewidth=0.5)
    ax.set_yticks(range(len(shown)), [lane.label for lane in shown])
    ax.set_ylim(len(shown) - 0.5, -0.5)  # first environment on top
    ax.set_xlim(0, total * scale * 1.01 or 1)
    ax.set_xlabel(f"{unit} since the first event")
    handles = _legend_handles([k for k in KIND_COLOURS if k in present])
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")
    if title is not None:
        hidden = len(lanes) - len(shown)
        ax.set_title(title + (f" (first {len(shown)} of {len(lanes)} environments)" if hidden else ""))
    return ax


def _legend_handles(kinds: Sequence[str]) -> list[Any]:
    from matplotlib.patches import Patch

    return [Patch(facecolor=KIND_COLOURS[k], label=KIND_LABELS[k]) for k in kinds]


Metric = str | Callable[[Invocation], float]


def _metric(metric: Metric) -> tuple[Callable[[Invocation], float], str]:
    if callable(metric):
        return metric, getattr(metric, "__name__", "value")
    if metric == "init_plus_duration_ms":  # what a cold request costs in time: its INIT, then its run
        return (lambda inv: (inv.init_ms or 0.0) + inv.duration_ms), metric
    if metric not in ("duration_ms", "billed_ms", "init_ms", "max_memory_used_mb"):
        raise ValueError(f"metric {metric!r} is not one of duration_ms, billed_ms, init_ms, init_plus_duration_ms, "
                         "max_memory_used_mb (or pass a function of an Invocation)")
    return (lambda inv: getattr(inv, metric)), metric


def duration_groups(data: Iterable[Invocation] | Mapping[str, Sequence[float]], *,
                    metric: Metric = "duration_ms", split_cold: bool = True) -> dict[str, list[float]]:
    """The values a histogram compares: `data` itself when it is a mapping of label -> values,
    else the metric of each invocation, grouped into "cold" and "warm" (or "all")."""
    if isinstance(data, Mapping):
        groups = {str(k): [float(v) for v in vs] for k, vs in data.items()}
        if not any(groups.values()):
            raise ValueError("duration_groups: every group is empty")
        return groups
    records = _check_invocations(data, "duration_groups")
    value, name = _metric(metric)
    if not split_cold:
        groups = {"all": [value(r) for r in records]}
    else:
        groups = {"cold": [value(r) for r in records if r.cold], "warm": [value(r) for r in records if not r.cold]}
    groups = {k: [v for v in vs if v is not None] for k, vs in groups.items()}
    if not any(groups.values()):
        raise ValueError(f"duration_groups: no invocation has a {name}")
    return groups


def duration_histogram(data: Iterable[Invocation] | Mapping[str, Sequence[float]], ax: "Axes | None" = None, *,
                       metric: Metric = "duration_ms", split_cold: bool = True, bins: int = 30,
                       log: bool = False, title: str | None = None, unit: str | None = None) -> "Axes":
    """Histogram of a metric (default: Duration) over invocations, cold and warm apart; or of
    named groups of values (`{"128 MB": [...], "1024 MB": [...]}`). The legend gives each
    group's count, median and p95. `log=True` uses logarithmic bins (for long tails)."""
    if bins < 1:
        raise ValueError(f"duration_histogram: bins must be >= 1, not {bins!r}")
    groups = {k: vs for k, vs in duration_groups(data, metric=metric, split_cold=split_cold).items() if vs}
    name = metric if isinstance(metric, str) else _metric(metric)[1]
    unit = unit or ("MB" if name.endswith("_mb") else "ms")
    everything = [v for vs in groups.values() for v in vs]
    low, high = min(everything), max(everything)
    if log:
        if low <= 0:
            raise ValueError("duration_histogram: log bins need positive values")
        edges = [low * (high / low) ** (i / bins) for i in range(bins + 1)] if high > low else [low * 0.9, high * 1.1]
    else:
        edges = [low + (high - low) * i / bins for i in range(bins + 1)] if high > low else [low - 0.5, high + 0.5]
    ax = axes_or_new(ax, 7.0, 3.2)
    palette = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]
    colours = {"cold": KIND_COLOURS["init"], "warm": KIND_COLOURS["invoke"], "all": KIND_COLOURS["invoke"]}
    for i, (label, values) in enumerate(groups.items()):
        ax.hist(values, bins=edges, alpha=0.65, color=colours.get(label, palette[i % len(palette)]),
                label=f"{label}: n={len(values)}, median {percentile(values, 50):,.1f} {unit}, "
                      f"p95 {percentile(values, 95):,.1f} {unit}")
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(f"{name.replace('_ms', '').replace('_mb', '').replace('_', ' ')} ({unit})")
    ax.set_ylabel("invocations" if not isinstance(data, Mapping) else "count")
    ax.legend(fontsize="small")
    if title is not None:
        ax.set_title(title)
    return ax


def init_and_duration_bars(invocations: Iterable[Invocation], ax: "Axes | None" = None, *,
                           title: str | None = "Where the time goes: cold start vs warm calls") -> "Axes":
    """One bar per invocation, in order: its Init Duration (cold starts only), then its Duration.
    Returns the Axes."""
    records = _check_invocations(invocations, "init_and_duration_bars")
    ax = axes_or_new(ax, 6.0, 1.0 + 0.55 * len(records))
    labels = [f"call {n + 1}\n{'cold' if inv.cold else 'warm'}" for n, inv in enumerate(records)]
    init = [inv.init_ms or 0.0 for inv in records]
    ax.barh(labels, init, color=KIND_COLOURS["init"], label="Init Duration")
    ax.barh(labels, [inv.duration_ms for inv in records], left=init, color=KIND_COLOURS["invoke"], label="Duration")
    ax.invert_yaxis()  # the first call on top
    ax.set_xlabel("milliseconds")
    ax.legend(loc="lower right")
    if title is not None:
        ax.set_title(title)
    return ax


def concurrency_steps(invocations: Iterable[Invocation], *, include_init: bool = True,
                      origin: float | None = None) -> list[tuple[float, int]]:
    """(time, requests in flight from then on) at every change, times in seconds since `origin`.

    With `include_init`, a cold start counts from the start of its INIT (the environment is
    busy for the request then too). Ends at 0.
    """
    records = _check_invocations(invocations, "concurrency_steps")
    start = (lambda r: r.started_at - _warmup_s(r)) if include_init else (lambda r: r.started_at)
    t0 = min(start(r) for r in records) if origin is None else origin
    # Ends sort before starts at the same instant: back-to-back requests are not concurrent.
    changes = sorted([(start(r) - t0, 1) for r in records] + [(r.ended_at - t0, -1) for r in records])
    steps: list[tuple[float, int]] = []
    level = 0
    for t, delta in changes:
        level += delta
        if steps and steps[-1][0] == t:
            steps[-1] = (t, level)
        else:
            steps.append((t, level))
    return steps


def concurrency_plot(invocations: Iterable[Invocation], ax: "Axes | None" = None, *,
                     include_init: bool = True, limit: int | None = None,
                     title: str | None = "Requests in flight") -> "Axes":
    """How many requests were being served at each moment (a step plot); `limit` draws a line
    at a concurrency limit."""
    steps = concurrency_steps(invocations, include_init=include_init)
    scale, unit = _time_unit(steps[-1][0])
    ax = axes_or_new(ax, 7.0, 2.8)
    ax.step([t * scale for t, _ in steps], [n for _, n in steps], where="post", color=KIND_COLOURS["invoke"])
    ax.fill_between([t * scale for t, _ in steps], [n for _, n in steps], step="post",
                    color=KIND_COLOURS["invoke"], alpha=0.3)
    if limit is not None:
        ax.axhline(limit, color=KIND_COLOURS["timeout"], linestyle="--", label=f"limit {limit}")
        ax.legend(fontsize="small", loc="upper right")
    ax.set_xlabel(f"{unit} since the first event")
    ax.set_ylabel("in flight")
    ax.set_ylim(0, max(max(n for _, n in steps), limit or 0) + 1)
    if title is not None:
        ax.set_title(title)
    return ax


__all__ = ["Lane", "Span", "concurrency_plot", "concurrency_steps", "duration_groups", "duration_histogram",
           "environment_lanes", "environment_timeline", "init_and_duration_bars"]
