"""EMF log lines a function prints become CloudWatch metrics, as Lambda's log pipeline makes them.

The format: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
Lambda and EMF: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Generation.html
"""

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from lambdalab.cloud.metrics.emf import EmfError, extract

EMF_HANDLER = """
import json, time

def handler(event, context):
    print(json.dumps({
        "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
            "Namespace": "Shop", "Dimensions": [["service"]],
            "Metrics": [{"Name": "OrdersPlaced", "Unit": "Count"}, {"Name": "BasketValue"}]}]},
        "service": "checkout", "OrdersPlaced": event["orders"], "BasketValue": [10.5, 20.0],
        "requestId": context.aws_request_id}))
    # Invalid EMF: the metric names no member at the root. CloudWatch keeps it as a plain line.
    print(json.dumps({"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
        "Namespace": "Shop", "Dimensions": [["service"]], "Metrics": [{"Name": "Refunds"}]}]},
        "service": "checkout"}))
    return "ok"
"""


def _window():
    now = datetime.now(timezone.utc)
    return now - timedelta(minutes=5), now + timedelta(minutes=1)


def _stats(cw, name, stat, dims=(("service", "checkout"),), unit=None):
    start, end = _window()
    extra = {"Unit": unit} if unit else {}
    points = cw.get_metric_statistics(
        Namespace="Shop", MetricName=name, Dimensions=[{"Name": k, "Value": v} for k, v in dims],
        StartTime=start, EndTime=end, Period=3600, Statistics=[stat], **extra)["Datapoints"]
    return sum(p[stat] for p in points), points


def test_a_printed_emf_document_becomes_metrics_and_invalid_emf_stays_a_log_line(fresh, code):
    """A valid EMF line's metrics reach get_metric_statistics and get_metric_data; an array of
    values counts each value; the invalid document yields no metric, and both lines stay in the
    function's log group (CloudWatch Logs stores the event whether or not extraction works)."""
    fresh.deploy("emf-fn", code(EMF_HANDLER), "handler.handler")
    fresh.invoke("emf-fn", {"orders": 2})
    fresh.invoke("emf-fn", {"orders": 3})
    assert fresh.settle()
    cw = fresh.client("cloudwatch")

    total, points = _stats(cw, "OrdersPlaced", "Sum", unit="Count")
    assert total == 5.0 and points[0]["Unit"] == "Count"
    assert _stats(cw, "BasketValue", "SampleCount")[0] == 4.0  # two invocations x two values
    assert _stats(cw, "BasketValue", "Maximum")[0] == 20.0
    assert _stats(cw, "Refunds", "Sum")[1] == []

    start, end = _window()
    result = cw.get_metric_data(StartTime=start, EndTime=end, MetricDataQueries=[{"Id": "orders", "MetricStat": {
        "Metric": {"Namespace": "Shop", "MetricName": "OrdersPlaced",
                   "Dimensions": [{"Name": "service", "Value": "checkout"}]},
        "Period": 60, "Stat": "Sum"}}])["MetricDataResults"][0]
    assert sum(result["Values"]) == 5.0

    lines = fresh.logs("emf-fn")
    assert sum('"OrdersPlaced"' in line for line in lines) == 2
    assert sum('"Refunds"' in line for line in lines) == 2
    assert fresh.cloudwatch.emf.rejected and "Refunds" in fresh.cloudwatch.emf.rejected[0][1]


def test_the_timestamp_of_the_document_is_the_metric_time(fresh, code):
    """Metrics are stamped with `_aws.Timestamp`, not with the time the line was read."""
    fresh.deploy("emf-old", code("""
        import json, time
        def handler(event, context):
            print(json.dumps({"_aws": {"Timestamp": int((time.time() - 7200) * 1000), "CloudWatchMetrics": [{
                "Namespace": "Shop", "Dimensions": [["service"]], "Metrics": [{"Name": "Late"}]}]},
                "service": "checkout", "Late": 1}))
        """), "handler.handler")
    fresh.invoke("emf-old")
    assert fresh.settle()
    cw = fresh.client("cloudwatch")
    assert _stats(cw, "Late", "Sum")[1] == []  # not in the last five minutes
    now = time.time()
    old = cw.get_metric_statistics(
        Namespace="Shop", MetricName="Late", Dimensions=[{"Name": "service", "Value": "checkout"}],
        StartTime=datetime.fromtimestamp(now - 7500, timezone.utc),
        EndTime=datetime.fromtimestamp(now - 6900, timezone.utc), Period=600, Statistics=["Sum"])["Datapoints"]
    assert [p["Sum"] for p in old] == [1.0]


