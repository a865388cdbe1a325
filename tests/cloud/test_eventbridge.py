"""EventBridge in the local cloud: AWS's pattern language, target input, schedules and the clock,
and real handlers fired through moto and the local runtime (issue 3, acceptance 4)."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError
from contract import contract_problems, sample

from lambdalab.cloud.eventbridge.delivery import EventBridgeDelivery
from lambdalab.cloud.eventbridge.patterns import InvalidEventPatternError, compile_pattern, matches
from lambdalab.cloud.eventbridge.schedules import (
    Clock,
    CronSchedule,
    ScheduledRule,
    ScheduleExpressionError,
    fire_times,
    parse_schedule,
)
from lambdalab.cloud.eventbridge.targets import (
    aws_event,
    json_path,
    lambda_function_name,
    render_template,
    target_input,
)
from lambdalab.cloud.local_cloud import LocalCloud

UTC = timezone.utc

EVENT = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "111122223333",
    "time": "2017-12-22T18:43:48Z",
    "region": "us-west-1",
    "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0",
                  "arn:aws:ec2:us-west-1:123456789012:instance/i-0000000000000000"],
    "detail": {
        "instance-id": "i-1234567890abcdef0",
        "state": "running",
        "c-count": 5,
        "x-limit": 301.8,
        "source-ip": "10.0.0.33",
        "flag": True,
        "nothing": None,
        "empty": "",
        "tags": ["prod", "web"],
        "nested": {"level": {"deep": "yes"}},
        "items": [{"name": "apple", "qty": 3}, {"name": "pear", "qty": 10}],
        "FileName": "photos/cat.PNG",
    },
}


def d(detail_pattern: dict) -> dict:
    return {"detail": detail_pattern}


# -- the pattern language: (pattern, expected) against EVENT ----------------------------------------

PATTERN_CASES = [
    # exact values, AND across fields, OR within a list
    ({"source": ["aws.ec2"]}, True),
    ({"source": ["aws.s3", "aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]}, True),
    ({"source": ["aws.ec2"], "detail-type": ["Other"]}, False),
    ({"source": ["AWS.EC2"]}, False),  # case-sensitive
    # JSON types never cross
    (d({"c-count": [5]}), True),
    (d({"c-count": ["5"]}), False),
    (d({"x-limit": [301.8]}), True),
    (d({"flag": [True]}), True),
    (d({"flag": [1]}), False),
    (d({"flag": ["true"]}), False),
    (d({"nothing": [None]}), True),
    (d({"empty": [""]}), True),
    (d({"state": [None]}), False),
    # nested fields
    (d({"nested": {"level": {"deep": ["yes"]}}}), True),
    (d({"nested": {"level": {"deep": ["no"]}}}), False),
    (d({"nested": {"level": ["yes"]}}), False),  # an object is not a leaf
    # arrays in the event match if any element matches
    ({"resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-0000000000000000"]}, True),
    (d({"tags": ["web"]}), True),
    (d({"tags": ["dev"]}), False),
    # arrays of objects: fields must come from the same element
    (d({"items": {"name": ["pear"], "qty": [10]}}), True),
    (d({"items": {"name": ["apple"], "qty": [10]}}), False),
    (d({"items": {"name": ["apple"], "qty": [{"numeric": ["<", 5]}]}}), True),
    # prefix / suffix, with and without case
    ({"time": [{"prefix": "2017-12-22"}]}, True),
    ({"time": [{"prefix": "2018"}]}, False),
    (d({"FileName": [{"suffix": ".PNG"}]}), True),
    (d({"FileName": [{"suffix": ".png"}]}), False),
    (d({"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}), True),
    ({"source": [{"prefix": {"equals-ignore-case": "AWS."}}]}, True),
    (d({"c-count": [{"prefix": "5"}]}), False),  # prefix works on strings only
    # equals-ignore-case
    (d({"state": [{"equals-ignore-case": "RUNNING"}]}), True),
    (d({"state": [{"equals-ignore-case": "stopped"}]}), False),
    # wildcard
    (d({"FileName": [{"wildcard": "photos/*.PNG"}]}), True),
    (d({"FileName": [{"wildcard": "photos/*.jpg"}]}), False),
    (d({"FileName": [{"wildcard": "*cat*"}]}), True),
    # anything-but: a value, a list, numbers, prefix, suffix, ignore-case, wildcard
    (d({"state": [{"anything-but": "initializing"}]}), True),
    (d({"state": [{"anything-but": "running"}]}), False),
    (d({"state": [{"anything-but": ["stopped", "running"]}]}), False),
    (d({"c-count": [{"anything-but": [1, 2, 3]}]}), True),
    (d({"c-count": [{"anything-but": 5}]}), False),
    (d({"state": [{"anything-but": {"prefix": "run"}}]}), False),
    (d({"state": [{"anything-but": {"prefix": "init"}}]}), True),
    (d({"FileName": [{"anything-but": {"suffix": ".PNG"}}]}), False),
    (d({"state": [{"anything-but": {"equals-ignore-case": ["RUNNING", "x"]}}]}), False),
    (d({"FileName": [{"anything-but": {"wildcard": "*/lib/*"}}]}), True),
    (d({"missing": [{"anything-but": "x"}]}), False),  # anything-but needs the field
    (d({"tags": [{"anything-but": "prod"}]}), True),  # "web" is not "prod"
    # numeric ranges
    (d({"c-count": [{"numeric": [">", 0, "<=", 5]}]}), True),
    (d({"c-count": [{"numeric": [">", 5]}]}), False),
    (d({"x-limit": [{"numeric": ["=", 3.018e2]}]}), True),
    (d({"x-limit": [{"numeric": [">=", 301.8, "<", 302]}]}), True),
    (d({"state": [{"numeric": [">", 0]}]}), False),  # numbers only
    (d({"flag": [{"numeric": ["=", 1]}]}), False),  # a boolean is not a number
    # exists (leaves only)
    (d({"c-count": [{"exists": True}]}), True),
    (d({"c-count": [{"exists": False}]}), False),
    (d({"missing": [{"exists": False}]}), True),
    (d({"missing": [{"exists": True}]}), False),
    (d({"nothing": [{"exists": True}]}), True),  # null is a value
    (d({"nested": [{"exists": False}]}), True),  # an object is not a leaf
    (d({"nested": {"absent": [{"exists": False}]}}), True),
    ({"nothere": {"x": [{"exists": False}]}}, True),
    # cidr
    (d({"source-ip": [{"cidr": "10.0.0.0/24"}]}), True),
    (d({"source-ip": [{"cidr": "10.0.1.0/24"}]}), False),
    # $or, at the top and nested, with an AND inside
    ({"$or": [{"source": ["aws.s3"]}, {"detail-type": ["EC2 Instance State-change Notification"]}]}, True),
    ({"$or": [{"source": ["aws.s3"]}, {"detail-type": ["x"]}]}, False),
    ({"source": ["aws.ec2"], "detail": {"$or": [{"c-count": [{"numeric": [">", 100]}]},
                                                {"state": ["running"], "flag": [True]}]}}, True),
    ({"source": ["aws.ec2"], "detail": {"$or": [{"c-count": [{"numeric": [">", 100]}]},
                                                {"state": ["running"], "flag": [False]}]}}, False),
    # several filters in one list: any may match
    (d({"state": [{"prefix": "stop"}, {"numeric": [">", 0]}, "running"]}), True),
    ({}, True),
]


@pytest.mark.parametrize("pattern,expected", PATTERN_CASES, ids=[json.dumps(p)[:70] for p, _ in PATTERN_CASES])
def test_pattern_language(pattern: dict, expected: bool) -> None:
    assert matches(pattern, EVENT) is expected
    assert matches(json.dumps(pattern), EVENT) is expected  # JSON text as put_rule receives it


def test_moto_pattern_matcher_gets_cases_wrong_that_ours_gets_right() -> None:
    """Why we do not reuse moto's EventPattern: type mixing and arrays of objects."""
    from moto.events.models import EventPattern as MotoPattern

    wrong = [case for case in PATTERN_CASES if MotoPattern.load(json.dumps(case[0])).matches_event(EVENT) != case[1]]
    assert (d({"flag": [1]}), False) in wrong
    assert (d({"items": {"name": ["pear"], "qty": [10]}}), True) in wrong


