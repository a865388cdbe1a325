"""Lesson 06's deliberate mistake: a thumbnail function that can write into its own trigger bucket.

For each S3 record it reads the object, makes a thumbnail and writes it to
`OUTPUT_BUCKET/thumbnails/<file name>`. `OUTPUT_BUCKET` defaults to the bucket the event came
from, which is the mistake: when that bucket's trigger fires for every new object, the
thumbnail is a new object, so it triggers the function again, which thumbnails the thumbnail
into the same key, which triggers it again... The bucket looks innocent (one upload, one
thumbnail), while the function runs until something stops it.

Lesson 06 runs this code three ways: as the loop, with a separate output bucket (fix 1), and
behind a trigger that only fires for `uploads/` (fix 2).
"""

import json
import os
from urllib.parse import unquote_plus

import boto3
from thumbs import make_thumbnail

s3 = boto3.client("s3")  # once per environment, at INIT
OUTPUT_BUCKET = os.environ.get("OUTPUT_BUCKET", "")  # empty: the bucket the upload came from
OUTPUT_PREFIX = os.environ.get("OUTPUT_PREFIX", "thumbnails/")


def say(key: str, did: str) -> None:
    # One JSON line per object: on AWS the logs are the only record of what each invocation
    # handled, and the trace header carries Lambda's hop count (Lineage).
    print(json.dumps({"object": key, "did": did, "trace": os.environ.get("_X_AMZN_TRACE_ID")}))


def lambda_handler(event, context):
    written = []
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(record["s3"]["object"]["key"])  # keys arrive URL-encoded
        original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        target = OUTPUT_BUCKET or bucket
        thumbnail_key = OUTPUT_PREFIX + key.rsplit("/", 1)[-1]
        s3.put_object(Bucket=target, Key=thumbnail_key, Body=make_thumbnail(original),
                      ContentType="image/jpeg")
        written.append(f"s3://{target}/{thumbnail_key}")
        say(key, f"wrote s3://{target}/{thumbnail_key}")
    return {"thumbnails": written}
