"""EventBridge delivery for the local cloud: event patterns, target input, Lambda targets, schedules.

moto stores rules and targets, but it matches events with an incomplete pattern language, delivers
to disabled rules and to schedule-only rules, never fires schedules, and raises on a Lambda target.
While an `EventBridgeDelivery` is open it takes over the one place every event passes through in
moto (`Rule.send_to_targets`: `PutEvents`, S3's EventBridge notifications, archive replays):

- the rule must be ENABLED and have an event pattern, and the event must match it under AWS's
  pattern language (`compile_pattern`, the semantics of aws/event-ruler that EventBridge uses);
- each Lambda target is invoked asynchronously with the event in AWS's shape, after the target's
  `Input`, `InputPath` or `InputTransformer`;
- every other target (SQS, CloudWatch Logs, another bus, an archive) stays moto's business.

It also validates `PutRule` patterns and schedule expressions as EventBridge does, answers
`TestEventPattern`, and owns the `Clock` (lambdalab.cloud.eventbridge.schedules) that fires `rate()`/`cron()` rules.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
import logging
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from lambdalab.cloud.eventbridge.schedules import Clock, ScheduledRule, parse_schedule

log = logging.getLogger(__name__)

# The invoke hook: (function name, payload, invocation_type="Event") -> anything (e.g. AsyncEvent).
InvokeFn = Callable[..., Any]


class InvalidEventPatternError(ValueError):
    """An event pattern EventBridge would reject; the message says where and why."""


# --- the pattern language -----------------------------------------------------------------------

_MISSING = object()  # a field the event does not have
_NUMERIC_OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, "=": lambda a, b: a == b,
                ">=": lambda a, b: a >= b, ">": lambda a, b: a > b}
# event-ruler's numeric range: ±5.0e9.
_NUMERIC_LIMIT = 5.0e9


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    return json.dumps(value) if _is_jsonable(value) else repr(value)


def _is_jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


class _Filter:
    """One entry of a leaf's value list; matches one scalar event value."""

    def matches(self, value: Any) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class _Exact(_Filter):
    expected: Any

    def matches(self, value: Any) -> bool:
        # JSON types never cross: "5" is not 5, true is not 1.
        if _is_number(self.expected):
            return _is_number(value) and value == self.expected
        if isinstance(self.expected, bool) or self.expected is None:
            return value is self.expected
        return isinstance(value, str) and value == self.expected


