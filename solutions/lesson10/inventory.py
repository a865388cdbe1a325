"""Lesson 10: the inventory consumer. It reserves the order's items by counting them down in a
DynamoDB table (STOCK_TABLE, key "sku"); `ADD` keeps concurrent reservations right."""

import os

import boto3

TABLE = os.environ.get("STOCK_TABLE", "stock")
dynamodb = boto3.client("dynamodb")


def lambda_handler(event, context):
    order = event["detail"]
    for item in order["items"]:
        dynamodb.update_item(TableName=TABLE, Key={"sku": {"S": item["sku"]}},
                             UpdateExpression="ADD reserved :n",
                             ExpressionAttributeValues={":n": {"N": str(item["qty"])}})
    return {"order_id": order["order_id"], "reserved": len(order["items"])}
