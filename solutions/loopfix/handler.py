"""Lab `loopfix` (notebook 06), the function: thumbnails of `uploads/` images, written to `thumbnails/`.

Both live in the SAME bucket: the handler reads `uploads/<name>` and writes
`thumbnails/<name>` next to it. Whether that loops is decided by the bucket's trigger, which
is your exercise (`trigger.py`); this file is given and needs no change.

An object that is not a picture Pillow can read is skipped (and logged), not raised:
retrying it could never help.
"""

import io
import json
import os
from urllib.parse import unquote_plus

import boto3
from PIL import Image, ImageOps, UnidentifiedImageError

s3 = boto3.client("s3")
THUMBNAIL_PREFIX = "thumbnails/"
SIZE = (160, 160)


def say(key: str, did: str) -> None:
    # One JSON line per object: on AWS the logs are the only record of what each invocation
    # handled, and the trace header carries Lambda's hop count (Lineage).
    print(json.dumps({"object": key, "did": did, "trace": os.environ.get("_X_AMZN_TRACE_ID")}))


def thumbnail(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image)
        upright.thumbnail(SIZE)
        out = io.BytesIO()
        upright.convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue()


def lambda_handler(event, context):
    written, skipped = [], []
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(record["s3"]["object"]["key"])
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            small = thumbnail(data)
        except (UnidentifiedImageError, OSError) as e:
            say(key, f"skipped: not an image ({e})")
            skipped.append(key)
            continue
        target = THUMBNAIL_PREFIX + key.rsplit("/", 1)[-1]
        s3.put_object(Bucket=bucket, Key=target, Body=small, ContentType="image/jpeg")
        written.append(target)
        say(key, f"wrote {target}")
    return {"thumbnails": written, "skipped": skipped}
