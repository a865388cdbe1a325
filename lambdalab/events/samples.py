"""Sample AWS events for Lambda triggers, like `sam local generate-event`, for code and the CLI.

This module owns the shape of every event the course generates by hand: S3 put, SQS, DynamoDB
Streams, EventBridge (and its scheduled form), API Gateway REST (payload 1.0) and HTTP API
(payload 2.0). `generate(source, **options)` is the entry point; the per-source builders are the
typed API the local cloud reuses to shape events it delivers. The samples in
`shared/aws-events/` are the contract: `contract_problems` checks an event against its sample,
with a short, reasoned list of places (`CONTRACT_EXCEPTIONS`) where AWS itself varies the shape.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import itertools
import json
import math
import re
import secrets
import string
import time as _time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import parse_qsl, urlencode

from lambdalab.events import s3 as s3events
from lambdalab.runtime.config import ACCOUNT_ID, REGION

JSON = dict[str, Any]
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
DYNAMODB_EVENT_NAMES = ("INSERT", "MODIFY", "REMOVE")
STREAM_VIEW_TYPES = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")
_DYNAMODB_TYPES = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_ACCOUNT = re.compile(r"^\d{12}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_QUEUE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_ATTRIBUTE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}[A-Za-z0-9_-]$|^[A-Za-z0-9_-]$")
_RULE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# Stream sequence numbers only grow; seeding from the clock keeps them growing across processes.
_sequence_numbers = itertools.count(int(_time.time() * 1_000_000) * 1_000_000)
# A table's stream ARN ends in the stream's creation time; one label per process keeps ARNs stable.
_STREAM_LABEL = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + "000"


# --- small helpers ------------------------------------------------------------------------------


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_region(region: str) -> None:
    _require(isinstance(region, str) and bool(_REGION.match(region)),
             f"region {region!r} is not an AWS region name like 'us-east-1'")


def _check_account(account: str) -> None:
    _require(isinstance(account, str) and bool(_ACCOUNT.match(account)),
             f"account {account!r} must be 12 digits")


def _now(when: datetime | None) -> datetime:
    if when is None:
        return datetime.now(timezone.utc)
    _require(isinstance(when, datetime) and when.tzinfo is not None,
             f"time {when!r} must be a timezone-aware datetime")
    return when.astimezone(timezone.utc)


def _iso_seconds(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _clf_time(when: datetime) -> str:
    """API Gateway's request time, `04/Mar/2020:19:15:17 +0000`, in English whatever the locale."""
    return f"{when.day:02d}/{_MONTHS[when.month - 1]}/{when.year}:{when:%H:%M:%S} +0000"


def _epoch_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _random_text(length: int, alphabet: str = string.ascii_uppercase + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _short_request_id() -> str:
    """The 16-character base64 request ids API Gateway uses (`JKJaXmPLvHcESHA=`)."""
    return base64.b64encode(secrets.token_bytes(11)).decode()[:15] + "="


def _trace_header(when: datetime) -> str:
    return f"Root=1-{int(when.timestamp()):08x}-{secrets.token_hex(12)}"


def _json_text(value: Any, name: str) -> str:
    """A body given as str stays as is; a dict or list becomes its JSON text."""
    if isinstance(value, str):
        return value
    _require(isinstance(value, (Mapping, list)), f"{name} must be a str, bytes, dict or list, got {type(value).__name__}")
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} is not JSON-serialisable: {e}") from None


def _pairs(value: str | Mapping[str, Any] | Iterable[tuple[str, str]] | None, name: str) -> list[tuple[str, str]]:
    """Name/value pairs from a query string, a mapping (a list value repeats the name) or pairs."""
    if value is None:
        return []
    if isinstance(value, str):
        return parse_qsl(value.lstrip("?"), keep_blank_values=True)
    items = value.items() if isinstance(value, Mapping) else value
    pairs: list[tuple[str, str]] = []
    for item in items:
        _require(isinstance(item, tuple) and len(item) == 2, f"{name} must be a mapping or (name, value) pairs, got {item!r}")
        key, values = item
        _require(isinstance(key, str) and key != "", f"{name}: names must be non-empty strings, got {key!r}")
        for v in values if isinstance(values, (list, tuple)) else [values]:
            _require(isinstance(v, str), f"{name}[{key!r}] must be a str or a list of str, got {v!r}")
            pairs.append((key, v))
    return pairs


