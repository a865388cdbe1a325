"""CloudWatch embedded metric format (EMF): a structured log line that carries metrics.

Lambda's log pipeline hands every line a function writes to CloudWatch Logs, which extracts the
metrics of each line that is an EMF document: a JSON object whose `_aws` member holds a
`Timestamp` (epoch milliseconds) and `CloudWatchMetrics`, a list of directives, each a
`Namespace`, `Dimensions` (sets of root member names) and `Metrics` (`Name`, optional `Unit` and
`StorageResolution`), whose values are root members. `extract` validates a line against the
specification and returns its datapoints; a line that is not EMF, or is invalid EMF, yields none
and stays a plain log line, as in CloudWatch Logs. `EmfExtractor` is the log sink's hook.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from lambdalab.cloud.metrics.publish import Datum, put

MAX_DIMENSIONS = 30  # per dimension set
MAX_METRICS = 100  # per directive
MAX_VALUES = 100  # per metric value array
UNITS = frozenset({
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
    "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"})


class EmfError(ValueError):
    """A line that claims to be EMF (a JSON object with `_aws`) but breaks the specification."""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _values(root: dict, name: str) -> tuple[float, ...]:
    if name not in root:
        raise EmfError(f"metric {name!r} has no member of that name at the root")
    value = root[name]
    if _number(value):
        return (float(value),)
    if isinstance(value, list) and value and len(value) <= MAX_VALUES and all(_number(v) for v in value):
        return tuple(float(v) for v in value)
    raise EmfError(f"metric {name!r} must be a number or an array of 1-{MAX_VALUES} numbers, not {value!r}")


def _dimension_sets(root: dict, directive: dict) -> list[tuple[tuple[str, str], ...]]:
    sets = directive.get("Dimensions")
    if not isinstance(sets, list):
        raise EmfError("Dimensions must be an array of dimension sets")
    out = []
    for keys in sets:
        if not isinstance(keys, list) or len(keys) > MAX_DIMENSIONS:
            raise EmfError(f"a dimension set must be an array of at most {MAX_DIMENSIONS} member names")
        pairs = []
        for key in keys:
            if not isinstance(key, str) or not isinstance(root.get(key), str):
                raise EmfError(f"dimension {key!r} must name a string member at the root")
            pairs.append((key, root[key]))
        out.append(tuple(pairs))
    return out


def _directive(root: dict, directive: Any, timestamp_s: float) -> list[Datum]:
    if not isinstance(directive, dict):
        raise EmfError("each CloudWatchMetrics entry must be an object")
    namespace = directive.get("Namespace")
    if not isinstance(namespace, str) or not 1 <= len(namespace) <= 1024:
        raise EmfError("Namespace must be a non-empty string")
    metrics = directive.get("Metrics")
    if not isinstance(metrics, list) or len(metrics) > MAX_METRICS:
        raise EmfError(f"Metrics must be an array of at most {MAX_METRICS} metric definitions")
    dimension_sets = _dimension_sets(root, directive)
    data = []
    for metric in metrics:
        if not isinstance(metric, dict) or not isinstance(metric.get("Name"), str):
            raise EmfError("each metric definition needs a Name string")
        unit = metric.get("Unit", "None")
        if unit not in UNITS:
            raise EmfError(f"metric {metric['Name']!r} has unit {unit!r}, which CloudWatch does not know")
        if metric.get("StorageResolution", 60) not in (1, 60):
            raise EmfError(f"metric {metric['Name']!r}: StorageResolution must be 1 or 60")
        values = _values(root, metric["Name"])
        data += [Datum(namespace, metric["Name"], values, timestamp_s, dims, unit) for dims in dimension_sets]
    return data


def extract(line: str) -> list[Datum]:
    """The metrics in a log line: none if it is not EMF; `EmfError` if it is EMF but invalid."""
    text = line.strip()
    if not text.startswith("{"):
        return []
    try:
        root = json.loads(text)
    except ValueError:
        return []
    if not isinstance(root, dict) or "_aws" not in root:
        return []
    meta = root["_aws"]
    if not isinstance(meta, dict):
        raise EmfError("_aws must be an object")
    if not _number(meta.get("Timestamp")):
        raise EmfError("_aws.Timestamp must be a number (milliseconds since the epoch)")
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        raise EmfError("_aws.CloudWatchMetrics must be an array")
    timestamp_s = meta["Timestamp"] / 1000
    return [d for directive in directives for d in _directive(root, directive, timestamp_s)]


class EmfExtractor:
    """Wraps a runtime's log sink: lines go to CloudWatch Logs first, then their EMF metrics to CloudWatch."""

    def __init__(self, sink: Callable[[str, str, list[tuple[int, str]]], None], account_id: str, region: str):
        self.sink = sink
        self.account_id = account_id
        self.region = region
        self.rejected: list[tuple[str, str]] = []  # (log group, why) for each invalid EMF line

    def __call__(self, function_name: str, log_stream: str, lines: list[tuple[int, str]]) -> None:
        self.sink(function_name, log_stream, lines)
        data: list[Datum] = []
        for _, text in lines:
            try:
                data += extract(text)
            except EmfError as e:  # CloudWatch keeps the line as a plain log event
                self.rejected.append((f"/aws/lambda/{function_name}", str(e)))
        if data:
            put(self.account_id, self.region, data)
