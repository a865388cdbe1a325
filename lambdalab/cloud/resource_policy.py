"""A Lambda function's resource-based policy, evaluated for the services and URLs that invoke it.

API Gateway invokes a function only when the function's policy allows `apigateway.amazonaws.com`
`lambda:InvokeFunction` (optionally for a `AWS:SourceArn` such as
`arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH`); a function URL with AuthType NONE
needs both `lambda:InvokeFunctionUrl` and `lambda:InvokeFunction` for principal `*`. An explicit
Deny wins over any Allow, as in IAM's evaluation logic.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any


def function_statements(fn: Any) -> list[dict[str, Any]]:
    """The statements of a moto `LambdaFunction`'s resource policy (none when it has no policy)."""
    statements = getattr(getattr(fn, "policy", None), "statements", None) or []
    return [json.loads(s) if isinstance(s, str) else s for s in statements]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def _principal_ok(principal: Any, service: str | None, caller_arn: str | None) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    if service and service in _listed(principal.get("Service", [])):
        return True
    aws = _listed(principal.get("AWS", []))
    if "*" in aws:
        return True
    if caller_arn:
        account = caller_arn.split(":")[4] if caller_arn.count(":") >= 5 else None
        return caller_arn in aws or any(a in (account, f"arn:aws:iam::{account}:root") for a in aws)
    return False


def _conditions_ok(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, tests in (condition or {}).items():
        for key, expected in tests.items():
            actual = context.get(key) or next((v for k, v in context.items() if k.lower() == key.lower()), None)
            if actual is None:
                return False
            wanted = _listed(expected)
            if operator in ("ArnLike", "StringLike"):
                ok = any(_matches(w, actual) for w in wanted)
            elif operator in ("ArnEquals", "StringEquals"):
                ok = actual in wanted
            elif operator == "Bool":
                ok = actual.lower() in [str(w).lower() for w in wanted]
            else:
                return False  # an operator we cannot evaluate never grants access
            if not ok:
                return False
    return True


def allows(statements: list[dict[str, Any]], action: str, *, service: str | None = None,
           caller_arn: str | None = None, context: dict[str, str] | None = None) -> bool:
    """Whether the policy grants `action` to the service or caller, no Deny matching."""
    allowed = False
    for st in statements:
        actions = _listed(st.get("Action", []))
        if not any(_matches(a, action) for a in actions):
            continue
        if not _principal_ok(st.get("Principal"), service, caller_arn):
            continue
        if not _conditions_ok(st.get("Condition") or {}, context or {}):
            continue
        if st.get("Effect") == "Deny":
            return False
        allowed = allowed or st.get("Effect") == "Allow"
    return allowed
