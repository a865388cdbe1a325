"""Lesson 07's instruments (connection pools): what the server sees while Lambda bursts.

`ActivitySampler` samples `pg_stat_activity` (and, with a proxy, pgbouncer's queue) from a
background thread; `connection_burst` fires N concurrent invocations at a function while it
samples; `plot_bursts` draws the results side by side, and `error_counts` tallies the failures.
The servers themselves, `LocalPostgres` (the stand-in for RDS) and `PgBouncer` (for RDS
Proxy), live in `lambdalab.cloud.postgres`; the names the notebook needs from there are
re-exported here, so the lesson imports from one place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lambdalab.cloud.postgres import (
    ACTIVITY_QUERY,
    APP_USER,
    TOO_MANY_CLIENTS,
    LocalPostgres,
    PgBouncer,
    find_pgbouncer,
    pgbouncer_version,
)

if TYPE_CHECKING:
    import psycopg
    from matplotlib.figure import Figure

    from lambdalab.runtime.records import Invocation
    from lambdalab.runtime.service import LocalRuntime


# --- sampling pg_stat_activity ---------------------------------------------------------------


@dataclass(frozen=True)
class ActivitySample:
    """One look at the server's client connections (the sampler's own not counted)."""

    at: float  # epoch seconds, like Invocation.started_at
    connections: int
    active: int  # running a query
    idle: int  # connected, doing nothing (a frozen environment's connection looks like this)
    idle_in_transaction: int
    waiting: int | None = None  # clients queued at the proxy for a server connection (with a proxy)


class ActivitySampler:
    """Samples `pg_stat_activity` (and, given a `proxy`, its queue) every `interval_s` from a
    background thread.

    It opens its one superuser connection at `start()`, before any burst, and holds it: once
    the server is full, nobody new gets in, the sampler included. That connection is the one
    admin connection the server sees besides its clients (`ADMIN_CONNECTIONS`); the proxy's
    console connection goes to pgbouncer, not to the server.
    """

    ADMIN_CONNECTIONS = 1

    def __init__(self, server: LocalPostgres, interval_s: float = 0.02, proxy: PgBouncer | None = None) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, not {interval_s!r}")
        self.server = server
        self.proxy = proxy
        self.interval_s = interval_s
        self._samples: list[ActivitySample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: "psycopg.Connection | None" = None
        self._console: "psycopg.Connection | None" = None
        self.error: BaseException | None = None

    def start(self) -> "ActivitySampler":
        if self._thread is not None:
            raise RuntimeError("this ActivitySampler has already been started")
        self._conn = self.server.admin_connect(connect_timeout=5)
        if self.proxy is not None:
            self._console = self.proxy.admin_connect()
        self._take()
        self._thread = threading.Thread(target=self._loop, name="lambdalab-pg-sampler", daemon=True)
        self._thread.start()
        return self

    def _take(self) -> None:
        row = self._conn.execute(ACTIVITY_QUERY).fetchone()
        waiting = None
        if self._console is not None:
            waiting = self.proxy.pool(self._console).get("cl_waiting", 0)
        with self._lock:
            self._samples.append(ActivitySample(time.time(), *row, waiting=waiting))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._take()
            except Exception as e:  # a server went away: keep what we have, say why
                self.error = e
                return

    def stop(self) -> list[ActivitySample]:
        """Stop sampling, close the connections, and return every sample."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            if self._conn is not None and self.error is None:
                self._take()
        finally:
            for conn in (self._conn, self._console):
                if conn is not None:
                    conn.close()
            self._conn = self._console = None
        return self.samples

    def __enter__(self) -> "ActivitySampler":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def samples(self) -> list[ActivitySample]:
        with self._lock:
            return list(self._samples)

    @property
    def peak(self) -> int:
        """The most client connections seen at once (the sampler's own not counted)."""
        return max((s.connections for s in self.samples), default=0)


# --- bursts --------------------------------------------------------------------------------


def too_many_clients(inv: "Invocation") -> bool:
    """Did this invocation fail because PostgreSQL turned its connection away?"""
    return not inv.ok and TOO_MANY_CLIENTS in str((inv.error or {}).get("errorMessage", ""))


