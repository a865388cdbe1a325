"""moto's control plane (`/moto-api/*`) answers only the cloud's administrator, and an unsigned
request under IAM enforcement gets AWS's 403.

AWS answers a request without any signature `403 MissingAuthenticationToken` ("The request must
contain either a valid (registered) AWS access key ID or X.509 certificate", Common Errors,
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html); JSON
services send it as `__type`, query services as `<Code>`, and S3 refuses an anonymous request to
a private bucket with `403 AccessDenied`
(https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html). Nothing in AWS lets a
function switch IAM off: a handler holds only its role's credentials.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from lambdalab.cloud.admin_auth import sign_admin_request

RESET_AUTH = '''
import json, os, urllib.request
import boto3
from botocore.exceptions import ClientError

def lambda_handler(event, context):
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    answers = []
    # unsigned, then signed with the role's own credentials: both must be refused
    for headers in ({}, None):
        if headers is None:
            from botocore.auth import SigV4Auth
            from botocore.awsrequest import AWSRequest
            creds = boto3.Session().get_credentials()
            req = AWSRequest(method="POST", url=endpoint + "/moto-api/reset-auth", data=b'{"value": 100}')
            SigV4Auth(creds, "moto", "us-east-1").add_auth(req)
            headers = dict(req.headers.items())
        req = urllib.request.Request(endpoint + "/moto-api/reset-auth", data=b'{"value": 100}',
                                     method="POST", headers=headers)
        try:
            answers.append(urllib.request.urlopen(req).status)
        except urllib.error.HTTPError as e:
            answers.append(e.code)
    try:
        boto3.client("s3").put_object(Bucket="locked", Key="k", Body=b"x")
        answers.append("written")
    except ClientError as e:
        answers.append(e.response["Error"]["Code"])
    return answers
'''


def raw(cloud, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(cloud.endpoint + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_a_handler_cannot_switch_iam_enforcement_off(cloud, code) -> None:
    cloud.enforce_iam(True)
    try:
        cloud.client("s3").create_bucket(Bucket="locked")
        role = cloud.create_role("getter", [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])
        cloud.deploy("resetter", code(RESET_AUTH), "handler.lambda_handler", role=role, timeout=30)
        assert cloud.invoke("resetter").result == [403, 403, "AccessDenied"]
        assert cloud.iam_enforced
    finally:
        cloud.enforce_iam(False)


def test_the_control_plane_answers_only_the_administrators_signature(cloud) -> None:
    cloud.client("s3").create_bucket(Bucket="kept")
    assert raw(cloud, "POST", "/moto-api/reset")[0] == 403  # unsigned
    forged = sign_admin_request("POST", cloud.endpoint + "/moto-api/reset", b"", "AKIALAMBDALABADMIN01",
                                "not-the-secret", cloud.region)
    assert raw(cloud, "POST", "/moto-api/reset", b"", forged)[0] == 403  # the right key id, a wrong secret
    assert "kept" in [b["Name"] for b in cloud.client("s3").list_buckets()["Buckets"]]
    status, body = cloud.control("GET", "/moto-api/config")
    assert status in (200, 201) and "batch" in json.loads(body)


@pytest.mark.parametrize("method,path,body,headers,code", [
    ("GET", "/some-bucket", None, {}, b"<Code>AccessDenied</Code>"),
    ("POST", "/", b"Action=ListQueues", {"Content-Type": "application/x-www-form-urlencoded"},
     b"<Code>MissingAuthenticationToken</Code>"),
    ("POST", "/", b"{}", {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.ListTables"},
     b'"__type": "MissingAuthenticationTokenException"'),
    ("GET", "/2015-03-31/functions/", None, {}, b'"message": "Missing Authentication Token"'),
])
def test_an_unsigned_request_under_enforcement_is_awss_403(cloud, method, path, body, headers, code) -> None:
    cloud.enforce_iam(True)
    try:
        status, _, data = raw(cloud, method, path, body, headers)
    finally:
        cloud.enforce_iam(False)
    assert status == 403
    assert code in data
    assert b"Traceback" not in data and b"KeyError" not in data
