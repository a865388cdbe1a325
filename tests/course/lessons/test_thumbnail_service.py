"""Lesson 04's read-back from the thumbnail function's logs (`lessons.thumbnail_service`).

The lines are as Lambda's Python runtime writes a logging record
(`[LEVEL]\\t<time>\\t<request id>\\t<message>`,
https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html) and as the handler logs its
outcome; an unhandled exception is in `Invocation.error` already (`reports.logged_error`).
"""

from __future__ import annotations

import json

import pytest

from lambdalab.course.lessons.thumbnail_service import (
    WRITTEN,
    bill,
    last_outcomes,
    outcome_of,
    upload_rows,
)
from lambdalab.runtime.metering import price
from lambdalab.runtime.records import Invocation


def logged(level: str, fields: dict) -> str:
    return f"[{level}]\t2026-12-07T02:00:00.000Z\treq\t{json.dumps(fields)}\n"


def invocation(started: float, lines: list[str], *, event=None, error=None, billed_ms: int = 300) -> Invocation:
    return Invocation(request_id=f"r{started}", function_name="lw-1-thumbnails", event=event, invocation_type="",
                      memory_mb=128, environment_id="stream", cold=False, started_at=started, billed_ms=billed_ms,
                      log_lines=lines, error=error)


def s3_event(encoded_key: str) -> dict:
    return {"Records": [{"s3": {"bucket": {"name": "photos"}, "object": {"key": encoded_key}}}]}


def test_a_written_thumbnail_is_read_from_the_handlers_json_line() -> None:
    inv = invocation(1.0, ["START RequestId: r1 Version: $LATEST", logged("INFO", {
        "outcome": "thumbnail", "key": "uploads/grace hopper.jpg", "content_type": "image/jpeg",
        "thumbnail_bytes": 5120})])
    done = outcome_of(inv)
    assert (done.key, done.what, done.content_type, done.thumbnail_bytes) == (
        "uploads/grace hopper.jpg", WRITTEN, "image/jpeg", 5120)


def test_a_refused_upload_names_its_reason() -> None:
    inv = invocation(1.0, [logged("ERROR", {"outcome": "rejected", "key": "uploads/innocent.png",
                                            "error": "DecompressionBomb", "reason": "400,000,000 pixels"})])
    assert outcome_of(inv).what == "DecompressionBomb: 400,000,000 pixels"
    assert outcome_of(inv).thumbnail_bytes is None


def test_an_unhandled_error_keeps_the_events_key_when_the_handler_logged_nothing() -> None:
    """On the labs track the handler raises before it logs: the key comes from the event (local
    target) or is unknown (AWS keeps no events)."""
    error = {"errorType": "NotImplementedError", "errorMessage": "exercise keys"}
    local = outcome_of(invocation(1.0, [], event=s3_event("uploads/grace+hopper.jpg"), error=error))
    assert (local.key, local.what) == ("uploads/grace hopper.jpg", "NotImplementedError: exercise keys")
    assert outcome_of(invocation(1.0, [], error=error)).key is None


def test_each_key_keeps_its_last_attempt_and_unknown_keys_are_left_out() -> None:
    failed = invocation(1.0, [], event=s3_event("uploads/a.jpg"), error={"errorType": "Boom", "errorMessage": ""})
    retried = invocation(3.0, [logged("INFO", {"outcome": "thumbnail", "key": "uploads/a.jpg"})])
    unknown = invocation(2.0, ["no json here", "[INFO]\tt\treq\t{not json"])
    outcomes = last_outcomes([retried, unknown, failed])
    assert list(outcomes) == ["uploads/a.jpg"]
    assert outcomes["uploads/a.jpg"].inv is retried


def test_upload_rows_say_when_an_upload_has_no_invocation() -> None:
    outcomes = last_outcomes([invocation(1.0, [logged("INFO", {"outcome": "thumbnail", "key": "uploads/a.jpg",
                                                               "thumbnail_bytes": 10})])])
    rows = upload_rows({"uploads/a.jpg": b"xx", "uploads/b.jpg": b"yyy"}, outcomes)
    assert [(r["key"], r["outcome"], r["bytes in"], r["bytes out"]) for r in rows] == [
        ("uploads/a.jpg", WRITTEN, 2, 10), ("uploads/b.jpg", "no invocation in the logs", 3, None)]


def test_the_bill_prices_each_invocation_at_lambdas_rates() -> None:
    invs = [invocation(1.0, [], billed_ms=300), invocation(2.0, [], billed_ms=1200)]
    rows = bill(invs)
    assert rows[-1]["requests"] == 2
    assert rows[-1]["total $"] == pytest.approx(sum(price(i) for i in invs))