@pytest.mark.parametrize("pattern,message", [
    ("{not json", "not valid JSON"),
    ('["source"]', "a pattern is a JSON object"),
    ({"source": "aws.ec2"}, "'source' must be an object or an array"),
    ({"source": []}, "empty arrays are not allowed"),
    ({"source": [["a"]]}, "cannot contain arrays"),
    ({"source": [{"regex": "a.*"}]}, "unrecognized match type 'regex'"),
    ({"source": [{"prefix": "a", "suffix": "b"}]}, "exactly one key"),
    ({"source": [{"prefix": 5}]}, "prefix takes a string"),
    ({"n": [{"numeric": [">", "5"]}]}, "numeric bound"),
    ({"n": [{"numeric": ["<", 5, ">", 1]}]}, "numeric range"),
    ({"n": [{"numeric": [">", 9, "<", 1]}]}, "above high"),
    ({"n": [{"numeric": ["!=", 1]}]}, "numeric operator"),
    ({"n": [{"exists": "yes"}]}, "exists takes true or false"),
    ({"n": [{"anything-but": ["a", 1]}]}, "all strings or all numbers"),
    ({"n": [{"anything-but": {"numeric": [">", 1]}}]}, "anything-but takes"),
    ({"n": [{"wildcard": "a**b"}]}, "consecutive"),
    ({"n": [{"wildcard": "a\\b"}]}, "backslash"),
    ({"n": [{"cidr": "10.0.0.300/8"}]}, "CIDR"),
    ({"$or": [{"source": ["a"]}]}, "at least two"),
])
def test_invalid_patterns_are_rejected_with_the_reason(pattern, message: str) -> None:
    with pytest.raises(InvalidEventPatternError, match=message):
        compile_pattern(pattern)


