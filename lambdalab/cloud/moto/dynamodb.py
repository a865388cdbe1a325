"""moto's DynamoDB (`moto.dynamodb`) for the local cloud: atomic item writes, and what Lambda's
DynamoDB Streams poller reads.

DynamoDB applies each write to an item atomically (an `ADD` counter never loses an increment),
while moto reads, computes and stores an update with no lock, and its threaded server runs
concurrent requests at once; `install` serialises moto's writes so they are atomic again.
moto's tables push stream records to mapped functions
synchronously, so `detach_mapping` takes a new event source mapping off its table (remembering
where in the stream it starts), and `lambdalab.cloud.pollers` reads the stream instead, with
`stream_cursor` and `lambda_record` (the record Lambda hands a function for a moto stream item).
"""

from __future__ import annotations

import functools
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lambdalab._util.timefmt import as_utc
from lambdalab.events.dynamodb import stream_record

if TYPE_CHECKING:
    from lambdalab.cloud.moto import Patches

# Every write moto's DynamoDB can make: one lock for all, as a transaction spans tables.
WRITES = ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items",
          "execute_statement", "batch_execute_statement", "execute_transaction")
_writes = threading.RLock()


def install(patches: "Patches") -> None:
    from moto.dynamodb.models import DynamoDBBackend

    def atomic(write: Any) -> Any:
        @functools.wraps(write)
        def serialised(*args: Any, **kwargs: Any) -> Any:
            with _writes:
                return write(*args, **kwargs)
        return serialised

    for name in WRITES:
        patches.replace(DynamoDBBackend, name, atomic)


def backend(account_id: str, region: str) -> Any:
    from moto.dynamodb.models import dynamodb_backends
    return dynamodb_backends[account_id][region]


def detach_mapping(account_id: str, region: str, esm: Any) -> None:
    """Take an event source mapping out of moto's synchronous push from its table's stream."""
    for table in backend(account_id, region).tables.values():
        for key, value in list(table.lambda_event_source_mappings.items()):
            if value is esm:
                del table.lambda_event_source_mappings[key]
                shard = table.stream_shard
                esm.lambdalab_cursor = (shard, len(shard.items) if shard is not None and
                                        esm.starting_position == "LATEST" else 0)


def stream_cursor(account_id: str, region: str, esm: Any) -> tuple[Any, int]:
    """The stream shard a mapping reads and how far it has got (a re-created stream restarts)."""
    for table in backend(account_id, region).tables.values():
        if table.stream_shard is not None and table.latest_stream_label and \
                f"{table.table_arn}/stream/{table.latest_stream_label}" == esm.event_source_arn:
            shard, cursor = getattr(esm, "lambdalab_cursor", (None, 0))
            if shard is not table.stream_shard:
                cursor = 0
                esm.lambdalab_cursor = (table.stream_shard, 0)
            return table.stream_shard, cursor
    return None, 0


def lambda_record(item: Any, source_arn: str, region: str) -> dict[str, Any]:
    """One moto stream item as Lambda's DynamoDB poller hands it to a function."""
    record = item.to_json()
    stream = record["dynamodb"]
    created = stream.get("ApproximateCreationDateTime")
    # moto keeps a naive UTC datetime.
    created_s = as_utc(created).timestamp() if isinstance(created, datetime) else float(created or 0)
    return stream_record(
        event_id=record["eventID"], event_name=record["eventName"], region=region, source_arn=source_arn,
        created_s=created_s, keys=stream["Keys"], new_image=stream.get("NewImage"),
        old_image=stream.get("OldImage"), sequence_number=stream["SequenceNumber"],
        view_type=stream["StreamViewType"])
