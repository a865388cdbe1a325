"""CloudWatch alarms a run creates are in its inventory and deleted by its teardown; another
run's alarms, and alarms outside any run, are left alone.

DescribeAlarms with AlarmNamePrefix and AlarmTypes, DeleteAlarms:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DeleteAlarms.html
"""

from __future__ import annotations

from lambdalab.course.target import open_target, teardown

ALARM = dict(Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum", Period=60, EvaluationPeriods=1,
             Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold")


def test_a_runs_alarms_are_listed_and_torn_down(monkeypatch) -> None:
    monkeypatch.delenv("LAMBDALAB_TARGET", raising=False)
    target = open_target(["an alarm"], cpu_limit=False)
    try:
        cw = target.client("cloudwatch")
        cw.put_metric_alarm(AlarmName=target.name("errors"), Tags=target.tag_list(), **ALARM)
        cw.put_metric_alarm(AlarmName="lw-otherrun-errors", **ALARM)
        cw.put_metric_alarm(AlarmName="not-a-run", **ALARM)
        assert target.leftovers() == [teardown.Resource("cloudwatch", "alarm", target.name("errors"))]
        target.teardown()
        assert target.leftovers() == []
        assert sorted(a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]) == [
            "lw-otherrun-errors", "not-a-run"]
    finally:
        target.close()