def test_a_wildcard_star_can_be_escaped() -> None:
    assert matches({"k": [{"wildcard": "a\\*b"}]}, {"k": "a*b"})
    assert not matches({"k": [{"wildcard": "a\\*b"}]}, {"k": "axxb"})


# -- target input ---------------------------------------------------------------------------------


def test_json_path_subset() -> None:
    assert json_path(EVENT, "$.detail.state") == (True, "running")
    assert json_path(EVENT, "$.detail.items[1].name") == (True, "pear")
    assert json_path(EVENT, "$.detail.items[*].qty") == (True, [3, 10])
    assert json_path(EVENT, "$.detail-type") == (True, EVENT["detail-type"])
    assert json_path(EVENT, "$.detail.nope") == (False, None)
    assert json_path(EVENT, "$") == (True, EVENT)
    with pytest.raises(ValueError, match="must start with"):
        json_path(EVENT, "detail.state")


def test_input_transformer_fills_json_and_text_templates() -> None:
    variables = {"instance": (True, "i-1"), "state": (True, 'say "hi"'), "count": (True, 5),
                 "tags": (True, ["a", "b"]), "gone": (False, None)}
    assert render_template('{"id": <instance>, "n": <count>, "tags": <tags>, "x": <gone>}', variables) == \
        {"id": "i-1", "n": 5, "tags": ["a", "b"], "x": None}
    assert render_template('{"msg": "<instance> is in state <state> (<count>)<gone>"}', variables) == \
        {"msg": 'i-1 is in state say "hi" (5)'}
    assert render_template('"<instance> is in state <count>"', variables) == "i-1 is in state 5"
    # Not JSON at all: the text itself, strings quoted where they stood outside quotes.
    assert render_template("<instance> is up", variables) == '"i-1" is up'


def test_target_input_precedence_and_predefined_variables() -> None:
    kw = dict(rule_arn="arn:aws:events:us-east-1:123456789012:rule/r", rule_name="r",
              ingestion_time="2017-12-22T18:43:49Z")
    assert target_input({"Id": "t"}, EVENT, **kw) is EVENT
    assert target_input({"Id": "t", "Input": '{"fixed": true}'}, EVENT, **kw) == {"fixed": True}
    assert target_input({"Id": "t", "InputPath": "$.detail.nested"}, EVENT, **kw) == {"level": {"deep": "yes"}}
    transformed = target_input({"Id": "t", "InputTransformer": {
        "InputPathsMap": {"state": "$.detail.state"},
        "InputTemplate": '{"rule": <aws.events.rule-name>, "arn": "<aws.events.rule-arn>", "state": <state>, '
                         '"at": <aws.events.event.ingestion-time>, "meta": <aws.events.event>, '
                         '"all": <aws.events.event.json>}'}}, EVENT, **kw)
    assert transformed["rule"] == "r" and transformed["arn"] == kw["rule_arn"] and transformed["state"] == "running"
    assert transformed["at"] == "2017-12-22T18:43:49Z"
    assert "detail" not in transformed["meta"] and transformed["meta"]["id"] == EVENT["id"]
    assert transformed["all"] == EVENT
    with pytest.raises(ValueError, match="Input is not valid JSON"):
        target_input({"Id": "t", "Input": "{nope"}, EVENT, **kw)