def _grouped(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return grouped


# --- S3 -----------------------------------------------------------------------------------------


def encode_s3_key(key: str) -> str:
    """An object key as S3 writes it in a notification (form-encoded: ' ' -> '+', '/' kept)."""
    return s3events.encode_key(key)


def s3_put_event(bucket: str, key: str, size: int = 1024, *, etag: str | None = None,
                 region: str = REGION, account: str = ACCOUNT_ID, configuration_id: str | None = None,
                 source_ip: str = "127.0.0.1", time: datetime | None = None) -> JSON:
    """An `ObjectCreated:Put` notification for one object; the key arrives URL-encoded, as from S3."""
    _require(isinstance(bucket, str) and bool(_BUCKET.match(bucket)) and ".." not in bucket,
             f"bucket {bucket!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, '.', '-')")
    _require(isinstance(key, str) and 0 < len(key.encode("utf-8")) <= 1024,
             f"key {key!r} must be a non-empty string of at most 1024 UTF-8 bytes")
    _require(isinstance(size, int) and not isinstance(size, bool) and size >= 0,
             f"size {size!r} must be a non-negative integer (bytes)")
    _require(etag is None or (isinstance(etag, str) and etag != ""), f"etag {etag!r} must be a non-empty string")
    _check_region(region)
    _check_account(account)
    requester = s3events.Requester(
        principal_id=s3events.principal_id(None, account), source_ip=source_ip,
        request_id=s3events.request_id(), host_id=s3events.host_id())
    record = s3events.s3_record(
        event_name="ObjectCreated:Put", region=region, bucket_name=bucket, bucket_arn=f"arn:aws:s3:::{bucket}",
        owner=s3events.owner_id(account), key=key, size=size, etag=etag or secrets.token_hex(16),
        version_id=None, configuration_id=configuration_id or str(uuid.uuid4()), requester=requester,
        when=_now(time))
    return {"Records": [record]}


# --- SQS ----------------------------------------------------------------------------------------


def _sqs_attribute(name: str, value: str | int | float | bytes) -> JSON:
    _require(isinstance(name, str) and bool(_ATTRIBUTE.match(name)) and ".." not in name
             and not name.lower().startswith(("aws.", "amazon.")),
             f"message attribute name {name!r} must be 1-256 letters, digits, '_', '-' or '.', "
             "not starting with 'AWS.' or 'Amazon.'")
    if isinstance(value, bytes):
        return {"binaryValue": base64.b64encode(value).decode(), "stringListValues": [],
                "binaryListValues": [], "dataType": "Binary"}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"stringValue": str(value), "stringListValues": [], "binaryListValues": [], "dataType": "Number"}
    _require(isinstance(value, str), f"message attribute {name!r} must be str, int, float or bytes, got {value!r}")
    return {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"}


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


def _check_queue(queue: str) -> None:
    base = queue[:-5] if isinstance(queue, str) and queue.endswith(".fifo") else queue
    _require(isinstance(base, str) and bool(_QUEUE.match(base)) and len(queue) <= 80,
             f"queue {queue!r} must be 1-80 letters, digits, '-' or '_' (plus '.fifo' for a FIFO queue)")


def sqs_record(body: str | Mapping[str, Any] | list, *, queue: str = "my-queue", region: str = REGION,
               account: str = ACCOUNT_ID, attributes: Mapping[str, str | int | float | bytes] | None = None,
               message_id: str | None = None, receipt_handle: str | None = None,
               sent_timestamp_ms: int | None = None, receive_count: int = 1, group_id: str | None = None) -> JSON:
    """One message as Lambda's SQS poller hands it over (FIFO queues add their system attributes)."""
    text = _json_text(body, "body")
    _require(text != "", "body must not be empty (SQS rejects empty messages)")
    _check_queue(queue)
    _check_region(region)
    _check_account(account)
    fifo = queue.endswith(".fifo")
    _require(fifo or group_id is None, f"group_id applies only to FIFO queues (names ending '.fifo'), not {queue!r}")
    _require(isinstance(receive_count, int) and receive_count >= 1, f"receive_count {receive_count!r} must be >= 1")
    _require(attributes is None or isinstance(attributes, Mapping), f"attributes must be a mapping, got {attributes!r}")
    sent = sent_timestamp_ms if sent_timestamp_ms is not None else int(_time.time() * 1000)
    system = {
        "ApproximateReceiveCount": str(receive_count),
        "SentTimestamp": str(sent),
        "SenderId": "AIDA" + hashlib.sha256(account.encode()).hexdigest()[:17].upper(),
        "ApproximateFirstReceiveTimestamp": str(sent + 1),
    }
    if fifo:
        system["SequenceNumber"] = str(next(_sequence_numbers))
        system["MessageGroupId"] = group_id or "default"
        system["MessageDeduplicationId"] = secrets.token_hex(32)
    message_attributes = {name: _sqs_attribute(name, value) for name, value in (attributes or {}).items()}
    record: JSON = {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": receipt_handle or "AQEB" + base64.b64encode(secrets.token_bytes(96)).decode(),
        "body": text,
        "attributes": system,
        "messageAttributes": message_attributes,
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),
    }
    if message_attributes:
        record["md5OfMessageAttributes"] = sqs_message_attributes_md5(message_attributes)
    record.update({
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{region}:{account}:{queue}",
        "awsRegion": region,
    })
    return record


