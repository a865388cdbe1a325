"""Metric alarms evaluated as CloudWatch evaluates them; moto stores alarms but never does.

For each metric alarm (not metric-math or composite ones): the `EvaluationPeriods` most recent
periods of `Period` seconds, aligned to the epoch as CloudWatch aggregates them, the latest being
the one that holds `now`; the `Statistic` (or a `pNN` `ExtendedStatistic`) of the datapoints in
each that have exactly the alarm's dimensions (and its unit, if set); each compared with
`Threshold` by `ComparisonOperator`. Missing periods follow `TreatMissingData`: `breaching` and
`notBreaching` fill them in; `ignore` keeps the state when every period is missing; `missing`
(the default) goes to INSUFFICIENT_DATA then; otherwise only the real datapoints are judged.
`DatapointsToAlarm` (M, default N) breaching datapoints make ALARM, fewer make OK. A change of
state goes through moto's `update_state`, so the alarm's reason, reason data and history are
what `set_alarm_state` leaves. `AlarmEvaluator.evaluate(now)` does one round; the cloud also
runs it on a timer.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from lambdalab._util.stats import percentile
from lambdalab.cloud.metrics.publish import moto_time

log = logging.getLogger(__name__)

_COMPARE: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "GreaterThanOrEqualToThreshold": ("greater than or equal to", lambda v, t: v >= t),
    "GreaterThanThreshold": ("greater than", lambda v, t: v > t),
    "LessThanThreshold": ("less than", lambda v, t: v < t),
    "LessThanOrEqualToThreshold": ("less than or equal to", lambda v, t: v <= t),
}


@dataclass(frozen=True)
class Transition:
    """An alarm's change of state in one evaluation."""

    alarm: str
    old: str
    new: str
    reason: str


def _statistic(alarm: Any, values: list[float]) -> float:
    if alarm.extended_statistic:
        return percentile(values, float(alarm.extended_statistic.lstrip("p")))
    stat = alarm.statistic
    if stat == "Sum":
        return sum(values)
    if stat == "Average":
        return sum(values) / len(values)
    if stat == "Minimum":
        return min(values)
    if stat == "Maximum":
        return max(values)
    if stat == "SampleCount":
        return float(len(values))
    raise ValueError(f"statistic {stat!r} is not Sum, Average, Minimum, Maximum or SampleCount")


def _samples(datum: Any) -> list[float]:
    if hasattr(datum, "value"):
        return [datum.value]
    # An aggregated datum (StatisticValues): its sum spread over its samples keeps Sum and Average.
    count = max(1, int(datum.sample_count))
    return [datum.sum_stat / count] * count


def _period_values(backend: Any, alarm: Any, now: datetime) -> list[tuple[datetime, float | None, int]]:
    """(period start, statistic or None when missing, sample count), oldest first."""
    period = int(alarm.period)
    newest = math.floor(now.timestamp() / period) * period
    starts = [newest - period * k for k in range(int(alarm.evaluation_periods) - 1, -1, -1)]
    wanted = {(d.name, d.value) for d in alarm.dimensions}
    buckets: dict[float, list[float]] = {s: [] for s in starts}
    first, last = moto_time(starts[0]), moto_time(newest + period)
    for datum in list(backend.metric_data):
        if (datum.namespace != alarm.namespace or datum.name != alarm.metric_name
                or not first <= datum.timestamp < last
                or {(d.name, d.value) for d in datum.dimensions} != wanted
                or (alarm.unit and datum.unit != alarm.unit)):
            continue
        epoch = datum.timestamp.replace(tzinfo=timezone.utc).timestamp()
        start = math.floor(epoch / period) * period
        if start in buckets:
            buckets[start] += _samples(datum)
    return [(datetime.fromtimestamp(s, timezone.utc), _statistic(alarm, v) if v else None, len(v))
            for s, v in buckets.items()]


def _when(t: datetime) -> str:
    return t.strftime("%d/%m/%y %H:%M:%S")


