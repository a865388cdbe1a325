"""Metric alarms evaluated by the local cloud as CloudWatch evaluates them (moto only stores them).

Alarm evaluation (Period, EvaluationPeriods, DatapointsToAlarm):
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation.html
Missing data (TreatMissingData): https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html
SetAlarmState's state, reason and reason data: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_SetAlarmState.html
"""

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest

HANDLER = """
def handler(event, context):
    if event.get("fail"):
        raise RuntimeError("payment service down")
    return "ok"
"""
# A minute boundary, well inside the two weeks of data CloudWatch accepts.
T0 = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(second=0, microsecond=0)


@pytest.fixture
def alarms(fresh):
    """The cloud's evaluator with its timer stopped, so only the test moves alarms."""
    evaluator = fresh.cloudwatch.alarms
    evaluator.close()
    yield evaluator
    evaluator.start()


def _alarm(cw, name, **overrides):
    spec = dict(AlarmName=name, Namespace="Test", MetricName="m", Statistic="Sum", Period=60,
                EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold")
    spec.update(overrides)
    cw.put_metric_alarm(**spec)


def _state(cw, name):
    alarm = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    return alarm["StateValue"]


def _put(cw, minute, value, dims=()):
    cw.put_metric_data(Namespace="Test", MetricData=[{
        "MetricName": "m", "Value": value, "Timestamp": T0 + timedelta(minutes=minute, seconds=30),
        "Dimensions": [{"Name": k, "Value": v} for k, v in dims]}])


def _at(minute):
    return T0 + timedelta(minutes=minute, seconds=45)


def test_errors_alarm_goes_to_alarm_in_a_failing_burst_and_back_to_ok(fresh, code, alarms):
    """An error-rate alarm on AWS/Lambda Errors (Average of the binary Errors datapoints): three
    failures -> ALARM, with the reason and reason data SetAlarmState would carry; then successes
    bring the rate below the threshold -> OK. Each change is a StateUpdate in the alarm's history."""
    fresh.deploy("checkout", code(HANDLER), "handler.handler")
    cw = fresh.client("cloudwatch")
    cw.put_metric_alarm(AlarmName="checkout-errors", Namespace="AWS/Lambda", MetricName="Errors",
                        Dimensions=[{"Name": "FunctionName", "Value": "checkout"}], Statistic="Average",
                        Period=60, EvaluationPeriods=1, Threshold=0.5, ComparisonOperator="GreaterThanThreshold",
                        TreatMissingData="notBreaching")
    burst = [fresh.invoke("checkout", {"fail": True}) for _ in range(3)]
    assert not any(inv.ok for inv in burst)

    changes = alarms.evaluate(datetime.fromtimestamp(burst[-1].ended_at, timezone.utc))
    assert [(c.alarm, c.new) for c in changes] == [("checkout-errors", "ALARM")]
    alarm = cw.describe_alarms(AlarmNames=["checkout-errors"])["MetricAlarms"][0]
    assert alarm["StateValue"] == "ALARM"
    assert alarm["StateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [1.0 (")
    assert "was greater than the threshold (0.5)" in alarm["StateReason"]
    data = json.loads(alarm["StateReasonData"])
    assert data["recentDatapoints"] == [1.0] and data["statistic"] == "Average" and data["threshold"] == 0.5

    calm = [fresh.invoke("checkout") for _ in range(9)]
    changes = alarms.evaluate(datetime.fromtimestamp(calm[-1].ended_at, timezone.utc))
    assert [(c.old, c.new) for c in changes] == [("ALARM", "OK")]
    assert _state(cw, "checkout-errors") == "OK"
    history = cw.describe_alarm_history(AlarmName="checkout-errors", ScanBy="TimestampAscending")
    assert [i["HistorySummary"] for i in history["AlarmHistoryItems"]] == [
        "Alarm updated from INSUFFICIENT_DATA to ALARM", "Alarm updated from ALARM to OK"]


def test_the_timer_judges_a_datapoint_from_a_periods_last_seconds_in_its_period(fresh, alarms, monkeypatch):
    """Errors at 12:00:55 and the timer's next round at 12:01:02: that round must still judge the
    minute of the errors, or the alarm never moves (lesson 13 on the stand-in waited 180 s for it)."""
    cw = fresh.client("cloudwatch")
    _alarm(cw, "late")
    cw.put_metric_data(Namespace="Test", MetricData=[{"MetricName": "m", "Value": 2,
                                                      "Timestamp": T0 + timedelta(seconds=55)}])
    monkeypatch.setattr(alarms, "now", lambda: T0 + timedelta(seconds=62))
    alarms.timer_round(10.0)
    assert _state(cw, "late") == "ALARM"


def test_m_out_of_n_datapoints(fresh, alarms):
    """DatapointsToAlarm 2 of EvaluationPeriods 3: one breaching minute is not enough, two are,
    even with a good one between them."""
    cw = fresh.client("cloudwatch")
    _alarm(cw, "m-of-n", EvaluationPeriods=3, DatapointsToAlarm=2)
    _put(cw, 0, 5)
    _put(cw, 1, 0)
    alarms.evaluate(_at(1))
    assert _state(cw, "m-of-n") == "OK"
    _put(cw, 2, 3)
    alarms.evaluate(_at(2))
    assert _state(cw, "m-of-n") == "ALARM"
    alarms.evaluate(_at(4))  # minutes 2-4: one breaching datapoint left
    assert _state(cw, "m-of-n") == "OK"


@pytest.mark.parametrize("treat, expected", [
    ("missing", "INSUFFICIENT_DATA"), ("notBreaching", "OK"), ("breaching", "ALARM"), ("ignore", "ALARM"),
])
def test_missing_data(fresh, alarms, treat, expected):
    """After a breaching minute, three minutes with no data: each TreatMissingData as documented
    (`ignore` keeps the current state)."""
    cw = fresh.client("cloudwatch")
    _alarm(cw, "gaps", EvaluationPeriods=2, TreatMissingData=treat)
    _put(cw, 0, 5)
    _put(cw, 1, 5)
    alarms.evaluate(_at(1))
    assert _state(cw, "gaps") == "ALARM"
    alarms.evaluate(_at(4))
    assert _state(cw, "gaps") == expected


@pytest.mark.parametrize("operator, value, state", [
    ("GreaterThanOrEqualToThreshold", 1.0, "ALARM"), ("GreaterThanThreshold", 1.0, "OK"),
    ("LessThanThreshold", 0.5, "ALARM"), ("LessThanOrEqualToThreshold", 1.0, "ALARM"),
    ("LessThanThreshold", 1.0, "OK"),
])
def test_comparison_operators(fresh, alarms, operator, value, state):
    """Each ComparisonOperator against Threshold 1.0."""
    cw = fresh.client("cloudwatch")
    _alarm(cw, "cmp", ComparisonOperator=operator)
    _put(cw, 0, value)
    alarms.evaluate(_at(0))
    assert _state(cw, "cmp") == state


def test_only_the_alarms_exact_dimensions_count(fresh, alarms):
    """CloudWatch treats each combination of dimensions as its own metric: datapoints with an
    extra dimension, or none, do not feed an alarm on {FunctionName: a}."""
    cw = fresh.client("cloudwatch")
    _alarm(cw, "dims", Dimensions=[{"Name": "FunctionName", "Value": "a"}], Statistic="Maximum")
    _put(cw, 0, 9)
    _put(cw, 0, 9, (("FunctionName", "a"), ("Resource", "a:live")))
    _put(cw, 0, 9, (("FunctionName", "b"),))
    _put(cw, 0, 0.5, (("FunctionName", "a"),))
    alarms.evaluate(_at(0))
    assert _state(cw, "dims") == "OK"


def test_statistics_and_percentiles(fresh, alarms):
    """Sum, SampleCount, Average, Minimum and a p90 ExtendedStatistic over one period's values."""
    cw = fresh.client("cloudwatch")
    for v in (1, 2, 3, 4, 10):
        _put(cw, 0, v)
    _alarm(cw, "sum", Threshold=20)              # 20 >= 20
    _alarm(cw, "count", Statistic="SampleCount", Threshold=6)  # 5 < 6
    _alarm(cw, "avg", Statistic="Average", Threshold=4)        # 4 >= 4
    _alarm(cw, "min", Statistic="Minimum", Threshold=2)        # 1 < 2
    cw.put_metric_alarm(AlarmName="p90", Namespace="Test", MetricName="m", ExtendedStatistic="p90", Period=60,
                        EvaluationPeriods=1, Threshold=7.5, ComparisonOperator="GreaterThanThreshold")  # 7.6
    alarms.evaluate(_at(0))
    assert {n: _state(cw, n) for n in ("sum", "count", "avg", "min", "p90")} == {
        "sum": "ALARM", "count": "OK", "avg": "ALARM", "min": "OK", "p90": "ALARM"}


def test_the_cloud_evaluates_alarms_on_its_own(fresh):
    """Without any call from the test, the cloud's timer moves an alarm whose metric breaches."""
    cw = fresh.client("cloudwatch")
    evaluator = fresh.cloudwatch.alarms
    evaluator.close()
    evaluator.start(interval_s=0.1)
    try:
        cw.put_metric_data(Namespace="Test", MetricData=[{"MetricName": "now", "Value": 3}])
        _alarm(cw, "timer", MetricName="now", Period=3600)
        changed = threading.Event()
        for _ in range(100):
            if _state(cw, "timer") == "ALARM":
                changed.set()
                break
            changed.wait(0.1)
        assert changed.is_set()
    finally:
        evaluator.close()
        evaluator.start()
