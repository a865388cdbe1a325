"""SQS messages as Lambda's SQS poller hands them to a function, and the `sqs` sample event.

This module owns the record's shape (see shared/aws-events/sqs.json): `message_record` builds it
from the values a received message carries (the local cloud passes moto's), `sqs_record` and
`sqs_event` from options, with the ids, timestamps and checksums SQS would give them.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time as _time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lambdalab.events._checks import JSON, check_account, check_region, json_text, next_sequence_number, require
from lambdalab.runtime.config import ACCOUNT_ID, REGION

TRACE_ATTRIBUTE = "AWSTraceHeader"
_QUEUE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_ATTRIBUTE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}[A-Za-z0-9_-]$|^[A-Za-z0-9_-]$")


@dataclass(frozen=True)
class FifoFields:
    """The system attributes only a FIFO queue's messages carry."""

    sequence_number: str
    group_id: str
    deduplication_id: str


def message_attribute(data_type: str, *, string_value: str | None = None, binary_value: str | None = None,
                      string_list: Sequence[str] = (), binary_list: Sequence[str] = ()) -> JSON:
    """One message attribute as Lambda hands it over (a binary value as base64 text)."""
    out: JSON = {}
    if string_value is not None:
        out["stringValue"] = string_value
    if binary_value is not None:
        out["binaryValue"] = binary_value
    out["stringListValues"] = list(string_list)
    out["binaryListValues"] = list(binary_list)
    out["dataType"] = data_type
    return out


def sqs_message_attributes_md5(attributes: Mapping[str, JSON]) -> str:
    """SQS's MD5 of message attributes: per name (sorted), length-prefixed name, type and value."""
    md5 = hashlib.md5()

    def update(data: bytes) -> None:
        md5.update(len(data).to_bytes(4, "big"))
        md5.update(data)

    for name in sorted(attributes):
        attribute = attributes[name]
        update(name.encode())
        update(attribute["dataType"].encode())
        if "binaryValue" in attribute:
            md5.update(b"\x02")
            update(base64.b64decode(attribute["binaryValue"]))
        else:
            md5.update(b"\x01")
            update(attribute["stringValue"].encode())
    return md5.hexdigest()


def message_record(*, message_id: str, receipt_handle: str, body: str, queue_arn: str, region: str,
                   sent_timestamp_ms: int, first_receive_timestamp_ms: int, sender_id: str, receive_count: int,
                   message_attributes: Mapping[str, JSON], trace_header: str | None = None,
                   fifo: FifoFields | None = None) -> JSON:
    """One received message in Lambda's shape; `message_attributes` as `message_attribute` builds them."""
    system = {
        "ApproximateReceiveCount": str(receive_count),
        "SentTimestamp": str(sent_timestamp_ms),
        "SenderId": sender_id,
        "ApproximateFirstReceiveTimestamp": str(first_receive_timestamp_ms),
    }
    if trace_header:
        system[TRACE_ATTRIBUTE] = trace_header
    if fifo is not None:
        system["SequenceNumber"] = fifo.sequence_number
        system["MessageGroupId"] = fifo.group_id
        system["MessageDeduplicationId"] = fifo.deduplication_id
    record: JSON = {
        "messageId": message_id,
        "receiptHandle": receipt_handle,
        "body": body,
        "attributes": system,
        "messageAttributes": dict(message_attributes),
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
    }
    if message_attributes:
        record["md5OfMessageAttributes"] = sqs_message_attributes_md5(message_attributes)
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region})
    return record


def _attribute_from_value(name: str, value: str | int | float | bytes) -> JSON:
    require(isinstance(name, str) and bool(_ATTRIBUTE.match(name)) and ".." not in name
            and not name.lower().startswith(("aws.", "amazon.")),
            f"message attribute name {name!r} must be 1-256 letters, digits, '_', '-' or '.', "
            "not starting with 'AWS.' or 'Amazon.'")
    if isinstance(value, bytes):
        return message_attribute("Binary", binary_value=base64.b64encode(value).decode())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return message_attribute("Number", string_value=str(value))
    require(isinstance(value, str), f"message attribute {name!r} must be str, int, float or bytes, got {value!r}")
    return message_attribute("String", string_value=value)


