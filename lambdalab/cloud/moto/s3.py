"""Patches to moto's S3 (`moto.s3`): full notification events, delivered asynchronously to Lambda.

moto's notification event lacks keys S3 sends (see `lambdalab.events.s3`), and moto drops the
notification to a Lambda function unless Docker runs it. The patched event is S3's record, built
from moto's bucket and key and from the request that caused it (who, from where, which request
id); the Lambda notification becomes an asynchronous invocation by the `LambdaService`; prefix
and suffix filters compare the key as it appears in the event (URL-encoded), as S3 does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdalab.cloud.lambda_service import LambdaService
from lambdalab.cloud.moto import Patches
from lambdalab.cloud.request_context import RequestContext, current, current_trace
from lambdalab.events import s3 as s3events


def notification_event(event_name: str, bucket: Any, key: Any, notification_id: str,
                       requester: s3events.Requester) -> dict[str, Any]:
    """The full event for a moto bucket and key (what `moto.s3.notifications._get_s3_event` returns)."""
    name = event_name[3:] if event_name.startswith("s3:") else event_name
    version_id = getattr(key, "version_id", None) if bucket.is_versioned else None
    record = s3events.s3_record(
        event_name=name, region=bucket.region_name, bucket_name=bucket.name, bucket_arn=bucket.arn,
        owner=s3events.owner_id(bucket.account_id), key=key.name, size=getattr(key, "size", 0),
        etag=getattr(key, "etag", ""), version_id=version_id, configuration_id=notification_id,
        requester=requester)
    return {"Records": [record]}


def install(patches: Patches, service: LambdaService) -> None:
    from moto.s3 import notifications
    from moto.s3.models import Notification

    def get_s3_event(original: Callable) -> Callable:
        def call(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
            ctx = current() or RequestContext(trace_header=None, source_ip="127.0.0.1", access_key=None)
            requester = s3events.Requester(
                principal_id=s3events.principal_id(ctx.access_key, bucket.account_id),
                source_ip=ctx.source_ip, request_id=ctx.request_id, host_id=ctx.host_id)
            return notification_event(event_name, bucket, key, notification_id, requester)
        return call

    def invoke_awslambda(original: Callable) -> Callable:
        def call(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
            service.deliver(fn_arn, event_body, current_trace())
        return call

    def key_matches(original: Callable) -> Callable:
        # S3 compares prefix and suffix filters with the key as it appears in the event
        # (URL-encoded: a space in a filter must be written '+').
        def call(self: Any, key_name: str) -> bool:
            return original(self, s3events.encode_key(key_name))
        return call

    patches.replace(notifications, "_get_s3_event", get_s3_event)
    patches.replace(notifications, "_invoke_awslambda", invoke_awslambda)
    patches.replace(Notification, "_key_matches", key_matches)
