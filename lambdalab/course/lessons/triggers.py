"""Lesson 01's wiring: one function behind six real triggers, fired, timed, and what arrived.

`connect(target, function)` aims six event sources at one function on a target
(`lambdalab.course.target`: the local cloud or AWS, every name with the run's prefix): an S3
bucket's upload notification, an SQS queue and a DynamoDB stream (each read by an event source
mapping), an EventBridge rule, an EventBridge Scheduler schedule (with its execution role), and
an HTTP API (quick create: `create_api(Target=...)`). It can adopt an HTTP API and a schedule
made beforehand with the same calls (`api_id=`, `schedule_name=`), which is how lesson 01 shows
those calls. Each `Triggers.fire_*` method does what a real client does (an upload, a message,
an item write, PutEvents, the clock reaching the schedule, an HTTP request), times the caller,
waits until the cloud is quiet, and returns a `Firing`: what the caller got back and every
invocation that ran (retries included), read through the target: the local runtime's records,
or on AWS the function's logs (the inspector prints each event on a line starting `EVENT `).
On AWS nothing can move Scheduler's clock: `fire_schedule` says where its run will appear.

`caller_timeline` draws who waited for whom; `RawEvents` shows whole events, collapsed in
Jupyter and trimmed as text; `shape` and `value_at` describe an event without printing it all.
"""

from __future__ import annotations

import html
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lambdalab.course.target.reports import SettleTimeout
from lambdalab.runtime.records import Invocation

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SOURCES = ("s3", "sqs", "dynamodb", "eventbridge", "schedule", "http")
_PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]{1,28}[a-z0-9]$")  # with the run's prefix, fits every name it makes
_PATH_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_MISSING = object()
ABSENT = "(not in this event)"
EVENT_LINE = "EVENT "  # how the inspector prints each event it receives
# How each source invokes: the local runtime records it; on AWS the logs do not say, the documentation does.
INVOCATION_TYPES = {"s3": "Event", "eventbridge": "Event", "schedule": "Event", "sqs": "RequestResponse",
                    "dynamodb": "RequestResponse", "http": "RequestResponse"}


@dataclass(frozen=True)
class SourceFacts:
    """What the lesson says about one kind of trigger."""

    label: str
    style: str  # how Lambda is invoked: pushed async, pushed sync, or polled
    permission: str  # what lets the source reach the function
    key_paths: tuple[str, ...]  # where the interesting values sit in its event


FACTS: dict[str, SourceFacts] = {
    "s3": SourceFacts("S3 upload", "push, asynchronous", "function policy: s3.amazonaws.com may invoke",
                      ("Records[0].eventSource", "Records[0].eventName", "Records[0].s3.bucket.name",
                       "Records[0].s3.object.key", "Records[0].s3.object.size")),
    "sqs": SourceFacts("SQS message", "polled (event source mapping), synchronous batch",
                       "execution role: sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes",
                       ("Records[0].eventSource", "Records[0].body", "Records[0].attributes.ApproximateReceiveCount")),
    "dynamodb": SourceFacts("DynamoDB change", "polled (event source mapping), synchronous batch",
                            "execution role: dynamodb:GetRecords, GetShardIterator, DescribeStream, ListStreams",
                            ("Records[0].eventSource", "Records[0].eventName", "Records[0].dynamodb.Keys",
                             "Records[0].dynamodb.NewImage")),
    "eventbridge": SourceFacts("EventBridge event", "push, asynchronous",
                               "function policy: events.amazonaws.com may invoke",
                               ("source", "detail-type", "detail")),
    # Scheduler sends the target's Input and nothing else: these paths are the Input of SCHEDULE_INPUT.
    "schedule": SourceFacts("Scheduler schedule", "push, asynchronous",
                            "schedule's execution role (RoleArn): scheduler.amazonaws.com may assume it, "
                            "it may lambda:InvokeFunction",
                            ("job", "schedule_arn", "scheduled_time")),
    "http": SourceFacts("HTTP request", "push, synchronous",
                        "function policy: apigateway.amazonaws.com may invoke, for this API's SourceArn",
                        ("routeKey", "requestContext.http.method", "rawPath", "rawQueryString", "body")),
}

