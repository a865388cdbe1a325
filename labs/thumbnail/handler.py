# Generated from solutions/thumbnail/handler.py by `lambdalab labs build`. This copy is yours: edit it.
# Replace each `raise NotImplementedError` with your code, then run `lambdalab check thumbnail`.
# `lambdalab labs build` never overwrites your edits (unless you pass --force).
"""Lab `thumbnail`, the Lambda half: S3 upload -> this handler -> `thumb-<key>` in another bucket.

The function is triggered by S3 `ObjectCreated` notifications on the source bucket (usually
with a prefix filter such as `uploads/`). For each record it reads the object once, makes the
thumbnail in memory with `thumbnail.make_thumbnail`, and writes it with ONE PutObject to the
bucket named by the environment variable `THUMBNAIL_BUCKET`, at `thumb-<key>`, with the
thumbnail's ContentType. It never writes into the bucket an event came from (that would
trigger itself forever).

Failures come in two kinds, and the difference decides what Lambda does next:

* Permanent: this upload can never become a thumbnail (not an image, corrupt, a bomb, too
  large, deleted before we read it, a malformed record, a key too long for its thumbnail).
  Retrying cannot help, so the handler does NOT raise: Lambda would retry an async event
  twice more and only then send it to the on-failure destination. Instead each permanent
  failure is reported at once, with the key and the reason, in three places:
    1. a structured JSON log line (level ERROR) in CloudWatch Logs;
    2. the handler's return value: `{"thumbnails": [...], "failures": [...], "skipped": [...]}`
       (what an on-success destination, or a synchronous caller, receives);
    3. when the optional environment variable `FAILURE_QUEUE_URL` names an SQS queue, a message
       on it shaped like Lambda's own on-failure destination record (`requestContext`,
       `requestPayload`, `responsePayload` with `errorType` and `errorMessage`), with the
       condition "PermanentFailure". Point the function's on-failure destination at the same
       queue and it holds every failed upload: permanent ones at once, transient ones after
       Lambda's retries ("RetriesExhausted"). Its role then needs sqs:SendMessage on it.
* Everything else (S3 throttling, 5xx, timeouts, lost connections, AccessDenied, a missing
  THUMBNAIL_BUCKET) is logged with the key and then raised: Lambda retries the event and,
  when the retries run out, sends it to the dead-letter queue / on-failure destination.

Nothing partial is ever written: the thumbnail is encoded completely in memory before the
single PutObject, and a record that fails writes nothing. Records are processed in order; a
retry repeats the records before the failing one, which is harmless (same key, same bytes).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_plus

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from thumbnail import ImageRejected, make_thumbnail

# Clients are created once per execution environment (at init), then reused by warm invocations.
# Bounded retries and timeouts: a stuck S3 call should fail the invocation, which Lambda retries.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)
s3 = boto3.client("s3", config=_CONFIG)
FAILURE_QUEUE_URL = os.environ.get("FAILURE_QUEUE_URL", "")
sqs = boto3.client("sqs", config=_CONFIG) if FAILURE_QUEUE_URL else None

THUMBNAIL_PREFIX = "thumb-"
SOURCE_KEY_METADATA = "source-key"  # the stretch goal: x-amz-meta-source-key, the photo's key, percent-encoded
MAX_SIZE = (200, 200)
MAX_OBJECT_BYTES = 20 * 1024 * 1024  # refused from the event's size, before any download
MAX_KEY_BYTES = 1024  # S3's limit on a key, in UTF-8 bytes
MAX_MESSAGE_BYTES = 256 * 1024  # SQS's limit on a message body
# Optional: only keys under this prefix are thumbnailed (the trigger's prefix filter, enforced
# again here for events that reach the function some other way).
SOURCE_PREFIX = os.environ.get("SOURCE_PREFIX", "")

# Lambda's Python runtime formats every record that reaches the root logger's handler as
# "[LEVEL]\t<time>\t<request id>\t<message>"; the root logger itself starts at WARNING.
logger = logging.getLogger("thumbnails")
logger.setLevel(logging.INFO)


class RecordRejected(ImageRejected):
    """A permanent failure of the record itself rather than of its image."""


class MalformedEvent(RecordRejected):
    """The event is not an S3 notification (no Records list)."""


class MalformedRecord(RecordRejected):
    """A record lacks the bucket name or object key, or is not from S3."""


class ObjectTooLarge(RecordRejected):
    """The object is bigger than MAX_OBJECT_BYTES (known from its size, before downloading)."""


class ObjectMissing(RecordRejected):
    """The object was deleted before the handler could read it."""


class KeyTooLong(RecordRejected):
    """`thumb-<key>` would be longer than S3 allows."""


class OutsidePrefix(RecordRejected):
    """The key is not under SOURCE_PREFIX."""


class SourceIsTarget(RecordRejected):
    """The event comes from the thumbnail bucket itself: writing there would loop forever."""


@dataclass(frozen=True)
class Upload:
    """What one S3 record says about one uploaded object (the key decoded)."""

    bucket: str
    key: str
    thumbnail_key: str
    event_name: str
    size: int | None
    version_id: str | None


def lambda_handler(event: Any, context: Any) -> dict:
    target = os.environ.get("THUMBNAIL_BUCKET", "")
    if not target:
        # A configuration error, not a bad upload: raise, so the event is kept for a redrive.
        raise RuntimeError("the environment variable THUMBNAIL_BUCKET (the bucket for thumbnails) is not set")
    result: dict[str, list] = {"thumbnails": [], "failures": [], "skipped": []}
    if isinstance(event, dict) and event.get("Event") == "s3:TestEvent":
        # S3 sends this once when a notification is configured; it names no object.
        _log(logging.INFO, "skipped", bucket=event.get("Bucket"), key=None, reason="s3:TestEvent")
        result["skipped"].append({"bucket": event.get("Bucket"), "key": None, "reason": "s3:TestEvent"})
        return result
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        problem = MalformedEvent(f"the event has no Records list (got {_shape(event)})")
        _reject(result, None, None, problem, event, context)
        return result
    for index, record in enumerate(records):
        upload: Upload | None = None
        try:
            upload = parse_record(index, record)
            if not upload.event_name.startswith("ObjectCreated:"):
                reason = f"{upload.event_name} is not an upload"
                _log(logging.INFO, "skipped", bucket=upload.bucket, key=upload.key, reason=reason)
                result["skipped"].append({"bucket": upload.bucket, "key": upload.key, "reason": reason})
                continue
            result["thumbnails"].append(thumbnail_upload(upload, target))
        except ImageRejected as problem:
            _reject(result, upload and upload.bucket, upload and upload.key, problem, {"Records": [record]}, context)
        except Exception as error:
            # Transient or configuration trouble: name the key, then let Lambda retry the event.
            _log(logging.ERROR, "retry", bucket=upload and upload.bucket, key=upload and upload.key,
                 error=type(error).__name__, reason=_describe(error))
            raise
    return result


def parse_record(index: int, record: Any) -> Upload:
    """The upload one S3 notification record describes; MalformedRecord when it describes none."""
    if not isinstance(record, dict) or not isinstance(record.get("s3"), dict):
        raise MalformedRecord(f"record {index} is not an S3 notification record (got {_shape(record)})")
    if record.get("eventSource") not in (None, "aws:s3"):
        raise MalformedRecord(f"record {index} comes from {record.get('eventSource')!r}, not aws:s3")
    bucket = (record["s3"].get("bucket") or {}).get("name")
    obj = record["s3"].get("object") or {}
    encoded_key = obj.get("key")
    if not isinstance(bucket, str) or not bucket or not isinstance(encoded_key, str) or not encoded_key:
        raise MalformedRecord(f"record {index} has no s3.bucket.name or s3.object.key")
    key, thumbnail_key = keys_for(encoded_key)
    size = obj.get("size")
    version = obj.get("versionId")
    return Upload(bucket=bucket, key=key, thumbnail_key=thumbnail_key,
                  event_name=str(record.get("eventName", "ObjectCreated:Put")),
                  size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                  version_id=version if isinstance(version, str) and version not in ("", "null") else None)


def thumbnail_upload(upload: Upload, target: str) -> dict:
    """Make and store the thumbnail of one upload; raise an ImageRejected when it can't be made."""
    if upload.bucket == target:
        raise SourceIsTarget(f"the event comes from {target!r}, the thumbnail bucket: refusing to write "
                             "into the bucket that triggers this function")
    if SOURCE_PREFIX and not upload.key.startswith(SOURCE_PREFIX):
        raise OutsidePrefix(f"the key is not under {SOURCE_PREFIX!r}")
    key_bytes = len(upload.thumbnail_key.encode("utf-8"))
    if key_bytes > MAX_KEY_BYTES:
        raise KeyTooLong(f"{THUMBNAIL_PREFIX}<key> would be {key_bytes} bytes; S3 keys are at most {MAX_KEY_BYTES}")
    if upload.size is not None and upload.size > MAX_OBJECT_BYTES:
        raise ObjectTooLarge(f"the object is {upload.size:,} bytes (from the event); the limit is "
                             f"{MAX_OBJECT_BYTES:,} bytes: not downloaded")
    try:
        data, thumbnail, content_type = store_thumbnail(upload, target)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchVersion"):
            raise ObjectMissing("the object no longer exists (deleted before it could be read)") from None
        raise
    outcome = {"bucket": upload.bucket, "key": upload.key, "thumbnail_bucket": target,
               "thumbnail_key": upload.thumbnail_key, "content_type": content_type,
               "source_bytes": len(data), "thumbnail_bytes": len(thumbnail)}
    _log(logging.INFO, "thumbnail", **outcome)
    return outcome


