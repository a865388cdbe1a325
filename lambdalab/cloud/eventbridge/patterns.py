"""EventBridge's event pattern language, as aws/event-ruler (which EventBridge uses) defines it.

`compile_pattern` parses and checks a pattern (JSON text or dict), raising
`InvalidEventPatternError` where EventBridge would reject it; `EventPattern.matches(event)` and
`matches(pattern, event)` decide as EventBridge does: exact values (JSON types never cross),
prefix, suffix, equals-ignore-case, wildcard, numeric ranges, cidr, exists, anything-but, `$or`,
and array consistency (every field matched inside an array comes from the same element).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class InvalidEventPatternError(ValueError):
    """An event pattern EventBridge would reject; the message says where and why."""


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
class _Affix(_Filter):
    """`prefix`, or `suffix` when `at_end`."""

    text: str
    ignore_case: bool = False
    at_end: bool = False

    def matches(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        text = self.text
        if self.ignore_case:
            value, text = value.lower(), text.lower()
        return value.endswith(text) if self.at_end else value.startswith(text)


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
def cached_pattern(text: str) -> EventPattern:
    """`compile_pattern` for pattern text, remembered (rules are matched against every event)."""
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
        raise InvalidEventPatternError(
            f"'{where}': a match operator is an object with exactly one key, got {_describe(item)}")
    (name, arg), = item.items()
    builder = _OPERATORS.get(name)
    if builder is None:
        raise InvalidEventPatternError(
            f"'{where}': unrecognized match type {name!r}; valid: {', '.join(sorted(_OPERATORS))}")
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
    return _Affix(*_ignore_case_arg("prefix", arg, where))


def _suffix(arg: Any, where: str) -> _Filter:
    return _Affix(*_ignore_case_arg("suffix", arg, where), at_end=True)


def _equals_ignore_case(arg: Any, where: str) -> _Filter:
    return _EqualsIgnoreCase(_string_arg("equals-ignore-case", arg, where))


def _wildcard(arg: Any, where: str) -> _Filter:
    text = _string_arg("wildcard", arg, where)
    regex, i = "", 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text) or text[i + 1] not in "*\\":
                raise InvalidEventPatternError(
                    f"'{where}': in wildcard {text!r} a backslash may only escape '*' or '\\'")
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
        raise InvalidEventPatternError(
            f"'{where}': numeric takes [op, number] or [op, number, op, number], got {_describe(arg)}")
    conditions = []
    for op, bound in zip(arg[::2], arg[1::2]):
        if op not in _NUMERIC_OPS:
            raise InvalidEventPatternError(
                f"'{where}': numeric operator {_describe(op)} is not one of {', '.join(_NUMERIC_OPS)}")
        if not _is_number(bound) or not math.isfinite(bound) or abs(bound) > _NUMERIC_LIMIT:
            raise InvalidEventPatternError(
                f"'{where}': numeric bound {_describe(bound)} must be a number between -5e9 and 5e9")
        conditions.append((op, bound))
    if len(conditions) == 2:
        (low_op, low), (high_op, high) = conditions
        if low_op not in (">", ">=") or high_op not in ("<", "<="):
            raise InvalidEventPatternError(
                f"'{where}': a numeric range is [\">\" or \">=\", low, \"<\" or \"<=\", high]")
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
                f"'{where}': anything-but takes a value, a list, "
                "or one of prefix, suffix, equals-ignore-case, wildcard")
        (name, inner), = arg.items()
        values = inner if isinstance(inner, list) and name in ("equals-ignore-case", "wildcard") else [inner]
        if not values:
            raise InvalidEventPatternError(f"'{where}': anything-but {name} list is empty")
        return _AnythingBut(tuple(_OPERATORS[name](v, where) for v in values))
    values = arg if isinstance(arg, list) else [arg]
    if not values:
        raise InvalidEventPatternError(f"'{where}': anything-but list is empty")
    if not (all(isinstance(v, str) for v in values) or all(_is_number(v) for v in values)):
        raise InvalidEventPatternError(
            f"'{where}': anything-but values must be all strings or all numbers, got {_describe(arg)}")
    return _AnythingBut(tuple(_Exact(v) for v in values))


_OPERATORS: dict[str, Callable[[Any, str], _Filter]] = {
    "prefix": _prefix, "suffix": _suffix, "equals-ignore-case": _equals_ignore_case, "wildcard": _wildcard,
    "numeric": _numeric, "cidr": _cidr, "exists": _exists, "anything-but": _anything_but,
}


def matches(pattern: str | dict | EventPattern, event: dict) -> bool:
    """Does `event` match `pattern`? (What `TestEventPattern` answers.)"""
    compiled = pattern if isinstance(pattern, EventPattern) else compile_pattern(pattern)
    return compiled.matches(event)
