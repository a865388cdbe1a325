"""moto's CloudWatch (`moto.cloudwatch`) for the local cloud: alarms that start as CloudWatch's
do, and the history of their states.

CloudWatch creates an alarm in INSUFFICIENT_DATA ("Unchecked: Initial alarm creation") until its
first evaluation; moto starts it in OK. moto records each state change (`Alarm.update_state`,
used by SetAlarmState and by `lambdalab.cloud.metrics.alarms`) but has no DescribeAlarmHistory;
`install` adds it, answering with StateUpdate items as CloudWatch writes them.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lambdalab.cloud.moto import Patches


def state_updates(alarm: Any) -> list[dict[str, Any]]:
    """Each change of an alarm's state, oldest first, as a DescribeAlarmHistory item.

    moto keeps, per change, the state it left (type, reason, reason data, value, since when);
    the state it entered is the next entry's, or the alarm's current one."""
    left = [entry for entry in alarm.history if entry[0] == "StateUpdate"]
    entered = [(r, d, v, t) for _, r, d, v, t in left[1:]] + [
        (alarm.state_reason, alarm.state_reason_data, alarm.state_value, alarm.state_updated_timestamp)]
    items = []
    for (_, old_reason, _, old_value, _), (reason, data, value, when) in zip(left, entered):
        new_state: dict[str, Any] = {"stateValue": value, "stateReason": reason}
        try:
            new_state["stateReasonData"] = json.loads(data) if data else None
        except ValueError:
            new_state["stateReasonData"] = data
        items.append({
            "AlarmName": alarm.name, "AlarmType": "MetricAlarm", "HistoryItemType": "StateUpdate",
            "Timestamp": when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when,
            "HistorySummary": f"Alarm updated from {old_value} to {value}",
            "HistoryData": json.dumps({"version": "1.0",
                                       "oldState": {"stateValue": old_value, "stateReason": old_reason},
                                       "newState": {k: v for k, v in new_state.items() if v is not None}}),
        })
    return items


def _date(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        when = value
    else:
        from dateutil import parser
        when = parser.parse(str(value))
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def install(patches: "Patches") -> None:
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    def initially_insufficient(put_metric_alarm: Any) -> Any:
        def put(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
            existing = self.alarms.get(name)
            alarm = put_metric_alarm(self, name, *args, **kwargs)
            if existing is None:
                alarm.state_value = "INSUFFICIENT_DATA"
            else:  # an update keeps the state and history it had
                alarm.state_value, alarm.state_reason = existing.state_value, existing.state_reason
                alarm.state_reason_data, alarm.history = existing.state_reason_data, existing.history
                alarm.state_updated_timestamp = existing.state_updated_timestamp
            return alarm
        return put

    def describe_alarm_history(self: Any) -> Any:
        name = self._get_param("AlarmName")
        kind = self._get_param("HistoryItemType")
        start, end = _date(self._get_param("StartDate")), _date(self._get_param("EndDate"))
        limit = int(self._get_param("MaxRecords") or 100)
        alarms = [a for n, a in self.cloudwatch_backend.alarms.items() if name in (None, n)]
        items = [i for a in alarms for i in state_updates(a)
                 if kind in (None, "StateUpdate") and (start is None or i["Timestamp"] >= start)
                 and (end is None or i["Timestamp"] <= end)]
        ascending = self._get_param("ScanBy") == "TimestampAscending"
        items.sort(key=lambda i: i["Timestamp"], reverse=not ascending)
        return ActionResult({"AlarmHistoryItems": items[:limit]})

    patches.replace(CloudWatchBackend, "put_metric_alarm", initially_insufficient)
    patches.add(CloudWatchResponse, "describe_alarm_history", describe_alarm_history)
