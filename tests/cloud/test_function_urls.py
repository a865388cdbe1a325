"""Lambda function URLs created through the API answer at the returned local address.

AWS: "Creating and managing Lambda function URLs" and "Control access to Lambda function URLs"
(https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html): AuthType NONE needs both
lambda:InvokeFunctionUrl and lambda:InvokeFunction in the function's policy; AWS_IAM needs a
SigV4-signed request from a caller allowed lambda:InvokeFunctionUrl; refusals are 403 Forbidden.
Payload format 2.0 (https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html).
"""

import json
import urllib.error
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ECHO = """
import json
def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"version": event["version"], "path": event["rawPath"],
            "routeKey": event["routeKey"], "query": event.get("queryStringParameters")})}
"""


def call(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture
def echo(fresh, code):
    fresh.deploy("echo", code(ECHO), "handler.handler")
    return fresh.client("lambda")


def allow_public(lam, invoke_function=True):
    lam.add_permission(FunctionName="echo", StatementId="url", Action="lambda:InvokeFunctionUrl",
                       Principal="*", FunctionUrlAuthType="NONE")
    if invoke_function:
        lam.add_permission(FunctionName="echo", StatementId="invoke", Action="lambda:InvokeFunction", Principal="*")


def test_auth_none_url_serves_payload_2_0_at_the_returned_address(echo):
    url = echo.create_function_url_config(FunctionName="echo", AuthType="NONE")["FunctionUrl"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/")
    assert echo.get_function_url_config(FunctionName="echo")["FunctionUrl"] == url
    allow_public(echo)
    assert call(url + "a/b?x=1") == (200, {"version": "2.0", "path": "/a/b", "routeKey": "$default",
                                          "query": {"x": "1"}})


@pytest.mark.parametrize("invoke_function", [False, None])
def test_auth_none_needs_both_permissions(echo, invoke_function):
    url = echo.create_function_url_config(FunctionName="echo", AuthType="NONE")["FunctionUrl"]
    if invoke_function is False:
        allow_public(echo, invoke_function=False)  # InvokeFunctionUrl alone: refused since October 2025
    assert call(url) == (403, {"Message": "Forbidden"})


def signed_headers(url, key_id, secret, region):
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(key_id, secret), "lambda", region).add_auth(request)
    return dict(request.headers)


def test_aws_iam_checks_the_signature_and_the_callers_permission(fresh, echo):
    url = echo.create_function_url_config(FunctionName="echo", AuthType="AWS_IAM")["FunctionUrl"]
    iam = fresh.client("iam")
    iam.create_user(UserName="caller")
    key = iam.create_access_key(UserName="caller")["AccessKey"]
    target = url + "hi"
    assert call(target)[0] == 403  # unsigned
    assert call(target, signed_headers(target, key["AccessKeyId"], "wrong-secret", fresh.region))[0] == 403
    good = signed_headers(target, key["AccessKeyId"], key["SecretAccessKey"], fresh.region)
    assert call(target, good)[0] == 403  # signed, but the user may not invoke the URL
    fn_arn = echo.get_function(FunctionName="echo")["Configuration"]["FunctionArn"]
    iam.put_user_policy(UserName="caller", PolicyName="url", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunctionUrl",
                                                "Resource": fn_arn}]}))
    good = signed_headers(target, key["AccessKeyId"], key["SecretAccessKey"], fresh.region)
    status, body = call(target, good)
    assert (status, body["path"]) == (200, "/hi")


def test_delete_function_url_config_stops_serving(echo):
    url = echo.create_function_url_config(FunctionName="echo", AuthType="NONE")["FunctionUrl"]
    echo.delete_function_url_config(FunctionName="echo")
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)


