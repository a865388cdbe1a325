"""Records of what happened: one `Invocation` per call, and the REPORT line Lambda writes for it.

`fill_result` and `log_lines` turn what the worker did (an environment's `Outcome`) into the
record's result or error and into its log: START, the handler's output, END, REPORT.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from lambdalab._util.timefmt import iso_millis
from lambdalab.runtime.runtime_api import MAX_RESPONSE_BYTES

if TYPE_CHECKING:
    from lambdalab.runtime.environment import Outcome

_REPORT = re.compile(
    r"^REPORT RequestId: (?P<request_id>\S+)\t"
    r"Duration: (?P<duration>\d+\.\d{2}) ms\t"
    r"Billed Duration: (?P<billed>\d+) ms\t"
    r"Memory Size: (?P<memory>\d+) MB\t"
    r"Max Memory Used: (?P<used>\d+) MB\t"
    r"(?:Init Duration: (?P<init>\d+\.\d{2}) ms\t)?"
    r"(?:Restore Duration: (?P<restore>\d+\.\d{2}) ms\t)?"
    r"(?:Status: (?P<status>\w+)\t(?:Error Type: (?P<error_type>[\w.]+)\t)?)?$"
)


@dataclass(frozen=True)
class Report:
    """The fields of a REPORT line; `str(report)` is byte-exact to Lambda's format."""

    request_id: str
    duration_ms: float
    billed_ms: int
    memory_mb: int
    max_memory_used_mb: int
    init_ms: float | None = None
    status: str | None = None  # None on success; "timeout" or "error" otherwise
    error_type: str | None = None
    restore_ms: float | None = None  # snapshot-restore starts (SnapStart) instead of an init

    def __str__(self) -> str:
        line = (
            f"REPORT RequestId: {self.request_id}\t"
            f"Duration: {self.duration_ms:.2f} ms\t"
            f"Billed Duration: {self.billed_ms} ms\t"
            f"Memory Size: {self.memory_mb} MB\t"
            f"Max Memory Used: {self.max_memory_used_mb} MB\t"
        )
        if self.init_ms is not None:
            line += f"Init Duration: {self.init_ms:.2f} ms\t"
        if self.restore_ms is not None:
            line += f"Restore Duration: {self.restore_ms:.2f} ms\t"
        if self.status:
            line += f"Status: {self.status}\t"
            if self.error_type:
                line += f"Error Type: {self.error_type}\t"
        return line

    @classmethod
    def parse(cls, line: str) -> "Report":
        m = _REPORT.match(line.rstrip("\n"))
        if not m:
            raise ValueError(f"not a Lambda REPORT line: {line!r}")
        return cls(
            request_id=m["request_id"],
            duration_ms=float(m["duration"]),
            billed_ms=int(m["billed"]),
            memory_mb=int(m["memory"]),
            max_memory_used_mb=int(m["used"]),
            init_ms=float(m["init"]) if m["init"] else None,
            restore_ms=float(m["restore"]) if m["restore"] else None,
            status=m["status"],
            error_type=m["error_type"],
        )


def billed_ms(duration_ms: float, init_ms: float | None) -> int:
    """Lambda bills INIT on on-demand functions (since August 2025): ceil(init + duration), at least 1 ms."""
    return max(1, math.ceil(round((init_ms or 0.0) + duration_ms, 6)))