def _check_queue(queue: str) -> None:
    base = queue[:-5] if isinstance(queue, str) and queue.endswith(".fifo") else queue
    require(isinstance(base, str) and bool(_QUEUE.match(base)) and len(queue) <= 80,
            f"queue {queue!r} must be 1-80 letters, digits, '-' or '_' (plus '.fifo' for a FIFO queue)")


def sqs_record(body: str | Mapping[str, Any] | list, *, queue: str = "my-queue", region: str = REGION,
               account: str = ACCOUNT_ID, attributes: Mapping[str, str | int | float | bytes] | None = None,
               message_id: str | None = None, receipt_handle: str | None = None,
               sent_timestamp_ms: int | None = None, receive_count: int = 1, group_id: str | None = None) -> JSON:
    """One message as Lambda's SQS poller hands it over (FIFO queues add their system attributes)."""
    text = json_text(body, "body")
    require(text != "", "body must not be empty (SQS rejects empty messages)")
    _check_queue(queue)
    check_region(region)
    check_account(account)
    fifo = queue.endswith(".fifo")
    require(fifo or group_id is None, f"group_id applies only to FIFO queues (names ending '.fifo'), not {queue!r}")
    require(isinstance(receive_count, int) and receive_count >= 1, f"receive_count {receive_count!r} must be >= 1")
    require(attributes is None or isinstance(attributes, Mapping), f"attributes must be a mapping, got {attributes!r}")
    sent = sent_timestamp_ms if sent_timestamp_ms is not None else int(_time.time() * 1000)
    return message_record(
        message_id=message_id or str(uuid.uuid4()),
        receipt_handle=receipt_handle or "AQEB" + base64.b64encode(secrets.token_bytes(96)).decode(),
        body=text, queue_arn=f"arn:aws:sqs:{region}:{account}:{queue}", region=region,
        sent_timestamp_ms=sent, first_receive_timestamp_ms=sent + 1,
        sender_id="AIDA" + hashlib.sha256(account.encode()).hexdigest()[:17].upper(),
        receive_count=receive_count,
        message_attributes={name: _attribute_from_value(name, value) for name, value in (attributes or {}).items()},
        fifo=FifoFields(next_sequence_number(), group_id or "default", secrets.token_hex(32)) if fifo else None)


def sqs_event(bodies: Sequence[str | Mapping[str, Any] | list], *, queue: str = "my-queue",
              region: str = REGION, account: str = ACCOUNT_ID,
              attributes: Mapping[str, str | int | float | bytes] | None = None,
              group_id: str | None = None) -> JSON:
    """A batch of messages; Lambda caps a batch at 10 for FIFO queues and 10,000 for standard ones."""
    require(isinstance(bodies, Sequence) and not isinstance(bodies, (str, bytes)),
            f"bodies must be a list of message bodies, got {type(bodies).__name__}")
    limit = 10 if isinstance(queue, str) and queue.endswith(".fifo") else 10_000
    require(1 <= len(bodies) <= limit, f"a batch holds 1-{limit} messages for queue {queue!r}, got {len(bodies)}")
    return {"Records": [sqs_record(b, queue=queue, region=region, account=account, attributes=attributes,
                                   group_id=group_id) for b in bodies]}


def sqs_from_options(body: str = "Hello from SQS!", count: int = 1, queue: str = "my-queue",
                     region: str = REGION, account: str = ACCOUNT_ID,
                     attributes: Mapping[str, str | int | float | bytes] | None = None,
                     group_id: str | None = None) -> JSON:
    """`generate("sqs", ...)`: `count` copies of one body."""
    require(isinstance(count, int) and not isinstance(count, bool) and count >= 1,
            f"count {count!r} must be a positive integer")
    return sqs_event([body] * count, queue=queue, region=region, account=account, attributes=attributes,
                     group_id=group_id)
