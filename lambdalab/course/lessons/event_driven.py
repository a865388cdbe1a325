"""Instruments for notebook 10 (event-driven architecture), on either target.

- `Shop` / `build_shop`: a custom event bus, the functions (checkout, email, inventory,
  analytics, two receipt consumers), their roles, the rules routing `OrderPlaced` to them, the
  SQS buffer in front of analytics (with its own dead-letter queue) and the tables, all named with
  the run's prefix and tagged, so the teardown finds them.
- `place_orders`, `function_rows`: checkout's answers and every function's invocations, read
  from REPORT lines in CloudWatch Logs (`target.records`).
- `received`: messages on a queue, with their attributes (a dead-letter queue's ERROR_CODE...).
- `deliver_duplicates`, `plot_duplicates`: the same OrderPlaced delivered 1 to N times to a
  consumer, the side effects counted in its table, before and after idempotency.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdalab.course.target.base import CloudTarget

RUNTIME = "python3.12"


@dataclass
class Shop:
    """What `build_shop` made: names are the run's (prefixed) names, `functions` maps a base name
    to its ARN, `queues` a base name to (URL, ARN)."""

    bus: str
    bus_arn: str
    functions: dict[str, str] = field(default_factory=dict)
    queues: dict[str, tuple[str, str]] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)


def _table(target: CloudTarget, base: str, key: str) -> str:
    name = target.name(base)
    ddb = target.client("dynamodb")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", Tags=target.tag_list(),
                     KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}])
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return name


def make_queue(target: CloudTarget, base: str, **attributes: str) -> tuple[str, str]:
    """A tagged queue; returns (URL, ARN)."""
    sqs = target.client("sqs")
    url = sqs.create_queue(QueueName=target.name(base), tags=target.tags, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def allow_eventbridge_to_send(target: CloudTarget, queue: tuple[str, str], rule_arns: Sequence[str]) -> None:
    """The queue policy EventBridge needs to deliver a rule's events (or dead letters) to a queue."""
    url, arn = queue
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": arn, "Condition": {"ArnEquals": {"aws:SourceArn": list(rule_arns)}}}]}
    target.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})


def _rule(target: CloudTarget, shop: Shop, base: str, pattern: dict, targets: list[dict]) -> str:
    events = target.client("events")
    arn = events.put_rule(Name=target.name(base), EventBusName=shop.bus, EventPattern=json.dumps(pattern),
                          Tags=target.tag_list())["RuleArn"]
    events.put_targets(Rule=target.name(base), EventBusName=shop.bus, Targets=targets)
    shop.rules[base] = arn
    return arn


