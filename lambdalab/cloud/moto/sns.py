"""Patches to moto's SNS (`moto.sns`): Lambda subscriptions get SNS's event, asynchronously.

moto calls a subscribed function synchronously (through Docker) with a thin event. The patched
`Subscription.publish` applies the subscription's filter policy, then hands the function the
event SNS sends (`lambdalab.events.sns`) as an asynchronous invocation by the `LambdaService`,
carrying the publisher's trace header. Other protocols stay moto's business.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdalab.cloud.lambda_service import LambdaService
from lambdalab.cloud.moto import Patches
from lambdalab.cloud.request_context import current_trace
from lambdalab.events.sns import Notification, sns_event


def install(patches: Patches, service: LambdaService) -> None:
    from moto.sns.models import Subscription

    def publish(original: Callable) -> Callable:
        def call(self: Any, message: str, message_id: str, subject: str | None = None,
                 message_attributes: dict[str, Any] | None = None, group_id: str | None = None,
                 deduplication_id: str | None = None, message_structure: str | None = None) -> None:
            if self.protocol != "lambda":
                return original(self, message, message_id, subject, message_attributes, group_id,
                                deduplication_id, message_structure)
            matcher = self._filter_policy_matcher
            if matcher is not None and not matcher.matches(message_attributes, message):
                return None
            if message_structure == "json":
                message = self._parse_message_structure(message, self.protocol)
            notification = Notification(
                subscription_arn=self.arn, topic_arn=self.topic.arn, region=self.topic.sns_backend.region_name,
                message_id=message_id, message=message, subject=subject, attributes=message_attributes)
            service.deliver(self.endpoint, sns_event(notification), current_trace())
            return None
        return call

    patches.replace(Subscription, "publish", publish)