def test_aws_event_shape_from_moto_message() -> None:
    moto_message = {"version": "0", "id": "abc", "detail-type": "T", "source": "s", "account": "123456789012",
                    "time": 1514000000.25, "region": "us-east-1", "resources": [], "detail": {"k": 1},
                    "ingestion-time": 1514000001.0}
    event = aws_event(moto_message)
    assert list(event) == ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]
    assert event["time"] == "2017-12-23T03:33:20Z"
    assert contract_problems("eventbridge", event, sample("eventbridge")) == []
    assert lambda_function_name("arn:aws:lambda:us-east-1:123456789012:function:fn:live") == "fn"
    assert lambda_function_name("arn:aws:sqs:us-east-1:123456789012:q") is None


# -- schedule expressions -------------------------------------------------------------------------

T0 = datetime(2024, 2, 10, 12, 0, tzinfo=UTC)  # a Saturday in a leap February


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("expression,after,expected", [
    ("cron(0 0 L * ? *)", T0, ["2024-02-29 00:00", "2024-03-31 00:00", "2024-04-30 00:00"]),
    ("cron(0 0 L * ? *)", at("2023-02-10 00:00"), ["2023-02-28 00:00", "2023-03-31 00:00", "2023-04-30 00:00"]),
    ("cron(0 0 L-2 * ? *)", T0, ["2024-02-27 00:00", "2024-03-29 00:00", "2024-04-28 00:00"]),
    ("cron(30 23 31 * ? *)", T0, ["2024-03-31 23:30", "2024-05-31 23:30", "2024-07-31 23:30"]),
    ("cron(0 0 29 2 ? *)", at("2024-03-01 00:00"), ["2028-02-29 00:00", "2032-02-29 00:00", "2036-02-29 00:00"]),
    ("cron(0 9 ? * MON-FRI *)", T0, ["2024-02-12 09:00", "2024-02-13 09:00", "2024-02-14 09:00"]),
    ("cron(0 9 ? * 2-6 *)", T0, ["2024-02-12 09:00", "2024-02-13 09:00", "2024-02-14 09:00"]),
    ("cron(0 18 ? * FRI-MON *)", at("2024-02-13 00:00"), ["2024-02-16 18:00", "2024-02-17 18:00", "2024-02-18 18:00"]),
    ("cron(15 10 ? * SUN,sat *)", T0, ["2024-02-11 10:15", "2024-02-17 10:15", "2024-02-18 10:15"]),
    ("cron(0 12 ? * 6L *)", T0, ["2024-02-23 12:00", "2024-03-29 12:00", "2024-04-26 12:00"]),
    ("cron(0 10 ? * 3#2 *)", T0, ["2024-02-13 10:00", "2024-03-12 10:00", "2024-04-09 10:00"]),
    ("cron(0 10 ? * MON#5 *)", T0, ["2024-04-29 10:00", "2024-07-29 10:00", "2024-09-30 10:00"]),
    ("cron(0 8 ? * L *)", T0, ["2024-02-17 08:00", "2024-02-24 08:00", "2024-03-02 08:00"]),
    ("cron(0 0 15W * ? *)", at("2024-06-01 00:00"), ["2024-06-14 00:00", "2024-07-15 00:00", "2024-08-15 00:00"]),
    ("cron(0 0 1W * ? *)", at("2024-05-15 00:00"), ["2024-06-03 00:00", "2024-07-01 00:00", "2024-08-01 00:00"]),
    ("cron(0 0 31W * ? *)", at("2024-03-01 00:00"), ["2024-03-29 00:00", "2024-05-31 00:00", "2024-07-31 00:00"]),
    ("cron(0 0 LW * ? *)", T0, ["2024-02-29 00:00", "2024-03-29 00:00", "2024-04-30 00:00"]),
    ("cron(0/15 * * * ? *)", T0, ["2024-02-10 12:15", "2024-02-10 12:30", "2024-02-10 12:45"]),
    ("cron(1/20 * * * ? *)", T0, ["2024-02-10 12:01", "2024-02-10 12:21", "2024-02-10 12:41"]),
    ("cron(0 22-2/2 * * ? *)", T0, ["2024-02-10 22:00", "2024-02-11 00:00", "2024-02-11 02:00"]),
    ("cron(0 0 1 JAN,JUL ? *)", T0, ["2024-07-01 00:00", "2025-01-01 00:00", "2025-07-01 00:00"]),
    ("cron(0 0 1 1 ? 2030-2031)", T0, ["2030-01-01 00:00", "2031-01-01 00:00"]),
    ("cron(0 0 1 1 ? 2020)", T0, []),
    ("cron(5 4 * * ? 2199)", at("2199-12-31 04:05"), []),
    ("rate(1 minute)", T0, ["2024-02-10 12:01", "2024-02-10 12:02", "2024-02-10 12:03"]),
    ("rate(5 minutes)", T0, ["2024-02-10 12:05", "2024-02-10 12:10", "2024-02-10 12:15"]),
    ("rate(1 day)", T0, ["2024-02-11 12:00", "2024-02-12 12:00", "2024-02-13 12:00"]),
    ("rate(2 hours)", T0, ["2024-02-10 14:00", "2024-02-10 16:00", "2024-02-10 18:00"]),
])
def test_next_fire_times(expression: str, after: datetime, expected: list[str]) -> None:
    assert [t.strftime("%Y-%m-%d %H:%M") for t in fire_times(expression, after, 3)] == expected