def let_rule_invoke(target: CloudTarget, function: str, rule_arn: str) -> None:
    """The function's resource policy statement that lets EventBridge invoke it for this rule."""
    target.client("lambda").add_permission(
        FunctionName=target.name(function), StatementId="eventbridge", Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com", SourceArn=rule_arn)


def _function(target: CloudTarget, shop: Shop, base: str, code: Path, handler: str,
              statements: list[dict], **options: Any) -> str:
    role = target.create_role(base, [target.logging_statement(target.name(base)), *statements])
    arn = target.create_function(base, code, handler, role=role, runtime=RUNTIME, **options)["FunctionArn"]
    shop.functions[base] = arn
    return arn


ORDER_PLACED = {"source": ["shop.checkout"], "detail-type": ["OrderPlaced"]}


def build_shop(target: CloudTarget, code: Path, bus: str) -> Shop:
    """Everything the lesson runs, behind the bus `bus` the notebook created (its full name)."""
    shop = Shop(bus, target.client("events").describe_event_bus(Name=bus)["Arn"])
    stock = shop.tables["stock"] = _table(target, "stock", "sku")
    receipts = shop.tables["receipts"] = _table(target, "receipts", "order_id")
    idempotency = shop.tables["idempotency"] = _table(target, "idempotency", "id")
    table_arn = lambda name: target.arn("dynamodb", f"table/{name}")  # noqa: E731
    email_dlq = shop.queues["email-dlq"] = make_queue(target, "email-dlq")  # Lambda's, for the email function
    rules_dlq = shop.queues["rules-dlq"] = make_queue(target, "rules-dlq")  # EventBridge's, for the rules' targets
    analytics_dlq = shop.queues["analytics-dlq"] = make_queue(target, "analytics-dlq")
    buffer = shop.queues["orders-buffer"] = make_queue(
        # The visibility timeout must be at least the consumer's timeout, or Lambda refuses the mapping.
        target, "orders-buffer", VisibilityTimeout="3",
        RedrivePolicy=json.dumps({"deadLetterTargetArn": analytics_dlq[1], "maxReceiveCount": "2"}))

    _function(target, shop, "checkout", code, "checkout.lambda_handler",
              [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": shop.bus_arn}],
              timeout=10, env={"ORDERS_BUS": bus})
    _function(target, shop, "email", code, "confirmation_email.lambda_handler",
              [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": email_dlq[1]}],
              DeadLetterConfig={"TargetArn": email_dlq[1]})
    _function(target, shop, "inventory", code, "inventory.lambda_handler",
              [{"Effect": "Allow", "Action": "dynamodb:UpdateItem", "Resource": table_arn(stock)}],
              env={"STOCK_TABLE": stock})
    _function(target, shop, "analytics", code, "analytics.lambda_handler",
              [{"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                "Resource": buffer[1]}], timeout=3, env={"WORK_S": "0.1"})
    write_receipts = {"Effect": "Allow", "Action": "dynamodb:UpdateItem", "Resource": table_arn(receipts)}
    _function(target, shop, "receipts-naive", code, "receipts_naive.lambda_handler", [write_receipts],
              env={"RECEIPTS_TABLE": receipts})
    _function(target, shop, "receipts-idempotent", code, "receipts_idempotent.lambda_handler",
              [write_receipts, {"Effect": "Allow", "Resource": table_arn(idempotency), "Action": [
                  "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]}],
              memory=256, timeout=10, env={"RECEIPTS_TABLE": receipts, "IDEMPOTENCY_TABLE": idempotency})

    for consumer in ("email", "inventory"):
        arn = _rule(target, shop, f"to-{consumer}", ORDER_PLACED, [{
            "Id": consumer, "Arn": shop.functions[consumer],
            "RetryPolicy": {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 3600},
            "DeadLetterConfig": {"Arn": rules_dlq[1]}}])
        let_rule_invoke(target, consumer, arn)
    analytics_rule = _rule(target, shop, "to-analytics", ORDER_PLACED,
                           [{"Id": "buffer", "Arn": buffer[1]}])
    allow_eventbridge_to_send(target, buffer, [analytics_rule])
    allow_eventbridge_to_send(target, rules_dlq, list(shop.rules.values()))
    target.client("lambda").create_event_source_mapping(
        EventSourceArn=buffer[1], FunctionName=target.name("analytics"), BatchSize=5,
        MaximumBatchingWindowInSeconds=1, FunctionResponseTypes=["ReportBatchItemFailures"], Tags=target.tags)
    return shop


# -- measuring ---------------------------------------------------------------------------------


def order(order_id: str | None = None, total: float = 12.5) -> dict[str, Any]:
    """A checkout request."""
    return {"order_id": order_id or uuid.uuid4().hex[:12], "customer": "ada@example.com",
            "items": [{"sku": "MUG-1", "qty": 1}, {"sku": "TEE-2", "qty": 2}], "total": total}


def place_orders(target: CloudTarget, orders: Iterable[dict], progress: Callable[[Any], Any] = iter) -> list[dict]:
    """Invoke checkout once per order (as the shop's front end would); one row per checkout."""
    rows = []
    for request in progress(list(orders)):
        started = time.perf_counter()
        answer = target.invoke("checkout", request)
        rows.append({"order": request["order_id"], "total": request["total"],
                     "checkout status": answer["StatusCode"], "function error": answer["FunctionError"] or "",
                     "PutEvents ms (in the function)": (answer["Payload"] or {}).get("publish_ms"),
                     "caller waited ms": round((time.perf_counter() - started) * 1000, 1)})
    return rows


def function_rows(target: CloudTarget, bases: Sequence[str]) -> list[dict]:
    """Each function's invocations from its REPORT lines: count, cold starts, mean billed ms. (A REPORT
    line does not say whether the handler raised: Lambda logs that in the function's own lines.)"""
    rows = []
    for base in bases:
        records = target.records(base)
        billed = [r.report.billed_ms for r in records]
        rows.append({"function": base, "invocations": len(records),
                     "cold starts": sum(r.cold for r in records),
                     "mean billed ms": round(sum(billed) / len(billed), 1) if billed else None})
    return rows


def received(target: CloudTarget, url: str, expected: int, *, timeout: float = 60.0) -> list[dict]:
    """Receive until `expected` messages came (or `timeout`), deleting them; body and attributes."""
    sqs = target.client("sqs")
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                     MessageAttributeNames=["All"]).get("Messages", []):
            got.append({"body": json.loads(m["Body"]),
                        "attributes": {k: v.get("StringValue") for k, v in m.get("MessageAttributes", {}).items()}})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def log_lines(target: CloudTarget, base: str, marker: str) -> list[str]:
    """The function's log lines that start with `marker` (what its handler printed), oldest first."""
    logs = target.client("logs")
    lines: list[str] = []
    for page in logs.get_paginator("filter_log_events").paginate(
            logGroupName=f"/aws/lambda/{target.name(base)}", filterPattern=f'"{marker}"'):
        lines += [e["message"].strip() for e in page.get("events", []) if e["message"].startswith(marker)]
    return lines


def order_placed_event(target: CloudTarget, order_id: str) -> dict:
    """An OrderPlaced event as a rule's Lambda target receives it (one id: one delivery's copies)."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "OrderPlaced", "source": "shop.checkout",
            "account": target.account_id, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": target.region, "resources": [], "detail": order(order_id)}


@dataclass(frozen=True)
class DuplicateRun:
    """One consumer given each order `copies` times: copies -> side effects seen in its table."""

    consumer: str
    side_effects: dict[int, int]

    def rows(self) -> list[dict]:
        return [{"consumer": self.consumer, "deliveries of the same event": copies, "receipts sent": sent}
                for copies, sent in self.side_effects.items()]


def deliver_duplicates(target: CloudTarget, consumer: str, table: str, max_copies: int,
                       progress: Callable[[Any], Any] = iter) -> DuplicateRun:
    """For k = 1..max_copies: one new order whose OrderPlaced event reaches `consumer` k times
    (what an at-least-once redelivery looks like to it), then the receipts its table holds."""
    ddb = target.client("dynamodb")
    sent: dict[int, int] = {}
    for copies in progress(range(1, max_copies + 1)):
        order_id = f"{consumer}-{copies}-{uuid.uuid4().hex[:6]}"
        event = order_placed_event(target, order_id)
        for _ in range(copies):
            answer = target.invoke(consumer, event)
            if answer["FunctionError"]:
                raise RuntimeError(f"{consumer} failed: {answer['Payload']}")
        item = ddb.get_item(TableName=table, Key={"order_id": {"S": order_id}}, ConsistentRead=True).get("Item")
        sent[copies] = int(item["receipts"]["N"]) if item else 0
    return DuplicateRun(consumer, sent)


def plot_duplicates(runs: Sequence[DuplicateRun], ax: Any = None) -> Any:
    """Receipts sent against deliveries of the same event, one line per consumer."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 3.4))
    for run, (colour, marker) in zip(runs, [("#d95f02", "o"), ("#1b9e77", "s"), ("#7570b3", "^")]):
        xs = list(run.side_effects)
        ax.plot(xs, [run.side_effects[x] for x in xs], marker=marker, color=colour, label=run.consumer)
    top = max(max(r.side_effects) for r in runs)
    ax.plot([1, top], [1, top], color="#999999", linestyle=":", linewidth=1, label="one side effect per delivery")
    ax.set_xlabel("deliveries of the same OrderPlaced event")
    ax.set_ylabel("receipts sent (side effects)")
    ax.set_xticks(range(1, top + 1))
    ax.set_title("At-least-once delivery: duplicates vs side effects")
    ax.legend(fontsize="small")
    return ax
