"""Every event shape a Lambda trigger delivers, built as AWS builds it (one module per source).

`generate(source, **options)` makes a fresh sample event for one of `SOURCES`, like
`sam local generate-event` (the `lambdalab events` CLI prints them); `options(source)` names the
options it takes. The per-source modules (`s3`, `sqs`, `dynamodb`, `sns`, `eventbridge`,
`apigateway`) own the shapes, and the local cloud builds the events it delivers with them. This
package knows nothing of moto: the cloud hands it plain values.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdalab.events._checks import JSON, require
from lambdalab.events.apigateway import apigateway_v1_event, apigateway_v2_event
from lambdalab.events.dynamodb import dynamodb_event
from lambdalab.events.eventbridge import eventbridge_event, schedule_event
from lambdalab.events.s3 import s3_put_event
from lambdalab.events.sqs import sqs_from_options


@dataclass(frozen=True)
class _Source:
    build: Callable[..., JSON]
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def options(self) -> tuple[str, ...]:
        return tuple(inspect.signature(self.build).parameters)


_SOURCES: dict[str, _Source] = {
    "s3-put": _Source(s3_put_event, {"bucket": "example-bucket", "key": "test/key"}),
    "sqs": _Source(sqs_from_options),
    "dynamodb": _Source(dynamodb_event, {"table": "my-table", "keys": {"Id": {"N": "101"}}}),
    "eventbridge": _Source(eventbridge_event),
    "schedule": _Source(schedule_event),
    "apigateway-v1": _Source(apigateway_v1_event),
    "apigateway-v2": _Source(apigateway_v2_event),
}
SOURCES: tuple[str, ...] = tuple(_SOURCES)


def _check_source(source: str) -> str:
    require(source in _SOURCES, f"unknown event source {source!r}; valid sources: {', '.join(SOURCES)}")
    return source


def options(source: str) -> tuple[str, ...]:
    """The keyword options `generate(source, ...)` accepts."""
    return _SOURCES[_check_source(source)].options()


def generate(source: str, /, **options_: Any) -> JSON:
    """A fresh event for `source` (one of SOURCES); options are the source builder's parameters."""
    spec = _SOURCES[_check_source(source)]
    valid = spec.options()
    unknown = sorted(set(options_) - set(valid))
    require(not unknown, f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                         f"for event source {source!r}; valid options: {', '.join(valid)}")
    return spec.build(**{**spec.defaults, **options_})