def test_cron_fires_strictly_after_the_given_time_and_ignores_seconds() -> None:
    cron = parse_schedule("cron(0 12 * * ? *)")
    assert isinstance(cron, CronSchedule)
    assert cron.next_after(at("2024-02-10 12:00")) == at("2024-02-11 12:00")
    assert cron.next_after(at("2024-02-10 11:59:59.5")) == at("2024-02-10 12:00")


def test_rate_counts_from_when_the_rule_began() -> None:
    rate = parse_schedule("rate(10 minutes)")
    anchor = at("2024-02-10 12:03:30")
    assert rate.next_after(at("2024-02-10 12:20:00"), anchor) == at("2024-02-10 12:23:30")
    assert rate.next_after(at("2024-02-10 12:23:30"), anchor) == at("2024-02-10 12:33:30")


@pytest.mark.parametrize("expression,message", [
    ("rate(1 minutes)", "singular"),
    ("rate(5 minute)", "plural"),
    ("rate(0 minutes)", "positive"),
    ("rate(5 seconds)", "not minute"),
    ("rate(-1 minutes)", "rate\\(value unit\\)"),
    ("every 5 minutes", "neither rate"),
    ("cron(0 10 * * *)", "5 fields"),
    ("cron(0 10 * * * *)", "exactly one of day-of-month and day-of-week"),
    ("cron(0 10 ? * ? *)", "exactly one of"),
    ("cron(60 10 * * ? *)", "outside 0-59"),
    ("cron(0 24 * * ? *)", "outside 0-23"),
    ("cron(0 0 32 * ? *)", "outside 1-31"),
    ("cron(0 0 ? * 8 *)", "outside 1-7"),
    ("cron(0 0 ? FOO * *)", "not a number or a name"),
    ("cron(0 0 1 * ? 1969)", "outside 1970-2199"),
    ("cron(0 0 ? * 3#6 *)", "n = 1-5"),
    ("cron(0 0 ? * 3#1,5#2 *)", "one day#n"),
    ("cron(0 0 L,5 * ? *)", "stand alone"),
    ("cron(*/0 * * * ? *)", "step"),
    ("cron(? 0 1 * ? *)", "minutes field"),
])
def test_invalid_schedule_expressions(expression: str, message: str) -> None:
    with pytest.raises(ScheduleExpressionError, match=message):
        parse_schedule(expression)


# -- the clock, against a plain list of rules -------------------------------------------------------


class RuleList:
    """A schedule source the test controls: rules in a list, every fire recorded."""

    def __init__(self, *rules: ScheduledRule):
        self.rules = list(rules)
        self.fired: list[tuple[str, datetime]] = []
        self.lock = threading.Lock()

    def scheduled_rules(self) -> list[ScheduledRule]:
        return list(self.rules)

    def fire(self, rule: ScheduledRule, when: datetime) -> list:
        with self.lock:
            self.fired.append((rule.arn, when))
        return [when]