# What the course's schedules send: Scheduler replaces the <aws.scheduler.*> context attributes
# at each firing, so the function learns which schedule fired and for which time.
SCHEDULE_INPUT: dict[str, str] = {"job": "tidy-up", "schedule_arn": "<aws.scheduler.schedule-arn>",
                                  "scheduled_time": "<aws.scheduler.scheduled-time>"}


# --- looking at events ----------------------------------------------------------------------------


def value_at(event: Any, path: str, default: Any = _MISSING) -> Any:
    """The value at `path` ("Records[0].s3.object.key", "detail-type") in an event.

    Raises KeyError naming the first step that is not there, unless a `default` is given.
    """
    steps = _PATH_STEP.findall(path)
    if not path or "".join(f"[{i}]" if i else f".{k}" for k, i in steps).lstrip(".") != path:
        raise ValueError(f"{path!r} is not a path like 'Records[0].s3.object.key'")
    node, walked = event, ""
    for key, index in steps:
        walked += f"[{index}]" if index else (f".{key}" if walked else key)
        if index:
            ok = isinstance(node, list) and int(index) < len(node)
            node = node[int(index)] if ok else _MISSING
        else:
            node = node.get(key, _MISSING) if isinstance(node, dict) else _MISSING
        if node is _MISSING:
            if default is not _MISSING:
                return default
            raise KeyError(f"the event has no {walked}")
    return node


def shape(value: Any, depth: int = 2) -> str:
    """A one-line outline of an event: its keys, nested `depth` levels deep ({…} below that)."""
    if isinstance(value, dict):
        if not value:
            return "{}"
        if depth <= 0:
            return "{…}"
        # A list costs no depth: Records[0] is where a batch event's content starts.
        parts = [k if not isinstance(v, (dict, list)) or not v
                 else f"{k}: {shape(v, depth if isinstance(v, list) else depth - 1)}" for k, v in value.items()]
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        return f"[{shape(value[0], depth)}]" + (f" ×{len(value)}" if len(value) > 1 else "")
    return type(value).__name__


def _identity(inv: Invocation) -> tuple[str, int, float]:
    """Tells invocations apart: retries share a request id, SQS redeliveries do not."""
    return inv.request_id, inv.attempt, inv.started_at


def _label(f: "Firing") -> str:
    return FACTS[f.source].label if f.source in FACTS else f.source


