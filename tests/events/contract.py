"""The contract between generated events and AWS's sample events in tests/fixtures/aws-events
(copies of shared/aws-events): `contract_problems` lists every way an event breaks its sample's
shape, with a short, reasoned list of places (`CONTRACT_EXCEPTIONS`) where AWS itself varies it.

Test code only: tests in tests/events import it directly (pytest puts their folder on sys.path);
tests elsewhere get that folder from their conftest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# copies of shared/aws-events, so a learner's clone has them
SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "aws-events"


@dataclass(frozen=True)
class ContractExceptions:
    """Where an event may differ from its sample, because AWS itself varies the shape there.

    Paths look like `Records[].dynamodb.Keys` (`[]` = every element of a list)."""

    sample: str  # file name in shared/aws-events
    open: frozenset[str] = frozenset()  # maps whose keys are data (headers, detail, item attributes)
    nullable: frozenset[str] = frozenset()  # AWS sends null when there is nothing to send
    optional: frozenset[str] = frozenset()  # AWS leaves the key out when there is nothing to send


_EVENTBRIDGE = ContractExceptions(
    "eventbridge.json", open=frozenset({"detail", "resources"}),
    optional=frozenset({"replay-name"}))  # only on events replayed from an archive
CONTRACT_EXCEPTIONS: dict[str, ContractExceptions] = {
    "s3-put": ContractExceptions("s3-put.json"),
    "sqs": ContractExceptions("sqs.json", open=frozenset({"Records[].messageAttributes"})),
    "dynamodb": ContractExceptions(
        "dynamodb-stream.json",
        open=frozenset({"Records[].dynamodb.Keys", "Records[].dynamodb.NewImage", "Records[].dynamodb.OldImage"}),
        # REMOVE records and the KEYS_ONLY / OLD_IMAGE views carry no new image.
        optional=frozenset({"Records[].dynamodb.NewImage"})),
    "eventbridge": _EVENTBRIDGE,
    "schedule": _EVENTBRIDGE,
    "apigateway-v1": ContractExceptions(
        "apigateway-rest-v1.json",
        open=frozenset({"headers", "multiValueHeaders", "queryStringParameters", "multiValueQueryStringParameters"}),
        nullable=frozenset({"queryStringParameters", "multiValueQueryStringParameters", "body",
                            "requestContext.identity.clientCert"})),
    "apigateway-v2": ContractExceptions(
        "apigateway-http-v2.json",
        open=frozenset({"headers", "queryStringParameters", "pathParameters", "stageVariables"}),
        # authentication: mutual TLS only; authorizer: only when the route has one.
        optional=frozenset({"cookies", "queryStringParameters", "pathParameters", "stageVariables", "body",
                            "requestContext.authentication", "requestContext.authorizer"})),
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__  # not JSON at all: never equal to a sample's type


def contract_problems(source: str, event: Any, sample: Any) -> list[str]:
    """Every way `event` breaks the contract of `sample` (the parsed file named in
    CONTRACT_EXCEPTIONS[source].sample): a missing key or a different JSON type, recursively,
    each list element checked against the sample's first. Empty list = conforms."""
    rules = CONTRACT_EXCEPTIONS[source]
    problems: list[str] = []
    _compare(event, sample, "", rules, problems)
    return problems


def _compare(value: Any, sample: Any, path: str, rules: ContractExceptions, problems: list[str]) -> None:
    where = path or "<event>"
    if sample is None:  # the sample shows the field is nullable but not its type
        return
    if value is None and path in rules.nullable:
        return
    if _json_type(value) != _json_type(sample):
        problems.append(f"{where}: expected {_json_type(sample)}, got {_json_type(value)}")
        return
    if isinstance(sample, dict):
        if path in rules.open:
            return
        for key, expected in sample.items():
            child = f"{path}.{key}" if path else key
            if key in value:
                _compare(value[key], expected, child, rules, problems)
            elif child not in rules.optional:
                problems.append(f"{child}: missing")
    elif isinstance(sample, list) and sample:
        if not value and path not in rules.open:
            problems.append(f"{where}: empty, the sample has elements")
        for element in value:
            _compare(element, sample[0], f"{path}[]", rules, problems)


def sample(source: str) -> Any:
    """The parsed AWS sample event whose contract events for `source` keep."""
    return json.loads((SAMPLES / CONTRACT_EXCEPTIONS[source].sample).read_text())
