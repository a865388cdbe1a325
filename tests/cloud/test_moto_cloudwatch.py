"""moto's CloudWatch as the local cloud patches it: a new alarm starts in INSUFFICIENT_DATA, an
update keeps its state, and DescribeAlarmHistory lists its state changes.

PutMetricAlarm ("the alarm state is INSUFFICIENT_DATA" on creation; an update leaves the state
unchanged): https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
DescribeAlarmHistory: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarmHistory.html
"""

import json

ALARM = dict(Namespace="Test", MetricName="m", Statistic="Sum", Period=60, EvaluationPeriods=1,
             Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold")


def test_a_new_alarm_is_insufficient_data_and_an_update_keeps_its_state(fresh):
    cw = fresh.client("cloudwatch")
    cw.put_metric_alarm(AlarmName="a", **ALARM)
    assert cw.describe_alarms(AlarmNames=["a"])["MetricAlarms"][0]["StateValue"] == "INSUFFICIENT_DATA"
    cw.set_alarm_state(AlarmName="a", StateValue="ALARM", StateReason="by hand")
    cw.put_metric_alarm(AlarmName="a", **{**ALARM, "Threshold": 5.0})
    alarm = cw.describe_alarms(AlarmNames=["a"])["MetricAlarms"][0]
    assert (alarm["StateValue"], alarm["StateReason"], alarm["Threshold"]) == ("ALARM", "by hand", 5.0)


def test_alarm_history_lists_each_state_change(fresh):
    """Two SetAlarmState calls: two StateUpdate items, newest first by default, each with the old
    and new state in HistoryData; filters by alarm name, item type and ScanBy."""
    cw = fresh.client("cloudwatch")
    cw.put_metric_alarm(AlarmName="h", **ALARM)
    cw.put_metric_alarm(AlarmName="other", **ALARM)
    cw.set_alarm_state(AlarmName="h", StateValue="ALARM", StateReason="went bad",
                       StateReasonData=json.dumps({"why": "test"}))
    cw.set_alarm_state(AlarmName="h", StateValue="OK", StateReason="recovered")
    cw.set_alarm_state(AlarmName="other", StateValue="ALARM", StateReason="elsewhere")

    items = cw.describe_alarm_history(AlarmName="h")["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in items] == [
        "Alarm updated from ALARM to OK", "Alarm updated from INSUFFICIENT_DATA to ALARM"]
    assert all(i["HistoryItemType"] == "StateUpdate" and i["AlarmType"] == "MetricAlarm" for i in items)
    data = json.loads(items[1]["HistoryData"])
    assert data["oldState"]["stateValue"] == "INSUFFICIENT_DATA"
    assert data["newState"] == {"stateValue": "ALARM", "stateReason": "went bad", "stateReasonData": {"why": "test"}}

    ascending = cw.describe_alarm_history(AlarmName="h", ScanBy="TimestampAscending")["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in ascending] == [i["HistorySummary"] for i in reversed(items)]
    assert len(cw.describe_alarm_history()["AlarmHistoryItems"]) == 3
    assert cw.describe_alarm_history(AlarmName="h", HistoryItemType="Action")["AlarmHistoryItems"] == []
    assert len(cw.describe_alarm_history(AlarmName="h", MaxRecords=1)["AlarmHistoryItems"]) == 1


def test_the_patch_is_gone_when_the_cloud_closes():
    """`Patches.add` gives moto an action it lacks and takes it away again."""
    from moto.cloudwatch.responses import CloudWatchResponse

    from lambdalab.cloud.moto import Patches

    patches = Patches()
    patches.add(CloudWatchResponse, "describe_alarm_history_probe", lambda self: None)
    assert hasattr(CloudWatchResponse, "describe_alarm_history_probe")
    patches.remove()
    assert not hasattr(CloudWatchResponse, "describe_alarm_history_probe")