def sqs_event(bodies: Sequence[str | Mapping[str, Any] | list], *, queue: str = "my-queue",
              region: str = REGION, account: str = ACCOUNT_ID,
              attributes: Mapping[str, str | int | float | bytes] | None = None,
              group_id: str | None = None) -> JSON:
    """A batch of messages; Lambda caps a batch at 10 for FIFO queues and 10,000 for standard ones."""
    _require(isinstance(bodies, Sequence) and not isinstance(bodies, (str, bytes)),
             f"bodies must be a list of message bodies, got {type(bodies).__name__}")
    limit = 10 if isinstance(queue, str) and queue.endswith(".fifo") else 10_000
    _require(1 <= len(bodies) <= limit, f"a batch holds 1-{limit} messages for queue {queue!r}, got {len(bodies)}")
    return {"Records": [sqs_record(b, queue=queue, region=region, account=account, attributes=attributes,
                                   group_id=group_id) for b in bodies]}


def _sqs_from_options(body: str = "Hello from SQS!", count: int = 1, queue: str = "my-queue",
                      region: str = REGION, account: str = ACCOUNT_ID,
                      attributes: Mapping[str, str | int | float | bytes] | None = None,
                      group_id: str | None = None) -> JSON:
    _require(isinstance(count, int) and not isinstance(count, bool) and count >= 1,
             f"count {count!r} must be a positive integer")
    return sqs_event([body] * count, queue=queue, region=region, account=account, attributes=attributes,
                     group_id=group_id)


# --- DynamoDB Streams ---------------------------------------------------------------------------


