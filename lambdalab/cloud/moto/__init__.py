"""Every patch the local cloud applies to moto, one module per patched moto service.

moto runs Lambda functions only in Docker, drops S3 notifications to Lambda without it, calls
every trigger synchronously inside the request that caused it, sends each SQS message alone and
never redelivers, runs Step Functions executions only when asked and then calls a fixed
address with keys IAM refuses, leaves no room for the trace header that carries Lambda's loop count, and
speaks an incomplete EventBridge pattern language. The modules here (named after moto's own
packages: `awslambda`, `s3`, `sns`, `sqs`, `dynamodb`, `events`, `apigateway`, `apigatewayv2`,
`scheduler`, `iam`,
`budgets`, `stepfunctions`, `cloudwatch`)
replace those places while a
`LocalCloud` (or an `EventBridgeDelivery`) is open and put moto's own code back when it closes.

One mechanism serves them all: a `Patches` set records each replaced attribute and `remove()`
restores them, last first; `original(owner, name)` is moto's own definition while patched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lambdalab.cloud.http_endpoints import HttpEndpoints
    from lambdalab.cloud.lambda_service import LambdaService

_lock = threading.RLock()
_ABSENT = object()  # what `Patches.add` records: the attribute did not exist before
_originals: dict[tuple[int, str], Any] = {}  # (id(owner), name) -> moto's definition, while patched


def _definition(owner: Any, name: str) -> Any:
    # A class's own __dict__ entry keeps a staticmethod or function as defined, not bound.
    return owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)


class Patches:
    """Attributes replaced on moto's classes and modules; `remove()` puts the previous ones back."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def replace(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        """Set `owner.name` to `make(previous)`, where `previous` is what it was."""
        with _lock:
            previous = _definition(owner, name)
            _originals.setdefault((id(owner), name), previous)
            self._saved.append((owner, name, previous))
            setattr(owner, name, make(previous))

    def add(self, owner: Any, name: str, value: Any) -> None:
        """Give `owner` an attribute moto does not define; `remove()` deletes it again."""
        with _lock:
            if name in vars(owner):
                raise AttributeError(f"{owner!r} already defines {name}; replace it instead")
            self._saved.append((owner, name, _ABSENT))
            setattr(owner, name, value)

    def remove(self) -> None:
        with _lock:
            while self._saved:
                owner, name, previous = self._saved.pop()
                if previous is _ABSENT:
                    delattr(owner, name)
                    continue
                setattr(owner, name, previous)
                if _originals.get((id(owner), name)) is previous:
                    del _originals[(id(owner), name)]


def every_backend(backends: Any) -> Iterator[Any]:
    """Each backend of a moto service, in every account and region it has made one for; copied
    first, since requests being served may add more meanwhile."""
    for account_id in list(backends.keys()):
        yield from list(backends[account_id].values())


def original(owner: Any, name: str) -> Any:
    """moto's own definition of `owner.name`, whether or not it is patched now."""
    with _lock:
        return _originals.get((id(owner), name), _definition(owner, name))


def install(service: "LambdaService", endpoints: "HttpEndpoints | None" = None) -> Patches:
    """Route moto's Lambda service, triggers and event source mappings to `service`; with
    `endpoints`, serve moto's HTTP APIs, REST APIs and function URLs there; check Scheduler's expressions;
    run Step Functions executions, their tasks calling the cloud at `service.endpoint`."""
    from lambdalab.cloud.moto import (
        apigateway,
        apigatewayv2,
        awslambda,
        budgets,
        cloudwatch,
        dynamodb,
        iam,
        s3,
        scheduler,
        sns,
        sqs,
        stepfunctions,
    )

    patches = Patches()
    try:
        for module in (awslambda, s3, sns, sqs):
            module.install(patches, service)
        scheduler.install(patches)
        budgets.install(patches)
        dynamodb.install(patches)
        iam.install(patches)
        stepfunctions.install(patches, service)
        cloudwatch.install(patches)
        if endpoints is not None:
            apigateway.install(patches, endpoints)
            apigatewayv2.install(patches, endpoints)
            awslambda.install_function_urls(patches, endpoints)
    except BaseException:
        patches.remove()
        raise
    return patches