@dataclass(frozen=True)
class _Prefix(_Filter):
    text: str
    ignore_case: bool = False

    def matches(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        return value.lower().startswith(self.text.lower()) if self.ignore_case else value.startswith(self.text)


@dataclass(frozen=True)
class _Suffix(_Filter):
    text: str
    ignore_case: bool = False

    def matches(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        return value.lower().endswith(self.text.lower()) if self.ignore_case else value.endswith(self.text)


@dataclass(frozen=True)
class _EqualsIgnoreCase(_Filter):
    text: str

    def matches(self, value: Any) -> bool:
        return isinstance(value, str) and value.casefold() == self.text.casefold()


@dataclass(frozen=True)
class _Wildcard(_Filter):
    regex: re.Pattern

    def matches(self, value: Any) -> bool:
        return isinstance(value, str) and self.regex.fullmatch(value) is not None


@dataclass(frozen=True)
class _Numeric(_Filter):
    conditions: tuple[tuple[str, float], ...]

    def matches(self, value: Any) -> bool:
        return _is_number(value) and all(_NUMERIC_OPS[op](value, bound) for op, bound in self.conditions)


@dataclass(frozen=True)
class _Cidr(_Filter):
    network: ipaddress.IPv4Network | ipaddress.IPv6Network

    def matches(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        try:
            return ipaddress.ip_address(value) in self.network
        except ValueError:
            return False


@dataclass(frozen=True)
class _AnythingBut(_Filter):
    excluded: tuple[_Filter, ...]

    def matches(self, value: Any) -> bool:
        return not any(f.matches(value) for f in self.excluded)


@dataclass(frozen=True)
class _Exists(_Filter):
    present: bool

    def matches(self, value: Any) -> bool:  # decided on presence, see _Leaf.matches
        return False


@dataclass(frozen=True)
class _Leaf:
    filters: tuple[_Filter, ...]

    def matches(self, value: Any) -> bool:
        values = _leaf_values(value)
        for f in self.filters:
            if isinstance(f, _Exists):
                if f.present == bool(values):
                    return True
            elif any(f.matches(v) for v in values):
                return True
        return False


@dataclass(frozen=True)
class _Object:
    fields: tuple[tuple[str, "_Object | _Leaf"], ...]
    alternatives: tuple[tuple["_Object", ...], ...] = ()  # each "$or": one of these must match

    def matches(self, value: Any) -> bool:
        if isinstance(value, list):
            objects = [v for v in _flatten(value) if isinstance(v, dict)]
            if objects:
                # Array consistency: every field matched must come from the same element.
                return any(self._matches_object(o) for o in objects)
            value = _MISSING
        return self._matches_object(value if isinstance(value, dict) else _MISSING)

    def _matches_object(self, obj: Any) -> bool:
        for key, child in self.fields:
            child_value = obj.get(key, _MISSING) if isinstance(obj, dict) else _MISSING
            if not child.matches(child_value):
                return False
        return all(any(alt.matches(obj) for alt in group) for group in self.alternatives)


def _flatten(items: list) -> list:
    out: list = []
    for item in items:
        out.extend(_flatten(item) if isinstance(item, list) else [item])
    return out


def _leaf_values(value: Any) -> list:
    """The scalars a leaf sees: none when absent or an object (exists only works on leaves)."""
    if value is _MISSING or isinstance(value, dict):
        return []
    if isinstance(value, list):
        return [v for v in _flatten(value) if not isinstance(v, dict)]
    return [value]


@dataclass(frozen=True)
class EventPattern:
    """A compiled EventBridge event pattern; `matches(event)` decides as EventBridge does."""

    source: str
    root: _Object

    def matches(self, event: Any) -> bool:
        if not isinstance(event, dict):
            raise TypeError(f"an event is a JSON object (dict), got {type(event).__name__}")
        return self.root.matches(event)


def compile_pattern(pattern: str | dict) -> EventPattern:
    """Parse and check an event pattern (JSON text or dict); raises InvalidEventPatternError."""
    if isinstance(pattern, str):
        try:
            parsed = json.loads(pattern)
        except json.JSONDecodeError as e:
            raise InvalidEventPatternError(f"pattern is not valid JSON ({e.msg} at character {e.pos})") from None
        text = pattern
    else:
        parsed, text = pattern, json.dumps(pattern)
    if not isinstance(parsed, dict):
        raise InvalidEventPatternError(f"a pattern is a JSON object, got {_describe(parsed)}")
    return EventPattern(text, _compile_object(parsed, ""))


@functools.lru_cache(maxsize=512)
def _cached_pattern(text: str) -> EventPattern:
    return compile_pattern(text)


def _compile_object(node: dict, path: str) -> _Object:
    fields: list[tuple[str, _Object | _Leaf]] = []
    alternatives: list[tuple[_Object, ...]] = []
    for key, value in node.items():
        where = f"{path}.{key}" if path else key
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, dict) for v in value):
                raise InvalidEventPatternError(f"'{where}' must be a list of at least two pattern objects")
            alternatives.append(tuple(_compile_object(v, path) for v in value))
        elif isinstance(value, dict):
            fields.append((key, _compile_object(value, where)))
        elif isinstance(value, list):
            if not value:
                raise InvalidEventPatternError(f"'{where}': empty arrays are not allowed")
            fields.append((key, _Leaf(tuple(_compile_filter(v, where) for v in value))))
        else:
            raise InvalidEventPatternError(f"'{where}' must be an object or an array, got {_describe(value)}")
    return _Object(tuple(fields), tuple(alternatives))


def _compile_filter(item: Any, where: str) -> _Filter:
    if item is None or isinstance(item, (str, bool)) or _is_number(item):
        return _Exact(item)
    if isinstance(item, list):
        raise InvalidEventPatternError(f"'{where}': a value list cannot contain arrays")
    if not isinstance(item, dict) or len(item) != 1:
        raise InvalidEventPatternError(f"'{where}': a match operator is an object with exactly one key, got {_describe(item)}")
    (name, arg), = item.items()
    builder = _OPERATORS.get(name)
    if builder is None:
        raise InvalidEventPatternError(f"'{where}': unrecognized match type {name!r}; valid: {', '.join(sorted(_OPERATORS))}")
    return builder(arg, where)


def _string_arg(name: str, arg: Any, where: str) -> str:
    if not isinstance(arg, str):
        raise InvalidEventPatternError(f"'{where}': {name} takes a string, got {_describe(arg)}")
    return arg


def _ignore_case_arg(name: str, arg: Any, where: str) -> tuple[str, bool]:
    """`"x"` or `{"equals-ignore-case": "x"}` (prefix and suffix accept both)."""
    if isinstance(arg, dict):
        if list(arg) != ["equals-ignore-case"]:
            raise InvalidEventPatternError(f"'{where}': {name} takes a string or {{\"equals-ignore-case\": string}}")
        return _string_arg(name, arg["equals-ignore-case"], where), True
    return _string_arg(name, arg, where), False


def _prefix(arg: Any, where: str) -> _Filter:
    return _Prefix(*_ignore_case_arg("prefix", arg, where))


def _suffix(arg: Any, where: str) -> _Filter:
    return _Suffix(*_ignore_case_arg("suffix", arg, where))


def _equals_ignore_case(arg: Any, where: str) -> _Filter:
    return _EqualsIgnoreCase(_string_arg("equals-ignore-case", arg, where))


def _wildcard(arg: Any, where: str) -> _Filter:
    text = _string_arg("wildcard", arg, where)
    regex, i = "", 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text) or text[i + 1] not in "*\\":
                raise InvalidEventPatternError(f"'{where}': in wildcard {text!r} a backslash may only escape '*' or '\\'")
            regex += re.escape(text[i + 1])
            i += 2
            continue
        if c == "*":
            if text[i + 1:i + 2] == "*":
                raise InvalidEventPatternError(f"'{where}': wildcard {text!r} has consecutive '*' characters")
            regex += ".*"
        else:
            regex += re.escape(c)
        i += 1
    return _Wildcard(re.compile(regex, re.DOTALL))