@dataclass
class BurstResult:
    """N concurrent invocations of one function, and what the server saw meanwhile."""

    label: str
    invocations: list["Invocation"]
    samples: list[ActivitySample]
    started_at: float
    ended_at: float
    server_connects: int  # connections the server accepted for `app` during the burst (its log)
    server_refusals: int  # "sorry, too many clients already" lines in the server's log meanwhile
    max_connections: int
    pool_size: int | None = None  # the proxy's, when the burst went through one
    throttled: int = 0  # invokes the runtime refused at its concurrency limit

    @property
    def failures(self) -> list["Invocation"]:
        return [inv for inv in self.invocations if not inv.ok]

    @property
    def refused(self) -> list["Invocation"]:
        """The failures that are PostgreSQL's "sorry, too many clients already"."""
        return [inv for inv in self.invocations if too_many_clients(inv)]

    @property
    def peak_connections(self) -> int:
        """The most client connections the server had at once, the sampler's own not counted."""
        return max((s.connections for s in self.samples), default=0)

    @property
    def peak_waiting(self) -> int | None:
        waits = [s.waiting for s in self.samples if s.waiting is not None]
        return max(waits) if waits else None

    @property
    def environments(self) -> int:
        return len({inv.environment_id for inv in self.invocations})

    def summary(self) -> dict[str, Any]:
        """One row for a table."""
        ok = sorted(inv.duration_ms for inv in self.invocations if inv.ok)
        return {
            "burst": self.label,
            "invocations": len(self.invocations),
            "failed": len(self.failures),
            "too many clients": len(self.refused),
            "environments": self.environments,
            "server connects": self.server_connects,
            "peak server connections": self.peak_connections,
            "slowest success (ms)": round(ok[-1]) if ok else None,
        }


def connection_burst(runtime: "LocalRuntime", function: str, n: int, server: LocalPostgres, *,
          event: dict[str, Any] | None = None, label: str | None = None, proxy: PgBouncer | None = None,
          settle_s: float = 0.3, interval_s: float = 0.02, progress: bool = False) -> BurstResult:
    """Invoke `function` `n` times at once (one thread each) while sampling the server (and
    the `proxy`'s queue, when the function goes through one).

    Each invocation gets `event` plus its index as "i". Sampling starts before the first
    invoke and goes on `settle_s` after the last one returns. Invocations the runtime throttles
    at its concurrency limit are counted in `throttled`, not retried.
    """
    from lambdalab.runtime.errors import TooManyRequestsException

    if not isinstance(n, int) or n < 1:
        raise ValueError(f"a burst needs a positive number of invocations, not {n!r}")
    base = dict(event or {})
    authorized = f"connection authorized: user={APP_USER}"
    connects_before = server.log_count(authorized)
    refusals_before = server.log_count(TOO_MANY_CLIENTS)
    bar = None
    if progress:
        import warnings

        with warnings.catch_warnings():  # without ipywidgets tqdm.auto falls back to text, and says so
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm
        bar = tqdm(total=n, desc=label or function, unit="invocation", leave=False)

    def one(i: int) -> "Invocation | None":
        try:
            return runtime.invoke(function, {**base, "i": i})
        except TooManyRequestsException:
            return None
        finally:
            if bar is not None:
                bar.update()

    with ActivitySampler(server, interval_s, proxy) as sampler:
        started = time.time()
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="burst") as pool:
            results = list(pool.map(one, range(n)))
        ended = time.time()
        time.sleep(settle_s)
    if bar is not None:
        bar.close()
    invocations = [inv for inv in results if inv is not None]
    return BurstResult(label=label or function, invocations=invocations, samples=sampler.samples,
                       started_at=started, ended_at=ended, throttled=n - len(invocations),
                       server_connects=server.log_count(authorized) - connects_before,
                       server_refusals=server.log_count(TOO_MANY_CLIENTS) - refusals_before,
                       max_connections=server.max_connections,
                       pool_size=proxy.pool_size if proxy is not None else None)