def _check_attribute_value(path: str, value: Any) -> None:
    _require(isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in _DYNAMODB_TYPES,
             f"{path} must be a DynamoDB JSON value with one type key ({', '.join(_DYNAMODB_TYPES)}), got {value!r}")
    kind, inner = next(iter(value.items()))
    if kind in ("S", "B"):
        _require(isinstance(inner, str), f"{path}.{kind} must be a string")
    elif kind == "N":
        _require(isinstance(inner, str) and _is_number(inner), f"{path}.N must be a number as a string, got {inner!r}")
    elif kind in ("SS", "NS", "BS"):
        _require(isinstance(inner, list) and inner and all(isinstance(v, str) for v in inner)
                 and len(set(inner)) == len(inner), f"{path}.{kind} must be a non-empty list of distinct strings")
        _require(kind != "NS" or all(_is_number(v) for v in inner), f"{path}.NS must hold numbers as strings")
    elif kind == "M":
        check_dynamodb_item(path, inner)
    elif kind == "L":
        _require(isinstance(inner, list), f"{path}.L must be a list")
        for i, element in enumerate(inner):
            _check_attribute_value(f"{path}.L[{i}]", element)
    elif kind == "NULL":
        _require(inner is True, f"{path}.NULL must be true")
    else:
        _require(isinstance(inner, bool), f"{path}.BOOL must be true or false")


def _is_number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


def check_dynamodb_item(name: str, item: Any) -> None:
    """Raise ValueError naming the attribute when `item` is not DynamoDB JSON (`{"Id": {"N": "1"}}`)."""
    _require(isinstance(item, Mapping), f"{name} must be a dict of attribute name -> DynamoDB JSON value, got {item!r}")
    for attribute, value in item.items():
        _require(isinstance(attribute, str) and attribute != "", f"{name}: attribute names must be non-empty strings")
        _check_attribute_value(f"{name}.{attribute}", value)


def _value_size(value: Mapping[str, Any]) -> int:
    """DynamoDB's documented size of one attribute value, in bytes."""
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(base64.b64decode(inner))
    if kind == "SS":
        return sum(len(v.encode("utf-8")) for v in inner)
    if kind == "NS":
        return sum(_number_size(v) for v in inner)
    if kind == "BS":
        return sum(len(base64.b64decode(v)) for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + _value_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in inner)
    return 1  # NULL, BOOL


def _number_size(text: str) -> int:
    """One byte per two significant digits, plus one."""
    digits = Decimal(text).normalize().as_tuple().digits
    significant = len(digits) if any(digits) else 1
    return math.ceil(significant / 2) + 1


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes DynamoDB counts for an item: each attribute's name (UTF-8) plus its value."""
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in item.items())


def dynamodb_record(table: str, event_name: str = "INSERT", *, keys: Mapping[str, Any],
                    new_image: Mapping[str, Any] | None = None, old_image: Mapping[str, Any] | None = None,
                    view_type: str = "NEW_AND_OLD_IMAGES", region: str = REGION, account: str = ACCOUNT_ID,
                    time: datetime | None = None) -> JSON:
    """One stream record. Images default to the keys alone; the view type decides which are sent."""
    _require(isinstance(table, str) and bool(_TABLE.match(table)),
             f"table {table!r} must be 3-255 letters, digits, '_', '-' or '.'")
    _require(event_name in DYNAMODB_EVENT_NAMES,
             f"event_name {event_name!r} is not one of {', '.join(DYNAMODB_EVENT_NAMES)}")
    _require(view_type in STREAM_VIEW_TYPES, f"view_type {view_type!r} is not one of {', '.join(STREAM_VIEW_TYPES)}")
    _check_region(region)
    _check_account(account)
    check_dynamodb_item("keys", keys)
    _require(len(keys) in (1, 2), f"keys must hold the partition key and optionally the sort key, got {len(keys)} attributes")
    _require(event_name != "INSERT" or old_image is None, "an INSERT has no old image; drop old_image")
    _require(event_name != "REMOVE" or new_image is None, "a REMOVE has no new image; drop new_image")
    has_new, has_old = event_name != "REMOVE", event_name != "INSERT"
    images = {"NewImage": dict(new_image if new_image is not None else keys) if has_new else None,
              "OldImage": dict(old_image if old_image is not None else keys) if has_old else None}
    for label, image in (("new_image", images["NewImage"]), ("old_image", images["OldImage"])):
        if image is not None:
            check_dynamodb_item(label, image)
            wrong = [k for k in keys if image.get(k) != keys[k]]
            _require(not wrong, f"{label} must carry the key attributes with the same values as keys; differs on {wrong}")
    stream: JSON = {
        # Stream records carry whole seconds.
        "ApproximateCreationDateTime": float(int(_now(time).timestamp())),
        "Keys": dict(keys),
    }
    if view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") and images["NewImage"] is not None:
        stream["NewImage"] = images["NewImage"]
    if view_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") and images["OldImage"] is not None:
        stream["OldImage"] = images["OldImage"]
    stream["SequenceNumber"] = str(next(_sequence_numbers))
    stream["SizeBytes"] = sum(item_size(stream[part]) for part in ("Keys", "NewImage", "OldImage") if part in stream)
    stream["StreamViewType"] = view_type
    return {
        "eventID": uuid.uuid4().hex,
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": stream,
        "eventSourceARN": f"arn:aws:dynamodb:{region}:{account}:table/{table}/stream/{_STREAM_LABEL}",
    }


