"""Lesson 02's instruments: a synchronous Invoke's answer read as the caller sees it (payload,
X-Amz-Function-Error, the log tail's REPORT line). The calls themselves run in notebook 02 on both
targets (tests/course/target/test_notebooks_aws_15.py and nbval).

AWS behaviour followed: a function error still answers HTTP 200 with `X-Amz-Function-Error` and the
error document as payload; LogType=Tail returns the invocation's log tail, ending with its REPORT
line (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html).
"""

from __future__ import annotations

import json

from lambdalab.course.lessons.handler_context import Call, call_rows
from lambdalab.runtime.records import Report

REPORT = Report("req-1", 712.32, 713, 128, 14)


def call(payload: object, function_error: str | None = None) -> Call:
    tail = ("START RequestId: req-1 Version: $LATEST", "done job-01", "END RequestId: req-1", str(REPORT))
    return Call("deadline", 200, function_error, json.dumps(payload).encode(), tail)


def test_a_call_reads_result_error_and_report() -> None:
    ok = call({"processed": ["job-01"], "remaining": []})
    assert ok.result["processed"] == ["job-01"] and ok.error is None and ok.report == REPORT
    failed = call({"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out"}, "Unhandled")
    assert failed.error["errorType"] == "Sandbox.Timedout"
    rows = call_rows([ok, failed])
    assert [(r["run"], r["outcome"], r["Billed ms"]) for r in rows] == [(1, "ok", 713), (2, "Sandbox.Timedout", 713)]
