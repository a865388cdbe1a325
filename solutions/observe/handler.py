"""Lab `observe`: the orders function of lesson 13, observed with Powertools for AWS Lambda.

Logger writes one JSON object per line, with the request id and cold start in every line;
Metrics writes CloudWatch's embedded metric format (EMF), which Lambda's log pipeline turns into
metrics in the namespace `Shop`; Tracer sends this invocation's subsegments to the X-Ray daemon,
with the DynamoDB and S3 calls as subsegments of their own (boto3 is patched).

An order: {"order_id": "o-1", "channel": "web", "items": [{"sku": "tea", "qty": 2, "price": 4.5}]},
sent as the event or as the JSON body of a REST API's proxy request (then the answer is an HTTP
response). A placed order is stored in the table `TABLE` and its receipt, a JSON object, in the
bucket `RECEIPTS` at `receipts/<order id>.json`.
A bad order fails, as real ones do: no items -> ValueError, an item without "sku" -> KeyError,
"slow": seconds of waiting for the payment provider (a timeout, if longer than the function's).
"""

import json
import os
import time
from decimal import Decimal

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="orders")
metrics = Metrics(namespace="Shop", service="orders")
tracer = Tracer(service="orders")
table = boto3.resource("dynamodb").Table(os.environ["TABLE"])
s3 = boto3.client("s3")


@tracer.capture_method
def save(order_id: str, total: float, channel: str) -> None:
    table.put_item(Item={"order_id": order_id, "total": Decimal(str(total)), "channel": channel})
    receipt = {"order_id": order_id, "total": total, "channel": channel}
    s3.put_object(Bucket=os.environ["RECEIPTS"], Key=f"receipts/{order_id}.json",
                  Body=json.dumps(receipt).encode(), ContentType="application/json")


def order_of(event: dict) -> dict:
    """The order: the event itself, or the body of an API Gateway proxy request."""
    return json.loads(event.get("body") or "{}") if "httpMethod" in event else event


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def handler(event, context):
    order = order_of(event)
    items = order.get("items") or []
    if not items:
        raise ValueError("an order needs at least one item")
    total = round(sum(float(i["price"]) * int(i.get("qty", 1)) for i in items if i["sku"]), 2)
    channel = str(order.get("channel", "web"))
    time.sleep(float(order.get("slow", 0)))
    save(order["order_id"], total, channel)
    metrics.add_metric(name="OrdersPlaced", unit=MetricUnit.Count, value=1)
    # BEGIN SOLUTION metric
    # Record the order's value as the metric "OrderValue" (the total, unit MetricUnit.NoUnit).
    metrics.add_metric(name="OrderValue", unit=MetricUnit.NoUnit, value=total)
    # END SOLUTION
    # BEGIN SOLUTION annotation
    # Annotate the trace with the order's channel (key "channel"), so X-Ray can find traces by it.
    tracer.put_annotation(key="channel", value=channel)
    # END SOLUTION
    logger.info("order placed", extra={"order_id": order["order_id"], "total": total, "channel": channel})
    answer = {"order_id": order["order_id"], "total": total}
    return {"statusCode": 200, "body": json.dumps(answer)} if order is not event else answer
