"""Datapoints written straight into moto's CloudWatch backend, as AWS's own services publish them.

Lambda and CloudWatch Logs publish into namespaces (`AWS/Lambda`, a function's EMF namespace)
without calling PutMetricData, so nothing here goes through the HTTP API or IAM. moto keeps
timestamps as naive UTC datetimes and compares them with the query's, so they are stored so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class Datum:
    """One metric's values at one time, with its dimensions (name -> value) and unit."""

    namespace: str
    name: str
    values: tuple[float, ...]
    timestamp: float  # epoch seconds
    dimensions: tuple[tuple[str, str], ...] = ()
    unit: str = "None"

    @classmethod
    def of(cls, namespace: str, name: str, value: float, timestamp: float,
           dimensions: Mapping[str, str] | None = None, unit: str = "None") -> "Datum":
        return cls(namespace, name, (float(value),), timestamp, tuple((dimensions or {}).items()), unit)


def moto_time(epoch_s: float) -> datetime:
    """An epoch time as moto's CloudWatch stores it: a naive UTC datetime."""
    return datetime.fromtimestamp(epoch_s, timezone.utc).replace(tzinfo=None)


def put(account_id: str, region: str, data: Iterable[Datum]) -> None:
    """Store `data` in moto's CloudWatch for that account and region."""
    from moto.cloudwatch.models import cloudwatch_backends

    backend = cloudwatch_backends[account_id][region]
    for d in data:
        backend.put_metric_data(d.namespace, [{
            "MetricName": d.name, "Values": list(d.values), "Timestamp": moto_time(d.timestamp),
            "Dimensions": [{"Name": k, "Value": v} for k, v in d.dimensions], "Unit": d.unit}])