def keys_for(encoded_key: str) -> tuple[str, str]:
    """The object key as stored in S3, and its thumbnail's key, from the key in an S3 event.

    S3 puts keys in events URL-encoded the way HTML forms are: a space becomes '+', a '+'
    becomes '%2B', non-ASCII letters become %XX bytes of their UTF-8, and '/' stays '/'.
    """
    # TODO(keys): Decode the key the way S3 encoded it (urllib.parse has the function for form encoding),
    # exactly once: a key may hold "%2F" literally, which the event carries as "%252F".
    # The thumbnail's key is THUMBNAIL_PREFIX followed by the decoded key.
    raise NotImplementedError("Exercise 'keys' in labs/thumbnail/handler.py: Decode the key the way S3 encoded it (urllib.parse has the function for form encoding), exactly once: a key may hold \"%2F\" literally, which the event carries as \"%252F\". The thumbnail's key is THUMBNAIL_PREFIX followed by the decoded key.")


def store_thumbnail(upload: Upload, target: str) -> tuple[bytes, bytes, str]:
    """Read the uploaded object from S3, make its thumbnail, and write the thumbnail into the
    bucket `target`; return the bytes read, the thumbnail's bytes and its content type."""
    # TODO(store): The service's core, in three steps, with the S3 client `s3` created at init above (look up
    # get_object and put_object in boto3's S3 reference):
    # 1. read the uploaded object (upload.bucket, upload.key; VersionId too when upload.version_id
    # is set) with ONE GetObject, and its bytes with capped_body(response), which refuses a giant;
    # 2. make the thumbnail with make_thumbnail(data, MAX_SIZE): it returns the thumbnail's bytes
    # and their content type ("image/jpeg" or "image/png");
    # 3. write it with ONE PutObject into the bucket `target` (never the upload's own bucket) at
    # upload.thumbnail_key, with its content type, so that browsers show it as an image.
    raise NotImplementedError("Exercise 'store' in labs/thumbnail/handler.py: The service's core, in three steps, with the S3 client `s3` created at init above (look up get_object and put_object in boto3's S3 reference): 1. read the uploaded object (upload.bucket, upload.key; VersionId too when upload.version_id is set) with ONE GetObject, and its bytes with capped_body(response), which refuses a giant; 2. make the thumbnail with make_thumbnail(data, MAX_SIZE): it returns the thumbnail's bytes and their content type (\"image/jpeg\" or \"image/png\"); 3. write it with ONE PutObject into the bucket `target` (never the upload's own bucket) at upload.thumbnail_key, with its content type, so that browsers show it as an image.")


