"""A run's identity: the prefix on every name it creates and the tags on everything taggable.

A run id carries its start time (`2611290213-a1b2`: UTC year to minute, then a random part), so a
resource found by its name alone tells which run made it and how old it is, even where tags cannot
be listed (IAM, Scheduler and API Gateway v2 are outside the Resource Groups Tagging API). Names
start with `lw-<run id>-`: lower case and short, so they are valid bucket, role, queue, table,
rule, schedule and function names at once.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

COURSE_TAG = "serverless-workbook"
PREFIX = "lw-"
_RUN_ID = re.compile(r"^(?P<stamp>\d{10})-(?P<rand>[0-9a-f]{4})$")
_NAME = re.compile(r"(?:^|/)lw-(?P<run>\d{10}-[0-9a-f]{4})-")  # a name, or a segment of a path
MAX_BASE = 40  # the longest name a lesson may ask for; prefix + base stays within every service's limit


@dataclass(frozen=True)
class Run:
    """One run of a lesson on a target."""

    run_id: str

    @classmethod
    def new(cls, now: datetime | None = None) -> "Run":
        stamp = (now or datetime.now(timezone.utc)).strftime("%y%m%d%H%M")
        return cls(f"{stamp}-{secrets.token_hex(2)}")

    def __post_init__(self) -> None:
        if not _RUN_ID.match(self.run_id):
            raise ValueError(f"not a run id: {self.run_id!r} (expected YYMMDDHHMM-xxxx, e.g. 2611290213-a1b2)")

    @property
    def prefix(self) -> str:
        return f"{PREFIX}{self.run_id}-"

    def name(self, base: str) -> str:
        """`base` with the run's prefix: the only way a lesson names what it creates."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", base) or len(base) > MAX_BASE:
            raise ValueError(f"resource name {base!r}: use 1-{MAX_BASE} lower-case letters, digits and '-'")
        return self.prefix + base

    def tags(self) -> dict[str, str]:
        return {"course": COURSE_TAG, "run": self.run_id}

    def started(self) -> datetime:
        return datetime.strptime(self.run_id[:10], "%y%m%d%H%M").replace(tzinfo=timezone.utc)


def run_of(name: str) -> Run | None:
    """The run whose prefix `name` carries (a log group `/aws/lambda/lw-...` or a parameter
    `/lw-.../key` included), or None."""
    match = _NAME.search(name)
    return Run(match["run"]) if match else None


def age_text(run: Run, now: datetime | None = None) -> str:
    seconds = max(0, int(((now or datetime.now(timezone.utc)) - run.started()).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
