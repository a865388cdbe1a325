"""The pieces both targets share: REPORT lines read back from CloudWatch Logs, and a run's names.

A REPORT line's fields and their order are Lambda's (`Duration`, `Billed Duration`, `Memory
Size`, `Max Memory Used`, `Init Duration` on a cold start), and with active tracing Lambda
appends `XRAY TraceId: ... SegmentId: ... Sampled: ...`
(https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html). Names carry the run's prefix
and must be valid S3 bucket names, the strictest of the services used
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lambdalab.course.target import reports, teardown
from lambdalab.course.target.runs import Run, age_text, run_of

COLD_ID = "3604209a-e9a3-11e6-939a-754dd98c7be3"
COLD = ("REPORT RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3\tDuration: 12.34 ms\tBilled Duration: 133 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 18 MB\tInit Duration: 120.50 ms\t\n")
TRACED = ("REPORT RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3\tDuration: 2.00 ms\tBilled Duration: 2 ms\t"
          "Memory Size: 128 MB\tMax Memory Used: 18 MB\t\nXRAY TraceId: 1-5e645f3e-1dfad076a177c5ccc5de12f5\t"
          "SegmentId: 094ee3ff7e8a1f5d\tSampled: true\t\n")


def test_a_cold_report_line_is_parsed_with_its_init_duration() -> None:
    report = reports.parse_report_line(COLD)
    assert (report.duration_ms, report.billed_ms, report.memory_mb, report.max_memory_used_mb, report.init_ms) \
        == (12.34, 133, 128, 18, 120.5)


def test_the_xray_part_of_a_traced_report_is_not_a_field() -> None:
    report = reports.parse_report_line(TRACED)
    assert report.init_ms is None and report.billed_ms == 2


class StreamLogs:
    """FilterLogEvents' answer for one log group with several streams, filtered by the pattern's words."""

    class exceptions:  # noqa: N801 - boto3's attribute name
        ResourceNotFoundException = KeyError

    def __init__(self, events: list[dict]):
        self.events = events

    def get_paginator(self, operation: str):
        assert operation == "filter_log_events"
        events = self.events

        class Pages:
            def paginate(self, logGroupName: str, filterPattern: str = ""):  # noqa: N803 - boto3's names
                words = filterPattern.strip('"')
                return [{"events": [e for e in events if words in e["message"]]}]
        return Pages()


def test_invocations_are_read_from_the_logs_with_what_the_handler_printed() -> None:
    """Two environments (log streams), interleaved in time: each line belongs to the invocation
    between its stream's START and REPORT."""
    warm = COLD.replace(COLD_ID, "b").replace("\tInit Duration: 120.50 ms", "")
    other = COLD.replace(COLD_ID, "c")
    logs = StreamLogs([
        {"logStreamName": "env-1", "timestamp": 1000, "message": "START RequestId: a Version: $LATEST\n"},
        {"logStreamName": "env-2", "timestamp": 1001, "message": "START RequestId: c Version: $LATEST\n"},
        {"logStreamName": "env-1", "timestamp": 1002, "message": '{"object": "one"}\n'},
        {"logStreamName": "env-2", "timestamp": 1003, "message": '{"object": "two"}\n'},
        {"logStreamName": "env-1", "timestamp": 1200, "message": COLD.replace(COLD_ID, "a")},
        {"logStreamName": "env-1", "timestamp": 1300, "message": "START RequestId: b Version: $LATEST\n"},
        {"logStreamName": "env-1", "timestamp": 1301, "message": '{"object": "three"}\n'},
        {"logStreamName": "env-2", "timestamp": 1302, "message": other},
        {"logStreamName": "env-1", "timestamp": 1320, "message": warm},
    ])
    found = reports.read_invocations(logs, "fn")
    assert [(i.request_id, i.environment_id, i.cold, i.log_lines) for i in found] == [
        ("a", "env-1", True, ['{"object": "one"}']), ("c", "env-2", True, ['{"object": "two"}']),
        ("b", "env-1", False, ['{"object": "three"}'])]
    assert found[0].ended_at == 1.2 and found[0].started_at == pytest.approx(1.2 - 0.01234)
    assert (found[0].billed_ms, found[0].memory_mb, found[0].init_ms, found[0].ok) == (133, 128, 120.5, True)


def test_other_lines_are_not_reports() -> None:
    assert reports.parse_report_line("START RequestId: x Version: $LATEST\n") is None
    with pytest.raises(ValueError, match="not a Lambda REPORT line"):
        reports.parse_report_line("REPORT RequestId: x\tDuration: soon\t")


class FakeLogs:
    """CloudWatch Logs holding the REPORT lines given, appearing one per poll."""

    class exceptions:  # noqa: N801 (boto3's spelling)
        ResourceNotFoundException = KeyError

    def __init__(self, lines: list[str]):
        self.lines, self.visible = lines, 0

    def get_paginator(self, name: str):
        logs = self

        class Pages:
            def paginate(self, **kwargs):
                logs.visible = min(len(logs.lines), logs.visible + 1)
                yield {"events": [{"message": m, "timestamp": i, "logStreamName": "s"}
                                  for i, m in enumerate(logs.lines[:logs.visible])]}
        return Pages()


def test_settling_waits_for_the_reports_and_names_what_it_saw_on_timeout() -> None:
    seen: list[int] = []
    found = reports.wait_for_reports(FakeLogs([COLD, TRACED]), "fn", 2, timeout=5, poll=0,
                                     progress=seen.append, sleep=lambda s: None)
    assert [r.cold for r in found] == [True, False] and seen == [1, 2]
    with pytest.raises(reports.SettleTimeout, match=r"fn: 2 of 3 invocations reported in /aws/lambda/fn"):
        reports.wait_for_reports(FakeLogs([COLD, TRACED]), "fn", 3, timeout=0.2, poll=0.01)


def test_a_runs_names_carry_its_prefix_and_its_age() -> None:
    run = Run.new(datetime(2026, 11, 29, 2, 13, tzinfo=timezone.utc))
    name = run.name("photos")
    assert name.startswith("lw-2611290213-") and name.endswith("-photos") and len(name) <= 63
    assert run_of(name) == run and run_of(f"/aws/lambda/{name}") == run and run_of("photos") is None
    assert age_text(run, datetime(2026, 11, 29, 4, 20, tzinfo=timezone.utc)) == "2 h 7 min"
    with pytest.raises(ValueError, match="lower-case"):
        run.name("My_Bucket")
    with pytest.raises(ValueError, match="not a run id"):
        Run("yesterday")


def test_teardown_deletes_again_what_an_eventually_consistent_listing_still_shows(monkeypatch) -> None:
    """S3 and IAM listings are eventually consistent: a bucket just deleted may still be listed
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/Welcome.html#ConsistencyModel)."""
    bucket = teardown.Resource("s3", "bucket", "lw-2611290213-a1b2-photos")
    listings = [[bucket], [bucket], []]  # still listed once after its deletion, then gone
    deleted: list[teardown.Resource] = []
    monkeypatch.setattr(teardown, "LISTERS", (lambda clients, prefix: listings.pop(0),))
    monkeypatch.setattr(teardown, "delete", lambda clients, resource: deleted.append(resource))
    pauses: list[float] = []
    assert teardown.teardown(lambda service: None, "lw-2611290213-a1b2-", sleep=pauses.append) == []
    assert deleted == [bucket, bucket] and pauses == [2.0]
