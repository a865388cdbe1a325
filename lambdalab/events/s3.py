"""S3 event notifications: the record S3 sends, and the `s3-put` sample event.

This module owns the shape of an S3 notification record (see shared/aws-events/s3-put.json),
with every key AWS sends (moto's own event lacks `userIdentity`, `requestParameters`,
`responseElements`, `s3.bucket.ownerIdentity` and `s3.object.sequencer`, and encodes a key's
slashes): the key form-URL-encoded (space -> `+`, UTF-8 bytes percent-encoded, `/` kept), a
sequencer that grows with every event so handlers can order them, the requester's principal and
address. The local cloud builds its notifications with `s3_record` from moto's bucket and key.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus

from lambdalab._util.timefmt import iso_millis
from lambdalab.events._checks import JSON, check_account, check_region, event_time, require
from lambdalab.runtime.config import ACCOUNT_ID, REGION

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_sequence = itertools.count(1)
_sequence_lock = threading.Lock()


def encode_key(key: str) -> str:
    """A key as S3 writes it into an event; `urllib.parse.unquote_plus` gives the key back."""
    return quote_plus(key, safe="/")


def next_sequencer() -> str:
    """18 hex digits, strictly increasing within this process (S3 compares them as hex)."""
    with _sequence_lock:
        n = next(_sequence)
    return f"{time.time_ns() // 1000:014X}{n % 0x10000:04X}"


def request_id() -> str:
    """An S3 request id: 16 upper-case hex digits."""
    return secrets.token_hex(8).upper()


def host_id() -> str:
    """An S3 extended request id (`x-amz-id-2`): base64 of random bytes."""
    return base64.b64encode(secrets.token_bytes(54)).decode()


def owner_id(account_id: str) -> str:
    """A stable bucket-owner id for an account, in the short form S3 puts in events."""
    return "A" + hashlib.sha256(account_id.encode()).hexdigest()[:13].upper()


def principal_id(access_key: str | None, account_id: str) -> str:
    """The requester as S3 names it: `AWS:<unique id>` for IAM callers."""
    if not access_key:
        return f"AWS:{account_id}"
    return "AWS:AIDA" + hashlib.sha256(access_key.encode()).hexdigest()[:17].upper()


@dataclass(frozen=True)
class Requester:
    """Who made the request that caused the event, as the S3 front end saw it."""

    principal_id: str
    source_ip: str
    request_id: str
    host_id: str


def s3_record(*, event_name: str, region: str, bucket_name: str, bucket_arn: str, owner: str,
              key: str, size: int | None, etag: str | None, version_id: str | None,
              configuration_id: str, requester: Requester, sequencer: str | None = None,
              when: datetime | None = None) -> dict[str, Any]:
    """One record of an S3 notification (`eventName` without the `s3:` prefix, e.g. ObjectCreated:Put)."""
    obj: dict[str, Any] = {"key": encode_key(key)}
    if not event_name.startswith("ObjectRemoved"):
        obj["size"] = int(size or 0)
        obj["eTag"] = (etag or "").strip('"')
    if version_id and version_id != "null":
        obj["versionId"] = version_id
    obj["sequencer"] = sequencer or next_sequencer()
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": iso_millis(when),
        "eventName": event_name,
        "userIdentity": {"principalId": requester.principal_id},
        "requestParameters": {"sourceIPAddress": requester.source_ip},
        "responseElements": {"x-amz-request-id": requester.request_id, "x-amz-id-2": requester.host_id},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {"name": bucket_name, "ownerIdentity": {"principalId": owner}, "arn": bucket_arn},
            "object": obj,
        },
    }


def s3_put_event(bucket: str, key: str, size: int = 1024, *, etag: str | None = None,
                 region: str = REGION, account: str = ACCOUNT_ID, configuration_id: str | None = None,
                 source_ip: str = "127.0.0.1", time: datetime | None = None) -> JSON:
    """An `ObjectCreated:Put` notification for one object; the key arrives URL-encoded, as from S3."""
    require(isinstance(bucket, str) and bool(_BUCKET.match(bucket)) and ".." not in bucket,
            f"bucket {bucket!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, '.', '-')")
    require(isinstance(key, str) and 0 < len(key.encode("utf-8")) <= 1024,
            f"key {key!r} must be a non-empty string of at most 1024 UTF-8 bytes")
    require(isinstance(size, int) and not isinstance(size, bool) and size >= 0,
            f"size {size!r} must be a non-negative integer (bytes)")
    require(etag is None or (isinstance(etag, str) and etag != ""), f"etag {etag!r} must be a non-empty string")
    check_region(region)
    check_account(account)
    requester = Requester(principal_id=principal_id(None, account), source_ip=source_ip,
                          request_id=request_id(), host_id=host_id())
    record = s3_record(
        event_name="ObjectCreated:Put", region=region, bucket_name=bucket, bucket_arn=f"arn:aws:s3:::{bucket}",
        owner=owner_id(account), key=key, size=size, etag=etag or secrets.token_hex(16),
        version_id=None, configuration_id=configuration_id or str(uuid.uuid4()), requester=requester,
        when=event_time(time))
    return {"Records": [record]}
