"""moto's IAM enforcement made to check what AWS checks: the signature of the bytes sent, and
the resource a call acts on.

Two faults of moto's `access_control` are mended here while a cloud is open:

- For a request with an empty body moto re-signs its *parsed parameters* (`self._body or
  self._data`), so every REST-JSON GET or DELETE (Lambda, API Gateway v2, Scheduler) fails with
  `SignatureDoesNotMatch`, even for an administrator. Only a form-encoded (query protocol)
  request, whose body the server has already parsed into parameters, is signed over them.
- moto authorizes most services' calls against the resource `*`, so an Allow scoped to an ARN
  (least privilege) is denied. Lambda, DynamoDB and CloudWatch Logs calls are checked here
  against the ARN of the function, table or log group they name, as AWS documents it in each
  service's "Actions, resources, and condition keys" page; S3, SQS, IAM and STS already are.
  moto names the action after the operation; where IAM's name differs (`Invoke` is
  `lambda:InvokeFunction`, S3's `ListObjectsV2` is `s3:ListBucket`, `HeadObject` is
  `s3:GetObject`) the check uses IAM's: without it an Allow of `s3:ListBucket` lets nothing list.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from lambdalab.cloud.moto import Patches

# Where an operation's IAM action is not named like the operation: Lambda's "Actions" table, and
# the "Permissions" of each S3 API operation's reference page (ListObjectsV2: "You must have
# permission to perform the s3:ListBucket action",
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html).
IAM_ACTIONS = {
    "lambda:Invoke": "lambda:InvokeFunction", "lambda:InvokeWithResponseStream": "lambda:InvokeFunction",
    "s3:ListObjects": "s3:ListBucket", "s3:ListObjectsV2": "s3:ListBucket", "s3:HeadBucket": "s3:ListBucket",
    "s3:ListBuckets": "s3:ListAllMyBuckets", "s3:HeadObject": "s3:GetObject",
    "s3:ListObjectVersions": "s3:ListBucketVersions", "s3:ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "s3:ListParts": "s3:ListMultipartUploadParts", "s3:CreateMultipartUpload": "s3:PutObject",
    "s3:UploadPart": "s3:PutObject", "s3:UploadPartCopy": "s3:PutObject",
    "s3:CompleteMultipartUpload": "s3:PutObject",
    "s3:CopyObject": "s3:PutObject", "s3:DeleteObjects": "s3:DeleteObject",
    "s3:GetBucketCors": "s3:GetBucketCORS", "s3:PutBucketCors": "s3:PutBucketCORS",
    "s3:DeleteBucketCors": "s3:PutBucketCORS",
    "s3:GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "s3:PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "s3:DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",
    "s3:GetBucketNotificationConfiguration": "s3:GetBucketNotification",
    "s3:PutBucketNotificationConfiguration": "s3:PutBucketNotification",
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:DeleteBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "s3:DeletePublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "s3:GetBucketReplication": "s3:GetReplicationConfiguration",
    "s3:PutBucketReplication": "s3:PutReplicationConfiguration",
    "s3:GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
    "s3:PutObjectLockConfiguration": "s3:PutBucketObjectLockConfiguration",
    "s3:GetBucketAccelerateConfiguration": "s3:GetAccelerateConfiguration",
    "s3:PutBucketAccelerateConfiguration": "s3:PutAccelerateConfiguration",
    "s3:GetObjectAttributes": "s3:GetObject",
}
_FUNCTION_PATH = re.compile(r"^/20\d\d-\d\d-\d\d/functions/(?P<name>[^/?]+)")


def _signed_payload(request: Any) -> Any:
    """What the client signed: the raw body; the parsed form only for a form-encoded request."""
    content_type = next((v for k, v in request._headers.items() if k.lower() == "content-type"), "")
    if not request._body and content_type.startswith("application/x-www-form-urlencoded"):
        return request._data
    return request._body or b""


def _create_aws_request(original: Any) -> Any:
    def create(self: Any) -> Any:
        saved_body, saved_data = self._body, self._data
        payload = _signed_payload(self)
        # moto signs `self._body or self._data`: present it the payload through `_body` alone.
        self._body, self._data = payload, payload
        try:
            return original(self)
        finally:
            self._body, self._data = saved_body, saved_data
    return create


def _check_action_permitted(original: Any) -> Any:
    def check(self: Any, resource: str) -> None:
        self._action = IAM_ACTIONS.get(self._action, self._action)
        return original(self, resource)
    return check


def _json_body(response: Any) -> dict[str, Any]:
    if isinstance(response.body, dict):  # DynamoDB's handler has parsed it already
        return response.body
    try:
        body = json.loads(response.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _resource(response: Any, service: str, name: str | None, path: str) -> str:
    """`*` when the call names nothing, the ARN it names, or the ARN of `path` in the caller's account."""
    if not name:
        return "*"
    if name.startswith("arn:"):
        return name
    return f"arn:{response.partition}:{service}:{response.region}:{response.current_account}:{path}"


def function_resource(response: Any) -> str:
    """The function a Lambda API call acts on (`function:NAME[:QUALIFIER]`), or `*`."""
    match = _FUNCTION_PATH.match(response.path)
    name = unquote(match["name"]) if match else None
    if name is None and response.method == "POST" and re.match(r"^/20\d\d-\d\d-\d\d/functions/?$", response.path):
        name = _json_body(response).get("FunctionName")
    base, _, inline = (name or "").partition(":")
    qualifier = inline or (response.querystring.get("Qualifier") or [None])[0]
    return _resource(response, "lambda", name, f"function:{base}" + (f":{qualifier}" if qualifier else ""))


def table_resource(response: Any) -> str:
    """The table (or index) a DynamoDB call names, or `*` (ListTables, batch calls)."""
    body = _json_body(response)
    tables = list(body.get("RequestItems") or {})
    table = body.get("TableName") or (tables[0] if len(tables) == 1 else None)
    index = body.get("IndexName")
    return _resource(response, "dynamodb", table, f"table/{table}" + (f"/index/{index}" if index else ""))


def log_resource(response: Any) -> str:
    """The log group (or stream) a CloudWatch Logs call names, or `*` (DescribeLogGroups)."""
    body = _json_body(response)
    group = body.get("logGroupName") or body.get("logGroupIdentifier")
    stream = body.get("logStreamName")
    return _resource(response, "logs", group, f"log-group:{group}" + (f":log-stream:{stream}" if stream else ""))


def install(patches: Patches) -> None:
    """Sign-check the bytes sent and scope Lambda, DynamoDB and Logs calls to their resource."""
    from moto.awslambda.responses import LambdaResponse
    from moto.dynamodb.responses import DynamoHandler
    from moto.iam.access_control import IAMRequestBase
    from moto.logs.responses import LogsResponse

    patches.replace(IAMRequestBase, "_create_aws_request", _create_aws_request)
    patches.replace(IAMRequestBase, "check_action_permitted", _check_action_permitted)
    for cls, resource in ((LambdaResponse, function_resource), (DynamoHandler, table_resource),
                          (LogsResponse, log_resource)):
        patches.add(cls, "_determine_resource", resource)
