"""Cold-start measurements (lesson 08): fresh environments on demand, cold vs warm latency, bursts.

Every number here is measured, never assumed: `init_ms` and `restore_ms` are the REPORT line's
Init Duration and Restore Duration, `duration_ms` its Duration, and `caller_ms` the latency the
caller saw, timed around `LocalRuntime.invoke`. To get a cold start on demand this module retires
a function's on-demand environments (kills their workers and waits until they are gone), so the
next request has to start a new one; provisioned environments are left alone.

Concurrent inits share the machine's CPUs: on a 2-core laptop ten inits at once each take several
times longer than one alone, while on Lambda every environment has its own CPU share. So cold
starts are sampled `parallel` at a time (default: one per CPU), and `TimedRequest.parallel`
records it.
When several handlers are compared they take turns round by round, so a change in the machine's
load during the measurement (another program starting) does not favour one of them.
The plotting helpers import matplotlib lazily, so lab checks can use this module cheaply.
`median` and `percentile` are the course's shared statistics, re-exported for notebook 08.
"""

from __future__ import annotations

import math
import os
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lambdalab._util.stats import median, percentile
from lambdalab.course.display import Table
from lambdalab.course.plots import axes_or_new
from lambdalab.runtime.records import Invocation

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lambdalab.course.target.base import CloudTarget
    from lambdalab.runtime.service import LocalRuntime

# Colour-blind-safe (Dark2), one per group in plotting order.
PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")
_RETIRE_TIMEOUT_S = 10.0
_MAX_ATTEMPTS_FACTOR = 3  # warm samples are retried; give up after 3x the rounds that n samples need


class ColdStartError(RuntimeError):
    """A measurement could not be made as asked (e.g. no fresh environment could be forced)."""


@dataclass(frozen=True)
class TimedRequest:
    """One request as measured: the REPORT fields, the caller's latency, and how it was made."""

    label: str
    function: str
    cold: bool
    provisioned: bool
    init_ms: float | None  # REPORT Init Duration (cold on-demand starts)
    restore_ms: float | None  # REPORT Restore Duration (snapshot-restore starts)
    duration_ms: float  # REPORT Duration
    caller_ms: float  # wall time the caller waited for `invoke`
    parallel: int  # requests sent together with this one (itself included)
    environment_id: str
    error: str | None  # "ErrorType: message" when the invocation failed
    invocation: Invocation

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def start_ms(self) -> float | None:
        """Init Duration, or Restore Duration for a snapshot restore; None when warm."""
        return self.init_ms if self.init_ms is not None else self.restore_ms


def _error_text(inv: Invocation) -> str | None:
    if inv.ok:
        return None
    return f"{inv.error_type}: {inv.error.get('errorMessage', '')}"


def _sample(inv: Invocation, label: str, caller_ms: float, parallel: int) -> TimedRequest:
    return TimedRequest(label=label, function=inv.function_name, cold=inv.cold, provisioned=inv.provisioned,
                  init_ms=inv.init_ms, restore_ms=inv.restore_ms, duration_ms=inv.duration_ms,
                  caller_ms=round(caller_ms, 2), parallel=parallel, environment_id=inv.environment_id,
                  error=_error_text(inv), invocation=inv)


def timed_invoke(rt: "LocalRuntime", name: str, event: Any = None, *, label: str | None = None,
                 parallel: int = 1) -> TimedRequest:
    """Invoke `name` synchronously and time it from the caller's side."""
    t0 = time.perf_counter()
    inv = rt.invoke(name, {} if event is None else event)
    return _sample(inv, label or name, (time.perf_counter() - t0) * 1000, parallel)


def retire_environments(rt: "LocalRuntime", name: str, timeout_s: float = _RETIRE_TIMEOUT_S) -> int:
    """Kill the function's idle on-demand (and snapshot-restored) environments and wait until they
    are gone, so its next request is a cold start. Provisioned environments stay. Returns how many."""
    victims = [env for env in rt.environments(name)
               if env.init_type != "provisioned-concurrency" and env.state != "busy"]
    for env in victims:
        env.kill()
    deadline = time.monotonic() + timeout_s
    while any(env.alive for env in victims):
        if time.monotonic() > deadline:
            raise ColdStartError(f"{name}: environments still alive {timeout_s:g} s after they were killed")
        time.sleep(0.005)
    return len(victims)


