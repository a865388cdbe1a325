"""HTTP APIs (API Gateway v2) created through the API are served by the local cloud.

AWS: "Working with HTTP APIs" / quick create (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop.html),
Lambda proxy integrations for HTTP APIs, payload 1.0 and 2.0
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html),
and the resource-based policy API Gateway needs ("Granting API Gateway permission to invoke your
Lambda function", https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway.html).
"""

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

ECHO = """
import json
def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"version": event.get("version"), "path": event.get("rawPath") or event.get("path"),
                                "routeKey": event.get("routeKey"), "params": event.get("pathParameters"),
                                "stage": event["requestContext"].get("stage")})}
"""


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def allow_apigateway(cloud, function, api_id):
    cloud.client("lambda").add_permission(
        FunctionName=function, StatementId=f"apigw-{api_id}", Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{cloud.region}:{cloud.account_id}:{api_id}/*")


@pytest.fixture
def echo(fresh, code):
    return fresh.deploy("echo", code(ECHO), "handler.handler")["FunctionArn"]


def test_quick_create_serves_the_target_at_the_returned_endpoint(fresh, echo):
    gw = fresh.client("apigatewayv2")
    api = gw.create_api(Name="quick", ProtocolType="HTTP", Target=echo)
    assert api["ApiEndpoint"].startswith("http://127.0.0.1:")
    assert gw.get_api(ApiId=api["ApiId"])["ApiEndpoint"] == api["ApiEndpoint"]
    assert [r["RouteKey"] for r in gw.get_routes(ApiId=api["ApiId"])["Items"]] == ["$default"]
    assert gw.get_stages(ApiId=api["ApiId"])["Items"][0]["AutoDeploy"] is True
    allow_apigateway(fresh, "echo", api["ApiId"])
    status, body = get(api["ApiEndpoint"] + "/any/path")
    assert status == 200
    assert body == {"version": "2.0", "path": "/any/path", "routeKey": "$default", "params": None, "stage": "$default"}


def test_without_a_permission_for_api_gateway_the_api_answers_500(fresh, echo):
    api = fresh.client("apigatewayv2").create_api(Name="quick", ProtocolType="HTTP", Target=echo)
    assert get(api["ApiEndpoint"] + "/x") == (500, {"message": "Internal Server Error"})
    assert fresh.records("echo") == []
    # A permission for another API does not count.
    allow_apigateway(fresh, "echo", "otherapi1")
    assert get(api["ApiEndpoint"] + "/x")[0] == 500


def test_routes_integrations_and_a_named_stage(fresh, echo):
    gw = fresh.client("apigatewayv2")
    api = gw.create_api(Name="explicit", ProtocolType="HTTP")
    v2 = gw.create_integration(ApiId=api["ApiId"], IntegrationType="AWS_PROXY", IntegrationUri=echo,
                               PayloadFormatVersion="2.0")
    v1 = gw.create_integration(ApiId=api["ApiId"], IntegrationType="AWS_PROXY", IntegrationUri=echo,
                               PayloadFormatVersion="1.0")
    gw.create_route(ApiId=api["ApiId"], RouteKey="GET /items/{id}", Target=f"integrations/{v2['IntegrationId']}")
    gw.create_route(ApiId=api["ApiId"], RouteKey="GET /legacy", Target=f"integrations/{v1['IntegrationId']}")
    allow_apigateway(fresh, "echo", api["ApiId"])
    assert get(api["ApiEndpoint"] + "/dev/items/7")[0] == 404  # no stage yet: nothing deployed
    gw.create_stage(ApiId=api["ApiId"], StageName="dev", AutoDeploy=True)
    status, body = get(api["ApiEndpoint"] + "/dev/items/7")
    assert (status, body["routeKey"], body["params"], body["stage"]) == (200, "GET /items/{id}", {"id": "7"}, "dev")
    status, body = get(api["ApiEndpoint"] + "/dev/legacy")
    assert (status, body["version"], body["path"]) == (200, "1.0", "/legacy")
    assert get(api["ApiEndpoint"] + "/dev/nothing") == (404, {"message": "Not Found"})


def test_delete_api_stops_serving(fresh, echo):
    gw = fresh.client("apigatewayv2")
    api = gw.create_api(Name="quick", ProtocolType="HTTP", Target=echo)
    gw.delete_api(ApiId=api["ApiId"])
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(api["ApiEndpoint"] + "/x", timeout=5)


CLIENT = r'''
import json, sys, urllib.error, urllib.request, zipfile, io, time
import boto3

def call(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()

buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("app.py", "def handler(event, context):\n"
                         "    return {'statusCode': 200, 'body': 'hi ' + event['rawPath']}\n")
iam = boto3.client("iam")
role = iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
lam = boto3.client("lambda")
arn = lam.create_function(FunctionName="web", Runtime="python3.12", Role=role, Handler="app.handler",
                          Code={"ZipFile": buf.getvalue()})["FunctionArn"]
gw = boto3.client("apigatewayv2")
quick = gw.create_api(Name="quick", ProtocolType="HTTP", Target=arn)
explicit = gw.create_api(Name="explicit", ProtocolType="HTTP")
integ = gw.create_integration(ApiId=explicit["ApiId"], IntegrationType="AWS_PROXY", IntegrationUri=arn,
                              PayloadFormatVersion="2.0")
gw.create_route(ApiId=explicit["ApiId"], RouteKey="GET /hello", Target="integrations/" + integ["IntegrationId"])
gw.create_stage(ApiId=explicit["ApiId"], StageName="$default", AutoDeploy=True)
url = lam.create_function_url_config(FunctionName="web", AuthType="NONE")["FunctionUrl"]
before = [call(quick["ApiEndpoint"] + "/a")[0], call(explicit["ApiEndpoint"] + "/hello")[0], call(url + "u")[0]]
lam.add_permission(FunctionName="web", StatementId="gw", Action="lambda:InvokeFunction",
                   Principal="apigateway.amazonaws.com")
lam.add_permission(FunctionName="web", StatementId="url", Action="lambda:InvokeFunctionUrl", Principal="*",
                   FunctionUrlAuthType="NONE")
lam.add_permission(FunctionName="web", StatementId="urlinvoke", Action="lambda:InvokeFunction", Principal="*")
after = [call(quick["ApiEndpoint"] + "/a"), call(explicit["ApiEndpoint"] + "/hello"), call(url + "u")]
print(json.dumps({"before": before, "after": after}))
'''


def test_plain_boto3_in_another_process_against_lambdalab_cloud(tmp_path):
    """The acceptance scenario: `lambdalab cloud` in one process; boto3 and urllib in another."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    server = subprocess.Popen([sys.executable, "-m", "lambdalab.cli.main", "cloud", "--port", "0", "--quiet"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [server.stdout.readline() for _ in range(3)]
        assert any("ApiEndpoint" in line and "FunctionUrl" in line for line in lines), lines
        export = next(line for line in lines if line.startswith("export "))
        client_env = dict(env, **dict(pair.split("=", 1) for pair in export.split()[1:]))
        script = tmp_path / "client.py"
        script.write_text(CLIENT)
        done = subprocess.run([sys.executable, str(script)], env=client_env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["before"] == [500, 500, 403]
        assert result["after"] == [[200, "hi /a"], [200, "hi /hello"], [200, "hi /u"]]
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    assert server.returncode == 0
