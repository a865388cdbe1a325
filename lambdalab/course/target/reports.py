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

from lambdalab.runtime.records import Report

REPORT_PREFIX = "REPORT RequestId:"


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


def read_reports(logs: Any, function_name: str) -> list[LoggedReport]:
    """Every REPORT line in the function's log group, oldest first (none if the group is absent)."""
    found: list[LoggedReport] = []
    paginator = logs.get_paginator("filter_log_events")
    try:
        for page in paginator.paginate(logGroupName=log_group(function_name), filterPattern='"REPORT RequestId"'):
            for event in page.get("events", []):
                report = parse_report_line(event["message"])
                if report is not None:
                    found.append(LoggedReport(report, event["timestamp"], event["logStreamName"]))
    except logs.exceptions.ResourceNotFoundException:
        return []
    return sorted(found, key=lambda r: r.timestamp_ms)


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