def dynamodb_event(table: str, event_name: str = "INSERT", *, keys: Mapping[str, Any],
                   new_image: Mapping[str, Any] | None = None, old_image: Mapping[str, Any] | None = None,
                   view_type: str = "NEW_AND_OLD_IMAGES", region: str = REGION, account: str = ACCOUNT_ID) -> JSON:
    """A one-record stream batch; wrap several `dynamodb_record`s in {"Records": [...]} for more."""
    return {"Records": [dynamodb_record(table, event_name, keys=keys, new_image=new_image, old_image=old_image,
                                        view_type=view_type, region=region, account=account)]}


# --- EventBridge --------------------------------------------------------------------------------


def eventbridge_event(source: str = "com.example.app", detail_type: str = "ExampleEvent",
                      detail: Mapping[str, Any] | None = None, *, resources: Sequence[str] = (),
                      region: str = REGION, account: str = ACCOUNT_ID, time: datetime | None = None,
                      replay_name: str | None = None) -> JSON:
    """An event as an EventBridge rule delivers it (`replay-name` only on replayed events)."""
    _require(isinstance(source, str) and 0 < len(source) <= 256, f"source {source!r} must be 1-256 characters")
    _require(isinstance(detail_type, str) and 0 < len(detail_type) <= 128,
             f"detail_type {detail_type!r} must be 1-128 characters")
    detail = {} if detail is None else detail
    _require(isinstance(detail, Mapping), f"detail must be a JSON object (dict), got {type(detail).__name__}")
    _json_text(dict(detail), "detail")
    _require(not isinstance(resources, str) and all(isinstance(r, str) for r in resources),
             f"resources must be a list of ARNs, got {resources!r}")
    _check_region(region)
    _check_account(account)
    event: JSON = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": _iso_seconds(_now(time)),
        "region": region,
        "resources": list(resources),
        "detail": dict(detail),
    }
    if replay_name is not None:
        _require(isinstance(replay_name, str) and replay_name != "", "replay_name must be a non-empty string")
        event["replay-name"] = replay_name
    return event


def schedule_event(rule: str = "my-schedule", *, region: str = REGION, account: str = ACCOUNT_ID,
                   time: datetime | None = None) -> JSON:
    """What a schedule rule (rate/cron, default bus) sends: source aws.events, the rule ARN, detail {}."""
    _require(isinstance(rule, str) and bool(_RULE.match(rule)), f"rule {rule!r} must be 1-64 letters, digits, '.', '-' or '_'")
    return eventbridge_event("aws.events", "Scheduled Event", {}, region=region, account=account, time=time,
                             resources=[f"arn:aws:events:{region}:{account}:rule/{rule}"])


# --- API Gateway --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    """An HTTP request checked once and shared by the 1.0 and 2.0 payload builders."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    query: list[tuple[str, str]]
    raw_query: str
    body: str | None
    base64_encoded: bool
    when: datetime