def _round(rt: "LocalRuntime", name: str, event: Any, size: int, label: str) -> list[TimedRequest]:
    """`size` requests released together (a barrier), each timed by its own thread."""
    if size == 1:
        return [timed_invoke(rt, name, event, label=label)]
    gate = threading.Barrier(size)

    def one(_: int) -> TimedRequest:
        gate.wait()
        return timed_invoke(rt, name, event, label=label, parallel=size)

    with ThreadPoolExecutor(size) as pool:
        return list(pool.map(one, range(size)))


def _progress(total: int, desc: str, enabled: bool):
    import warnings

    with warnings.catch_warnings():
        # Without ipywidgets, tqdm.auto warns once and falls back to a text bar: the text bar is fine.
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="start", disable=not enabled, leave=False)


def _check_parallel(rt: "LocalRuntime", n: int, parallel: int | None, what: str) -> int:
    if n < 1:
        raise ValueError(f"{what}: n must be >= 1, not {n!r}")
    parallel = parallel or os.cpu_count() or 1
    if parallel < 1:
        raise ValueError(f"{what}: parallel must be >= 1, not {parallel!r}")
    if parallel > rt.account_concurrency:
        raise ValueError(f"{what}: parallel={parallel} is above the runtime's account "
                         f"concurrency ({rt.account_concurrency}); raise LocalRuntime(account_concurrency=...)")
    return parallel


def _fresh_round(rt: "LocalRuntime", name: str, size: int, event: Any, label: str) -> list[TimedRequest]:
    """Retire the function's environments, then send `size` requests together; keep the cold ones
    (a request that reached a provisioned or just-released environment is not a sample)."""
    retire_environments(rt, name)
    return [s for s in _round(rt, name, event, size, label) if s.cold]


def fresh_cold_starts_many(rt: "LocalRuntime", functions: Mapping[str, str], n: int, *, event: Any = None,
                           parallel: int | None = None, progress: bool = True) -> dict[str, list[TimedRequest]]:
    """`n` cold starts of each function in `functions` ({label: function name}), each in a new
    environment, `parallel` at a time (default: one per CPU). The functions take turns round by
    round, so a change in the machine's load while measuring hits every one of them alike."""
    parallel = _check_parallel(rt, n, parallel, "fresh_cold_starts")
    samples: dict[str, list[TimedRequest]] = {label: [] for label in functions}
    max_rounds = _MAX_ATTEMPTS_FACTOR * math.ceil(n / parallel)
    desc = ", ".join(functions) if len(functions) <= 3 else f"{len(functions)} functions"
    with _progress(n * len(functions), desc, progress) as bar:
        for _ in range(max_rounds):
            for label, name in functions.items():
                missing = n - len(samples[label])
                if missing > 0:
                    fresh = _fresh_round(rt, name, min(parallel, missing), event, label)
                    samples[label] += fresh
                    bar.update(len(fresh))
            if all(len(got) >= n for got in samples.values()):
                return samples
    short = {label: len(got) for label, got in samples.items() if len(got) < n}
    raise ColdStartError(f"only these cold starts found a fresh environment (of {n} each): {short}")


def fresh_cold_starts(rt: "LocalRuntime", name: str, n: int, *, event: Any = None, parallel: int | None = None,
                      label: str | None = None, progress: bool = True) -> list[TimedRequest]:
    """`n` cold starts of function `name`, each in a new environment, `parallel` at a time
    (default: one per CPU). Failed invocations are kept (their `error` says why)."""
    label = label or name
    return fresh_cold_starts_many(rt, {label: name}, n, event=event, parallel=parallel, progress=progress)[label]


