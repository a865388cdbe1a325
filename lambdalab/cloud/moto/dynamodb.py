"""What Lambda's DynamoDB Streams poller reads from moto's DynamoDB (`moto.dynamodb`).

Nothing in moto's DynamoDB is replaced; its tables push stream records to mapped functions
synchronously, so `detach_mapping` takes a new event source mapping off its table (remembering
where in the stream it starts), and `lambdalab.cloud.pollers` reads the stream instead, with
`stream_cursor` and `lambda_record` (the record Lambda hands a function for a moto stream item).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lambdalab._util.timefmt import as_utc
from lambdalab.events.dynamodb import stream_record


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
