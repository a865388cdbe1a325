"""Target retry policies and dead-letter queues, shared by EventBridge rules and Scheduler.

Both services take a target's `RetryPolicy` (`MaximumRetryAttempts` 0-185,
`MaximumEventAgeInSeconds` 60-86400; defaults 185 attempts and 24 hours) and its
`DeadLetterConfig` (a standard SQS queue). `with_retries` runs one delivery under a policy: errors
marked retriable (throttling) are tried again until either limit is reached, others (no such
function, no permission) go to the dead-letter queue at once, as both services document.

The local cloud does not wait between attempts: it counts the time a nominal exponential
backoff (1 s, doubling, capped at 5 minutes) would have spent, so `MaximumEventAgeInSeconds`
ends the retries at the attempt AWS would reach, without a test or a lesson waiting for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 185
DEFAULT_AGE_S = 86_400
_FIRST_BACKOFF_S = 1.0
_MAX_BACKOFF_S = 300.0


class TargetError(Exception):
    """A target the service could not deliver to: `code` is what it reports, `retriable` whether
    it tries again (throttling) or gives up at once (a missing function, a missing permission)."""

    def __init__(self, code: str, message: str, *, retriable: bool = False):
        super().__init__(message)
        self.code = code
        self.retriable = retriable


@dataclass(frozen=True)
class RetryPolicy:
    """A target's RetryPolicy, with the service's defaults for what it leaves out."""

    maximum_retry_attempts: int = DEFAULT_ATTEMPTS
    maximum_event_age_s: int = DEFAULT_AGE_S

    @classmethod
    def of(cls, target: dict) -> "RetryPolicy":
        given = target.get("RetryPolicy") or {}
        return cls(int(given.get("MaximumRetryAttempts", DEFAULT_ATTEMPTS)),
                   int(given.get("MaximumEventAgeInSeconds", DEFAULT_AGE_S)))


def backoff_s(retry: int) -> float:
    """The nominal wait before retry number `retry` (1-based)."""
    return min(_FIRST_BACKOFF_S * 2 ** (retry - 1), _MAX_BACKOFF_S)


@dataclass
class Attempts:
    """What happened to one event at one target: each attempt's error, and the outcome."""

    attempts: int = 0
    errors: list[TargetError] = field(default_factory=list)
    result: Any = None
    delivered: bool = False
    exhausted: str | None = None  # MaximumRetryAttempts or MaximumEventAgeInSeconds, when retries ran out

    @property
    def last_error(self) -> TargetError | None:
        return self.errors[-1] if self.errors else None


def with_retries(send: Callable[[int], Any], policy: RetryPolicy) -> Attempts:
    """Call `send(attempt_number)` until it returns, a non-retriable `TargetError`, or the policy ends it."""
    made = Attempts()
    age = 0.0
    while True:
        made.attempts += 1
        try:
            made.result = send(made.attempts)
            made.delivered = True
            return made
        except TargetError as e:
            made.errors.append(e)
            if not e.retriable:
                return made
        retries = made.attempts - 1
        if retries >= policy.maximum_retry_attempts:
            made.exhausted = "MaximumRetryAttempts"
            return made
        age += backoff_s(retries + 1)
        if age > policy.maximum_event_age_s:
            made.exhausted = "MaximumEventAgeInSeconds"
            return made


def dead_letter_queue(target: dict) -> str | None:
    """The ARN in a target's DeadLetterConfig, if it has one."""
    return (target.get("DeadLetterConfig") or {}).get("Arn") or None


def send_to_dead_letter_queue(queue_arn: str, body: str, attributes: dict[str, str]) -> bool:
    """Put an undelivered event on an SQS dead-letter queue with string message attributes.

    False when the queue refuses it (deleted, or not a queue): the event is lost, as on AWS."""
    from moto.sqs.models import sqs_backends

    try:
        _, _, _, region, account, queue = queue_arn.split(":", 5)
        sqs_backends[account][region].send_message(
            queue, body,
            message_attributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()})
        return True
    except Exception as e:
        log.warning("dead-letter queue %s refused an event: %s", queue_arn, e)
        return False
