"""UTC timestamps in the text forms AWS services write them."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(when: datetime | None) -> datetime:
    """`when` in UTC (now when None); a naive datetime is taken to be UTC already."""
    if when is None:
        return utc_now()
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def iso_millis(when: datetime | None = None) -> str:
    """`2026-11-28T22:53:25.123Z`: Lambda's records, S3 event times, CloudWatch."""
    when = as_utc(when)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def iso_seconds(when: datetime | None = None) -> str:
    """`2026-11-28T22:53:25Z`: EventBridge and SQS/SNS event times."""
    return as_utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_ms(when: datetime | None = None) -> int:
    return int(as_utc(when).timestamp() * 1000)
