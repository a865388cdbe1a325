"""Lesson 04's read-back: what each invocation of the thumbnail service did, and what it cost,
from what both targets have (the function's logs), not from what only the local runtime knows.

The handler (solutions/thumbnail/handler.py) logs one JSON object per upload it handled, with
`outcome` ("thumbnail" or "rejected"), the decoded `key` and, for a thumbnail, its content type
and size; an unhandled exception is logged by the Python runtime as `[ERROR] Type: message`
(`reports.logged_error`, already in `Invocation.error`). `outcome_of` turns an invocation
into an `Outcome`, `last_outcomes` keeps each key's last one (after Lambda's retries) and
`upload_rows` tabulates them per upload; `bill` prices a list of invocations with the meter
(one row per function and the total, as `display.bill_per_million` wants them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from lambdalab.runtime.metering import Meter
from lambdalab.runtime.records import Invocation

WRITTEN = "thumbnail written"


@dataclass(frozen=True)
class Outcome:
    """One invocation of the thumbnail function as its logs tell it."""

    inv: Invocation
    key: str | None  # the upload's key, decoded (None when the handler stopped before logging it)
    what: str  # WRITTEN, "<reason code>: <reason>" for a refused upload, or "<ErrorType>: <message>"
    content_type: str = ""
    thumbnail_bytes: int | None = None


def logged_outcome(inv: Invocation) -> dict[str, Any] | None:
    """The handler's JSON log line for this invocation (`[LEVEL]\\t<time>\\t<request id>\\t{...}`), if any."""
    for line in inv.log_lines:
        message = line.split("\t", 3)[-1].strip()
        if not message.startswith("{"):
            continue
        try:
            fields = json.loads(message)
        except ValueError:
            continue
        if isinstance(fields, dict) and "outcome" in fields:
            return fields
    return None


def event_key(inv: Invocation) -> str | None:
    """The decoded key of the S3 event the local runtime kept (AWS keeps no events)."""
    try:
        return unquote_plus(inv.event["Records"][0]["s3"]["object"]["key"])
    except (TypeError, KeyError, IndexError):
        return None


def outcome_of(inv: Invocation) -> Outcome:
    logged = logged_outcome(inv)
    key = logged.get("key") if logged else event_key(inv)
    if not inv.ok:
        return Outcome(inv, key, f"{inv.error_type}: {(inv.error or {}).get('errorMessage', '')}")
    if logged is None:
        return Outcome(inv, key, "no outcome logged")
    if logged["outcome"] == "rejected":
        return Outcome(inv, key, f"{logged.get('error')}: {logged.get('reason')}")
    return Outcome(inv, key, WRITTEN, logged.get("content_type", ""), logged.get("thumbnail_bytes"))


def last_outcomes(invocations: Iterable[Invocation]) -> dict[str, Outcome]:
    """Per key, what its last invocation did (after Lambda's retries)."""
    found: dict[str, Outcome] = {}
    for inv in sorted(invocations, key=lambda i: i.started_at):
        outcome = outcome_of(inv)
        if outcome.key is not None:
            found[outcome.key] = outcome
    return found


def upload_rows(uploads: Mapping[str, bytes], outcomes: Mapping[str, Outcome]) -> list[dict[str, Any]]:
    """One row per upload: what its last invocation did, the sizes in and out, Duration and memory."""
    rows = []
    for key, body in uploads.items():
        done = outcomes.get(key)
        rows.append({"key": key, "outcome": done.what[:70] if done else "no invocation in the logs",
                     "content type": done.content_type if done else "", "bytes in": len(body),
                     "bytes out": done.thumbnail_bytes if done else None,
                     "duration ms": done.inv.duration_ms if done else None,
                     "max memory MB": done.inv.max_memory_used_mb if done else None})
    return rows


def bill(invocations: Iterable[Invocation]) -> list[dict[str, Any]]:
    """The meter's table (per function, then the total) for these invocations, at Lambda's prices."""
    meter = Meter()
    for inv in invocations:
        meter.add(inv)
    return meter.table()
