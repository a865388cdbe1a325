"""DynamoDB Streams records as Lambda's stream poller hands them over, and the `dynamodb` sample event.

This module owns the record's shape (see shared/aws-events/dynamodb-stream.json): `stream_record`
builds it from a change's values (the local cloud passes those of moto's stream items),
`dynamodb_record` and `dynamodb_event` from options, checking the DynamoDB JSON they are given.
It also owns DynamoDB's item-size arithmetic, which `SizeBytes` reports.
"""

from __future__ import annotations

import base64
import math
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from lambdalab._util.timefmt import utc_now
from lambdalab.events._checks import JSON, check_account, check_region, event_time, next_sequence_number, require
from lambdalab.runtime.config import ACCOUNT_ID, REGION

DYNAMODB_EVENT_NAMES = ("INSERT", "MODIFY", "REMOVE")
STREAM_VIEW_TYPES = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")
_DYNAMODB_TYPES = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
# A table's stream ARN ends in the stream's creation time; one label per process keeps ARNs stable.
_STREAM_LABEL = utc_now().strftime("%Y-%m-%dT%H:%M:%S.") + "000"


def _check_attribute_value(path: str, value: Any) -> None:
    require(isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in _DYNAMODB_TYPES,
             f"{path} must be a DynamoDB JSON value with one type key ({', '.join(_DYNAMODB_TYPES)}), got {value!r}")
    kind, inner = next(iter(value.items()))
    if kind in ("S", "B"):
        require(isinstance(inner, str), f"{path}.{kind} must be a string")
    elif kind == "N":
        require(isinstance(inner, str) and _is_decimal(inner), f"{path}.N must be a number as a string, got {inner!r}")
    elif kind in ("SS", "NS", "BS"):
        require(isinstance(inner, list) and inner and all(isinstance(v, str) for v in inner)
                 and len(set(inner)) == len(inner), f"{path}.{kind} must be a non-empty list of distinct strings")
        require(kind != "NS" or all(_is_decimal(v) for v in inner), f"{path}.NS must hold numbers as strings")
    elif kind == "M":
        check_dynamodb_item(path, inner)
    elif kind == "L":
        require(isinstance(inner, list), f"{path}.L must be a list")
        for i, element in enumerate(inner):
            _check_attribute_value(f"{path}.L[{i}]", element)
    elif kind == "NULL":
        require(inner is True, f"{path}.NULL must be true")
    else:
        require(isinstance(inner, bool), f"{path}.BOOL must be true or false")


def _is_decimal(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


def check_dynamodb_item(name: str, item: Any) -> None:
    """Raise ValueError naming the attribute when `item` is not DynamoDB JSON (`{"Id": {"N": "1"}}`)."""
    require(isinstance(item, Mapping), f"{name} must be a dict of attribute name -> DynamoDB JSON value, got {item!r}")
    for attribute, value in item.items():
        require(isinstance(attribute, str) and attribute != "", f"{name}: attribute names must be non-empty strings")
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


def stream_record(*, event_id: str, event_name: str, region: str, source_arn: str, created_s: float,
                  keys: Mapping[str, Any], new_image: Mapping[str, Any] | None, old_image: Mapping[str, Any] | None,
                  sequence_number: str, view_type: str) -> JSON:
    """One change in Lambda's shape; the images are those the stream's view type keeps."""
    stream: JSON = {
        # Stream records carry whole seconds.
        "ApproximateCreationDateTime": float(int(created_s)),
        "Keys": dict(keys),
    }
    if new_image is not None:
        stream["NewImage"] = dict(new_image)
    if old_image is not None:
        stream["OldImage"] = dict(old_image)
    stream["SequenceNumber"] = sequence_number
    stream["SizeBytes"] = sum(item_size(stream[part]) for part in ("Keys", "NewImage", "OldImage") if part in stream)
    stream["StreamViewType"] = view_type
    return {
        "eventID": event_id,
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": stream,
        "eventSourceARN": source_arn,
    }


def dynamodb_record(table: str, event_name: str = "INSERT", *, keys: Mapping[str, Any],
                    new_image: Mapping[str, Any] | None = None, old_image: Mapping[str, Any] | None = None,
                    view_type: str = "NEW_AND_OLD_IMAGES", region: str = REGION, account: str = ACCOUNT_ID,
                    time: datetime | None = None) -> JSON:
    """One stream record. Images default to the keys alone; the view type decides which are sent."""
    require(isinstance(table, str) and bool(_TABLE.match(table)),
            f"table {table!r} must be 3-255 letters, digits, '_', '-' or '.'")
    require(event_name in DYNAMODB_EVENT_NAMES,
            f"event_name {event_name!r} is not one of {', '.join(DYNAMODB_EVENT_NAMES)}")
    require(view_type in STREAM_VIEW_TYPES, f"view_type {view_type!r} is not one of {', '.join(STREAM_VIEW_TYPES)}")
    check_region(region)
    check_account(account)
    check_dynamodb_item("keys", keys)
    require(len(keys) in (1, 2),
            f"keys must hold the partition key and optionally the sort key, got {len(keys)} attributes")
    require(event_name != "INSERT" or old_image is None, "an INSERT has no old image; drop old_image")
    require(event_name != "REMOVE" or new_image is None, "a REMOVE has no new image; drop new_image")
    has_new, has_old = event_name != "REMOVE", event_name != "INSERT"
    new = dict(new_image if new_image is not None else keys) if has_new else None
    old = dict(old_image if old_image is not None else keys) if has_old else None
    for label, image in (("new_image", new), ("old_image", old)):
        if image is not None:
            check_dynamodb_item(label, image)
            wrong = [k for k in keys if image.get(k) != keys[k]]
            require(not wrong,
                    f"{label} must carry the key attributes with the same values as keys; differs on {wrong}")
    return stream_record(
        event_id=uuid.uuid4().hex, event_name=event_name, region=region,
        source_arn=f"arn:aws:dynamodb:{region}:{account}:table/{table}/stream/{_STREAM_LABEL}",
        created_s=event_time(time).timestamp(), keys=keys,
        new_image=new if view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") else None,
        old_image=old if view_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") else None,
        sequence_number=next_sequence_number(), view_type=view_type)


def dynamodb_event(table: str, event_name: str = "INSERT", *, keys: Mapping[str, Any],
                   new_image: Mapping[str, Any] | None = None, old_image: Mapping[str, Any] | None = None,
                   view_type: str = "NEW_AND_OLD_IMAGES", region: str = REGION, account: str = ACCOUNT_ID) -> JSON:
    """A one-record stream batch; wrap several `dynamodb_record`s in {"Records": [...]} for more."""
    return {"Records": [dynamodb_record(table, event_name, keys=keys, new_image=new_image, old_image=old_image,
                                        view_type=view_type, region=region, account=account)]}