def target_cold_starts(target: "CloudTarget", base: str, n: int, *, progress: bool = True) -> list[float]:
    """The Init Durations of `n` new environments of function `base` on a target (the local cloud
    or AWS), from its REPORT lines. Each round changes an environment variable with
    UpdateFunctionConfiguration, which makes Lambda retire the function's environments, waits until
    the update is done, and invokes it once: the request lands in a new environment."""
    lam = target.client("lambda")
    name = target.name(base)
    before = len(target.records(base))
    with _progress(n, f"cold starts of {base} on {target.kind}", progress) as bar:
        for round_ in range(n):
            lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"ROUND": str(round_)}})
            lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            answer = lam.invoke(FunctionName=name, Payload=b"{}")
            answer["Payload"].read()
            bar.update()
    found = target.settle(base, before + n)[before:]
    return [r.report.init_ms for r in found if r.report.init_ms is not None]


def warm_calls(rt: "LocalRuntime", name: str, n: int, *, event: Any = None,
               label: str | None = None) -> list[TimedRequest]:
    """`n` requests one after another to an already initialised environment (one is started
    first if the function has none); every sample is warm."""
    if n < 1:
        raise ValueError(f"warm_calls: n must be >= 1, not {n!r}")
    if not any(env.alive for env in rt.environments(name)):
        timed_invoke(rt, name, event)
    samples = [timed_invoke(rt, name, event, label=label) for _ in range(n)]
    cold = [s for s in samples if s.cold]
    if cold:
        raise ColdStartError(f"{name}: {len(cold)} of {n} requests expected to be warm were cold starts")
    return samples


def burst_after_idle(rt: "LocalRuntime", name: str, size: int, *, rounds: int = 1, event: Any = None,
                     label: str | None = None, progress: bool = True) -> list[TimedRequest]:
    """`rounds` bursts of `size` concurrent requests. Before each burst the on-demand environments
    are retired, so every burst meets only the provisioned environments (if any): as after a quiet spell."""
    if size < 1 or rounds < 1:
        raise ValueError(f"burst_after_idle: size and rounds must be >= 1, not {size!r} and {rounds!r}")
    if size > rt.account_concurrency:
        raise ValueError(f"burst_after_idle: size={size} is above the runtime's account concurrency "
                         f"({rt.account_concurrency}); raise LocalRuntime(account_concurrency=...)")
    label = label or name
    samples: list[TimedRequest] = []
    with _progress(size * rounds, label, progress) as bar:
        for _ in range(rounds):
            retire_environments(rt, name)
            samples += _round(rt, name, event, size, label)
            bar.update(size)
    return samples


def module_level_code(path: str | os.PathLike) -> list[str]:
    """The statements a module runs at import (its INIT), without its docstring, functions and classes."""
    import ast
    from pathlib import Path

    source = Path(path).read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    body = tree.body[1:] if ast.get_docstring(tree) is not None else tree.body
    skip = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [ast.get_source_segment(source, node) or "" for node in body if not isinstance(node, skip)]


@dataclass(frozen=True)
class PackageSize:
    """What a deployment package holds unzipped: Lambda's 250 MB quota counts these bytes."""

    files: int
    bytes: int

    @property
    def mb(self) -> float:
        return self.bytes / 1e6


