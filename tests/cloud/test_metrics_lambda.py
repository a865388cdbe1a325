"""The `AWS/Lambda` metrics the local cloud publishes for every invocation, as Lambda publishes them.

Lambda's metrics: https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
(Invocations and Errors are binary per invocation, viewed with Sum; Errors is stamped with the
time the function was invoked; throttled requests are not Invocations; Duration in milliseconds;
ConcurrentExecutions viewed with Maximum) and its dimensions:
https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html#monitoring-metrics-dimensions
"""

import threading
from datetime import datetime, timedelta, timezone

import pytest
from botocore.config import Config

from lambdalab.cloud.metrics.lambda_metrics import peak_concurrency

HANDLER = """
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    if event.get("fail"):
        raise ValueError("boom")
    return "ok"
"""


def _stat(cw, function, name, stat):
    now = datetime.now(timezone.utc)
    points = cw.get_metric_statistics(
        Namespace="AWS/Lambda", MetricName=name, Dimensions=[{"Name": "FunctionName", "Value": function}],
        StartTime=now - timedelta(minutes=10), EndTime=now + timedelta(minutes=1), Period=3600,
        Statistics=[stat])["Datapoints"]
    return points


def _value(cw, function, name, stat):
    points = _stat(cw, function, name, stat)
    assert len(points) == 1, points
    return points[0][stat], points[0]["Unit"]


def test_invocations_errors_and_duration_per_invocation(fresh, code):
    """Three successes and two failures: 5 Invocations, Errors Sum 2 out of 5 samples (a 0 for
    each success, so Average is the error rate), Duration in milliseconds as the REPORT lines say."""
    fresh.deploy("metered", code(HANDLER), "handler.handler")
    for event in ({}, {"fail": True}, {"sleep": 0.2}, {}, {"fail": True}):
        fresh.invoke("metered", event)
    cw = fresh.client("cloudwatch")
    records = fresh.records("metered")

    assert _value(cw, "metered", "Invocations", "Sum") == (5.0, "Count")
    assert _value(cw, "metered", "Errors", "Sum") == (2.0, "Count")
    assert _value(cw, "metered", "Errors", "SampleCount")[0] == 5.0
    assert _value(cw, "metered", "Errors", "Average")[0] == pytest.approx(0.4)
    assert _value(cw, "metered", "Duration", "Maximum") == (max(r.duration_ms for r in records), "Milliseconds")
    assert _value(cw, "metered", "Duration", "Maximum")[0] >= 200
    assert _value(cw, "metered", "Duration", "SampleCount")[0] == 5.0
    assert _stat(cw, "other-function", "Invocations", "Sum") == []


def test_a_throttled_request_counts_in_throttles_not_invocations(fresh, code):
    """With reserved concurrency 1, a second request while the first runs gets 429
    TooManyRequestsException; it is a Throttle and not an Invocation."""
    fresh.deploy("narrow", code(HANDLER), "handler.handler")
    lam = fresh.client("lambda", config=Config(retries={"max_attempts": 0}))  # see the 429 itself
    lam.put_function_concurrency(FunctionName="narrow", ReservedConcurrentExecutions=1)
    fresh.invoke("narrow")  # warm, so the slow call below starts at once
    slow = threading.Thread(target=fresh.invoke, args=("narrow", {"sleep": 2}))
    slow.start()
    try:
        for _ in range(200):  # until the slow call holds the one environment
            if any(e.state == "busy" for e in fresh.runtime.environments("narrow")):
                break
            threading.Event().wait(0.01)
        with pytest.raises(lam.exceptions.TooManyRequestsException):
            lam.invoke(FunctionName="narrow", Payload=b"{}")
    finally:
        slow.join()
    cw = fresh.client("cloudwatch")
    assert _value(cw, "narrow", "Throttles", "Sum") == (1.0, "Count")
    assert _value(cw, "narrow", "Invocations", "Sum")[0] == 2.0


def test_concurrent_executions_is_the_most_running_at_once(fresh, code):
    """Three invocations that overlap: ConcurrentExecutions' Maximum is 3; one alone afterwards
    does not lower it (Maximum), and its own datapoint is 1."""
    fresh.deploy("wide", code(HANDLER), "handler.handler")
    threads = [threading.Thread(target=fresh.invoke, args=("wide", {"sleep": 3})) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = fresh.records("wide")
    assert max(r.started_at for r in records) < min(r.ended_at for r in records), "the three did not overlap"
    fresh.invoke("wide")
    cw = fresh.client("cloudwatch")
    assert _value(cw, "wide", "ConcurrentExecutions", "Maximum") == (3.0, "Count")
    assert _value(cw, "wide", "ConcurrentExecutions", "Minimum")[0] == 1.0


def test_peak_concurrency_counts_an_invocation_that_started_earlier_and_ends_later():
    """A long invocation [0, 10] and a short one [1, 2]: the long one saw 2 at t=1."""
    assert peak_concurrency(0, 10, [(0, 10), (1, 2)]) == (2, 1)
    assert peak_concurrency(1, 2, [(1, 2)]) == (1, 1)
    assert peak_concurrency(5, 6, [(0, 10), (1, 2), (5, 6)]) == (2, 5)
