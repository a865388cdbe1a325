"""SigV4 for requests the local cloud serves itself (function URLs with AuthType AWS_IAM).

`verify_request` recomputes the request's Signature Version 4 signature with botocore's signer,
using the secret moto's IAM holds for the access key the request names, and returns the
`Caller` (an IAM user) whose identity policies decide what it may do. Anything wrong (no
signature, an unknown key, a stale date, a different signature) raises `SignatureError`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from lambdalab.runtime.config import ACCOUNT_ID

_MAX_SKEW = timedelta(minutes=15)  # SigV4 requests older or newer than this are refused


class SignatureError(Exception):
    """The request is not signed by a known caller."""


@dataclass
class Caller:
    """An IAM user that signed a request."""

    arn: str
    user: Any  # moto's IAM User

    def allowed(self, action: str, resource: str, context: dict[str, str]) -> bool:
        """Whether the user's inline and attached policies allow `action` on `resource`."""
        from moto.iam.access_control import IAMPolicy, PermissionResult

        documents = list(self.user.policies.values()) + [p for p in self.user.managed_policies.values()]
        permitted = False
        for document in documents:
            result = IAMPolicy(document).is_action_permitted(action, resource, None, context)
            if result == PermissionResult.DENIED:
                return False
            permitted = permitted or result == PermissionResult.PERMITTED
        return permitted


def _authorization(value: str) -> dict[str, str]:
    if not value.startswith("AWS4-HMAC-SHA256 "):
        raise SignatureError("the request is not signed with Signature Version 4 (AWS4-HMAC-SHA256)")
    parts = {}
    for item in value[len("AWS4-HMAC-SHA256 "):].split(","):
        key, _, val = item.strip().partition("=")
        parts[key] = val
    if not {"Credential", "SignedHeaders", "Signature"} <= set(parts):
        raise SignatureError("the Authorization header lacks Credential, SignedHeaders or Signature")
    return parts


def verify_request(request: Any, account_id: str = ACCOUNT_ID) -> Caller:
    """The caller that signed `request` (a `lambdalab.cloud.apigateway._Request`)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from moto.iam.models import iam_backends

    headers = {k.lower(): v for k, v in request.headers}
    parts = _authorization(headers.get("authorization", ""))
    key_id, date, region, service, _ = (parts["Credential"].split("/") + [""] * 5)[:5]
    iam = iam_backends[account_id]["global"]
    key = iam.access_keys.get(key_id)
    if key is None or key.status != "Active":
        raise SignatureError(f"the access key {key_id!r} is not known")
    stamp = headers.get("x-amz-date", "")
    try:
        when = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise SignatureError(f"X-Amz-Date {stamp!r} is not yyyymmddThhmmssZ") from None
    if abs(datetime.now(timezone.utc) - when) > _MAX_SKEW:
        raise SignatureError(f"the signature's date {stamp} is more than 15 minutes from now")
    signed = parts["SignedHeaders"].split(";")
    url = f"http://{headers.get('host', '')}{request.raw_path}" + (f"?{request.raw_query}" if request.raw_query else "")
    aws_request = AWSRequest(method=request.method, url=url, data=request.body,
                             headers={name: headers.get(name, "") for name in signed})
    aws_request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(key_id, key.secret_access_key, headers.get("x-amz-security-token")),
                       service, region)
    canonical = signer.canonical_request(aws_request)
    expected = signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)
    if not hmac.compare_digest(expected, parts["Signature"]):
        raise SignatureError("the request signature does not match the signature computed with the caller's secret")
    user = iam.get_user(key.user_name)
    return Caller(user.arn, user)