def error_counts(invocations: Iterable["Invocation"]) -> dict[str, int]:
    """How many invocations failed with each error: type and the message's last line."""
    counts: dict[str, int] = {}
    for inv in invocations:
        if inv.ok:
            continue
        lines = str((inv.error or {}).get("errorMessage", "")).strip().splitlines()
        text = f"{inv.error_type}: {lines[-1].strip() if lines else ''}"
        counts[text] = counts.get(text, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


# --- plots ---------------------------------------------------------------------------------

_GREEN, _PURPLE, _ORANGE, _PINK, _RED = "#1b9e77", "#7570b3", "#d95f02", "#e7298a", "#a6061c"


def plot_bursts(results: Sequence[BurstResult]) -> "Figure":
    """One column per burst: above, the server's client connections over time (sampled from
    pg_stat_activity) against its limit; below, invocations finished over time, failures apart."""
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("plot_bursts needs at least one BurstResult")
    fig, axes = plt.subplots(2, len(results), figsize=(max(6.0, 4.3 * len(results) + 0.6), 5.6), sharey="row",
                             squeeze=False, gridspec_kw={"height_ratios": [3, 2]})
    for col, result in enumerate(results):
        _plot_connections(axes[0][col], result)
        _plot_done(axes[1][col], result)
        end = max([s.at - result.started_at for s in result.samples] + [result.ended_at - result.started_at])
        for ax in (axes[0][col], axes[1][col]):
            ax.set_xlim(0, end)
            ax.grid(alpha=0.3)
    top = max([r.max_connections for r in results]
              + [max(s.connections, s.waiting or 0) for r in results for s in r.samples])
    axes[0][0].set_ylim(-0.5, top + 1.5)
    axes[0][0].set_ylabel("client connections\nat the server")
    axes[1][0].set_ylabel("invocations finished")
    handles: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(text, handle)
    columns = min(len(handles), 2 if len(results) == 1 else 4)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=columns, fontsize=8, frameon=False)
    rows = -(-len(handles) // columns)
    fig.tight_layout(rect=(0, 0.035 * rows + 0.02, 1, 1))
    return fig


def _plot_connections(ax: Any, result: BurstResult) -> None:
    times = [s.at - result.started_at for s in result.samples]
    limit = result.max_connections - ActivitySampler.ADMIN_CONNECTIONS
    ax.axhline(limit, color=_RED, ls="--", lw=1, label="max_connections, less the sampler's")
    if result.pool_size is not None:
        ax.axhline(result.pool_size, color=_ORANGE, ls=":", lw=1.5, label="pgbouncer pool size")
    ax.step(times, [s.connections for s in result.samples], where="post", color=_GREEN, lw=2,
            label="server connections")
    ax.step(times, [s.active for s in result.samples], where="post", color=_PURPLE, lw=1,
            label="… of them running a query")
    if any(s.waiting for s in result.samples):
        ax.step(times, [s.waiting or 0 for s in result.samples], where="post", color="#666666", lw=1,
                label="clients waiting at pgbouncer", ls="-.")
    ax.set_title(result.label, fontsize=10)


def _plot_done(ax: Any, result: BurstResult) -> None:
    t0 = result.started_at
    ok = sorted(inv.ended_at - t0 for inv in result.invocations if inv.ok)
    bad = sorted(inv.ended_at - t0 for inv in result.invocations if not inv.ok)
    ax.step([0, *ok], range(len(ok) + 1), where="post", color=_GREEN, label="succeeded")
    ax.step([0, *bad], range(len(bad) + 1), where="post", color=_PINK, label="failed")
    ax.text(0.02, 0.95, f"{len(ok)} succeeded, {len(bad)} failed", transform=ax.transAxes, va="top", fontsize=9)
    ax.set_xlabel("seconds since the burst began")


__all__ = ["TOO_MANY_CLIENTS", "ActivitySample", "ActivitySampler", "BurstResult", "LocalPostgres", "PgBouncer",
           "connection_burst", "error_counts", "find_pgbouncer", "pgbouncer_version", "plot_bursts",
           "too_many_clients"]