def _request(method: str, path: str, body: Any, headers: Any, query: Any, domain: str) -> _Request:
    _require(isinstance(method, str) and method.upper() in HTTP_METHODS,
             f"method {method!r} is not one of {', '.join(HTTP_METHODS)}")
    _require(isinstance(path, str) and path.startswith("/") and "?" not in path,
             f"path {path!r} must start with '/' (pass the query string as query)")
    given = _pairs(headers, "headers")
    names = {k.lower() for k, _ in given}
    when = datetime.now(timezone.utc)
    defaults = [("Accept", "*/*"), ("Host", domain), ("User-Agent", "lambdalab"),
                ("X-Amzn-Trace-Id", _trace_header(when)), ("X-Forwarded-For", "127.0.0.1"),
                ("X-Forwarded-Port", "443"), ("X-Forwarded-Proto", "https")]
    text, encoded = None, False
    if body is not None:
        if isinstance(body, (bytes, bytearray)):
            text, encoded = base64.b64encode(bytes(body)).decode(), True
            defaults.append(("Content-Type", "application/octet-stream"))
        else:
            text = _json_text(body, "body")
            defaults.append(("Content-Type", "text/plain" if isinstance(body, str) else "application/json"))
    merged = [(k, v) for k, v in defaults if k.lower() not in names] + given
    pairs = _pairs(query, "query")
    return _Request(method=method.upper(), path=path, headers=merged, query=pairs,
                    raw_query=query.lstrip("?") if isinstance(query, str) else urlencode(pairs),
                    body=text, base64_encoded=encoded, when=when)


def _path_parameters(template: str, path: str) -> dict[str, str]:
    """Match a resource or route template (`/items/{id}`, `/{proxy+}`) against a path."""
    _require(isinstance(template, str) and template.startswith("/"), f"template {template!r} must start with '/'")
    want, have = template.strip("/").split("/"), path.strip("/").split("/")
    params: dict[str, str] = {}
    for i, part in enumerate(want):
        if part.startswith("{") and part.endswith("+}"):
            _require(i < len(have) and have[i] != "", f"path {path!r} does not match {template!r}")
            params[part[1:-2]] = "/".join(have[i:])
            return params
        _require(i < len(have), f"path {path!r} does not match {template!r}")
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = have[i]
        else:
            _require(part == have[i], f"path {path!r} does not match {template!r}")
    _require(len(want) == len(have), f"path {path!r} does not match {template!r}")
    return params


def _api_ids(region: str, account: str) -> tuple[str, str]:
    _check_region(region)
    _check_account(account)
    api_id = _random_text(10, string.ascii_lowercase + string.digits)
    return api_id, f"{api_id}.execute-api.{region}.amazonaws.com"


def apigateway_v1_event(method: str = "GET", path: str = "/", *, body: Any = None, headers: Any = None,
                        query: Any = None, resource: str | None = None, stage: str = "prod",
                        region: str = REGION, account: str = ACCOUNT_ID) -> JSON:
    """A REST API proxy-integration request (payload 1.0). `resource` is the route template, e.g.
    '/items/{id}', from which `pathParameters` are read; AWS sends null where there is nothing."""
    api_id, domain = _api_ids(region, account)
    req = _request(method, path, body, headers, query, domain)
    resource = resource or path
    params = _path_parameters(resource, path)
    header_values = _grouped(req.headers)
    query_values = _grouped(req.query)
    user_agent = next((v[-1] for k, v in header_values.items() if k.lower() == "user-agent"), "lambdalab")
    identity = dict.fromkeys(("accessKey", "accountId", "caller", "cognitoAuthenticationProvider",
                              "cognitoAuthenticationType", "cognitoIdentityId", "cognitoIdentityPoolId",
                              "principalOrgId"))
    identity.update({"sourceIp": "127.0.0.1", "user": None, "userAgent": user_agent, "userArn": None,
                     "clientCert": None})
    return {
        "version": "1.0",
        "resource": resource,
        "path": path,
        "httpMethod": req.method,
        "headers": {k: v[-1] for k, v in header_values.items()},
        "multiValueHeaders": header_values,
        "queryStringParameters": {k: v[-1] for k, v in query_values.items()} or None,
        "multiValueQueryStringParameters": query_values or None,
        "requestContext": {
            "accountId": account,
            "apiId": api_id,
            "authorizer": {"claims": None, "scopes": None},
            "domainName": domain,
            "domainPrefix": api_id,
            "extendedRequestId": _short_request_id(),
            "httpMethod": req.method,
            "identity": identity,
            "path": f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": _clf_time(req.when),
            "requestTimeEpoch": _epoch_ms(req.when),
            "resourceId": _random_text(6, string.ascii_lowercase + string.digits),
            "resourcePath": resource,
            "stage": stage,
        },
        "pathParameters": params or None,
        "stageVariables": None,
        "body": req.body,
        "isBase64Encoded": req.base64_encoded,
    }


