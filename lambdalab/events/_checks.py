"""The checks and values every event source shares: fail with a message naming the problem.

Builders take options from code and from the `lambdalab events` CLI, so a bad value raises a
`ValueError` that says which option is wrong and what it should be, before any event is built.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lambdalab._util.timefmt import as_utc

JSON = dict[str, Any]
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_ACCOUNT = re.compile(r"^\d{12}$")
# SQS FIFO and stream sequence numbers only grow; seeding from the clock keeps them growing across processes.
_sequence_numbers = itertools.count(int(time.time() * 1_000_000) * 1_000_000)


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def check_region(region: str) -> None:
    require(isinstance(region, str) and bool(_REGION.match(region)),
            f"region {region!r} is not an AWS region name like 'us-east-1'")


def check_account(account: str) -> None:
    require(isinstance(account, str) and bool(_ACCOUNT.match(account)), f"account {account!r} must be 12 digits")


def event_time(when: datetime | None) -> datetime:
    """`when` in UTC, now when None; a naive datetime is refused (its zone would be a guess)."""
    require(when is None or (isinstance(when, datetime) and when.tzinfo is not None),
            f"time {when!r} must be a timezone-aware datetime")
    return as_utc(when)


def json_text(value: Any, name: str) -> str:
    """A body given as str stays as is; a dict or list becomes its JSON text."""
    if isinstance(value, str):
        return value
    require(isinstance(value, (Mapping, list)),
            f"{name} must be a str, bytes, dict or list, got {type(value).__name__}")
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} is not JSON-serialisable: {e}") from None


def next_sequence_number() -> str:
    return str(next(_sequence_numbers))
