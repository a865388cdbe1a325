"""Lesson 10: a receipt consumer that is not idempotent. Each delivery of an OrderPlaced event
"sends" a receipt: it adds one to the order's `receipts` counter in RECEIPTS_TABLE (key
"order_id"), standing in for an email or a charge. EventBridge and SQS deliver at least once, so
a duplicate delivery is a duplicate receipt.
"""

import os

import boto3

TABLE = os.environ.get("RECEIPTS_TABLE", "receipts")
dynamodb = boto3.client("dynamodb")


def lambda_handler(event, context):
    order_id = event["detail"]["order_id"]
    dynamodb.update_item(TableName=TABLE, Key={"order_id": {"S": order_id}},
                         UpdateExpression="ADD receipts :one", ExpressionAttributeValues={":one": {"N": "1"}})
    return {"order_id": order_id, "receipt": "sent"}
