# Generated from solutions/chunks/worker.py by `lambdalab labs build`. This copy is yours: edit it.
# Replace each `raise NotImplementedError` with your code, then run `lambdalab check chunks`.
# `lambdalab labs build` never overwrites your edits (unless you pass --force).
"""One chunk of the job per task: from a Step Functions Map state, or from an SQS queue.

`chunk_handler` takes {"job": ..., "chunk": n, "items": [...]} (a Map state's item) and returns
{"job", "chunk", "ids", "ms"}. `queue_handler` takes SQS messages whose bodies are such chunks:
it records each finished chunk in the DynamoDB table named by $CHECKPOINTS (key: job, chunk), and
skips a chunk already recorded, since SQS delivers a message at least once
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/standard-queues.html).
A chunk that fails is reported in `batchItemFailures`, so only it comes back
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html).
"""

import json
import os

import boto3
from work import process_all

# Made at INIT, once per execution environment: INIT has its own time limit, and a chunk's time
# budget is then all the chunk's.
dynamodb = boto3.resource("dynamodb")


def checkpoints():
    return dynamodb.Table(os.environ["CHECKPOINTS"])


def chunk_handler(event, context):
    return {"job": event["job"], "chunk": event["chunk"], **process_all(event["items"])}


def queue_handler(event, context):
    failures = []
    for record in event["Records"]:
        chunk = json.loads(record["body"])
        key = {"job": chunk["job"], "chunk": chunk["chunk"]}
        try:
            if "Item" in checkpoints().get_item(Key=key, ConsistentRead=True):
                print(f"chunk {chunk['chunk']} of {chunk['job']} is done already: skipped")
                continue
            done = process_all(chunk["items"])
            checkpoints().put_item(Item={**key, "items": len(done["ids"]), "ms": done["ms"]})
        except Exception as e:  # this chunk comes back; the others in the batch do not
            print(f"chunk {chunk['chunk']} failed: {e!r}")
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