def apigateway_v2_event(method: str = "GET", path: str = "/", *, body: Any = None, headers: Any = None,
                        query: Any = None, cookies: Sequence[str] | None = None, route: str | None = None,
                        stage: str = "$default", region: str = REGION, account: str = ACCOUNT_ID) -> JSON:
    """An HTTP API / function URL request (payload 2.0): header names lower-cased, repeated values
    comma-joined, cookies split out of the Cookie header, empty parts left out as AWS does."""
    api_id, domain = _api_ids(region, account)
    req = _request(method, path, body, headers, query, domain)
    _require(cookies is None or (not isinstance(cookies, str) and all(isinstance(c, str) for c in cookies)),
             f"cookies must be a list of 'name=value' strings, got {cookies!r}")
    jar = list(cookies or [])
    header_values: dict[str, list[str]] = {}
    for name, value in req.headers:
        if name.lower() == "cookie":
            jar += [c.strip() for c in value.split(";") if c.strip()]
        else:
            header_values.setdefault(name.lower(), []).append(value)
    route_key = "$default" if route is None else f"{req.method} {route}"
    params = _path_parameters(route, path) if route is not None else {}
    event: JSON = {"version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": req.raw_query}
    if jar:
        event["cookies"] = jar
    event["headers"] = {k: ",".join(v) for k, v in header_values.items()}
    if req.query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in _grouped(req.query).items()}
    event["requestContext"] = {
        "accountId": account,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": api_id,
        "http": {"method": req.method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                 "userAgent": header_values.get("user-agent", ["lambdalab"])[-1]},
        "requestId": _short_request_id(),
        "routeKey": route_key,
        "stage": stage,
        "time": _clf_time(req.when),
        "timeEpoch": _epoch_ms(req.when),
    }
    if req.body is not None:
        event["body"] = req.body
    if params:
        event["pathParameters"] = params
    event["isBase64Encoded"] = req.base64_encoded
    return event


# --- the contract with shared/aws-events --------------------------------------------------------


@dataclass(frozen=True)
class ContractExceptions:
    """Where an event may differ from its sample, because AWS itself varies the shape there.

    Paths look like `Records[].dynamodb.Keys` (`[]` = every element of a list)."""

    sample: str  # file name in shared/aws-events
    open: frozenset[str] = frozenset()  # maps whose keys are data (headers, detail, item attributes)
    nullable: frozenset[str] = frozenset()  # AWS sends null when there is nothing to send
    optional: frozenset[str] = frozenset()  # AWS leaves the key out when there is nothing to send


_EVENTBRIDGE = ContractExceptions(
    "eventbridge.json", open=frozenset({"detail", "resources"}),
    optional=frozenset({"replay-name"}))  # only on events replayed from an archive