def _brief(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[:width - 1] + "…"


# --- what happened when a trigger fired ---------------------------------------------------------


@dataclass
class Firing:
    """One trigger fired once: what the caller did and got back, and what ran because of it."""

    source: str  # one of SOURCES, or a label of your own ("Invoke API")
    action: str  # the caller's call, e.g. "s3.put_object(Bucket=..., Key=...)"
    called_at: float  # epoch seconds when the caller started its call
    returned_at: float  # ... and when the call returned to it
    answer: str  # what the caller got back, summarised
    invocations: list[Invocation] = field(default_factory=list)  # in start order, retries included
    reply: Any = None  # the caller's answer in full where it matters (HTTP: (status, body text))

    @property
    def caller_ms(self) -> float:
        return (self.returned_at - self.called_at) * 1000

    @property
    def event(self) -> Any:
        """The event the function received (first invocation): the local runtime's record, or
        the line the handler printed (`EVENT {...}`); None if nothing ran or nothing was printed."""
        if not self.invocations:
            return None
        first = self.invocations[0]
        return first.event if first.event is not None else logged_event(first)

    @property
    def invocation_type(self) -> str:
        if not self.invocations:
            return ""
        return self.invocations[0].invocation_type or INVOCATION_TYPES.get(self.source, "")

    def key_fields(self) -> dict[str, Any]:
        """The values at this source's key paths (FACTS), for the events of known sources."""
        facts = FACTS.get(self.source)
        if facts is None or self.event is None:
            return {}
        return {path: value_at(self.event, path, ABSENT) for path in facts.key_paths}

    def row(self) -> dict[str, Any]:
        """A table row: the caller's side and the function's side of this firing."""
        first = self.invocations[0] if self.invocations else None
        return {
            "source": _label(self),
            "caller did": self.action,
            "caller waited ms": self.caller_ms,
            "caller got back": self.answer,
            "invocation type": self.invocation_type,
            "attempts": len(self.invocations),
            "function ran ms": sum(i.duration_ms for i in self.invocations),
            "function started ms after call": (first.started_at - self.called_at) * 1000 if first else None,
            "outcome": "" if first is None else ("ok" if self.invocations[-1].ok else self.invocations[-1].error_type),
        }


def logged_event(inv: Invocation) -> Any:
    """The event the handler printed on its `EVENT {...}` line, or None."""
    for line in inv.log_lines:
        if line.startswith(EVENT_LINE):
            try:
                return json.loads(line[len(EVENT_LINE):])
            except json.JSONDecodeError:
                return None
    return None


def role_statements(target: Any, function: str, prefix: str | None = None) -> list[dict[str, Any]]:
    """What the function's execution role needs behind `connect(target, function, prefix=...)`:
    its own logs, and for Lambda's pollers the queue and the table's stream (push sources use the
    function's resource policy instead)."""
    prefix = prefix or function.lower()
    table = target.name(f"{prefix}-table")
    return [target.logging_statement(target.name(function)),
            {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
             "Resource": target.arn("sqs", target.name(f"{prefix}-queue"))},
            {"Effect": "Allow", "Action": ["dynamodb:GetRecords", "dynamodb:GetShardIterator",
                                           "dynamodb:DescribeStream", "dynamodb:ListStreams"],
             "Resource": target.arn("dynamodb", f"table/{table}/stream/*")}]


class Triggers:
    """Six event sources aimed at one function on a target (made by `connect`)."""

    def __init__(self, target: Any, function: str, *, prefix: str | None = None,
                 event_source: str = "shop.orders", schedule: str = "rate(5 minutes)",
                 schedule_input: dict[str, Any] | None = None, api_id: str | None = None,
                 schedule_name: str | None = None, sqs_max_receives: int = 3, stream_retries: int | None = None,
                 settle_s: float = 30.0):
        prefix = prefix or function.lower()
        if not _PREFIX.match(prefix):
            raise ValueError(f"prefix {prefix!r} must be 3-30 lowercase letters, digits or hyphens "
                             "(it names a bucket, queues, a table, a rule, a schedule, its role and an API)")
        if sqs_max_receives < 1:
            raise ValueError(f"sqs_max_receives must be at least 1, got {sqs_max_receives}")
        if stream_retries is not None and stream_retries < 0:
            raise ValueError(f"stream_retries must be >= 0 (or None: retry until it succeeds), got {stream_retries}")
        self.target, self.function, self.prefix = target, function, prefix
        self.function_name = target.name(function)
        self.event_source, self.schedule = event_source, schedule
        self.settle_s = settle_s
        self._reply: Any = None
        lam = target.client("lambda")
        try:
            self.function_arn = lam.get_function(FunctionName=self.function_name)["Configuration"]["FunctionArn"]
        except lam.exceptions.ResourceNotFoundException:
            raise ValueError(f"function {function!r} does not exist in this cloud; deploy it first") from None
        # Look up what to adopt before creating anything, so a wrong name leaves nothing half-wired.
        if schedule_name is not None:
            self._adopt_schedule(schedule_name)
        if api_id is not None:
            self._adopt_http(api_id)
        self._wire_s3(lam)
        self._wire_sqs(lam, sqs_max_receives)
        self._wire_dynamodb(lam, stream_retries)
        self._wire_events(lam)
        if schedule_name is None:
            self._wire_schedule(SCHEDULE_INPUT if schedule_input is None else schedule_input)
        if api_id is None:
            self._wire_http(lam)

    # -- wiring --------------------------------------------------------------------------------
    def _name(self, what: str) -> str:
        return self.target.name(f"{self.prefix}-{what}")

    def _allow(self, lam: Any, principal: str, source_arn: str, sid: str) -> None:
        """The function's resource policy: what a pushing service needs before it may invoke,
        limited to this source in this account."""
        lam.add_permission(FunctionName=self.function_name, StatementId=f"{self.prefix}-{sid}",
                           Action="lambda:InvokeFunction", Principal=principal, SourceArn=source_arn,
                           SourceAccount=self.target.account_id)

    def _wire_s3(self, lam: Any) -> None:
        self.bucket = self._name("uploads")
        s3 = self.target.client("s3")
        s3.create_bucket(Bucket=self.bucket)
        s3.put_bucket_tagging(Bucket=self.bucket, Tagging={"TagSet": self.target.tag_list()})
        self._allow(lam, "s3.amazonaws.com", f"arn:aws:s3:::{self.bucket}", "s3")
        s3.put_bucket_notification_configuration(Bucket=self.bucket, NotificationConfiguration={
            "LambdaFunctionConfigurations": [{"Id": "uploads", "LambdaFunctionArn": self.function_arn,
                                              "Events": ["s3:ObjectCreated:*"]}]})

    def _wire_sqs(self, lam: Any, max_receives: int) -> None:
        sqs = self.target.client("sqs")
        dlq = sqs.create_queue(QueueName=self._name("dlq"), tags=self.target.tags)["QueueUrl"]
        self.dlq_url = dlq
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        timeout = lam.get_function_configuration(FunctionName=self.function_name)["Timeout"]
        # Lambda refuses a mapping whose queue hides a message for less time than the function may run.
        self.queue_url = sqs.create_queue(QueueName=self._name("queue"), tags=self.target.tags, Attributes={
            "VisibilityTimeout": str(timeout),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives})})["QueueUrl"]
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url,
                                                  AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        lam.create_event_source_mapping(FunctionName=self.function_name, EventSourceArn=self.queue_arn, BatchSize=10,
                                        Tags=self.target.tags)

    def _wire_dynamodb(self, lam: Any, retries: int | None) -> None:
        self.table = self._name("table")
        table = self.target.client("dynamodb").create_table(
            TableName=self.table, BillingMode="PAY_PER_REQUEST", Tags=self.target.tag_list(),
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        self.stream_arn = table["TableDescription"]["LatestStreamArn"]
        options = {} if retries is None else {"MaximumRetryAttempts": retries}
        lam.create_event_source_mapping(FunctionName=self.function_name, EventSourceArn=self.stream_arn,
                                        StartingPosition="LATEST", BatchSize=10, Tags=self.target.tags, **options)

    def _wire_events(self, lam: Any) -> None:
        events = self.target.client("events")
        self.rule = self._name("events")
        rule_arn = events.put_rule(Name=self.rule, EventPattern=json.dumps({"source": [self.event_source]}),
                                   Tags=self.target.tag_list())["RuleArn"]
        self._allow(lam, "events.amazonaws.com", rule_arn, "events")
        events.put_targets(Rule=self.rule, Targets=[{"Id": "function", "Arn": self.function_arn}])

    def _wire_schedule(self, payload: dict[str, Any]) -> None:
        """A Scheduler schedule: it invokes with its execution role, not through the function's policy."""
        role_arn = self.target.create_role(f"{self.prefix}-scheduler", [
            {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": self.function_arn}],
            service="scheduler.amazonaws.com")
        self.schedule_name = self._name("schedule")
        self.schedule_arn = self.target.client("scheduler").create_schedule(
            Name=self.schedule_name, ScheduleExpression=self.schedule, FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": self.function_arn, "RoleArn": role_arn, "Input": json.dumps(payload)})["ScheduleArn"]

    def _adopt_schedule(self, name: str) -> None:
        sch = self.target.client("scheduler")
        try:
            found = sch.get_schedule(Name=name)
        except sch.exceptions.ResourceNotFoundException:
            raise ValueError(f"there is no schedule {name!r} in the default group; create it first") from None
        if found["Target"]["Arn"] != self.function_arn:
            raise ValueError(f"schedule {name!r} targets {found['Target']['Arn']}, not {self.function}")
        self.schedule_name, self.schedule_arn = name, found["Arn"]
        self.schedule = found["ScheduleExpression"]

    def _wire_http(self, lam: Any) -> None:
        """Quick create: an HTTP API whose $default route and stage send every request to the function."""
        api = self.target.client("apigatewayv2").create_api(Name=self._name("api"), ProtocolType="HTTP",
                                                            Target=self.function_arn, Tags=self.target.tags)
        self._allow(lam, "apigateway.amazonaws.com", self.target.arn("execute-api", f"{api['ApiId']}/*/$default"),
                    "http")
        self.api_id, self.base_url = api["ApiId"], api["ApiEndpoint"]

    def _adopt_http(self, api_id: str) -> None:
        gw = self.target.client("apigatewayv2")
        try:
            api = gw.get_api(ApiId=api_id)
        except gw.exceptions.NotFoundException:
            raise ValueError(f"there is no HTTP API {api_id!r}; create it first") from None
        uris = [i.get("IntegrationUri", "") for i in gw.get_integrations(ApiId=api_id)["Items"]]
        if not any(self.function_arn in uri for uri in uris):
            raise ValueError(f"HTTP API {api_id!r} has no integration with {self.function}")
        self.api_id, self.base_url = api_id, api["ApiEndpoint"]

    def wiring(self) -> list[dict[str, str]]:
        """What `connect` made: one row per source, for a Table."""
        made = {
            "s3": (f"bucket {self.bucket}", "PutBucketNotificationConfiguration (s3:ObjectCreated:*)"),
            "sqs": (f"queue {self._name('queue')}", "CreateEventSourceMapping (BatchSize 10)"),
            "dynamodb": (f"table {self.table} (stream NEW_AND_OLD_IMAGES)", "CreateEventSourceMapping (LATEST)"),
            "eventbridge": (f"rule {self.rule}", f'PutRule {{"source": ["{self.event_source}"]}} + PutTargets'),
            "schedule": (f"schedule {self.schedule_name}", f"CreateSchedule {self.schedule}, Target Input + RoleArn"),
            "http": (f"HTTP API {self.api_id}", f"CreateApi (quick create, Target), $default route at {self.base_url}"),
        }
        return [{"source": FACTS[s].label, "resource": made[s][0], "wired with": made[s][1],
                 "how Lambda is invoked": FACTS[s].style, "permission it needs": FACTS[s].permission}
                for s in SOURCES]

    # -- firing --------------------------------------------------------------------------------
    def _fire(self, source: str, action: str, call: Callable[[], str], expect: int = 1) -> Firing:
        before = {_identity(r) for r in self.target.invocations(self.function)}
        self._reply = None
        called = time.time()
        answer = call()
        returned = time.time()
        try:
            after = self.target.wait_until_quiet(self.function, len(before) + expect, timeout=self.settle_s)
        except SettleTimeout:
            raise TimeoutError(f"the {source} trigger fired, but {self.function} did not run and go quiet "
                               f"within {self.settle_s:g} s") from None
        new = [r for r in after if _identity(r) not in before]
        return Firing(source, action, called, returned, answer, sorted(new, key=lambda r: r.started_at), self._reply)

    def fire_s3(self, key: str = "uploads/cat photo 1.jpg", body: bytes = b"\xff\xd8 not really a JPEG") -> Firing:
        """Upload an object (PutObject returns as soon as S3 has it)."""
        s3 = self.target.client("s3")

        def call() -> str:
            r = s3.put_object(Bucket=self.bucket, Key=key, Body=body)
            return f"HTTP {r['ResponseMetadata']['HTTPStatusCode']}, ETag {r['ETag']}"

        return self._fire("s3", f"s3.put_object(Key={key!r})", call)

    def fire_sqs(self, *bodies: str) -> Firing:
        """Send messages to the queue (one SendMessage each); the mapping hands them over in a batch."""
        bodies = bodies or ('{"order": 42, "item": "coffee"}',)
        sqs = self.target.client("sqs")

        def call() -> str:
            if len(bodies) == 1:
                return f"MessageId {sqs.send_message(QueueUrl=self.queue_url, MessageBody=bodies[0])['MessageId'][:8]}…"
            entries = [{"Id": str(n), "MessageBody": b} for n, b in enumerate(bodies)]
            sent = sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            return f"{len(sent.get('Successful', []))} sent, {len(sent.get('Failed', []))} failed"

        what = "send_message" if len(bodies) == 1 else f"send_message_batch({len(bodies)} messages)"
        return self._fire("sqs", f"sqs.{what}", call)

    def fire_dynamodb(self, item: dict[str, Any] | None = None, *, update: dict[str, Any] | None = None,
                      delete: bool = False) -> Firing:
        """Write an item (typed, as the DynamoDB API takes it); then optionally update it
        (`update`: attribute -> typed value) and delete it, each a change on the stream."""
        item = item or {"id": {"S": "order-42"}, "status": {"S": "NEW"}, "total": {"N": "9.5"}}
        if "id" not in item:
            raise ValueError(f"the item needs its key attribute 'id', got {sorted(item)}")
        ddb = self.target.client("dynamodb")
        steps = ["put_item"] + (["update_item"] if update else []) + (["delete_item"] if delete else [])

        def call() -> str:
            ddb.put_item(TableName=self.table, Item=item)
            if update:
                names = {f"#a{n}": k for n, k in enumerate(update)}
                values = {f":v{n}": v for n, v in enumerate(update.values())}
                ddb.update_item(TableName=self.table, Key={"id": item["id"]},
                                UpdateExpression="SET " + ", ".join(f"#a{n} = :v{n}" for n in range(len(update))),
                                ExpressionAttributeNames=names, ExpressionAttributeValues=values)
            if delete:
                ddb.delete_item(TableName=self.table, Key={"id": item["id"]})
            return f"{len(steps)} × HTTP 200"

        return self._fire("dynamodb", "dynamodb." + ", ".join(steps), call)

    def fire_eventbridge(self, detail_type: str = "OrderPlaced",
                         detail: dict[str, Any] | None = None) -> Firing:
        """PutEvents on the default bus, with the source the rule matches."""
        detail = {"order": 42, "total": 9.5} if detail is None else detail
        events = self.target.client("events")

        def call() -> str:
            r = events.put_events(Entries=[{"Source": self.event_source, "DetailType": detail_type,
                                            "Detail": json.dumps(detail)}])
            return f"FailedEntryCount {r['FailedEntryCount']}, EventId {r['Entries'][0].get('EventId', '?')[:8]}…"

        return self._fire("eventbridge", f"events.put_events(Source={self.event_source!r})", call)

    def fire_schedule(self) -> Firing:
        """Move the local cloud's clock to this schedule's next time (firing whatever else falls
        due). On AWS nothing moves Scheduler's clock: the firing says where its run will appear."""
        if self.target.kind != "local":
            group = f"/aws/lambda/{self.function_name}"
            now = time.time()
            return Firing("schedule", f"wait for {self.schedule}", now, now,
                          f"Scheduler runs it on its own ({self.schedule}); its event appears in {group}")
        clock = self.target.cloud.events.clock
        due = next((s["next"] for s in clock.schedules() if s["rule_arn"] == self.schedule_arn), None)
        if due is None:
            raise RuntimeError(f"the clock does not know the schedule {self.schedule_name!r}")
        step = due - clock.now

        def call() -> str:
            firings = clock.advance(step)
            ours = [f for f in firings if f.rule_arn == self.schedule_arn]
            return f"{len(ours)} schedule firing at {due:%H:%M} UTC"

        return self._fire("schedule", f"clock.advance({step.total_seconds() / 60:g} min)", call)

    def fire_http(self, method: str = "GET", path: str = "orders/42?expand=items",
                  body: bytes | str | None = None, headers: dict[str, str] | None = None) -> Firing:
        """An HTTP request to the function's route; the answer is the HTTP response."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        data = body.encode() if isinstance(body, str) else body
        request = urllib.request.Request(url, data=data, method=method, headers=headers or {})

        def call() -> str:
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    status, text = response.status, response.read().decode("utf-8", "replace")
            except urllib.error.HTTPError as e:  # a 4xx/5xx is still an answer
                status, text = e.code, e.read().decode("utf-8", "replace")
            self._reply = (status, text)
            return f"HTTP {status} {_brief(text, 70)}"

        return self._fire("http", f"{method} /{path.lstrip('/')}", call)

    def fire(self, source: str) -> Firing:
        """Fire one source with its default payload."""
        if source not in SOURCES:
            raise ValueError(f"source {source!r} is not one of {', '.join(SOURCES)}")
        return getattr(self, f"fire_{source}")()

    def fire_all(self, progress: Callable[[Iterable[str]], Iterable[str]] | None = None) -> list[Firing]:
        """Fire every source once, in SOURCES order (pass `tqdm` as `progress` for a bar)."""
        sources = progress(SOURCES) if progress else SOURCES
        return [self.fire(s) for s in sources]


def connect(target: Any, function: str, **options: Any) -> Triggers:
    """Aim S3, SQS, DynamoDB Streams, EventBridge, a Scheduler schedule and an HTTP API at `function`
    on `target` (see `Triggers`; `api_id=` and `schedule_name=` adopt ones already made)."""
    return Triggers(target, function, **options)


# --- showing what happened ------------------------------------------------------------------------


def key_field_rows(firings: Iterable[Firing], width: int = 70) -> list[dict[str, Any]]:
    """One row per key field of each firing's event (the source named on its first row only)."""
    rows = []
    for f in firings:
        for n, (path, value) in enumerate(f.key_fields().items()):
            rows.append({"source": _label(f) if n == 0 else "", "where in the event": path,
                         "value": value if value is ABSENT else _brief(value, width)})
    return rows


def shape_rows(firings: Iterable[Firing], depth: int = 1) -> list[dict[str, Any]]:
    """One row per firing: how the function was invoked, the event's outline and its size."""
    return [{"source": _label(f), "invocation type": f.invocation_type,
             "event shape": shape(f.event, depth) if f.event is not None else "(nothing ran)",
             "bytes": len(json.dumps(f.event)) if f.event is not None else 0} for f in firings]


def result_rows(firings: Iterable[Firing], width: int = 110) -> list[dict[str, Any]]:
    """One row per invocation: what the handler returned, or the error it raised."""
    rows = []
    for f in firings:
        if not f.invocations:
            rows.append({"source": _label(f), "attempt": None, "the handler returned": "(it never ran)"})
        for inv in f.invocations:
            said = _brief(inv.result, width) if inv.ok else \
                f"raised {inv.error_type}: {_brief(str(inv.error.get('errorMessage', '')), width - 20)}"
            rows.append({"source": _label(f), "attempt": inv.attempt, "the handler returned": said})
    return rows


class RawEvents:
    """Whole events side by side: collapsible JSON in Jupyter, trimmed text elsewhere."""

    def __init__(self, firings: Iterable[Firing], max_lines: int = 12):
        self.firings = [f for f in firings if f.event is not None]
        self.max_lines = max_lines

    def __str__(self) -> str:
        out = []
        for f in self.firings:
            lines = json.dumps(f.event, indent=2).splitlines()
            more = len(lines) - self.max_lines
            out.append(f"── {_label(f)} ({len(json.dumps(f.event))} bytes)")
            out += lines[:self.max_lines] + ([f"   … {more} more lines"] if more > 0 else [])
        return "\n".join(out)

    def _repr_html_(self) -> str:
        parts = []
        for f in self.firings:
            text = html.escape(json.dumps(f.event, indent=2))
            parts.append(f"<details><summary><b>{html.escape(_label(f))}</b> "
                         f"({len(json.dumps(f.event))} bytes, {html.escape(f.invocation_type)})</summary>"
                         f"<pre style='max-height:22em;overflow:auto'>{text}</pre></details>")
        return "".join(parts)


_KIND = {"Event": "Event (async)", "RequestResponse": "RequestResponse (sync)"}


def caller_timeline(firings: list[Firing], ax: "Axes | None" = None, *,
                    title: str | None = "Who waits for whom") -> "Axes":
    """Two bars per firing, on its own clock (0 = the caller's call): the caller's wait above,
    the function's INIT and attempts below. Async callers return before the function starts."""
    from matplotlib.patches import Patch

    from lambdalab.course.plots import KIND_COLOURS

    if not firings:
        raise ValueError("caller_timeline: no firings to draw")
    if ax is None:
        import matplotlib.pyplot as plt
        _, ax = plt.subplots(figsize=(10, 0.7 + 0.62 * len(firings)))
    caller_colour = "#7570b3"
    end_ms = max([f.caller_ms for f in firings] +
                 [(i.ended_at - f.called_at) * 1000 for f in firings for i in f.invocations])
    min_w = end_ms * 0.004
    labels = []
    for row, f in enumerate(firings):
        ax.broken_barh([(0, max(f.caller_ms, min_w))], (row - 0.38, 0.3), facecolors=caller_colour)
        for inv in f.invocations:
            start = (inv.started_at - f.called_at) * 1000
            if inv.cold and inv.init_ms:
                ax.broken_barh([(start - inv.init_ms, inv.init_ms)], (row - 0.02, 0.36),
                               facecolors=KIND_COLOURS["init"])
            kind = "invoke" if inv.ok else ("timeout" if inv.status == "timeout" else "error")
            ax.broken_barh([(start, max(inv.duration_ms, min_w))], (row - 0.02, 0.36),
                           facecolors=KIND_COLOURS[kind], edgecolor="white", linewidth=0.5)
        labels.append(f"{_label(f)}\n{_KIND.get(f.invocation_type, 'nothing ran')}")
    ax.set_yticks(range(len(firings)), labels, fontsize="small")
    ax.set_ylim(len(firings) - 0.5, -0.5)
    ax.set_xlim(min(0.0, *[(i.started_at - f.called_at) * 1000 - (i.init_ms or 0) * i.cold
                           for f in firings for i in f.invocations]) - min_w, end_ms * 1.02)
    ax.set_xlabel("milliseconds since the caller's call")
    runs = [i for f in firings for i in f.invocations]
    present = {"init": any(i.cold and i.init_ms for i in runs), "invoke": any(i.ok for i in runs),
               "error": any(not i.ok and i.status != "timeout" for i in runs),
               "timeout": any(i.status == "timeout" for i in runs)}
    names = {"init": "INIT (cold start)", "invoke": "function running", "error": "function failed",
             "timeout": "function timed out"}
    handles = [Patch(facecolor=caller_colour, label="caller waiting")] + \
        [Patch(facecolor=KIND_COLOURS[k], label=names[k]) for k, shown in present.items() if shown]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def invoke_api(target: Any, function: str, event: Any, invocation_type: str = "RequestResponse", *,
               label: str = "Invoke API") -> Firing:
    """Call the Lambda Invoke API as any client would, and wait until the function goes quiet:
    every attempt locally; on AWS the first (Lambda retries a failed event 1 and 2 minutes later).
    `label` names the firing in tables and timelines."""
    if invocation_type not in ("RequestResponse", "Event"):
        raise ValueError(f"invocation_type must be RequestResponse or Event, got {invocation_type!r}")
    from botocore.config import Config

    lam = target.client("lambda", config=Config(retries={"max_attempts": 0}, read_timeout=120))
    before = {_identity(r) for r in target.invocations(function)}
    called = time.time()
    response = lam.invoke(FunctionName=target.name(function), InvocationType=invocation_type,
                          Payload=json.dumps(event))
    returned = time.time()
    payload = response["Payload"].read().decode("utf-8", "replace")
    error = f", FunctionError {response['FunctionError']}" if "FunctionError" in response else ""
    answer = f"HTTP {response['StatusCode']}{error}, payload {_brief(payload, 60) if payload else '(empty)'}"
    try:
        after = target.wait_until_quiet(function, len(before) + 1, timeout=120)
    except SettleTimeout:
        raise TimeoutError(f"{function} was still running 120 s after the call") from None
    new = [r for r in after if _identity(r) not in before]
    return Firing(label, f"lambda.invoke({invocation_type}, {_brief(json.dumps(event), 30)})", called, returned,
                  answer, sorted(new, key=lambda r: r.started_at), (response["StatusCode"], payload))


__all__ = ["ABSENT", "EVENT_LINE", "FACTS", "INVOCATION_TYPES", "SCHEDULE_INPUT", "SOURCES", "Firing", "RawEvents",
           "SourceFacts", "Triggers", "caller_timeline", "connect", "invoke_api", "key_field_rows", "logged_event",
           "result_rows", "role_statements", "shape", "shape_rows", "value_at"]
