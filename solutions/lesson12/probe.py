"""Runs with the signing function's role and tries to read a secret named in the event:
what a bug or an attacker running code in the function could reach. Returns AWS's answer."""

import boto3
from botocore.exceptions import ClientError

client = boto3.client("secretsmanager")


def lambda_handler(event, context):
    try:
        client.get_secret_value(SecretId=event["secret_id"])
        return {"secret_id": event["secret_id"], "answer": "read it"}
    except ClientError as e:
        return {"secret_id": event["secret_id"], "answer": e.response["Error"]["Code"]}
