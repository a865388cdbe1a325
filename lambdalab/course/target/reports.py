"""Invocation records as both targets give them: the REPORT lines in CloudWatch Logs.

On AWS the only account of what an invocation cost is the REPORT line Lambda writes to
`/aws/lambda/<function>`; the local cloud writes the same lines to the same log group. So both
targets read them here, parsed by the runtime's one parser (`lambdalab.runtime.records.Report`),
and "wait until settled" is polling those logs until the expected number of REPORT lines is there
or a deadline passes, with a progress bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lambdalab.runtime.records import Invocation, Report

REPORT_PREFIX = "REPORT RequestId:"
START_PREFIX = "START RequestId:"


@dataclass(frozen=True)
class LoggedReport:
    """A REPORT line as read from CloudWatch Logs: its fields, when it was logged, and its stream
    (one stream per execution environment, so a new stream is a new environment)."""

    report: Report
    timestamp_ms: int
    log_stream: str

    @property
    def cold(self) -> bool:
        return self.report.init_ms is not None or self.report.restore_ms is not None


def parse_report_line(message: str) -> Report | None:
    """The REPORT line's fields, or None for any other log line. AWS may append an `XRAY
    TraceId: ...` part (active tracing); it is not one of the REPORT fields and is cut off."""
    if not message.startswith(REPORT_PREFIX):
        return None
    line = message
    cut = line.find("XRAY TraceId:")
    if cut >= 0:
        line = line[:cut]
    line = line.rstrip("\n")
    if not line.endswith("\t"):
        line += "\t"
    return Report.parse(line)


def log_group(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def read_events(logs: Any, function_name: str, pattern: str = "") -> list[dict[str, Any]]:
    """The log events of the function's group matching `pattern` (a CloudWatch Logs filter
    pattern), oldest first; none if the group is absent."""
    found: list[dict[str, Any]] = []
    paginator = logs.get_paginator("filter_log_events")
    options = {"filterPattern": pattern} if pattern else {}
    try:
        for page in paginator.paginate(logGroupName=log_group(function_name), **options):
            found.extend(page.get("events", []))
    except logs.exceptions.ResourceNotFoundException:
        return []
    return sorted(found, key=lambda e: e["timestamp"])


def read_reports(logs: Any, function_name: str) -> list[LoggedReport]:
    """Every REPORT line in the function's log group, oldest first (none if the group is absent)."""
    found: list[LoggedReport] = []
    for event in read_events(logs, function_name, '"REPORT RequestId"'):
        report = parse_report_line(event["message"])
        if report is not None:
            found.append(LoggedReport(report, event["timestamp"], event["logStreamName"]))
    return found


def logged_error(lines: list[str]) -> dict[str, str] | None:
    """The error the Python runtime logged for an unhandled exception (`[ERROR] Type: message`,
    its own `[ERROR] [timestamp] LAMBDA_RUNTIME ...` lines aside), as Lambda's error payload."""
    for line in lines:
        if line.startswith("[ERROR] ") and not line.startswith("[ERROR] ["):
            kind, _, message = line[len("[ERROR] "):].partition(": ")
            return {"errorType": kind.strip(), "errorMessage": message.strip()}
    return None


def read_invocations(logs: Any, function_name: str) -> list[Invocation]:
    """The function's invocations as its logs tell them, oldest first: the REPORT line's fields,
    and `log_lines`, what the handler printed between START and REPORT. An environment runs one
    invocation at a time, so within a log stream the lines between the two belong to it. What
    only the local runtime knows (the event, the result, the trace header) stays empty unless the
    handler printed it."""
    streams: dict[str, list[dict[str, Any]]] = {}
    for event in read_events(logs, function_name):
        streams.setdefault(event["logStreamName"], []).append(event)
    found: list[Invocation] = []
    for stream, events in streams.items():
        lines: list[str] = []
        for event in events:
            message = event["message"]
            if message.startswith(START_PREFIX):
                lines = []
                continue
            report = parse_report_line(message)
            if report is None:
                lines.append(message.rstrip("\n"))
                continue
            ended = event["timestamp"] / 1000
            error = logged_error(lines)
            if error is None and report.status:
                error = {"errorType": report.error_type or report.status}
            found.append(Invocation(
                request_id=report.request_id, function_name=function_name, event=None, invocation_type="",
                memory_mb=report.memory_mb, environment_id=stream, cold=report.init_ms is not None,
                started_at=ended - report.duration_ms / 1000, ended_at=ended, init_ms=report.init_ms,
                restore_ms=report.restore_ms, duration_ms=report.duration_ms, billed_ms=report.billed_ms,
                max_memory_used_mb=report.max_memory_used_mb, status=report.status, log_lines=lines,
                error=error, function_error="Unhandled" if error else None))
            lines = []
    return sorted(found, key=lambda inv: inv.started_at)


class SettleTimeout(Exception):
    """The logs did not show the invocations waited for before the deadline."""


def wait_for_reports(logs: Any, function_name: str, count: int, *, timeout: float = 60.0,
                     poll: float = 1.0, progress: Callable[[int], Any] | None = None,
                     sleep: Callable[[float], None] = time.sleep) -> list[LoggedReport]:
    """Poll the function's logs until they hold at least `count` REPORT lines; `progress(n)` is
    told each new total (a tqdm bar's update). Raises `SettleTimeout` naming what was seen."""
    deadline = time.monotonic() + timeout
    seen = 0
    while True:
        reports = read_reports(logs, function_name)
        if len(reports) != seen and progress is not None:
            progress(len(reports))
        seen = len(reports)
        if seen >= count:
            return reports
        if time.monotonic() >= deadline:
            raise SettleTimeout(f"{function_name}: {seen} of {count} invocations reported in "
                                f"{log_group(function_name)} within {timeout:g} s")
        sleep(poll)
