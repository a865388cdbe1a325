"""Lesson 10: the receipt consumer made idempotent with Powertools for AWS Lambda (Python).

`@idempotent` stores a record per key in IDEMPOTENCY_TABLE (partition key "id"): the first
delivery runs the handler and saves its result; a repeat of the same key returns that result
without running the handler again. The key here is the EventBridge event's `id`, so repeated
deliveries of one event send one receipt. (A checkout that retries PutEvents publishes the same
order under a new event id: that is the lab's question.)
"""

import os

import boto3
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent

TABLE = os.environ.get("RECEIPTS_TABLE", "receipts")
dynamodb = boto3.client("dynamodb")
persistence = DynamoDBPersistenceLayer(table_name=os.environ.get("IDEMPOTENCY_TABLE", "idempotency"))
config = IdempotencyConfig(event_key_jmespath="id", expires_after_seconds=3600)


@idempotent(config=config, persistence_store=persistence)
def lambda_handler(event, context):
    order_id = event["detail"]["order_id"]
    dynamodb.update_item(TableName=TABLE, Key={"order_id": {"S": order_id}},
                         UpdateExpression="ADD receipts :one", ExpressionAttributeValues={":one": {"N": "1"}})
    return {"order_id": order_id, "receipt": "sent"}
