"""EventBridge schedule expressions and the clock that fires them.

`parse_schedule` reads `rate(N minute|minutes|hour|hours|day|days)` and AWS's six-field
`cron(minutes hours day-of-month month day-of-week year)` (UTC; `, - * / ?`, `L`, `W`, `#`,
JAN-DEC, SUN-SAT with 1 = Sunday, years 1970-2199) and computes next fire times.

`Clock` is the local cloud's time for schedules. The notebook fast-forwards it
(`clock.advance(minutes=10)` fires every schedule due in those ten minutes, in time order, each
event carrying its scheduled time), or runs it on wall-clock time in a background thread. A rate
schedule starts when the clock first sees its rule, as AWS starts one when the rule is created.
"""

from __future__ import annotations

import calendar
import heapq
import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

UTC = timezone.utc
log = logging.getLogger(__name__)
_RATE = re.compile(r"^rate\(\s*(\d+)\s+([a-z]+)\s*\)$")
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {name: i for i, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
_DAYS = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}
MIN_YEAR, MAX_YEAR = 1970, 2199


class ScheduleExpressionError(ValueError):
    """A schedule expression EventBridge would reject; the message names the field and why."""


def _aws_dow(year: int, month: int, day: int) -> int:
    """Day of week as EventBridge counts it: 1 = Sunday ... 7 = Saturday."""
    return (calendar.weekday(year, month, day) + 1) % 7 + 1


# --- rate() ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateSchedule:
    """`rate(value unit)`: fires every `period` after it starts."""

    expression: str
    period: timedelta

    def next_after(self, t: datetime, anchor: datetime) -> datetime | None:
        """The first fire time strictly after `t`, counting from `anchor` (when the rule began)."""
        if t < anchor:
            return anchor + self.period
        periods = (t - anchor) // self.period
        return anchor + self.period * (periods + 1)


def _parse_rate(expression: str) -> RateSchedule:
    m = _RATE.match(expression)
    if not m:
        raise ScheduleExpressionError(f"{expression!r} is not rate(value unit), e.g. rate(5 minutes)")
    value, unit = int(m.group(1)), m.group(2)
    singular = unit[:-1] if unit.endswith("s") else unit
    if singular not in _RATE_UNITS:
        raise ScheduleExpressionError(f"{expression!r}: unit {unit!r} is not minute(s), hour(s) or day(s)")
    if value < 1:
        raise ScheduleExpressionError(f"{expression!r}: the value must be a positive whole number")
    if value == 1 and unit != singular:
        raise ScheduleExpressionError(f"{expression!r}: a value of 1 takes the singular unit, rate(1 {singular})")
    if value > 1 and unit == singular:
        raise ScheduleExpressionError(
            f"{expression!r}: a value above 1 takes the plural unit, rate({value} {singular}s)")
    return RateSchedule(expression, timedelta(seconds=value * _RATE_UNITS[singular]))


# --- cron() ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] = field(default_factory=dict)


_MINUTE = _Field("minutes", 0, 59)
_HOUR = _Field("hours", 0, 23)
_DOM = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTHS)
_DOW = _Field("day-of-week", 1, 7, _DAYS)
_YEAR = _Field("year", MIN_YEAR, MAX_YEAR)


def _number(text: str, f: _Field, expression: str) -> int:
    token = text.upper()
    if token in f.names:
        return f.names[token]
    if not token.isdigit():
        raise ScheduleExpressionError(f"{expression!r}: {f.name} value {text!r} is not a number"
                                      + (f" or a name ({', '.join(f.names)})" if f.names else ""))
    value = int(token)
    if not f.low <= value <= f.high:
        raise ScheduleExpressionError(f"{expression!r}: {f.name} value {value} is outside {f.low}-{f.high}")
    return value


def _span(start: int, end: int, f: _Field) -> list[int]:
    """start..end inclusive; a range like FRI-MON or 22-2 wraps around the field's end."""
    if start <= end:
        return list(range(start, end + 1))
    return list(range(start, f.high + 1)) + list(range(f.low, end + 1))


