"""Lesson 03 demo, the racy visit counter: read the count from DynamoDB, add 1, write it back.

The count is outside the environment now, but two environments that read the same value
both write value + 1: one of the two visits is lost (a lost update).
"""

import os
import time

import boto3

TABLE = os.environ.get("VISITS_TABLE", "visits")
dynamodb = boto3.client("dynamodb")  # created once per environment, at INIT


def lambda_handler(event, context):
    page = event.get("page", "/")
    item = dynamodb.get_item(TableName=TABLE, Key={"page": {"S": page}}, ConsistentRead=True).get("Item", {})
    visits = int(item.get("visits", {"N": "0"})["N"]) + 1
    time.sleep(0.1)  # rendering the page: other environments read the old count meanwhile
    dynamodb.put_item(TableName=TABLE, Item={"page": {"S": page}, "visits": {"N": str(visits)}})
    return {"page": page, "visits": visits}
