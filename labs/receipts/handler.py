# Generated from solutions/receipts/handler.py by `lambdalab labs build`. This copy is yours: edit it.
# Replace each `raise NotImplementedError` with your code, then run `lambdalab check receipts`.
# `lambdalab labs build` never overwrites your edits (unless you pass --force).
"""Lab `receipts`: make a consumer idempotent.

Each OrderPlaced event "sends" a receipt: one added to the order's `receipts` counter in
RECEIPTS_TABLE (key "order_id"), standing in for an email or a card charge. EventBridge and SQS
deliver at least once, and a checkout that retries its PutEvents publishes the same order twice
under two event ids, so the same order can arrive several times. One receipt per order, however
often it arrives: that is the job.

Powertools for AWS Lambda (Python) has the tool: `idempotent_function` (or `idempotent`) records
each key it has seen in a DynamoDB table (IDEMPOTENCY_TABLE, partition key "id"), runs the
function the first time, and gives back the stored result to every repeat without running it.

The event: an EventBridge event whose detail is {"order_id": ..., "customer": ..., ...}.
The result: {"order_id": ..., "receipt": "sent"}, the same for a repeat as for the first time.
"""

import os

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

TABLE = os.environ.get("RECEIPTS_TABLE", "receipts")
dynamodb = boto3.client("dynamodb")
persistence = DynamoDBPersistenceLayer(table_name=os.environ.get("IDEMPOTENCY_TABLE", "idempotency"))
config = IdempotencyConfig(expires_after_seconds=3600)


def send_receipt(order_id: str) -> dict:
    """The side effect: one receipt for this order."""
    dynamodb.update_item(TableName=TABLE, Key={"order_id": {"S": order_id}},
                         UpdateExpression="ADD receipts :one", ExpressionAttributeValues={":one": {"N": "1"}})
    return {"order_id": order_id, "receipt": "sent"}


# TODO(idempotent): Make `receipt_once(order)` send the receipt for an order once, however often it is called with
# the same order: decorate a function with Powertools' `idempotent_function`, keyed on the order's
# id (not the event's id: a retried PutEvents makes a new event for the same order), with the
# `persistence` layer and `config` above. The decorated function must call send_receipt and
# return its result. Look up "Idempotency" in the Powertools for AWS Lambda (Python) docs:
# data_keyword_argument, event_key_jmespath.
raise NotImplementedError("Exercise 'idempotent' in labs/receipts/handler.py: Make `receipt_once(order)` send the receipt for an order once, however often it is called with the same order: decorate a function with Powertools' `idempotent_function`, keyed on the order's id (not the event's id: a retried PutEvents makes a new event for the same order), with the `persistence` layer and `config` above. The decorated function must call send_receipt and return its result. Look up \"Idempotency\" in the Powertools for AWS Lambda (Python) docs: data_keyword_argument, event_key_jmespath.")


def lambda_handler(event, context):
    config.register_lambda_context(context)  # Powertools uses the remaining time to expire a stuck record
    order = event["detail"]
    return receipt_once(order={"order_id": order["order_id"]})