def test_clock_fires_every_due_schedule_in_time_order() -> None:
    source = RuleList(ScheduledRule("rate5", "rate(5 minutes)", True),
                      ScheduledRule("hourly", "cron(0 * * * ? *)", True),
                      ScheduledRule("off", "rate(1 minute)", False))
    clock = Clock(source, start=at("2024-02-10 11:52"))
    firings = clock.advance(timedelta(minutes=20))
    assert clock.now == at("2024-02-10 12:12")
    assert [(f.rule_arn, f.time.strftime("%H:%M")) for f in firings if f.enabled] == [
        ("rate5", "11:57"), ("hourly", "12:00"), ("rate5", "12:02"), ("rate5", "12:07"), ("rate5", "12:12")]
    assert source.fired == [(f.rule_arn, f.time) for f in firings if f.enabled]
    assert len([f for f in firings if not f.enabled]) == 20  # a disabled rule keeps time, delivers nothing
    source.rules[2] = ScheduledRule("off", "rate(1 minute)", True)
    assert [(f.rule_arn, f.time.strftime("%H:%M"), f.enabled) for f in clock.advance(60)] == [("off", "12:13", True)]
    assert clock.advance(minutes=0) == []


def test_clock_rejects_going_backwards_and_huge_jumps() -> None:
    clock = Clock(RuleList(ScheduledRule("r", "rate(1 minute)", True)), start=T0, max_firings=100)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="more than 100"):
        clock.advance(days=1)
    assert clock.now == T0
    assert len(clock.advance(hours=1)) == 60


def test_clock_real_time_mode_ticks_on_wall_clock_and_stops() -> None:
    source = RuleList(ScheduledRule("every-minute", "cron(* * * * ? *)", True))
    now = datetime.now(UTC)
    # Start the clock 0.3 s before a minute boundary, so wall-clock ticks reach it quickly.
    start = now.replace(second=59, microsecond=700_000)
    clock = Clock(source, start=start)
    clock.start_realtime(tick_s=0.05)
    try:
        deadline = time.monotonic() + 5
        while not source.fired and time.monotonic() < deadline:
            time.sleep(0.05)
        assert source.fired and source.fired[0][1] == start.replace(second=0, microsecond=0) + timedelta(minutes=1)
        assert clock.realtime and clock.now > start
        clock.advance(minutes=2)  # fast-forward works in real-time mode too
        assert len(source.fired) == 3
    finally:
        clock.close()
    assert not clock.realtime
    assert not any(t.name == "lambdalab-clock" for t in threading.enumerate())
    frozen = clock.now
    time.sleep(0.1)
    assert clock.now == frozen


# -- through moto and the local runtime --------------------------------------------------------------


def test_closing_gives_moto_its_behaviour_back() -> None:
    """Runs before this module opens its cloud: nothing is patched yet."""
    from moto.events.models import EventsBackend, Rule
    from moto.events.responses import EventsHandler

    from lambdalab.cloud.eventbridge import delivery as eventbridge

    before = (Rule.send_to_targets, EventsBackend.put_rule, EventsHandler.test_event_pattern)
    assert before[0].__module__ == "moto.events.models"
    outer = EventBridgeDelivery(lambda *a, **k: None).start()
    patched = Rule.send_to_targets
    assert patched.__module__ == "lambdalab.cloud.moto.events"
    inner = EventBridgeDelivery(lambda *a, **k: None).start()
    assert Rule.send_to_targets is patched  # patched once, however many deliveries are open
    assert eventbridge._current() is inner  # the latest opened delivers
    inner.close()
    assert Rule.send_to_targets is patched and eventbridge._current() is outer
    outer.close()
    assert (Rule.send_to_targets, EventsBackend.put_rule, EventsHandler.test_event_pattern) == before

HANDLER = textwrap.dedent('''
    import json
    def handler(event, context):
        print("EVENT " + json.dumps(event))
        return {"seen": event}
''')


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    code = tmp_path_factory.mktemp("eb-handler")
    (code / "app.py").write_text(HANDLER)
    with LocalCloud(cpu_limit=False, async_retry_delays=(0.05, 0.05)) as c:
        c.code_dir = code
        yield c


@pytest.fixture
def eb(cloud):
    cloud.reset()
    cloud.events.reset()
    cloud.deploy("sink", cloud.code_dir, "app.handler")
    return cloud.client("events")


