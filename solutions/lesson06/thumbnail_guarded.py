"""Lesson 06, fix 3: a guard in code. Thumbnails are marked, and marked objects are skipped.

Every thumbnail is written with the user metadata `generated-by: thumbnailer` (stored by S3
as the header `x-amz-meta-generated-by`). S3 events do not carry an object's metadata, so
before doing any work the handler asks S3 for it with a HEAD request (cheap: no body is
downloaded) and returns at once for an object it made itself.

The loop is broken, but not for free: each thumbnail still triggers one invocation that
only looks and leaves. The trigger-side fixes (a separate bucket, a prefix filter) cost
nothing; a guard like this one is the belt to wear with those braces.
"""

import json
import os
from urllib.parse import unquote_plus

import boto3
from thumbs import make_thumbnail

s3 = boto3.client("s3")
MARK_KEY, MARK_VALUE = "generated-by", "thumbnailer"
OUTPUT_PREFIX = "thumbnails/"


def say(key: str, did: str) -> None:
    # One JSON line per object: on AWS the logs are the only record of what each invocation
    # handled, and the trace header carries Lambda's hop count (Lineage).
    print(json.dumps({"object": key, "did": did, "trace": os.environ.get("_X_AMZN_TRACE_ID")}))


def made_by_us(bucket: str, key: str) -> bool:
    """True when the object carries our mark (boto3 gives user metadata without `x-amz-meta-`)."""
    metadata = s3.head_object(Bucket=bucket, Key=key).get("Metadata", {})
    return metadata.get(MARK_KEY) == MARK_VALUE


def lambda_handler(event, context):
    written, skipped = [], []
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(record["s3"]["object"]["key"])
        if made_by_us(bucket, key):
            skipped.append(key)
            say(key, "skipped: made by us")
            continue
        original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        thumbnail_key = OUTPUT_PREFIX + key.rsplit("/", 1)[-1]
        s3.put_object(Bucket=bucket, Key=thumbnail_key, Body=make_thumbnail(original),
                      ContentType="image/jpeg", Metadata={MARK_KEY: MARK_VALUE})
        written.append(f"s3://{bucket}/{thumbnail_key}")
        say(key, f"wrote s3://{bucket}/{thumbnail_key}")
    return {"thumbnails": written, "skipped": skipped}
