"""SNS notifications as SNS hands them to a subscribed Lambda function.

This module owns the shape of the SNS event (one record per notification); the local cloud builds
it with `sns_event` from the values of moto's subscription and published message.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lambdalab._util.timefmt import iso_millis
from lambdalab.events._checks import JSON


@dataclass(frozen=True)
class Notification:
    """One message published to a topic, as SNS delivers it to one subscription."""

    subscription_arn: str
    topic_arn: str
    region: str
    message_id: str
    message: str
    subject: str | None = None
    # name -> {"Type": ..., "Value": ...}, as Publish takes them
    attributes: Mapping[str, Mapping[str, Any]] | None = None


def sns_event(notification: Notification, when: datetime | None = None) -> JSON:
    """The event SNS hands a subscribed Lambda function."""
    n = notification
    attributes = {name: {"Type": value.get("Type", "String"), "Value": value.get("Value")}
                  for name, value in (n.attributes or {}).items()}
    endpoint = f"https://sns.{n.region}.amazonaws.com"
    return {"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": n.subscription_arn,
        "Sns": {
            "Type": "Notification",
            "MessageId": n.message_id,
            "TopicArn": n.topic_arn,
            "Subject": n.subject,
            "Message": n.message,
            "Timestamp": iso_millis(when),
            "SignatureVersion": "1",
            # Nothing checks the signature locally; it only has SNS's length and alphabet.
            "Signature": base64.b64encode(uuid.uuid4().bytes * 8).decode(),
            "SigningCertUrl": f"{endpoint}/SimpleNotificationService-local.pem",
            "UnsubscribeUrl": f"{endpoint}/?Action=Unsubscribe&SubscriptionArn={n.subscription_arn}",
            "MessageAttributes": attributes,
        },
    }]}