def sink_arn(cloud) -> str:
    return cloud.client("lambda").get_function(FunctionName="sink")["Configuration"]["FunctionArn"]


def wait_all(deliveries) -> None:
    for delivery in deliveries:
        assert delivery.ok, delivery.error
        assert delivery.handle.wait(30), "the asynchronous invocation did not finish"


def test_matching_event_fires_the_target_and_a_non_matching_one_does_not(cloud, eb) -> None:
    """Acceptance 4 (first half): a real handler, through PutEvents, moto and the runtime."""
    eb.put_rule(Name="big-orders", EventPattern=json.dumps(
        {"source": ["shop.orders"], "detail": {"total": [{"numeric": [">", 100]}], "items": {"sku": ["A1"]}}}))
    eb.put_targets(Rule="big-orders", Targets=[{"Id": "sink", "Arn": sink_arn(cloud)}])
    entries = [
        {"Source": "shop.orders", "DetailType": "OrderPlaced",
         "Detail": json.dumps({"total": 150, "items": [{"sku": "B2"}, {"sku": "A1"}]}),
         "Resources": ["arn:aws:shop:::order/1"]},
        {"Source": "shop.orders", "DetailType": "OrderPlaced",
         "Detail": json.dumps({"total": 50, "items": [{"sku": "A1"}]})},
        {"Source": "shop.returns", "DetailType": "OrderPlaced",
         "Detail": json.dumps({"total": 500, "items": [{"sku": "A1"}]})},
    ]
    response = eb.put_events(Entries=entries)
    assert response["FailedEntryCount"] == 0
    wait_all(cloud.events.deliveries)
    assert cloud.settle(30)
    records = cloud.runtime.records("sink")
    assert len(records) == 1 and records[0].ok
    event = records[0].event
    assert event["id"] == response["Entries"][0]["EventId"]
    assert event["detail"] == {"total": 150, "items": [{"sku": "B2"}, {"sku": "A1"}]}
    assert event["resources"] == ["arn:aws:shop:::order/1"] and event["account"] == cloud.account_id
    assert contract_problems("eventbridge", event, sample("eventbridge")) == []
    assert records[0].result == {"seen": event}


def test_rate_schedule_fast_forwarded_ten_minutes_fires_ten_times(cloud, eb) -> None:
    """Acceptance 4 (second half)."""
    rule_arn = eb.put_rule(Name="every-minute", ScheduleExpression="rate(1 minute)")["RuleArn"]
    eb.put_targets(Rule="every-minute", Targets=[{"Id": "sink", "Arn": sink_arn(cloud)}])
    clock = cloud.events.clock
    start = clock.now
    firings = clock.advance(timedelta(minutes=10))
    assert [f.time for f in firings] == [start + timedelta(minutes=k) for k in range(1, 11)]
    wait_all(d for f in firings for d in f.deliveries)
    assert cloud.settle(30)
    records = cloud.runtime.records("sink")
    assert len(records) == 10 and all(r.ok for r in records)
    schedule_sample = sample("schedule")
    times = sorted(r.event["time"] for r in records)
    assert times == [(start + timedelta(minutes=k)).strftime("%Y-%m-%dT%H:%M:%SZ") for k in range(1, 11)]
    for r in records:
        assert r.event["source"] == "aws.events" and r.event["detail-type"] == "Scheduled Event"
        assert r.event["resources"] == [rule_arn] and r.event["detail"] == {}
        assert contract_problems("schedule", r.event, schedule_sample) == []
    assert len({r.event["id"] for r in records}) == 10


def test_cron_schedule_disabled_rule_and_input_through_the_cloud(cloud, eb) -> None:
    eb.put_rule(Name="noon", ScheduleExpression="cron(0 12 * * ? *)")
    eb.put_targets(Rule="noon", Targets=[{"Id": "sink", "Arn": sink_arn(cloud), "Input": '{"job": "report"}'}])
    eb.put_rule(Name="paused", ScheduleExpression="rate(1 hour)", State="DISABLED")
    eb.put_targets(Rule="paused", Targets=[{"Id": "sink", "Arn": sink_arn(cloud)}])
    firings = cloud.events.clock.advance(days=3)
    delivered = [f for f in firings if f.deliveries]
    assert [f.time.strftime("%H:%M") for f in delivered] == ["12:00"] * 3
    assert all(not f.enabled for f in firings if f.rule_arn.endswith("/paused")) and len(firings) == 3 + 72
    wait_all(d for f in delivered for d in f.deliveries)
    assert [r.event for r in cloud.runtime.records("sink")] == [{"job": "report"}] * 3