def _numeric(arg: Any, where: str) -> _Filter:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise InvalidEventPatternError(f"'{where}': numeric takes [op, number] or [op, number, op, number], got {_describe(arg)}")
    conditions = []
    for op, bound in zip(arg[::2], arg[1::2]):
        if op not in _NUMERIC_OPS:
            raise InvalidEventPatternError(f"'{where}': numeric operator {_describe(op)} is not one of {', '.join(_NUMERIC_OPS)}")
        if not _is_number(bound) or not math.isfinite(bound) or abs(bound) > _NUMERIC_LIMIT:
            raise InvalidEventPatternError(f"'{where}': numeric bound {_describe(bound)} must be a number between -5e9 and 5e9")
        conditions.append((op, bound))
    if len(conditions) == 2:
        (low_op, low), (high_op, high) = conditions
        if low_op not in (">", ">=") or high_op not in ("<", "<="):
            raise InvalidEventPatternError(f"'{where}': a numeric range is [\">\" or \">=\", low, \"<\" or \"<=\", high]")
        if low > high:
            raise InvalidEventPatternError(f"'{where}': numeric range low {low} is above high {high}")
    return _Numeric(tuple(conditions))


def _cidr(arg: Any, where: str) -> _Filter:
    text = _string_arg("cidr", arg, where)
    try:
        return _Cidr(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise InvalidEventPatternError(f"'{where}': {text!r} is not a CIDR block like '10.0.0.0/24'") from None


def _exists(arg: Any, where: str) -> _Filter:
    if not isinstance(arg, bool):
        raise InvalidEventPatternError(f"'{where}': exists takes true or false, got {_describe(arg)}")
    return _Exists(arg)


def _anything_but(arg: Any, where: str) -> _Filter:
    if isinstance(arg, dict):
        if len(arg) != 1 or next(iter(arg)) not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
            raise InvalidEventPatternError(
                f"'{where}': anything-but takes a value, a list, or one of prefix, suffix, equals-ignore-case, wildcard")
        (name, inner), = arg.items()
        values = inner if isinstance(inner, list) and name in ("equals-ignore-case", "wildcard") else [inner]
        if not values:
            raise InvalidEventPatternError(f"'{where}': anything-but {name} list is empty")
        return _AnythingBut(tuple(_OPERATORS[name](v, where) for v in values))
    values = arg if isinstance(arg, list) else [arg]
    if not values:
        raise InvalidEventPatternError(f"'{where}': anything-but list is empty")
    if not (all(isinstance(v, str) for v in values) or all(_is_number(v) for v in values)):
        raise InvalidEventPatternError(f"'{where}': anything-but values must be all strings or all numbers, got {_describe(arg)}")
    return _AnythingBut(tuple(_Exact(v) for v in values))


_OPERATORS: dict[str, Callable[[Any, str], _Filter]] = {
    "prefix": _prefix, "suffix": _suffix, "equals-ignore-case": _equals_ignore_case, "wildcard": _wildcard,
    "numeric": _numeric, "cidr": _cidr, "exists": _exists, "anything-but": _anything_but,
}


def matches(pattern: str | dict | EventPattern, event: dict) -> bool:
    """Does `event` match `pattern`? (What `TestEventPattern` answers.)"""
    compiled = pattern if isinstance(pattern, EventPattern) else compile_pattern(pattern)
    return compiled.matches(event)


# --- target input ----------------------------------------------------------------------------------

_PATH_TOKEN = re.compile(r"\.(\*|[^.\[\]]+)|\[(\d+|\*)\]")


def json_path(document: Any, path: str) -> tuple[bool, Any]:
    """EventBridge's JSONPath subset ($, .name, [index], * wildcards). (found, value); a path
    with a wildcard yields the list of everything it reached."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise ValueError(f"JSON path {path!r} must start with '$'")
    rest, tokens = path[1:], []
    while rest:
        m = _PATH_TOKEN.match(rest)
        if not m:
            raise ValueError(f"JSON path {path!r}: cannot read {rest!r} (use dot notation, [index] or *)")
        tokens.append(m.group(1) if m.group(1) is not None else m.group(2))
        rest = rest[m.end():]
    nodes, wild = [document], False
    for token in tokens:
        reached = []
        for node in nodes:
            if token == "*":
                wild = True
                reached.extend(node.values() if isinstance(node, dict) else node if isinstance(node, list) else [])
            elif isinstance(node, dict) and token in node:
                reached.append(node[token])
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                reached.append(node[int(token)])
        nodes = reached
    if wild:
        return True, nodes
    return (True, nodes[0]) if nodes else (False, None)


_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def render_template(template: str, variables: dict[str, tuple[bool, Any]]) -> Any:
    """Fill an InputTransformer template. A placeholder inside a JSON string gets the value's text
    (a string without quotes); outside one it gets the value as JSON. An unresolved path gives
    null (or nothing inside a string). Returns the parsed JSON, or the text when it is not JSON."""
    out: list[str] = []
    in_string = escaped = False
    i = 0
    while i < len(template):
        c = template[i]
        m = _PLACEHOLDER.match(template, i) if c == "<" else None
        if m and m.group(1) in variables:
            found, value = variables[m.group(1)]
            if in_string:
                text = value if isinstance(value, str) else json.dumps(value) if found else ""
                out.append(json.dumps(text)[1:-1])
            else:
                out.append(json.dumps(value) if found else "null")
            i = m.end()
            continue
        out.append(c)
        if escaped:
            escaped = False
        elif c == "\\" and in_string:
            escaped = True
        elif c == '"':
            in_string = not in_string
        i += 1
    text = "".join(out)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def target_input(target: dict, event: dict, *, rule_arn: str, rule_name: str, ingestion_time: str) -> Any:
    """What a target receives: `Input` (constant JSON), `InputPath`, `InputTransformer`, or the event."""
    if target.get("Input") is not None:
        try:
            return json.loads(target["Input"])
        except json.JSONDecodeError as e:
            raise ValueError(f"target {target.get('Id')!r}: Input is not valid JSON ({e.msg})") from None
    if target.get("InputPath"):
        return json_path(event, target["InputPath"])[1]
    transformer = target.get("InputTransformer")
    if transformer:
        without_detail = {k: v for k, v in event.items() if k != "detail"}
        variables: dict[str, tuple[bool, Any]] = {
            "aws.events.rule-arn": (True, rule_arn),
            "aws.events.rule-name": (True, rule_name),
            "aws.events.event.ingestion-time": (True, ingestion_time),
            "aws.events.event": (True, without_detail),
            "aws.events.event.json": (True, event),
        }
        for name, path in (transformer.get("InputPathsMap") or {}).items():
            variables[name] = json_path(event, path)
        return render_template(transformer.get("InputTemplate", ""), variables)
    return event


# --- the event in AWS's shape --------------------------------------------------------------------


def iso_time(value: Any) -> str:
    """EventBridge's `time`: ISO 8601 to the second, UTC (moto keeps epoch seconds)."""
    if isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    elif _is_number(value):
        when = datetime.fromtimestamp(value, timezone.utc)
    elif isinstance(value, str) and value:
        try:
            when = datetime.fromtimestamp(float(value), timezone.utc)
        except ValueError:
            return value  # already ISO text
    else:
        when = datetime.now(timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_MOTO_PLACEHOLDER_ID = "17793124-05d4-b198-2fde-7ededc63b103"  # moto.events.utils._BASE_EVENT_MESSAGE
_AWS_KEYS = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")


def aws_event(moto_event: dict) -> dict:
    """The event as a rule's target sees it: AWS's keys and order, `time` as ISO text,
    `replay-name` kept for replays, moto's internal `ingestion-time` left out."""
    event = {key: copy.deepcopy(moto_event.get(key)) for key in _AWS_KEYS}
    event["version"] = event["version"] or "0"
    if not event["id"] or event["id"] == _MOTO_PLACEHOLDER_ID:
        # moto's S3 notifications reuse one fixed id; derive a stable one per event instead,
        # so every rule that receives the same event sees the same id, as on AWS.
        seed = json.dumps([moto_event.get("time"), moto_event.get("resources"), moto_event.get("detail")],
                          sort_keys=True, default=str)
        event["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, seed))
    event["time"] = iso_time(moto_event.get("time"))
    event["resources"] = list(event["resources"] or [])
    if event["detail"] is None:
        event["detail"] = {}
    if moto_event.get("replay-name"):
        event["replay-name"] = moto_event["replay-name"]
    return event


# --- delivery -----------------------------------------------------------------------------------


@dataclass
class Delivery:
    """One event handed to one Lambda target (or a target moto could not serve)."""

    rule_arn: str
    target_id: str
    target_arn: str
    event: Any  # what the target received, after Input/InputPath/InputTransformer
    function_name: str | None = None
    handle: Any = None  # what the invoke hook returned (the runtime's AsyncEvent)
    error: str | None = None
    at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.error is None


def lambda_function_name(arn: str) -> str | None:
    """`my-fn` for arn:aws:lambda:REGION:ACCOUNT:function:my-fn[:qualifier]; None if not Lambda."""
    parts = arn.split(":")
    if len(parts) >= 7 and parts[2] == "lambda" and parts[5] == "function":
        return parts[6]
    return None


_lock = threading.RLock()
_active: list["EventBridgeDelivery"] = []
_originals: dict[str, Any] = {}


def _current() -> "EventBridgeDelivery | None":
    with _lock:
        return _active[-1] if _active else None


def _patched_send_to_targets(rule: Any, event: dict, transform_input: bool = True) -> None:
    delivery = _current()
    if delivery is None:
        return _originals["send_to_targets"](rule, event, transform_input)
    delivery.on_rule_event(rule, event, transform_input)


def _patched_put_rule(backend: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    from moto.events.exceptions import InvalidEventPatternException, ValidationException

    pattern = kwargs.get("event_pattern")
    schedule = kwargs.get("scheduled_expression")
    if pattern:
        try:
            _cached_pattern(pattern)
        except InvalidEventPatternError as e:
            raise InvalidEventPatternException(reason=str(e)) from None
    if schedule:
        try:
            parse_schedule(schedule)
        except ValueError as e:
            raise ValidationException(f"Parameter ScheduleExpression is not valid. {e}") from None
    return _originals["put_rule"](backend, name, *args, **kwargs)


def _patched_test_event_pattern(handler: Any) -> str:
    from moto.events.exceptions import InvalidEventPatternException, ValidationException

    try:
        event = json.loads(handler._get_param("Event") or "")
    except json.JSONDecodeError:
        raise ValidationException("Parameter Event is not valid JSON.") from None
    if not isinstance(event, dict):
        raise ValidationException("Parameter Event must be a JSON object.")
    missing = [k for k in ("id", "account", "source", "time", "region", "detail-type") if k not in event]
    if missing:
        raise ValidationException(f"Parameter Event is not valid. Missing fields: {', '.join(missing)}")
    try:
        pattern = _cached_pattern(handler._get_param("EventPattern") or "")
    except InvalidEventPatternError as e:
        raise InvalidEventPatternException(reason=str(e)) from None
    return json.dumps({"Result": pattern.matches(event)})


def _install(delivery: "EventBridgeDelivery") -> None:
    from moto.events.models import EventsBackend, Rule
    from moto.events.responses import EventsHandler

    with _lock:
        if not _active:
            _originals.update(send_to_targets=Rule.send_to_targets, put_rule=EventsBackend.put_rule,
                              test_event_pattern=EventsHandler.test_event_pattern)
            Rule.send_to_targets = _patched_send_to_targets
            EventsBackend.put_rule = _patched_put_rule
            EventsHandler.test_event_pattern = _patched_test_event_pattern
        _active.append(delivery)


def _uninstall(delivery: "EventBridgeDelivery") -> None:
    from moto.events.models import EventsBackend, Rule
    from moto.events.responses import EventsHandler

    with _lock:
        if delivery in _active:
            _active.remove(delivery)
        if not _active and _originals:
            Rule.send_to_targets = _originals.pop("send_to_targets")
            EventsBackend.put_rule = _originals.pop("put_rule")
            EventsHandler.test_event_pattern = _originals.pop("test_event_pattern")


def _match_all_pattern() -> Any:
    from moto.events.models import EventPattern as MotoEventPattern

    return MotoEventPattern(None, {})


class EventBridgeDelivery:
    """Delivers EventBridge events and schedules to Lambda targets while open.

    `invoke(function_name, payload, invocation_type="Event")` is called once per matched Lambda
    target; payload is a dict or list, or bytes holding JSON text (a string or number input).
    The runtime's `LocalRuntime.invoke` fits as is. `clock` fires scheduled rules.
    """

    def __init__(self, invoke: InvokeFn, *, clock_start: datetime | None = None):
        if not callable(invoke):
            raise TypeError(f"invoke must be callable, got {invoke!r}")
        self._invoke = invoke
        self.deliveries: list[Delivery] = []
        self._deliveries_lock = threading.Lock()
        self._open = False
        self.clock = Clock(self, start=clock_start)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "EventBridgeDelivery":
        if not self._open:
            _install(self)
            self._open = True
        return self

    def close(self) -> None:
        """Stop the clock's real-time thread and give moto its own behaviour back."""
        self.clock.close()
        if self._open:
            _uninstall(self)
            self._open = False

    def __enter__(self) -> "EventBridgeDelivery":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset(self) -> None:
        """Forget past deliveries and schedule state (after the cloud empties its services)."""
        with self._deliveries_lock:
            self.deliveries.clear()
        self.clock.forget()

    # -- events from moto ------------------------------------------------------------------
    def on_rule_event(self, rule: Any, moto_event: dict, transform_input: bool = True) -> list[Delivery]:
        """moto hands one event to one rule: deliver it if the rule is enabled and matches."""
        raw = rule.event_pattern.dump()
        if rule.state != "ENABLED" or not raw:
            return []  # disabled, or a schedule-only rule: EventBridge matches no events to it
        try:
            pattern = _cached_pattern(raw)
        except InvalidEventPatternError as e:
            log.warning("rule %s has an invalid event pattern, nothing delivered: %s", rule.arn, e)
            return []
        event = aws_event(moto_event)
        if not pattern.matches(event):
            return []
        return self.deliver(rule, moto_event, event, transform_input)

    def deliver(self, rule: Any, moto_event: dict, event: dict | None = None,
                transform_input: bool = True) -> list[Delivery]:
        """Send one (already matched) event to every target of a moto rule."""
        event = aws_event(moto_event) if event is None else event
        lambda_targets, other_targets = [], []
        for target in list(rule.targets):
            (lambda_targets if lambda_function_name(target["Arn"]) else other_targets).append(target)
        made = [self._to_lambda(rule, target, event, moto_event) for target in lambda_targets]
        if other_targets:
            made += self._to_moto(rule, other_targets, moto_event, transform_input)
        with self._deliveries_lock:
            self.deliveries.extend(made)
        return made

    def _to_lambda(self, rule: Any, target: dict, event: dict, moto_event: dict) -> Delivery:
        name = lambda_function_name(target["Arn"])
        delivery = Delivery(rule.arn, target["Id"], target["Arn"], None, function_name=name)
        try:
            payload = target_input(target, event, rule_arn=rule.arn, rule_name=rule.name,
                                   ingestion_time=iso_time(moto_event.get("ingestion-time")))
            delivery.event = payload
            body = payload if isinstance(payload, (dict, list)) else json.dumps(payload).encode()
            delivery.handle = self._invoke(name, body, invocation_type="Event")
        except Exception as e:  # EventBridge keeps going with the other targets
            delivery.error = f"{type(e).__name__}: {e}"
            log.warning("EventBridge rule %s could not invoke %s: %s", rule.arn, name, delivery.error)
        return delivery

    def _to_moto(self, rule: Any, targets: list[dict], moto_event: dict, transform_input: bool) -> list[Delivery]:
        # A copy of the rule with only these targets and a pattern that matches everything:
        # the match was already decided by our pattern language.
        # One target at a time: a target that fails (a deleted queue, a kind moto cannot serve)
        # must not fail PutEvents or the other targets, as on AWS.
        made = []
        for target in targets:
            clone = copy.copy(rule)
            clone.targets = [target]
            clone.event_pattern = _match_all_pattern()
            try:
                _originals["send_to_targets"](clone, copy.deepcopy(moto_event), transform_input)
                continue
            except NotImplementedError:
                service = target["Arn"].split(":")[2] if target["Arn"].count(":") >= 2 else target["Arn"]
                error = f"moto does not deliver EventBridge events to {service} targets"
            except Exception as e:
                error = f"{type(e).__name__}: {e}"
            log.warning("rule %s, target %s: %s", rule.arn, target["Id"], error)
            made.append(Delivery(rule.arn, target["Id"], target["Arn"], None, error=error))
        return made

    # -- schedules (the Clock's source) ----------------------------------------------------
    def scheduled_rules(self) -> list[ScheduledRule]:
        """Every rule with a ScheduleExpression, across moto's accounts and regions."""
        from moto.events.models import events_backends

        found = []
        for account_id in list(events_backends.keys()):
            for region, backend in list(events_backends[account_id].items()):
                for bus in list(backend.event_buses.values()):
                    for rule in list(bus.rules.values()):
                        if rule.scheduled_expression:
                            found.append(ScheduledRule(arn=rule.arn, expression=rule.scheduled_expression,
                                                       enabled=rule.state == "ENABLED", ref=rule))
        return found

    def fire(self, rule: ScheduledRule, when: datetime) -> list[Delivery]:
        """Deliver one scheduled event (AWS's shape: source aws.events, detail-type Scheduled Event)."""
        moto_rule = rule.ref
        moto_event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": moto_rule.account_id,
            "time": when.timestamp(),  # moto's own targets expect epoch seconds
            "region": moto_rule.region_name,
            "resources": [moto_rule.arn],
            "detail": {},
            "ingestion-time": when.timestamp(),
        }
        return self.deliver(moto_rule, moto_event)


def attach(cloud: Any) -> EventBridgeDelivery:
    """The delivery a `LocalCloud` opens as `cloud.events`: Lambda targets run in its runtime
    (asynchronously, so `Delivery.handle` is the runtime's AsyncEvent)."""

    def invoke(function_name: str, payload: Any, invocation_type: str = "Event") -> Any:
        # Through the cloud, so loop detection and the function's identity apply.
        handle = cloud.deliver(function_name, payload)
        if handle is None and function_name not in cloud.runtime.functions():
            from lambdalab.runtime.errors import ResourceNotFoundException
            raise ResourceNotFoundException(f"Function not found: {function_name}")
        return handle

    return EventBridgeDelivery(invoke).start()