def package_size(path: str | os.PathLike) -> PackageSize:
    """The files and bytes of a package directory (symbolic links not followed)."""
    from pathlib import Path

    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"package_size: {str(root)!r} is not a directory")
    sizes = [p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    return PackageSize(files=len(sizes), bytes=sum(sizes))


def sandbox_unavailable() -> str | None:
    """Why this machine cannot build Lambda's sandbox (namespaces), or None when it can."""
    from lambdalab.runtime.sandbox import probe

    support = probe()
    return None if support.ok else support.reason


# -- statistics and tables ---------------------------------------------------------------------

_FIELDS = ("init_ms", "restore_ms", "start_ms", "duration_ms", "caller_ms")


def values(samples: Iterable[TimedRequest], field: str) -> list[float]:
    """One field of each sample (`init_ms`, `restore_ms`, `start_ms`, `duration_ms`, `caller_ms`), Nones skipped."""
    if field not in _FIELDS:
        raise ValueError(f"field {field!r} is not one of {', '.join(_FIELDS)}")
    return [v for v in (getattr(s, field) for s in samples) if v is not None]


def by_label(samples: Iterable[TimedRequest], field: str) -> dict[str, list[float]]:
    """{label: values of `field`} in the order labels first appear."""
    if field not in _FIELDS:
        raise ValueError(f"field {field!r} is not one of {', '.join(_FIELDS)}")
    groups: dict[str, list[float]] = {}
    for s in samples:
        value = getattr(s, field)
        if value is not None:
            groups.setdefault(s.label, []).append(value)
    return groups


def summary(groups: Mapping[str, Sequence[float]], *, title: str = "", unit: str = "ms") -> Table:
    """One row per group: count, median, p90, p99, min and max."""
    rows = []
    for label, vs in groups.items():
        if not vs:
            raise ValueError(f"summary: group {label!r} has no values")
        rows.append({"": label, "n": len(vs), f"median {unit}": median(vs), f"p90 {unit}": percentile(vs, 90),
                     f"p99 {unit}": percentile(vs, 99), f"min {unit}": min(vs), f"max {unit}": max(vs)})
    return Table(rows, title=title)


def process_start_ms(argv: Sequence[str], n: int, *, cwd: str | os.PathLike | None = None,
                     env: Mapping[str, str] | None = None) -> list[float]:
    """Wall time of `n` runs of a short command (start a process, load something, exit), in ms.
    A clock around a process, not a REPORT field: for comparing runtimes' start-up."""
    if n < 1:
        raise ValueError(f"process_start_ms: n must be >= 1, not {n!r}")
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        done = subprocess.run(list(argv), cwd=cwd, env=None if env is None else dict(env),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        elapsed = (time.perf_counter() - t0) * 1000
        if done.returncode != 0:
            raise ColdStartError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
        times.append(round(elapsed, 2))
    return times


# -- plots ---------------------------------------------------------------------------------------

def _check_groups(groups: Mapping[str, Sequence[float]], what: str) -> dict[str, list[float]]:
    checked = {str(k): [float(v) for v in vs] for k, vs in groups.items()}
    if not checked:
        raise ValueError(f"{what}: no groups to plot")
    empty = [k for k, vs in checked.items() if not vs]
    if empty:
        raise ValueError(f"{what}: group(s) {', '.join(map(repr, empty))} have no values")
    return checked


def distribution_plot(groups: Mapping[str, Sequence[float]], ax: "Axes | None" = None, *,
                      xlabel: str = "Init Duration, ms", title: str | None = None, log: bool = True) -> "Axes":
    """One horizontal violin per group with every sample as a dot and its median marked and
    written; first group on top. Log scale by default: cold starts span orders of magnitude."""
    data = _check_groups(groups, "distribution_plot")
    labels = list(data)
    ax = axes_or_new(ax, 8.0, 0.9 + 0.75 * len(labels))
    positions = list(range(len(labels)))
    series = [data[k] for k in labels]
    import numpy as np

    # Violins on a log axis are drawn from the logs of the values, so their shape is not squashed.
    shown = [np.log10(vs) if log else np.asarray(vs) for vs in series]
    if log and any(min(vs) <= 0 for vs in series):
        raise ValueError("distribution_plot: log scale needs positive values")
    import inspect

    # matplotlib 3.10 replaced vert=False by orientation="horizontal" (and deprecated vert).
    sideways = ({"orientation": "horizontal"} if "orientation" in inspect.signature(ax.violinplot).parameters
                else {"vert": False})
    parts = ax.violinplot([s if len(s) > 1 else np.repeat(s, 2) for s in shown], positions=positions,
                          showextrema=False, widths=0.8, **sideways)
    for body, colour in zip(parts["bodies"], PALETTE * 4):
        body.set_facecolor(colour)
        body.set_alpha(0.35)
    rng = np.random.default_rng(0)  # jitter only spreads the dots vertically, so they do not overlap
    for pos, vs, colour in zip(positions, shown, PALETTE * 4):
        ax.scatter(vs, pos + rng.uniform(-0.12, 0.12, len(vs)), s=12, color=colour, alpha=0.8, zorder=3)
        mid = float(np.median(vs))
        ax.vlines(mid, pos - 0.35, pos + 0.35, color="black", linewidth=2, zorder=4)
        real = 10 ** mid if log else mid
        ax.annotate(f"median {real:,.0f} ms" if real >= 10 else f"median {real:,.1f} ms", (float(np.max(vs)), pos),
                    xytext=(8, 0), textcoords="offset points", ha="left", va="center", fontsize="small")
    ax.set_yticks(positions, [f"{k}\n(n={len(data[k])})" for k in labels])
    ax.set_ylim(len(labels) - 0.4, -0.6)
    if log:
        low = min(min(s) for s in shown)
        high = max(max(s) for s in shown)
        ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
                 if low - 0.3 <= math.log10(t) <= high + 0.3]
        ax.set_xticks([math.log10(t) for t in ticks], [f"{t:,}" for t in ticks])
        ax.set_xlim(low - 0.15, high + 0.55)  # room on the right for the median labels
    else:
        high = max(max(s) for s in shown)
        ax.set_xlim(right=high * 1.3)
    ax.set_xlabel(xlabel + (" (log scale)" if log else ""))
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    return ax


def cdf_plot(groups: Mapping[str, Sequence[float]], ax: "Axes | None" = None, *,
             xlabel: str = "latency seen by the caller, ms", title: str | None = None, log: bool = True,
             marks: Sequence[float] = (50, 99)) -> "Axes":
    """Empirical CDF of each group (a step per sample), with its `marks` percentiles in the legend."""
    data = _check_groups(groups, "cdf_plot")
    ax = axes_or_new(ax, 8.0, 3.4)
    for (label, vs), colour in zip(data.items(), PALETTE * 4):
        ordered = sorted(vs)
        ys = [(i + 1) / len(ordered) for i in range(len(ordered))]
        stats = ", ".join(f"p{q:g} {percentile(ordered, q):,.0f} ms" for q in marks)
        ax.step(ordered, ys, where="post", color=colour, linewidth=2, label=f"{label}: {stats}")
        for q in marks:
            ax.plot(percentile(ordered, q), q / 100, "o", color=colour, markersize=5)
    for q in marks:
        ax.axhline(q / 100, color="grey", linewidth=0.6, linestyle=":")
    if log:
        ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel + (" (log scale)" if log else ""))
    ax.set_ylabel("fraction of requests")
    ax.legend(fontsize="small", loc="lower right")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return ax