def capped_body(response: dict) -> bytes:
    """The body of a GetObject response, read whole; ObjectTooLarge when it is over
    MAX_OBJECT_BYTES, known from the headers before reading, and the read itself is capped
    (the object can change under us). The body is closed either way."""
    body = response["Body"]
    try:
        if response.get("ContentLength", 0) > MAX_OBJECT_BYTES:
            raise ObjectTooLarge(f"the object is {response['ContentLength']:,} bytes; the limit is "
                                 f"{MAX_OBJECT_BYTES:,} bytes: not downloaded")
        data = body.read(MAX_OBJECT_BYTES + 1)
    finally:
        body.close()
    if len(data) > MAX_OBJECT_BYTES:
        raise ObjectTooLarge(f"the object is over {MAX_OBJECT_BYTES:,} bytes; stopped reading there")
    return data


def _reject(result: dict, bucket: str | None, key: str | None, problem: ImageRejected, payload: Any,
            context: Any) -> None:
    """Report a permanent failure: log line, result entry, and the failure queue when configured."""
    failure = {"bucket": bucket, "key": key, "error": problem.reason, "reason": str(problem)}
    _log(logging.ERROR, "rejected", **failure)
    result["failures"].append(failure)
    if sqs is not None:
        record = failure_record(failure, payload, context)
        body = json.dumps(record, ensure_ascii=False, default=str)
        if len(body.encode("utf-8")) > MAX_MESSAGE_BYTES:
            # A huge malformed event must not make the report itself fail (and be retried forever).
            record["requestPayload"] = {"omitted": f"the event was {len(body.encode('utf-8')):,} bytes"}
            body = json.dumps(record, ensure_ascii=False, default=str)
        sqs.send_message(QueueUrl=FAILURE_QUEUE_URL, MessageBody=body)


def failure_record(failure: dict, payload: Any, context: Any) -> dict:
    """A failure in the shape of Lambda's on-failure destination record, so that one consumer
    reads both ours (condition "PermanentFailure") and Lambda's ("RetriesExhausted", ...)."""
    return {
        "version": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        "requestContext": {
            "requestId": getattr(context, "aws_request_id", None),
            "functionArn": getattr(context, "invoked_function_arn", None),
            "condition": "PermanentFailure",
            "approximateInvokeCount": 1,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": getattr(context, "function_version", "$LATEST")},
        "responsePayload": {"errorType": failure["error"], "errorMessage": failure["reason"],
                            "bucket": failure["bucket"], "key": failure["key"]},
    }


def _log(level: int, outcome: str, **fields: Any) -> None:
    """One JSON object per line: CloudWatch Logs Insights can filter on `outcome`, `key`, `error`."""
    logger.log(level, json.dumps({"outcome": outcome, **fields}, ensure_ascii=False, default=str))


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return "an object with keys " + ", ".join(sorted(map(str, value))[:8]) if value else "an empty object"
    return type(value).__name__


def _describe(error: BaseException) -> str:
    return (str(error).strip() or type(error).__name__)[:300]