def _values(text: str, f: _Field, expression: str) -> frozenset[int]:
    """A plain field: `*`, `N`, `A-B`, `*/S`, `N/S`, `A-B/S`, joined with commas."""
    out: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ScheduleExpressionError(f"{expression!r}: {f.name} field {text!r} has an empty list item")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ScheduleExpressionError(f"{expression!r}: {f.name} step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            span = _span(f.low, f.high, f)
        elif "-" in base:
            a, _, b = base.partition("-")
            span = _span(_number(a, f, expression), _number(b, f, expression), f)
        else:
            start = _number(base, f, expression)
            span = _span(start, f.high, f) if slash else [start]
        out.update(span[::step])
    return frozenset(out)


@dataclass(frozen=True)
class _DaySpec:
    """Which days of a month a day-of-month or day-of-week field selects."""

    values: frozenset[int] = frozenset()  # days of month, or AWS weekdays (1 = SUN)
    last_day_offset: int | None = None  # L / L-n (day-of-month)
    nearest_weekday: int | None = None  # nW (day-of-month)
    last_weekday_of_month: bool = False  # LW
    last_of_weekday: int | None = None  # nL (day-of-week): the last such weekday of the month
    nth_weekday: tuple[int, int] | None = None  # d#n (day-of-week)


def _parse_dom(text: str, expression: str) -> _DaySpec:
    upper = text.upper()
    if upper == "LW":
        return _DaySpec(last_weekday_of_month=True)
    m = re.fullmatch(r"L(?:-(\d+))?", upper)
    if m:
        offset = int(m.group(1) or 0)
        if offset > 30:
            raise ScheduleExpressionError(f"{expression!r}: day-of-month L-{offset} is more than 30 days back")
        return _DaySpec(last_day_offset=offset)
    m = re.fullmatch(r"(\d+)W", upper)
    if m:
        return _DaySpec(nearest_weekday=_number(m.group(1), _DOM, expression))
    if "L" in upper or "W" in upper:
        raise ScheduleExpressionError(f"{expression!r}: day-of-month {text!r}: L and W stand alone (L, L-3, LW, 15W)")
    return _DaySpec(values=_values(text, _DOM, expression))


def _parse_dow(text: str, expression: str) -> _DaySpec:
    upper = text.upper()
    if "#" in upper:
        day, _, nth = upper.partition("#")
        if "," in upper or "-" in day or not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise ScheduleExpressionError(
                f"{expression!r}: day-of-week {text!r}: use one day#n expression, n = 1-5 (3#2 = second Tuesday)")
        return _DaySpec(nth_weekday=(_number(day, _DOW, expression), int(nth)))
    if upper == "L":
        return _DaySpec(values=frozenset({7}))  # the last day of the week: Saturday
    m = re.fullmatch(r"([A-Z0-9]+)L", upper)
    if m:
        return _DaySpec(last_of_weekday=_number(m.group(1), _DOW, expression))
    if "L" in upper:
        raise ScheduleExpressionError(f"{expression!r}: day-of-week {text!r}: L stands alone or after one day (6L)")
    return _DaySpec(values=_values(text, _DOW, expression))


def _dom_days(spec: _DaySpec, year: int, month: int) -> list[int]:
    last = calendar.monthrange(year, month)[1]
    if spec.last_day_offset is not None:
        day = last - spec.last_day_offset
        return [day] if day >= 1 else []
    if spec.last_weekday_of_month:
        day = last
        while _aws_dow(year, month, day) in (1, 7):
            day -= 1
        return [day]
    if spec.nearest_weekday is not None:
        day = spec.nearest_weekday
        if day > last:
            return []
        dow = _aws_dow(year, month, day)
        if dow == 7:  # Saturday: Friday, unless that leaves the month
            day = day - 1 if day > 1 else day + 2
        elif dow == 1:  # Sunday: Monday, unless that leaves the month
            day = day + 1 if day < last else day - 2
        return [day]
    return sorted(d for d in spec.values if d <= last)


def _dow_days(spec: _DaySpec, year: int, month: int) -> list[int]:
    last = calendar.monthrange(year, month)[1]
    first_dow = _aws_dow(year, month, 1)
    if spec.nth_weekday is not None:
        dow, nth = spec.nth_weekday
        day = 1 + (dow - first_dow) % 7 + 7 * (nth - 1)
        return [day] if day <= last else []
    if spec.last_of_weekday is not None:
        return [last - (_aws_dow(year, month, last) - spec.last_of_weekday) % 7]
    return [d for d in range(1, last + 1) if (first_dow + d - 2) % 7 + 1 in spec.values]


@dataclass(frozen=True)
class CronSchedule:
    """`cron(minutes hours day-of-month month day-of-week year)`, evaluated in UTC."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: tuple[int, ...]
    years: tuple[int, ...]
    day_of_month: _DaySpec | None  # None when '?'
    day_of_week: _DaySpec | None  # None when '?'

    def days(self, year: int, month: int) -> list[int]:
        """The days of that month this schedule fires on."""
        if self.day_of_month is not None:
            return _dom_days(self.day_of_month, year, month)
        assert self.day_of_week is not None
        return _dow_days(self.day_of_week, year, month)

    def next_after(self, t: datetime, anchor: datetime | None = None) -> datetime | None:
        """The first fire time strictly after `t` (None when the year field has run out)."""
        start = t.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        for year in self.years:
            if year < start.year:
                continue
            for month in self.months:
                if (year, month) < (start.year, start.month):
                    continue
                for day in self.days(year, month):
                    if (year, month, day) < (start.year, start.month, start.day):
                        continue
                    today = (year, month, day) == (start.year, start.month, start.day)
                    for hour in self.hours:
                        if today and hour < start.hour:
                            continue
                        for minute in self.minutes:
                            if today and hour == start.hour and minute < start.minute:
                                continue
                            return datetime(year, month, day, hour, minute, tzinfo=UTC)
        return None


def _parse_cron(expression: str) -> CronSchedule:
    m = re.fullmatch(r"cron\((.*)\)", expression.strip())
    if not m:
        raise ScheduleExpressionError(f"{expression!r} is not cron(fields)")
    fields = m.group(1).split()
    if len(fields) != 6:
        raise ScheduleExpressionError(
            f"{expression!r} has {len(fields)} fields; cron takes 6: minutes hours day-of-month month day-of-week year")
    minute, hour, dom, month, dow, year = fields
    for text, f in ((minute, _MINUTE), (hour, _HOUR), (month, _MONTH), (year, _YEAR)):
        if "?" in text or "#" in text:
            raise ScheduleExpressionError(f"{expression!r}: {f.name} field {text!r} allows only , - * /")
    if (dom == "?") == (dow == "?"):
        raise ScheduleExpressionError(
            f"{expression!r}: exactly one of day-of-month and day-of-week must be '?' (e.g. cron(0 10 * * ? *))")
    return CronSchedule(
        expression=expression,
        minutes=tuple(sorted(_values(minute, _MINUTE, expression))),
        hours=tuple(sorted(_values(hour, _HOUR, expression))),
        months=tuple(sorted(_values(month, _MONTH, expression))),
        years=tuple(sorted(_values(year, _YEAR, expression))),
        day_of_month=None if dom == "?" else _parse_dom(dom, expression),
        day_of_week=None if dow == "?" else _parse_dow(dow, expression),
    )


Schedule = RateSchedule | CronSchedule


def parse_schedule(expression: str) -> Schedule:
    """A rate() or cron() expression, checked as EventBridge checks it."""
    if not isinstance(expression, str):
        raise ScheduleExpressionError(f"a schedule expression is a string, got {expression!r}")
    text = expression.strip()
    if text.startswith("rate("):
        return _parse_rate(text)
    if text.startswith("cron("):
        return _parse_cron(text)
    raise ScheduleExpressionError(f"{expression!r} is neither rate(...) nor cron(...)")


def fire_times(expression: str, after: datetime, count: int, anchor: datetime | None = None) -> list[datetime]:
    """The next `count` fire times after `after` (a rate counts from `anchor`, default `after`)."""
    schedule = parse_schedule(expression)
    anchor = anchor or after
    out: list[datetime] = []
    t = after
    while len(out) < count:
        nxt = schedule.next_after(t, anchor)
        if nxt is None:
            break
        out.append(nxt)
        t = nxt
    return out


# --- the clock ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduledRule:
    """A rule with a schedule, as the schedule source reports it."""

    arn: str
    expression: str
    enabled: bool
    ref: Any = None  # opaque to the clock; handed back to `fire`
    schedule: "Schedule | None" = None  # already parsed (a Scheduler schedule); else parse `expression`
    starts: datetime | None = None  # when a rate schedule's periods count from (default: first seen)


class ScheduleSource(Protocol):
    def scheduled_rules(self) -> list[ScheduledRule]: ...
    def fire(self, rule: ScheduledRule, when: datetime) -> list[Any]: ...


@dataclass
class Firing:
    """One scheduled event fired by the clock."""

    rule_arn: str
    time: datetime
    deliveries: list[Any]
    enabled: bool = True  # a disabled rule's schedule keeps time but delivers nothing


@dataclass
class _State:
    rule: ScheduledRule
    schedule: Schedule | None
    anchor: datetime
    next: datetime | None
    error: str | None = None


def _utc(when: datetime) -> datetime:
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise ValueError(f"time {when!r} must be a timezone-aware datetime")
    return when.astimezone(UTC)


class Clock:
    """Schedules' time: fast-forward it with `advance`, or let it follow the wall clock."""

    def __init__(self, source: ScheduleSource, *, start: datetime | None = None, max_firings: int = 10_000):
        self._sources: list[ScheduleSource] = [source]
        self._source_of: dict[str, ScheduleSource] = {}  # schedule ARN -> the source that reported it
        self._now = _utc(start) if start else datetime.now(UTC).replace(microsecond=0)
        self.max_firings = max_firings
        self.firings: list[Firing] = []
        self._states: dict[str, _State] = {}
        self._lock = threading.RLock()
        self._offset: timedelta | None = None  # set while following the wall clock
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def add_source(self, source: ScheduleSource) -> None:
        """Fire `source`'s schedules too (EventBridge Scheduler shares the rules' clock)."""
        with self._lock:
            if source not in self._sources:
                self._sources.append(source)

    @property
    def now(self) -> datetime:
        with self._lock:
            if self._offset is not None:
                return datetime.now(UTC) + self._offset
            return self._now

    @property
    def realtime(self) -> bool:
        return self._thread is not None

    def advance(self, delta: timedelta | float | int = 0, *, minutes: float = 0, hours: float = 0,
                days: float = 0) -> list[Firing]:
        """Move time forward (a timedelta or seconds, plus any minutes/hours/days) and fire every
        schedule that falls due, in time order. Returns the firings."""
        if isinstance(delta, timedelta):
            step = delta
        elif isinstance(delta, (int, float)) and not isinstance(delta, bool):
            step = timedelta(seconds=delta)
        else:
            raise TypeError(f"advance takes a timedelta or a number of seconds, got {delta!r}")
        step += timedelta(minutes=minutes, hours=hours, days=days)
        if step < timedelta(0):
            raise ValueError(f"the clock only moves forward; got {step}")
        with self._lock:
            if self._offset is not None:
                self._offset += step
            return self._run_until(self.now if self._offset is not None else self._now + step)

    def advance_to(self, when: datetime) -> list[Firing]:
        """Move time forward to `when` (timezone-aware), firing what falls due."""
        with self._lock:
            when = _utc(when)
            if when < self.now:
                raise ValueError(
                    f"the clock only moves forward: it is {self.now:%Y-%m-%d %H:%M:%S} UTC, asked for {when}")
            return self.advance(when - self.now)

    def schedules(self) -> list[dict[str, Any]]:
        """What the clock knows: each scheduled rule, its expression and next fire time."""
        with self._lock:
            self._sync(self.now)
            return [{"rule_arn": arn, "expression": s.rule.expression, "enabled": s.rule.enabled,
                     "next": s.next, "error": s.error} for arn, s in sorted(self._states.items())]

    def forget(self) -> None:
        """Drop every schedule's state and history (rules seen again start afresh)."""
        with self._lock:
            self._states.clear()
            self.firings.clear()

    # -- real time -------------------------------------------------------------------------
    def start_realtime(self, tick_s: float = 1.0) -> None:
        """Follow the wall clock from now on, checking schedules every `tick_s` seconds."""
        if tick_s <= 0:
            raise ValueError(f"tick_s must be positive, got {tick_s!r}")
        with self._lock:
            if self._thread is not None:
                return
            self._offset = self._now - datetime.now(UTC)
            self._stop.clear()
            self._thread = threading.Thread(target=self._tick_loop, args=(tick_s,),
                                            name="lambdalab-clock", daemon=True)
            self._thread.start()

    def stop_realtime(self) -> None:
        """Freeze time where it is; only `advance` moves it afterwards."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout=10)
        with self._lock:
            self._now = self.now
            self._offset = None
            self._thread = None

    def close(self) -> None:
        self.stop_realtime()

    def _tick_loop(self, tick_s: float) -> None:
        while not self._stop.wait(tick_s):
            try:
                with self._lock:
                    if self._offset is not None:
                        self._run_until(self.now)
            except Exception:  # a bad tick must not stop the clock
                log.exception("clock tick failed")

    # -- firing ----------------------------------------------------------------------------
    def _sync(self, now: datetime) -> None:
        seen = set()
        for source in self._sources:
            for rule in source.scheduled_rules():
                seen.add(rule.arn)
                self._source_of[rule.arn] = source
                state = self._states.get(rule.arn)
                if state is not None and state.rule.expression == rule.expression:
                    state.rule = rule  # enabled/disabled may have changed; the schedule keeps time
                    continue
                try:
                    schedule = rule.schedule or parse_schedule(rule.expression)
                    anchor = rule.starts or now
                    self._states[rule.arn] = _State(rule, schedule, anchor, schedule.next_after(now, anchor))
                except ValueError as e:
                    self._states[rule.arn] = _State(rule, None, now, None, error=str(e))
        for arn in set(self._states) - seen:
            del self._states[arn]
            self._source_of.pop(arn, None)

    def _run_until(self, target: datetime) -> list[Firing]:
        start = self._now if self._offset is None else min(self._now, target)
        self._sync(start)
        due: list[tuple[datetime, str]] = [(s.next, arn) for arn, s in self._states.items()
                                           if s.next is not None and s.next <= target]
        heapq.heapify(due)
        # Plan on copies first: a refused jump must leave every schedule where it was.
        upcoming = {arn: s.next for arn, s in self._states.items()}
        plan: list[tuple[datetime, _State]] = []
        while due:
            when, arn = heapq.heappop(due)
            state = self._states[arn]
            plan.append((when, state))
            if len(plan) > self.max_firings:
                raise ValueError(f"advancing to {target:%Y-%m-%d %H:%M} UTC would fire more than {self.max_firings} "
                                 "scheduled events; advance in smaller steps or raise clock.max_firings")
            assert state.schedule is not None
            upcoming[arn] = state.schedule.next_after(when, state.anchor)
            if upcoming[arn] is not None and upcoming[arn] <= target:
                heapq.heappush(due, (upcoming[arn], arn))
        for arn, nxt in upcoming.items():
            self._states[arn].next = nxt
        fired: list[Firing] = []
        for when, state in plan:
            self._now = when
            source = self._source_of.get(state.rule.arn, self._sources[0])
            deliveries = source.fire(state.rule, when) if state.rule.enabled else []
            fired.append(Firing(state.rule.arn, when, deliveries, enabled=state.rule.enabled))
        self._now = target
        self.firings.extend(fired)
        return fired