def cold_warm_plot(cold: Mapping[str, Sequence[float]], warm: Mapping[str, Sequence[float]],
                   ax: "Axes | None" = None, *, title: str | None = None) -> "Axes":
    """Median caller latency per handler, a cold bar over a warm bar, with the p10-p90 range as whiskers."""
    cold_g = _check_groups(cold, "cold_warm_plot (cold)")
    warm_g = _check_groups(warm, "cold_warm_plot (warm)")
    missing = set(cold_g) ^ set(warm_g)
    if missing:
        raise ValueError(f"cold_warm_plot: cold and warm need the same handlers; unmatched: {sorted(missing)}")
    labels = list(cold_g)
    ax = axes_or_new(ax, 8.0, 0.9 + 0.7 * len(labels))
    for i, label in enumerate(labels):
        for offset, (kind, groups, colour) in enumerate((("cold", cold_g, PALETTE[1]), ("warm", warm_g, PALETTE[0]))):
            vs = groups[label]
            mid = median(vs)
            y = i + (offset - 0.5) * 0.38
            ax.barh(y, mid, height=0.36, color=colour, label=kind if i == 0 else None)
            ax.errorbar(mid, y, xerr=[[mid - percentile(vs, 10)], [percentile(vs, 90) - mid]], fmt="none",
                        ecolor="black", elinewidth=0.8, capsize=2)
            ax.annotate(f"{mid:,.1f} ms", (percentile(vs, 90), y), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize="small")
    ax.set_xscale("log")
    highest = max(percentile(vs, 90) for g in (cold_g, warm_g) for vs in g.values())
    ax.set_xlim(right=highest * 4)  # room for the value labels
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlabel("median latency seen by the caller, ms (log scale; whiskers p10-p90)")
    ax.legend(loc="upper right", fontsize="small", ncol=2)
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    return ax


__all__ = ["ColdStartError", "TimedRequest", "burst_after_idle", "by_label", "cdf_plot", "cold_warm_plot",
           "distribution_plot", "fresh_cold_starts", "fresh_cold_starts_many", "median", "module_level_code",
           "percentile", "process_start_ms", "retire_environments", "summary", "timed_invoke", "values", "warm_calls"]