def decide(alarm: Any, periods: list[tuple[datetime, float | None, int]]) -> tuple[str, str, dict] | None:
    """The state an alarm should be in, with its reason and reason data; None to keep the current one."""
    words, breaches = _COMPARE[alarm.comparison_operator]
    threshold = float(alarm.threshold)
    treat = alarm.treat_missing_data or "missing"
    real = [(t, v, n) for t, v, n in periods if v is not None]
    n_periods = len(periods)
    m = int(alarm.datapoints_to_alarm or n_periods)
    if not real and treat in ("missing", "ignore"):
        if treat == "ignore":
            return None
        return ("INSUFFICIENT_DATA",
                f"Insufficient Data: {n_periods} datapoint{'s' if n_periods != 1 else ''} were unknown.",
                {"version": "1.0", "statistic": alarm.statistic, "period": int(alarm.period),
                 "recentDatapoints": [], "threshold": threshold})
    if treat in ("breaching", "notBreaching"):
        judged = [(v, breaches(v, threshold) if v is not None else treat == "breaching") for _, v, _ in periods]
    else:
        judged = [(v, breaches(v, threshold)) for _, v, _ in real]
    bad = sum(1 for _, b in judged if b)
    state = "ALARM" if bad >= m else "OK"
    shown = [(t, v) for t, v, _ in real]
    listed = ", ".join(f"{v} ({_when(t)})" for t, v in reversed(shown))
    if not shown:
        kind = "Breaching" if treat == "breaching" else "NonBreaching"
        reason = (f"Threshold Crossed: no datapoints were received for {n_periods} "
                  f"period{'s' if n_periods != 1 else ''} and {n_periods} missing "
                  f"datapoint{'s were' if n_periods != 1 else ' was'} treated as [{kind}].")
    elif state == "ALARM":
        reason = (f"Threshold Crossed: {bad} out of the last {len(judged)} datapoints "
                  f"[{listed}] {'were' if bad != 1 else 'was'} {words} the threshold ({threshold}) "
                  f"(minimum {m} datapoint{'s' if m != 1 else ''} for OK -> ALARM transition).")
    else:
        count = len(shown)
        reason = (f"Threshold Crossed: {count} datapoint{'s' if count != 1 else ''} [{listed}] "
                  f"{'were' if count != 1 else 'was'} not {words} the threshold ({threshold}).")
    data = {"version": "1.0", "statistic": alarm.statistic or alarm.extended_statistic,
            "period": int(alarm.period), "recentDatapoints": [v for _, v in shown], "threshold": threshold,
            "evaluatedDatapoints": [{"timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.000+0000"), "value": v,
                                     "sampleCount": float(n)} for t, v, n in reversed(real)]}
    return state, reason, data


class AlarmEvaluator:
    """Evaluates every metric alarm in moto's CloudWatch, on demand or every `interval_s` seconds."""

    def __init__(self, now: Callable[[], datetime] | None = None):
        self.now = now or (lambda: datetime.now(timezone.utc))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def evaluate(self, now: datetime | None = None) -> list[Transition]:
        """One round over every account and region at `now` (the evaluator's clock by default)."""
        from moto.cloudwatch.models import cloudwatch_backends

        from lambdalab.cloud.moto import every_backend

        when = now or self.now()
        changes = []
        with self._lock:
            for backend in every_backend(cloudwatch_backends):
                for alarm in list(backend.alarms.values()):
                    if alarm.rule or alarm.metric_data_queries or alarm.comparison_operator not in _COMPARE:
                        continue  # composite, metric-math and anomaly-detection alarms are not evaluated
                    verdict = decide(alarm, _period_values(backend, alarm, when))
                    if verdict is None or verdict[0] == alarm.state_value:
                        continue
                    state, reason, data = verdict
                    changes.append(Transition(alarm.name, alarm.state_value, state, reason))
                    alarm.update_state(reason, json.dumps(data), state)
        return changes

    def start(self, interval_s: float = 10.0) -> None:
        """Evaluate every `interval_s` seconds in a background thread until `close()`."""
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(interval_s,), name="lambdalab-alarms", daemon=True)
        self._thread.start()

    def timer_round(self, interval_s: float) -> list[Transition]:
        """The timer's round: judge the moment one interval ago. A round judges the period its
        moment falls in, so a datapoint in a period's last seconds would otherwise meet only rounds
        in the next, empty period, and its alarm would never move; this way the first round after
        it still judges its period (CloudWatch too judges a period after it ends)."""
        return self.evaluate(self.now() - timedelta(seconds=interval_s))

    def _loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.timer_round(interval_s)
            except Exception:  # a bad round must not stop the timer
                log.exception("alarm evaluation failed")

    def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=10)
