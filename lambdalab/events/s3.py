"""S3 event notification records with every key AWS sends, for what moto's S3 reports.

moto's notification event lacks `userIdentity`, `requestParameters`, `responseElements`,
`s3.bucket.ownerIdentity` and `s3.object.sequencer`, and encodes a key's slashes. This module
builds the record as S3 does (see ../shared/aws-events/s3-put.json): the key form-URL-encoded
(space -> `+`, UTF-8 bytes percent-encoded, `/` kept), a sequencer that grows with every event
so handlers can order them, the requester's principal and address.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote_plus

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


def event_time(when: datetime | None = None) -> str:
    when = when or datetime.now(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


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
        "eventTime": event_time(when),
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


def from_moto(event_name: str, bucket: Any, key: Any, notification_id: str,
              requester: Requester) -> dict[str, Any]:
    """The full event for a moto bucket and key (what `moto.s3.notifications._get_s3_event` returns)."""
    name = event_name[3:] if event_name.startswith("s3:") else event_name
    version_id = getattr(key, "version_id", None) if bucket.is_versioned else None
    record = s3_record(
        event_name=name, region=bucket.region_name, bucket_name=bucket.name, bucket_arn=bucket.arn,
        owner=owner_id(bucket.account_id), key=key.name, size=getattr(key, "size", 0),
        etag=getattr(key, "etag", ""), version_id=version_id, configuration_id=notification_id,
        requester=requester)
    return {"Records": [record]}
