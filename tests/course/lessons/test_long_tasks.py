"""The instruments of notebook 11: the scaled job, the Gantt chart's bars from REPORT lines, the
price of each approach at full scale, Fargate's price, and the durable run with the SDK's runner.

AWS pricing followed: Lambda bills GB-seconds of billed duration plus requests
(https://aws.amazon.com/lambda/pricing/); Standard workflows bill state transitions
(https://aws.amazon.com/step-functions/pricing/); Fargate bills vCPU and memory per second with a
one-minute minimum (https://aws.amazon.com/fargate/pricing/).
"""

from __future__ import annotations

import sys

import pytest

from lambdalab.course.labs import find_root
from lambdalab.course.lessons import long_tasks as lt
from lambdalab.course.target.reports import LoggedReport
from lambdalab.runtime.metering import PRICE_PER_GB_SECOND, PRICE_PER_REQUEST
from lambdalab.runtime.records import Report


def logged(end_ms: int, duration_ms: float, billed_ms: int, init_ms: float | None = None,
           status: str | None = None) -> LoggedReport:
    return LoggedReport(Report("r", duration_ms, billed_ms, 128, 40, init_ms=init_ms, status=status), end_ms, "s")


def test_the_job_is_scaled_from_the_fifteen_minute_limit() -> None:
    items = lt.make_job(100, 40)
    assert lt.SCALE * lt.TIMEOUT_S == 900
    assert sum(i["ms"] for i in items) == pytest.approx(4000, rel=0.02)  # 30 minutes at full scale
    assert all(24 <= i["ms"] <= 56 for i in items) and len({i["id"] for i in items}) == 100


def test_bars_start_a_duration_before_their_report_and_put_init_in_front() -> None:
    rows = lt.bars("map", [logged(12_000, 900, 1400, init_ms=500), logged(13_000, 950, 950, status="timeout")])
    assert [r.row for r in rows] == ["map 1", "map 2"]
    assert rows[0].init_s == pytest.approx(0.5) and rows[0].start_s == pytest.approx(0.5)
    assert rows[0].end_s == pytest.approx(1.4)
    assert rows[1].start_s == pytest.approx(13.0 - 0.95 - 10.6) and rows[1].kind == "timeout"


def test_full_scale_scales_the_invocation_but_not_its_init() -> None:
    r = logged(0, 900, 1400, init_ms=500)
    assert lt.full_scale_billed_s(r) == pytest.approx((900 * lt.SCALE + 500) / 1000)
    approach = lt.Approach("map", [r], 1.0, True, transitions=6)
    expected = (0.125 * lt.full_scale_billed_s(r) * PRICE_PER_GB_SECOND["x86_64"] + PRICE_PER_REQUEST
                + 6 * lt.PRICE_PER_STATE_TRANSITION)
    assert approach.cost() == pytest.approx(expected)
    assert approach.row()["invocations"] == 1 and approach.row()["state transitions"] == 6


def test_fargate_bills_at_least_a_minute() -> None:
    per_hour = 0.25 * lt.FARGATE_PER_VCPU_HOUR + 0.5 * lt.FARGATE_PER_GB_HOUR
    assert lt.fargate_cost(10) == pytest.approx(per_hour / 60)
    assert lt.fargate_cost(3600) == pytest.approx(per_hour)


def test_map_definition_iterates_the_chunks_with_a_lambda_task() -> None:
    state = lt.map_definition("arn:aws:lambda:us-east-1:123456789012:function:w", 2)["States"]["EachChunk"]
    assert state["Type"] == "Map" and state["ItemsPath"] == "$.chunks" and state["MaxConcurrency"] == 2
    task = state["ItemProcessor"]["States"]["Work"]
    assert task["Resource"] == "arn:aws:states:::lambda:invoke" and task["Parameters"]["Payload.$"] == "$"


@pytest.mark.skipif(sys.version_info < lt.DURABLE_MIN_PYTHON, reason="the durable execution SDK needs Python 3.11+")
def test_a_durable_run_replays_finished_steps_instead_of_running_them_again() -> None:
    root = find_root() / "solutions"
    chunks = [[{"id": f"rec-{c}{i}", "ms": 5} for i in range(3)] for c in range(3)]
    run = lt.run_durable(root / "lesson11" / "durable_job.py", [root / "chunks"], {"chunks": chunks, "pause_s": 60})
    assert run.status == "SUCCEEDED"
    assert run.result["ids"] == [i["id"] for c in chunks for i in c]
    assert run.invocations == 3  # the first call, then one after each of the two waits
    steps = [op for op in run.operations if op["type"] == "STEP"]
    assert [s["operation"] for s in steps] == ["chunk-0", "chunk-1", "chunk-2"]
    assert all(s["attempts"] == 1 for s in steps)
    waits = [op for op in run.operations if op["type"] == "WAIT"]
    assert [w["lasted (its own clock) s"] for w in waits] == [pytest.approx(60, abs=1)] * 2
