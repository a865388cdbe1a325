"""Patches to moto's SQS (`moto.sqs`), and what Lambda's SQS poller reads from it.

A message sent while serving a request that carries a trace header keeps it as the
`AWSTraceHeader` system attribute, as SQS does (Lambda's loop detection follows it). Event source
mappings are served by `lambdalab.cloud.pollers` rather than moto's synchronous push:
`detach_mapping` takes a new mapping off its queue, `find_queue` and `lambda_record` give the
poller the queue and the record Lambda hands a function for each received message.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from lambdalab.cloud.lambda_service import LambdaService
from lambdalab.cloud.moto import Patches
from lambdalab.cloud.request_context import current_trace
from lambdalab.events.sqs import TRACE_ATTRIBUTE, FifoFields, message_attribute, message_record


def install(patches: Patches, service: LambdaService) -> None:
    from moto.sqs.models import SQSBackend

    def send_message(original: Callable) -> Callable:
        def call(self: Any, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
            trace = current_trace()
            system = kwargs.get("system_attributes")
            if trace and not (system or {}).get(TRACE_ATTRIBUTE):
                kwargs["system_attributes"] = {**(system or {}),
                                               TRACE_ATTRIBUTE: {"StringValue": trace, "DataType": "String"}}
            return original(self, queue_name, message_body, *args, **kwargs)
        return call

    patches.replace(SQSBackend, "send_message", send_message)


def backend(account_id: str, region: str) -> Any:
    from moto.sqs.models import sqs_backends
    return sqs_backends[account_id][region]


def find_queue(account_id: str, region: str, arn: str) -> Any:
    """moto's queue with this ARN, or None."""
    for queue in backend(account_id, region).queues.values():
        if queue.queue_arn == arn:
            return queue
    return None


def detach_mapping(account_id: str, region: str, esm: Any) -> None:
    """Take an event source mapping out of moto's synchronous push from its queue."""
    for queue in backend(account_id, region).queues.values():
        for key, value in list(queue.lambda_event_source_mappings.items()):
            if value is esm:
                del queue.lambda_event_source_mappings[key]


def trace_of(message: Any) -> str | None:
    """The trace header a message was sent with, if any."""
    trace = (message.system_attributes or {}).get(TRACE_ATTRIBUTE)
    return trace.get("StringValue") if trace else None


def _attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as moto keeps it (SendMessage's form) in Lambda's form."""
    binary = value.get("BinaryValue")
    return message_attribute(
        value.get("DataType", "String"), string_value=value.get("StringValue"),
        binary_value=base64.b64encode(binary).decode() if isinstance(binary, bytes) else binary,
        string_list=value.get("StringListValues", []), binary_list=value.get("BinaryListValues", []))


def lambda_record(message: Any, queue: Any) -> dict[str, Any]:
    """One received moto message as Lambda's SQS poller hands it to a function."""
    fifo = FifoFields(message.sequence_number, message.group_id, message.deduplication_id) \
        if queue.fifo_queue else None
    return message_record(
        message_id=message.id, receipt_handle=message.receipt_handle, body=message.body,
        queue_arn=queue.queue_arn, region=queue.region, sent_timestamp_ms=message.sent_timestamp,
        first_receive_timestamp_ms=message.approximate_first_receive_timestamp, sender_id=message.sender_id,
        receive_count=message.approximate_receive_count, trace_header=trace_of(message),
        message_attributes={k: _attribute(v) for k, v in (message.message_attributes or {}).items()},
        fifo=fifo)
