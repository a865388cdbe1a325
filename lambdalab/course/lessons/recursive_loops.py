"""Lesson 06's instruments: run a recursive loop under a hard local budget, measure it, price it.

`watch_loop` starts something that may loop (an upload into a bucket whose function writes
back into it), watches the function's invocations as they complete, and pulls a brake (e.g.
removes the bucket's trigger, see `s3_brake`) as soon as the run passes its `Budget`: N
invocations or T seconds, whichever comes first. That budget is this course's own guard, for
when Lambda's loop detection is switched off (`RecursiveLoop=Allow`) or does not apply; the
detection itself lives in the local cloud (`lambdalab.cloud.loops`) and in Lambda. Invocations
are read through a target (`lambdalab.course.target`): the same code runs on both. The result, a `LoopRun`, holds
the invocations of the run, which stopped it, and how many invocations loop detection dropped.

`project` turns a run's measured rate and billed durations into what the same loop would cost
at Lambda's prices over longer horizons (`lambdalab.runtime.metering.projected_cost`);
`invocation_curve` and `rate_bins` are the geometry of the lesson's plots, which
`plot_loop_runs` draws.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from lambdalab.course.labs import load_module
from lambdalab.course.target.base import quiet_seconds
from lambdalab.course.target.reports import SettleTimeout
from lambdalab.runtime.metering import price, projected_cost
from lambdalab.runtime.records import Invocation

if TYPE_CHECKING:
    from matplotlib.axes import Axes

HORIZONS: Mapping[str, float] = {"an hour": 3600.0, "a day": 86_400.0, "30 days": 2_592_000.0}
# How often the watcher looks at the function's records, and how many quiet looks in a row
# mean the loop has ended (an event can sit between two invocations for a moment).
_POLL_S = 0.01
_QUIET_LOOKS = 5
AWS_POLL_S = 1.0  # on AWS only the logs tell, and reading them takes a request

STOPPED_BY_DETECTION = "loop detection"
STOPPED_BY_INVOCATIONS = "budget: invocations"
STOPPED_BY_TIME = "budget: time"
RAN_OUT = "nothing left to run"


@dataclass(frozen=True)
class Budget:
    """A hard local limit on one run: at most `max_invocations`, at most `max_seconds`, whichever first."""

    max_invocations: int
    max_seconds: float

    def __post_init__(self) -> None:
        if not isinstance(self.max_invocations, int) or self.max_invocations < 1:
            raise ValueError(f"Budget.max_invocations must be a whole number >= 1, not {self.max_invocations!r}")
        if not isinstance(self.max_seconds, (int, float)) or not self.max_seconds > 0:
            raise ValueError(f"Budget.max_seconds must be a number of seconds > 0, not {self.max_seconds!r}")


@dataclass
class LoopRun:
    """One watched run: its invocations (in start order), what stopped it, and when."""

    label: str
    function: str
    budget: Budget
    started_at: float  # epoch seconds when the run was started
    ended_at: float  # epoch seconds when nothing was left running
    invocations: list[Invocation]
    dropped: int  # RecursiveInvocationsDropped during the run
    stopped_by: str  # one of STOPPED_BY_DETECTION, STOPPED_BY_INVOCATIONS, STOPPED_BY_TIME, RAN_OUT
    braked_at: float | None = None  # seconds after the start when the budget's brake was pulled
    recursive_loop: str = ""  # the function's recursion config during the run: "Terminate" or "Allow"
    in_flight_after_brake: int = 0  # invocations that completed after the brake (already running or queued)

    @property
    def count(self) -> int:
        return len(self.invocations)

    @property
    def busy_seconds(self) -> float:
        """From the first invocation's start to the last one's end."""
        if not self.invocations:
            return 0.0
        return max(i.ended_at for i in self.invocations) - min(i.started_at for i in self.invocations)

    @property
    def rate(self) -> float:
        """Invocations per second while the run was busy (0 without invocations)."""
        return self.count / self.busy_seconds if self.busy_seconds > 0 else 0.0

    @property
    def mean_billed_ms(self) -> float:
        return sum(i.billed_ms for i in self.invocations) / self.count if self.invocations else 0.0

    @property
    def cost(self) -> float:
        """Dollars at Lambda's prices for this run's invocations (`metering.price`, no free tier)."""
        return sum(price(i) for i in self.invocations)

    def summary(self) -> dict[str, Any]:
        """One table row."""
        return {"run": self.label, "RecursiveLoop": self.recursive_loop, "invocations": self.count,
                "dropped by loop detection": self.dropped,
                "stopped by": self.stopped_by, "seconds": round(self.ended_at - self.started_at, 2),
                "invocations/s": round(self.rate, 1), "mean billed ms": round(self.mean_billed_ms, 1),
                "cost $": f"{self.cost:.8f}"}


def _new_invocations(target: Any, function: str, seen: set[str]) -> list[Invocation]:
    return [r for r in target.invocations(function) if r.request_id not in seen]


def _dropped(target: Any, function: str, since: float) -> int:
    """RecursiveInvocationsDropped for the function since `since` (epoch seconds): the local
    runtime counts them at once; on AWS it is a CloudWatch metric, published within minutes."""
    if target.kind == "local":
        return target.cloud.metrics(target.name(function))["RecursiveInvocationsDropped"]
    stats = target.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda", MetricName="RecursiveInvocationsDropped",
        Dimensions=[{"Name": "FunctionName", "Value": target.name(function)}],
        StartTime=datetime.fromtimestamp(since - 60, timezone.utc), EndTime=datetime.now(timezone.utc),
        Period=60, Statistics=["Sum"])
    return int(sum(point["Sum"] for point in stats.get("Datapoints", [])))


class _Quiet:
    """Whether the function has stopped: the local runtime knows when nothing runs or waits;
    on AWS the only sign is that its logs gain no REPORT line for `quiet_seconds()`."""

    def __init__(self, target: Any):
        self.target = target
        self.looks, self.count, self.since = 0, -1, time.monotonic()

    def now(self, count: int) -> bool:
        if self.target.kind == "local":
            cloud = self.target.cloud
            self.looks = self.looks + 1 if cloud.runtime.wait_idle(timeout=0) else 0
            # settle() looks harder (event source pollers too); if it sees work after all, keep watching.
            if self.looks >= _QUIET_LOOKS and cloud.settle(1.0):
                return True
            self.looks = self.looks if self.looks < _QUIET_LOOKS else 0
            return False
        if count != self.count:
            self.count, self.since = count, time.monotonic()
        return time.monotonic() - self.since >= quiet_seconds()


def watch_loop(target: Any, function: str, start: Callable[[], Any], brake: Callable[[], Any],
               budget: Budget, *, label: str = "", settle_timeout_s: float = 30.0,
               progress: bool = False) -> LoopRun:
    """Call `start()`, then watch the invocations of `function` (a name on `target`, without the
    run's prefix) until the loop ends by itself or passes `budget`; in the second case call
    `brake()` once and wait for what is in flight to finish. Invocations are read through the
    target (`target.invocations`), so the same code watches the local cloud and AWS.

    Raises RuntimeError if the function does not go quiet within `settle_timeout_s` after the end
    (the brake did not stop the loop).
    """
    if not callable(start) or not callable(brake):
        raise TypeError("watch_loop: start and brake must be callables taking no arguments")
    seen = {r.request_id for r in target.invocations(function)}
    mode = target.client("lambda").get_function_recursion_config(
        FunctionName=target.name(function))["RecursiveLoop"]
    started = time.time()
    dropped_before = _dropped(target, function, started)
    bar = _progress_bar(budget, label or function) if progress else None
    poll = _POLL_S if target.kind == "local" else AWS_POLL_S
    quiet = _Quiet(target)
    start()
    braked_at: float | None = None
    stopped_by = RAN_OUT
    count = 0
    try:
        while True:
            count = len(_new_invocations(target, function, seen))
            elapsed = time.time() - started
            if bar is not None:
                bar.update(min(count, budget.max_invocations) - bar.n)
            if count >= budget.max_invocations or elapsed >= budget.max_seconds:
                stopped_by = STOPPED_BY_INVOCATIONS if count >= budget.max_invocations else STOPPED_BY_TIME
                brake()
                braked_at = time.time() - started
                break
            if quiet.now(count):
                break
            time.sleep(poll)
        try:
            target.wait_until_quiet(function, 0, timeout=settle_timeout_s)
        except SettleTimeout:
            raise RuntimeError(f"watch_loop: {function} was still running {settle_timeout_s:g} s after the "
                               "brake; the brake did not stop the loop") from None
    finally:
        if bar is not None:
            _finish(bar, len(_new_invocations(target, function, seen)))
    invocations = sorted(_new_invocations(target, function, seen), key=lambda i: i.started_at)
    dropped = _dropped(target, function, started) - dropped_before
    if braked_at is None and dropped:
        stopped_by = STOPPED_BY_DETECTION
    in_flight = len(invocations) - count if braked_at is not None else 0
    return LoopRun(label=label or function, function=function, budget=budget, started_at=started,
                   ended_at=time.time(), invocations=invocations, dropped=dropped, stopped_by=stopped_by,
                   braked_at=braked_at, recursive_loop=mode, in_flight_after_brake=in_flight)


def _progress_bar(budget: Budget, label: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=budget.max_invocations, desc=label, unit="inv")


def _finish(bar: Any, count: int) -> None:
    """End the bar at the run's final count (a run that stopped short of the budget is complete too)."""
    bar.reset(total=max(count, 1))  # reset() also resizes a notebook widget's bar
    bar.update(count)
    bar.close()


def allow_bucket(target: Any, bucket: str, function_arn: str) -> None:
    """Let S3 invoke the function for this bucket of this account (its resource policy); AWS
    refuses a bucket's notification configuration for a function that does not allow it."""
    lam = target.client("lambda")
    try:
        lam.add_permission(FunctionName=function_arn, StatementId=f"s3-{bucket}", Action="lambda:InvokeFunction",
                           Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::{bucket}",
                           SourceAccount=target.account_id)
    except lam.exceptions.ResourceConflictException:
        pass  # the statement is there from an earlier call


def trigger_on_new_objects(target: Any, bucket: str, function_arn: str, **filters: str) -> dict[str, Any]:
    """Point `bucket`'s trigger at `function_arn`: every new object invokes it (or only those that
    match the `prefix=` / `suffix=` filters), after `allow_bucket`. The bucket's whole
    NotificationConfiguration is replaced, as S3 does; returns the configuration put."""
    allow_bucket(target, bucket, function_arn)
    rule: dict[str, Any] = {"LambdaFunctionArn": function_arn, "Events": ["s3:ObjectCreated:*"]}
    if filters:
        rule["Filter"] = {"Key": {"FilterRules": [{"Name": k, "Value": v} for k, v in filters.items()]}}
    config = {"LambdaFunctionConfigurations": [rule]}
    target.client("s3").put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    return config


def load_trigger(code_dir: str | Path) -> ModuleType:
    """The `trigger.py` of a lab's directory (e.g. `lab_dir("loopfix")`), imported afresh so that
    the learner's latest edit counts."""
    return load_module(Path(code_dir) / "trigger.py")


def s3_brake(target: Any, bucket: str) -> Callable[[], None]:
    """A brake for an S3 loop: remove every event notification of `bucket` (its trigger).

    The invocations already running or queued still finish, but what they write no longer
    triggers anything, so the loop ends within one hop."""
    def pull() -> None:
        target.client("s3").put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    return pull


# --- measuring and projecting -----------------------------------------------------------------


def invocation_curve(invocations: Iterable[Invocation], origin: float) -> list[tuple[float, int]]:
    """(seconds since `origin`, invocations started so far) at each invocation's start, from (0, 0)."""
    starts = sorted(i.started_at - origin for i in invocations)
    return [(0.0, 0)] + [(t, n) for n, t in enumerate(starts, start=1)]


def rate_bins(invocations: Iterable[Invocation], origin: float, width_s: float,
              until_s: float | None = None) -> list[tuple[float, float]]:
    """(bin start in seconds since `origin`, invocations per second started in that bin)."""
    if not width_s > 0:
        raise ValueError(f"rate_bins: width_s must be > 0, not {width_s!r}")
    starts = [i.started_at - origin for i in invocations]
    end = max([until_s or 0.0, *starts]) if starts else (until_s or 0.0)
    counts = [0] * max(1, math.ceil(end / width_s - 1e-9))
    for t in starts:
        counts[min(int(max(t, 0.0) // width_s), len(counts) - 1)] += 1
    return [(n * width_s, c / width_s) for n, c in enumerate(counts)]


@dataclass(frozen=True)
class Projection:
    """What a loop would cost if it kept going: the measured rate and billed time, priced per horizon."""

    label: str
    invocations_per_second: float
    mean_billed_ms: float
    memory_mb: int
    architecture: str
    costs: Mapping[str, float] = field(default_factory=dict)  # horizon name -> dollars

    def row(self) -> dict[str, Any]:
        return {"loop": self.label, "invocations/s": round(self.invocations_per_second, 1),
                "mean billed ms": round(self.mean_billed_ms, 1), "memory MB": self.memory_mb,
                **{f"cost in {h}": f"${c:,.2f}" for h, c in self.costs.items()}}


def project(run: LoopRun, *, scale: float = 1.0, label: str | None = None,
            horizons: Mapping[str, float] = HORIZONS) -> Projection:
    """What `run`'s loop would cost over each horizon: its measured rate times `scale` (e.g.
    100 / 3 to imagine 100 looping uploads where the run had 3), at its mean billed duration,
    memory size and architecture, priced by `metering.projected_cost` (no free tier)."""
    if not run.invocations:
        raise ValueError(f"project: run {run.label!r} has no invocations to measure")
    memories = {i.memory_mb for i in run.invocations}
    architectures = {i.architecture for i in run.invocations}
    if len(memories) != 1 or len(architectures) != 1:
        raise ValueError(f"project: run {run.label!r} mixes memory sizes {sorted(memories)} or "
                         f"architectures {sorted(architectures)}; project one configuration at a time")
    if not scale > 0:
        raise ValueError(f"project: scale must be > 0, not {scale!r}")
    memory, architecture = memories.pop(), architectures.pop()
    rate = run.rate * scale
    billed = max(1.0, run.mean_billed_ms)
    costs = {name: projected_cost(rate, billed, memory, architecture, seconds) for name, seconds in horizons.items()}
    return Projection(label or run.label, rate, billed, memory, architecture, costs)


def handler_said(inv: Invocation) -> dict[str, Any]:
    """The JSON line the lesson's handlers print for each object (`object`, `did`, `trace`: the
    trace header they were given), from the invocation's log lines; {} when there is none."""
    for line in inv.log_lines:
        start = line.find('{"object"')
        if start >= 0:
            try:
                said = json.loads(line[start:])
            except json.JSONDecodeError:
                continue
            if isinstance(said, dict):
                return said
    return {}


def trace_of(inv: Invocation) -> str | None:
    """The X-Ray trace header of the invocation: the local runtime records it; on AWS it is
    what the handler printed."""
    return inv.trace_id or handler_said(inv).get("trace")


def chains(invocations: Iterable[Invocation]) -> dict[str, list[Invocation]]:
    """Invocations grouped by X-Ray trace root: one group per chain (per original upload)."""
    from lambdalab.cloud.loops import TraceHeader

    groups: dict[str, list[Invocation]] = {}
    for inv in sorted(invocations, key=lambda i: i.started_at):
        header = TraceHeader.parse(trace_of(inv))
        groups.setdefault(header.root if header else inv.request_id, []).append(inv)
    return groups


def hop(inv: Invocation, function_arn: str) -> int:
    """Which invocation of the function `function_arn` in its chain this was: the count Lambda
    put in the trace header's Lineage field (0 when the header has none)."""
    from lambdalab.cloud.loops import TraceHeader, function_hash

    header = TraceHeader.parse(trace_of(inv))
    return header.count(function_hash(function_arn)) if header else 0


# --- S3 trigger configurations ---------------------------------------------------------------------

_CONFIG_KEYS = ("LambdaFunctionConfigurations", "QueueConfigurations", "TopicConfigurations",
                "EventBridgeConfiguration")


def notification_problems(config: Any, function_arn: str | None = None) -> list[str]:
    """What S3 would reject in a NotificationConfiguration's Lambda part (empty if nothing).

    Checks the shape, `LambdaFunctionArn` (equal to `function_arn` when given), `Events`, the
    filter rules (names `prefix`/`suffix`, at most one of each per configuration, as S3's API
    allows) and overlap: S3 refuses two configurations that share an event type when one's
    prefix starts the other's and one's suffix ends the other's (an object could match both).
    """
    if not isinstance(config, Mapping):
        return [f"the configuration must be a dict, not {type(config).__name__}"]
    problems = [f"unknown key {k!r} (S3 knows {', '.join(_CONFIG_KEYS)})" for k in config if k not in _CONFIG_KEYS]
    entries = config.get("LambdaFunctionConfigurations")
    if not isinstance(entries, list) or not entries:
        return problems + ["LambdaFunctionConfigurations must be a non-empty list"]
    rules: list[_Rule] = []
    for n, entry in enumerate(entries, start=1):
        rule, entry_problems = _entry(entry, n, function_arn)
        problems += entry_problems
        if rule is not None:
            rules.append(rule)
    ids = [r.id for r in rules if r.id is not None]
    problems += [f"Id {i!r} is used by more than one configuration" for i in sorted(set(ids)) if ids.count(i) > 1]
    for i, a in enumerate(rules):
        problems += [f"{a.where} and {b.where} overlap (a key could match both); S3 rejects that"
                     for b in rules[i + 1:] if a.overlaps(b)]
    return problems


@dataclass(frozen=True)
class _Rule:
    """One Lambda configuration of a bucket, as far as overlap goes."""

    where: str
    id: str | None
    events: frozenset[str]
    prefix: str
    suffix: str

    def overlaps(self, other: "_Rule") -> bool:
        same_keys = ((self.prefix.startswith(other.prefix) or other.prefix.startswith(self.prefix))
                     and (self.suffix.endswith(other.suffix) or other.suffix.endswith(self.suffix)))
        return same_keys and any(_event_covers(x, y) or _event_covers(y, x) for x in self.events for y in other.events)


def _event_covers(pattern: str, event: str) -> bool:
    """`s3:ObjectCreated:*` covers every `s3:ObjectCreated:...`; any other name covers itself."""
    if pattern.endswith(":*"):
        return event.startswith(pattern[:-1]) or event == pattern
    return pattern == event


def _entry(entry: Any, n: int, function_arn: str | None) -> tuple[_Rule | None, list[str]]:
    if not isinstance(entry, Mapping):
        return None, [f"configuration {n} must be a dict, not {type(entry).__name__}"]
    id_ = str(entry["Id"]) if "Id" in entry else None
    where = f"configuration {n}" + (f" ({id_})" if id_ is not None else "")
    problems = []
    arn = entry.get("LambdaFunctionArn")
    if not isinstance(arn, str) or not arn:
        problems.append(f"{where} has no LambdaFunctionArn")
    elif function_arn is not None and arn != function_arn:
        problems.append(f"{where} invokes {arn}, not the function {function_arn}")
    events = entry.get("Events")
    if not (isinstance(events, list) and events and all(isinstance(e, str) and e.startswith("s3:") for e in events)):
        problems.append(f"{where}: Events must be a non-empty list like [\"s3:ObjectCreated:*\"]")
        events = []
    filters, filter_problems = _filter_rules(entry.get("Filter"), where)
    rule = _Rule(where, id_, frozenset(events), filters.get("prefix", ""), filters.get("suffix", ""))
    return rule, problems + filter_problems


def _filter_rules(flt: Any, where: str) -> tuple[dict[str, str], list[str]]:
    if flt is None:
        return {}, []
    key = flt.get("Key") if isinstance(flt, Mapping) else None
    rules = key.get("FilterRules") if isinstance(key, Mapping) else None
    if not isinstance(rules, list):
        return {}, [f"{where}: Filter must look like {{\"Key\": {{\"FilterRules\": [...]}}}}"]
    found: dict[str, str] = {}
    problems = []
    for rule in rules:
        name = rule.get("Name") if isinstance(rule, Mapping) else None
        value = rule.get("Value") if isinstance(rule, Mapping) else None
        if name not in ("prefix", "suffix"):
            problems.append(f"{where}: filter rule name {name!r} must be \"prefix\" or \"suffix\"")
        elif not isinstance(value, str):
            problems.append(f"{where}: the {name} rule needs a string Value")
        elif name in found:
            problems.append(f"{where} has two {name} rules; S3 allows one (write one configuration per {name})")
        else:
            found[name] = value
    return found, problems


# --- the lesson's plot -----------------------------------------------------------------------------

_COLOURS = ("#d95f02", "#7570b3", "#1b9e77", "#e7298a", "#66a61e")


def plot_loop_runs(runs: Sequence[LoopRun], axes: Sequence["Axes"] | None = None,
                   bin_s: float = 0.25) -> Sequence["Axes"]:
    """Two panels: invocations so far, and invocations per second, against seconds since each
    run started; a dashed line where a budget's brake was pulled."""
    if not runs:
        raise ValueError("plot_loop_runs: no runs to plot")
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    total, per_second = axes
    for colour, run in zip(_COLOURS * len(runs), runs):
        curve = invocation_curve(run.invocations, run.started_at)
        end = run.ended_at - run.started_at
        total.step([t for t, _ in curve] + [end], [n for _, n in curve] + [curve[-1][1]], where="post",
                   color=colour, label=f"{run.label}: {run.count} ({run.stopped_by})")
        bins = rate_bins(run.invocations, run.started_at, bin_s, until_s=end)
        per_second.step([t for t, _ in bins] + [bins[-1][0] + bin_s], [r for _, r in bins] + [0.0],
                        where="post", color=colour, label=run.label)
        for ax in (total, per_second):
            if run.braked_at is not None:
                ax.axvline(run.braked_at, color=colour, linestyle="--", linewidth=1)
    total.set_xlabel("seconds since the uploads")
    total.set_ylabel("invocations so far")
    total.set_title("Invocations over time")
    total.legend(fontsize="small", loc="upper left")
    per_second.set_xlabel("seconds since the uploads")
    per_second.set_ylabel(f"invocations per second ({bin_s:g} s bins)")
    per_second.set_title("Invocation rate")
    per_second.set_ylim(bottom=0)
    return axes


__all__ = ["Budget", "HORIZONS", "LoopRun", "Projection", "allow_bucket", "chains", "handler_said", "hop",
           "invocation_curve", "plot_loop_runs", "load_trigger", "notification_problems", "project", "rate_bins",
           "s3_brake", "trace_of", "trigger_on_new_objects", "watch_loop"]