@pytest.mark.parametrize("document, why", [
    ({"_aws": {"CloudWatchMetrics": []}}, "Timestamp"),
    ({"_aws": {"Timestamp": 1, "CloudWatchMetrics": {}}}, "CloudWatchMetrics"),
    ({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Dimensions": [], "Metrics": []}]}}, "Namespace"),
    ({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["d"]],
                                                      "Metrics": [{"Name": "m"}]}]}, "m": 1}, "dimension 'd'"),
    ({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["d"]],
                                                      "Metrics": [{"Name": "m"}]}]}, "m": 1, "d": 5}, "dimension 'd'"),
    ({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [[]],
                                                      "Metrics": [{"Name": "m"}]}]}, "m": "7"}, "number"),
    ({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{
        "Namespace": "N", "Dimensions": [[]], "Metrics": [{"Name": "m", "Unit": "Parsecs"}]}]}, "m": 1}, "unit"),
    ({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{
        "Namespace": "N", "Dimensions": [[]], "Metrics": [{"Name": "m"}]}]}, "m": list(range(101))}, "array"),
])
def test_invalid_documents_are_refused_with_the_reason(document, why):
    """Each rule of the specification's document structure, broken once."""
    import json
    with pytest.raises(EmfError, match=why):
        extract(json.dumps(document))


def test_lines_that_are_not_emf_carry_no_metrics():
    """Plain text, JSON that is not an object, and JSON objects without `_aws` are ordinary log lines."""
    assert extract("START RequestId: x Version: $LATEST") == []
    assert extract("[1, 2]") == []
    assert extract('{"level": "INFO", "message": "hi"}') == []
    assert extract("{not json") == []


def test_every_dimension_set_makes_its_own_metric():
    """A directive with two dimension sets publishes the metric under each."""
    data = extract('{"_aws": {"Timestamp": 1000, "CloudWatchMetrics": [{"Namespace": "N", '
                   '"Dimensions": [["a"], ["a", "b"]], "Metrics": [{"Name": "m", "StorageResolution": 1}]}]}, '
                   '"a": "x", "b": "y", "m": 2}')
    assert [(d.dimensions, d.values, d.timestamp, d.unit) for d in data] == [
        ((("a", "x"),), (2.0,), 1.0, "None"), ((("a", "x"), ("b", "y")), (2.0,), 1.0, "None")]


POWERTOOLS_SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "powertools" / "metrics-emf.jsonl"


def test_powertools_metrics_output_becomes_metrics(fresh, code):
    """The lines Powertools Metrics really prints (captured in tests/fixtures/powertools, with
    the timestamps moved to now): its ColdStart metric under (function_name, service), and the
    handler's metrics under (service), values arrays included; metadata is not a dimension.
    Powertools Metrics: https://docs.aws.amazon.com/powertools/python/latest/core/metrics/"""
    directory = code("""
        import json, time
        def handler(event, context):
            for line in open("metrics-emf.jsonl"):
                document = json.loads(line)
                document["_aws"]["Timestamp"] = int(time.time() * 1000)
                print(json.dumps(document))
        """)
    (directory / "metrics-emf.jsonl").write_text(POWERTOOLS_SAMPLE.read_text())
    fresh.deploy("booking-fn", directory, "handler.handler")
    fresh.invoke("booking-fn")
    assert fresh.settle()
    cw = fresh.client("cloudwatch")
    start, end = _window()

    def stat(name, stat, dims):
        points = cw.get_metric_statistics(
            Namespace="ServerlessAirline", MetricName=name, StartTime=start, EndTime=end, Period=3600,
            Dimensions=[{"Name": k, "Value": v} for k, v in dims], Statistics=[stat])["Datapoints"]
        return [(p[stat], p["Unit"]) for p in points]

    assert stat("ColdStart", "Sum", [("function_name", "booking-fn"), ("service", "booking")]) == [(1.0, "Count")]
    assert stat("SuccessfulBooking", "Sum", [("service", "booking")]) == [(3.0, "Count")]
    assert stat("SuccessfulBooking", "SampleCount", [("service", "booking")]) == [(2.0, "Count")]
    assert stat("BookingLatency", "Maximum", [("service", "booking")]) == [(42.5, "Milliseconds")]
    assert stat("SuccessfulBooking", "Sum", [("booking_id", "b-7")]) == []
    assert not fresh.cloudwatch.emf.rejected