def test_disabled_and_schedule_only_rules_get_no_events_and_transformers_apply(cloud, eb) -> None:
    arn = sink_arn(cloud)
    eb.put_rule(Name="off", EventPattern=json.dumps({"source": ["app"]}), State="DISABLED")
    eb.put_targets(Rule="off", Targets=[{"Id": "sink", "Arn": arn}])
    eb.put_rule(Name="tick", ScheduleExpression="rate(5 minutes)")  # moto would send it every event
    eb.put_targets(Rule="tick", Targets=[{"Id": "sink", "Arn": arn}])
    eb.put_rule(Name="shaped", EventPattern=json.dumps({"source": ["app"], "detail": {"user": {"tier": ["gold"]}}}))
    eb.put_targets(Rule="shaped", Targets=[
        {"Id": "sink", "Arn": arn, "InputTransformer": {
            "InputPathsMap": {"name": "$.detail.user.name", "type": "$.detail-type"},
            "InputTemplate": '{"greeting": "Hello <name>", "type": <type>, "rule": <aws.events.rule-name>}'}},
        {"Id": "name-only", "Arn": arn, "InputPath": "$.detail.user.name"},
        {"Id": "gone", "Arn": arn.replace(":sink", ":no-such-function")},
        {"Id": "topic", "Arn": "arn:aws:sns:us-east-1:123456789012:not-served-by-moto"}])
    response = eb.put_events(Entries=[{"Source": "app", "DetailType": "SignedUp",
                                       "Detail": json.dumps({"user": {"name": "Ada", "tier": "gold"}})}])
    assert response["FailedEntryCount"] == 0  # failing targets do not fail PutEvents
    assert sorted((d.rule_arn.rsplit("/", 1)[1], d.target_id) for d in cloud.events.deliveries) == [
        ("shaped", "gone"), ("shaped", "name-only"), ("shaped", "sink"), ("shaped", "topic")]
    deliveries = {d.target_id: d for d in cloud.events.deliveries}
    assert "ResourceNotFoundException" in deliveries["gone"].error
    assert "moto does not deliver EventBridge events to sns targets" in deliveries["topic"].error
    wait_all([deliveries["sink"], deliveries["name-only"]])
    seen = [r.result["seen"] for r in cloud.runtime.records("sink")]  # what the handler received
    assert sorted(seen, key=str) == ["Ada", {"greeting": "Hello Ada", "type": "SignedUp", "rule": "shaped"}]


def test_non_lambda_targets_stay_with_moto(cloud, eb) -> None:
    sqs = cloud.client("sqs")
    queue_url = sqs.create_queue(QueueName="copies")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    eb.put_rule(Name="both", EventPattern=json.dumps({"source": [{"prefix": "app."}]}))
    eb.put_targets(Rule="both", Targets=[{"Id": "sink", "Arn": sink_arn(cloud)}, {"Id": "q", "Arn": queue_arn}])
    eb.put_events(Entries=[{"Source": "app.billing", "DetailType": "Paid", "Detail": json.dumps({"cents": 995})}])
    wait_all(cloud.events.deliveries)
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert json.loads(messages[0]["Body"])["detail"] == {"cents": 995}
    assert cloud.runtime.records("sink")[0].event["detail"] == {"cents": 995}


def test_put_rule_and_test_event_pattern_speak_eventbridges_language(cloud, eb) -> None:
    with pytest.raises(ClientError) as err:
        eb.put_rule(Name="bad", EventPattern=json.dumps({"source": [{"regex": "x"}]}))
    assert err.value.response["Error"]["Code"] == "InvalidEventPatternException"
    assert "unrecognized match type 'regex'" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        eb.put_rule(Name="bad", ScheduleExpression="rate(1 minutes)")
    assert err.value.response["Error"]["Code"] == "ValidationException"
    event = json.dumps(EVENT)
    assert eb.test_event_pattern(EventPattern=json.dumps(d({"items": {"name": ["pear"], "qty": [10]}})),
                                 Event=event)["Result"] is True
    assert eb.test_event_pattern(EventPattern=json.dumps(d({"flag": [1]})), Event=event)["Result"] is False