CONTRACT_EXCEPTIONS: dict[str, ContractExceptions] = {
    "s3-put": ContractExceptions("s3-put.json"),
    "sqs": ContractExceptions("sqs.json", open=frozenset({"Records[].messageAttributes"})),
    "dynamodb": ContractExceptions(
        "dynamodb-stream.json",
        open=frozenset({"Records[].dynamodb.Keys", "Records[].dynamodb.NewImage", "Records[].dynamodb.OldImage"}),
        # REMOVE records and the KEYS_ONLY / OLD_IMAGE views carry no new image.
        optional=frozenset({"Records[].dynamodb.NewImage"})),
    "eventbridge": _EVENTBRIDGE,
    "schedule": _EVENTBRIDGE,
    "apigateway-v1": ContractExceptions(
        "apigateway-rest-v1.json",
        open=frozenset({"headers", "multiValueHeaders", "queryStringParameters", "multiValueQueryStringParameters"}),
        nullable=frozenset({"queryStringParameters", "multiValueQueryStringParameters", "body",
                            "requestContext.identity.clientCert"})),
    "apigateway-v2": ContractExceptions(
        "apigateway-http-v2.json",
        open=frozenset({"headers", "queryStringParameters", "pathParameters", "stageVariables"}),
        # authentication: mutual TLS only; authorizer: only when the route has one.
        optional=frozenset({"cookies", "queryStringParameters", "pathParameters", "stageVariables", "body",
                            "requestContext.authentication", "requestContext.authorizer"})),
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__  # not JSON at all: never equal to a sample's type


def contract_problems(source: str, event: Any, sample: Any) -> list[str]:
    """Every way `event` breaks the contract of `sample` (the parsed file named in
    CONTRACT_EXCEPTIONS[source].sample): a missing key or a different JSON type, recursively,
    each list element checked against the sample's first. Empty list = conforms."""
    rules = CONTRACT_EXCEPTIONS[_check_source(source)]
    problems: list[str] = []
    _compare(event, sample, "", rules, problems)
    return problems


def _compare(value: Any, sample: Any, path: str, rules: ContractExceptions, problems: list[str]) -> None:
    where = path or "<event>"
    if sample is None:  # the sample shows the field is nullable but not its type
        return
    if value is None and path in rules.nullable:
        return
    if _json_type(value) != _json_type(sample):
        problems.append(f"{where}: expected {_json_type(sample)}, got {_json_type(value)}")
        return
    if isinstance(sample, dict):
        if path in rules.open:
            return
        for key, expected in sample.items():
            child = f"{path}.{key}" if path else key
            if key in value:
                _compare(value[key], expected, child, rules, problems)
            elif child not in rules.optional:
                problems.append(f"{child}: missing")
    elif isinstance(sample, list) and sample:
        if not value and path not in rules.open:
            problems.append(f"{where}: empty, the sample has elements")
        for element in value:
            _compare(element, sample[0], f"{path}[]", rules, problems)


# --- generate() ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    build: Callable[..., JSON]
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def options(self) -> tuple[str, ...]:
        return tuple(inspect.signature(self.build).parameters)


_SOURCES: dict[str, _Source] = {
    "s3-put": _Source(s3_put_event, {"bucket": "example-bucket", "key": "test/key"}),
    "sqs": _Source(_sqs_from_options),
    "dynamodb": _Source(dynamodb_event, {"table": "my-table", "keys": {"Id": {"N": "101"}}}),
    "eventbridge": _Source(eventbridge_event),
    "schedule": _Source(schedule_event),
    "apigateway-v1": _Source(apigateway_v1_event),
    "apigateway-v2": _Source(apigateway_v2_event),
}
SOURCES: tuple[str, ...] = tuple(_SOURCES)


def _check_source(source: str) -> str:
    _require(source in _SOURCES, f"unknown event source {source!r}; valid sources: {', '.join(SOURCES)}")
    return source


def options(source: str) -> tuple[str, ...]:
    """The keyword options `generate(source, ...)` accepts."""
    return _SOURCES[_check_source(source)].options()


def generate(source: str, /, **options_: Any) -> JSON:
    """A fresh event for `source` (one of SOURCES); options are the source builder's parameters."""
    spec = _SOURCES[_check_source(source)]
    valid = spec.options()
    unknown = sorted(set(options_) - set(valid))
    _require(not unknown, f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                          f"for event source {source!r}; valid options: {', '.join(valid)}")
    return spec.build(**{**spec.defaults, **options_})
