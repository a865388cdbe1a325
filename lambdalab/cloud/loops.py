"""Recursive loop detection as Lambda does it: a lineage count carried in the X-Ray trace header.

Lambda adds a `Lineage=<hash>:<count>` field to the trace header it hands a function
(`_X_AMZN_TRACE_ID`); the AWS SDK copies that header onto every call the handler makes
(`X-Amzn-Trace-Id`), S3, SQS and SNS keep it with what they deliver, and the next invocation
of the same function counts one more hop. When a function would run for the 17th time in one
chain, Lambda stops that invocation, sends the event to the on-failure destination or
dead-letter queue, and counts it as `RecursiveInvocationsDropped`. A function whose
recursion config is `Allow` is never stopped. This module owns the header format and the
counting; the local cloud decides where a stopped event goes.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field, replace

# Lambda stops the invocation that would be the 17th of one function in one chain.
MAX_HOPS = 16
RECURSION_MODES = ("Allow", "Terminate")
DEFAULT_RECURSION_MODE = "Terminate"


def new_root() -> str:
    """An X-Ray trace id: version 1, the epoch second in hex, 96 random bits."""
    return f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"


def function_hash(function_arn: str) -> str:
    """The short id a function has in a lineage field (8 hex digits, as in Lambda's v1 format)."""
    return hashlib.sha256(function_arn.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class TraceHeader:
    """An `X-Amzn-Trace-Id` value: `Root=...;Parent=...;Sampled=...;Lineage=h1:n1|h2:n2`."""

    root: str
    parent: str | None = None
    sampled: str | None = None
    lineage: tuple[tuple[str, int], ...] = ()
    extra: tuple[tuple[str, str], ...] = field(default=())  # fields we carry but do not read

    @classmethod
    def parse(cls, text: str | None) -> "TraceHeader | None":
        """Read a header; None for an empty or rootless one (the caller then starts a chain)."""
        if not text:
            return None
        fields: dict[str, str] = {}
        extra: list[tuple[str, str]] = []
        for part in text.strip().split(";"):
            key, sep, value = part.strip().partition("=")
            if not sep:
                continue
            if key in ("Root", "Parent", "Sampled", "Lineage"):
                fields[key] = value
            else:
                extra.append((key, value))
        if not fields.get("Root"):
            return None
        return cls(root=fields["Root"], parent=fields.get("Parent"), sampled=fields.get("Sampled"),
                   lineage=_parse_lineage(fields.get("Lineage", "")), extra=tuple(extra))

    @classmethod
    def new(cls) -> "TraceHeader":
        return cls(root=new_root(), parent=secrets.token_hex(8), sampled="0")

    def count(self, fn_hash: str) -> int:
        """How many times the function with this hash has run in this chain so far."""
        return dict(self.lineage).get(fn_hash, 0)

    def hop(self, fn_hash: str) -> "TraceHeader":
        """The header for one more invocation of that function: its count + 1, a new parent."""
        counts = dict(self.lineage)
        counts[fn_hash] = counts.get(fn_hash, 0) + 1
        return replace(self, parent=secrets.token_hex(8), sampled=self.sampled or "0",
                       lineage=tuple(counts.items()))

    def __str__(self) -> str:
        parts = [f"Root={self.root}"]
        if self.parent:
            parts.append(f"Parent={self.parent}")
        if self.sampled is not None:
            parts.append(f"Sampled={self.sampled}")
        parts.extend(f"{k}={v}" for k, v in self.extra)
        if self.lineage:
            parts.append("Lineage=" + "|".join(f"{h}:{n}" for h, n in self.lineage))
        return ";".join(parts)


def _parse_lineage(text: str) -> tuple[tuple[str, int], ...]:
    entries: list[tuple[str, int]] = []
    for item in text.split("|"):
        fn_hash, sep, count = item.partition(":")
        if sep and fn_hash and count.isdigit():
            entries.append((fn_hash, int(count)))
    return tuple(entries)


@dataclass(frozen=True)
class Admission:
    """The guard's answer for one invocation: the header to run it with, or stop it."""

    header: str
    hop: int  # which invocation of this function in the chain this would be (1 = first)
    stopped: bool


class RecursionGuard:
    """Counts hops per chain, applies each function's recursion config, counts what it drops."""

    def __init__(self, max_hops: int = MAX_HOPS):
        self.max_hops = max_hops
        self._modes: dict[str, str] = {}
        self._dropped: dict[str, int] = {}
        self._lock = threading.Lock()

    def set_mode(self, function_name: str, mode: str) -> None:
        if mode not in RECURSION_MODES:
            raise ValueError(f"recursive loop mode {mode!r} is not one of {', '.join(RECURSION_MODES)}")
        with self._lock:
            self._modes[function_name] = mode

    def mode(self, function_name: str) -> str:
        with self._lock:
            return self._modes.get(function_name, DEFAULT_RECURSION_MODE)

    def admit(self, function_name: str, function_arn: str, incoming: str | None) -> Admission:
        """Decide whether an invocation arriving with `incoming` trace header may run."""
        parsed = TraceHeader.parse(incoming) or TraceHeader.new()
        nxt = parsed.hop(function_hash(function_arn))
        hop = nxt.count(function_hash(function_arn))
        stopped = hop > self.max_hops and self.mode(function_name) == "Terminate"
        if stopped:
            with self._lock:
                self._dropped[function_name] = self._dropped.get(function_name, 0) + 1
        return Admission(header=str(nxt), hop=hop, stopped=stopped)

    def dropped(self, function_name: str) -> int:
        """`RecursiveInvocationsDropped` for that function since the last reset."""
        with self._lock:
            return self._dropped.get(function_name, 0)

    def forget(self, function_name: str) -> None:
        with self._lock:
            self._modes.pop(function_name, None)

    def reset(self) -> None:
        with self._lock:
            self._modes.clear()
            self._dropped.clear()