@dataclass
class Invocation:
    """One invocation as the runtime saw it, from request to REPORT."""

    request_id: str
    function_name: str
    event: Any
    invocation_type: str  # "RequestResponse" or "Event"
    memory_mb: int
    environment_id: str
    cold: bool
    started_at: float  # epoch seconds when the event was handed to the worker
    ended_at: float = 0.0
    result: Any = None
    payload: bytes = b""  # the raw response body the Invoke API returns
    error: dict | None = None  # Lambda's error payload: errorMessage, errorType, requestId, stackTrace
    function_error: str | None = None  # "Unhandled" when the function failed, as the Invoke API reports it
    init_ms: float | None = None
    restore_ms: float | None = None
    duration_ms: float = 0.0
    billed_ms: int = 0
    max_memory_used_mb: int = 0
    status: str | None = None  # None, "timeout" or "error" (as in the REPORT line)
    log_lines: list[str] = field(default_factory=list)
    architecture: str = "x86_64"
    attempt: int = 1
    trace_id: str | None = None
    provisioned: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def error_type(self) -> str | None:
        return self.error.get("errorType") if self.error else None

    @property
    def report(self) -> Report:
        return Report(
            request_id=self.request_id,
            duration_ms=self.duration_ms,
            billed_ms=self.billed_ms,
            memory_mb=self.memory_mb,
            max_memory_used_mb=self.max_memory_used_mb,
            init_ms=self.init_ms,
            restore_ms=self.restore_ms,
            status=self.status,
            error_type=self.error_type if self.status == "error" else None,
        )

    @property
    def gb_seconds(self) -> float:
        return self.memory_mb / 1024 * self.billed_ms / 1000

    def log_text(self) -> str:
        return "\n".join(self.log_lines)


def _json_or_bytes(body: bytes) -> Any:
    """The response as JSON; bytes that are not JSON stay bytes, as the Invoke API returns them."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        return body


def fill_result(inv: Invocation, outcome: Outcome, timeout_s: float) -> None:
    """Fill in the result, or the error, of what the worker did."""
    if outcome.kind == "response":
        inv.payload = outcome.body
        inv.result = _json_or_bytes(outcome.body) if outcome.content_type == "application/json" else outcome.body
        return
    if outcome.kind == "timeout":
        inv.status = "timeout"
        error = {"errorMessage": f"RequestId: {inv.request_id} Error: Task timed out after {timeout_s:.2f} seconds",
                 "errorType": "Sandbox.Timedout"}
    elif outcome.kind == "too_large":
        inv.status = "error"
        error = {"errorMessage": "Response payload size exceeded maximum allowed payload size "
                                 f"({MAX_RESPONSE_BYTES} bytes).",
                 "errorType": "Function.ResponseSizeTooLarge"}
    else:
        try:
            error = json.loads(outcome.body)
        except ValueError:
            error = {"errorMessage": outcome.body.decode("utf-8", "replace"),
                     "errorType": outcome.error_type or "Runtime.Unknown"}
        if not isinstance(error, dict):
            error = {"errorMessage": str(error), "errorType": outcome.error_type or "Runtime.Unknown"}
        if outcome.kind in ("exit", "init_error"):
            inv.status = "error"
    inv.error = error
    inv.function_error = "Unhandled"
    inv.payload = json.dumps(error).encode()


def init_report_line(init_ms: float, error_type: str | None) -> str:
    """The INIT_REPORT line Lambda writes when an environment's INIT fails."""
    return f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: init\tStatus: error\tError Type: {error_type}"


def log_lines(inv: Invocation, init_lines: list[tuple[int, str]], lines: list[tuple[int, str]],
              outcome: Outcome, timeout_s: float, failed_init_ms: float | None = None) -> list[tuple[int, str]]:
    """The invocation's log as (epoch ms, line): INIT output, START, handler output, END, REPORT.

    As Lambda writes them: a timeout's or crash's own lines come before END and REPORT, and a
    failed INIT (`failed_init_ms`, how long it ran) is reported in an INIT_REPORT line before START.
    """
    start, end = int(inv.started_at * 1000), int(inv.ended_at * 1000)
    out = list(init_lines)
    if failed_init_ms is not None:
        out.append((start, init_report_line(failed_init_ms, inv.error_type)))
    out += [(start, f"START RequestId: {inv.request_id} Version: $LATEST"), *lines]
    if outcome.kind == "timeout":
        out.append((end, f"{iso_millis(datetime.fromtimestamp(inv.ended_at, timezone.utc))} {inv.request_id} "
                         f"Task timed out after {timeout_s:.2f} seconds"))
    elif outcome.kind == "exit":
        out.append((end, f"RequestId: {inv.request_id} Error: Runtime exited with error: {outcome.exit_status}"))
        out.append((end, "Runtime.ExitError"))
    out += [(end, f"END RequestId: {inv.request_id}"), (end, str(inv.report))]
    return out
