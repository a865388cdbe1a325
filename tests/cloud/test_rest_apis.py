"""REST APIs (API Gateway v1) created through the API are served by the local cloud, and a stage
with X-Ray tracing records its segment above Lambda's.

AWS: a REST API's resources, methods and Lambda proxy integrations (payload 1.0)
(https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html);
deployments and stages, invoked at `https://{api}.execute-api.{region}.amazonaws.com/{stage}`
(https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-call-api.html); the
permission API Gateway needs (https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway.html);
X-Ray for a stage (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-xray.html)
and its segment (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-understanding-xray-traces.html).
Locally a stage answers at `{endpoint}/_aws/execute-api/{api}/{stage}`.
"""

import json
import time
import urllib.error
import urllib.request

import pytest

from lambdalab._util.xray import new_segment_id, new_trace_id

ECHO = """
import json, os
def handler(event, context):
    return {"statusCode": 201, "headers": {"content-type": "application/json"},
            "body": json.dumps({"path": event["path"], "resource": event["resource"],
                                "method": event["httpMethod"], "stage": event["requestContext"]["stage"],
                                "trace": os.environ.get("_X_AMZN_TRACE_ID", "")})}
"""


def post(url, body=b"{}", headers=None, answer_headers=None):
    request = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            (answer_headers if answer_headers is not None else {}).update(r.headers.items())
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def rest_api(cloud, function_arn, *, tracing=None, stage="prod"):
    """A REST API with `ANY /{proxy+}` proxied to the function, deployed to `stage`."""
    gw = cloud.client("apigateway")
    api = gw.create_rest_api(name="orders-api")
    root = gw.get_resources(restApiId=api["id"])["items"][0]["id"]
    proxy = gw.create_resource(restApiId=api["id"], parentId=root, pathPart="{proxy+}")
    gw.put_method(restApiId=api["id"], resourceId=proxy["id"], httpMethod="ANY", authorizationType="NONE")
    gw.put_integration(restApiId=api["id"], resourceId=proxy["id"], httpMethod="ANY", type="AWS_PROXY",
                       integrationHttpMethod="POST", uri=lambda_uri(cloud, function_arn))
    deployment = gw.create_deployment(restApiId=api["id"])
    stage_options = {} if tracing is None else {"tracingEnabled": tracing}
    gw.create_stage(restApiId=api["id"], stageName=stage, deploymentId=deployment["id"], **stage_options)
    return api["id"], f"{cloud.endpoint}/_aws/execute-api/{api['id']}/{stage}"


def lambda_uri(cloud, function_arn):
    """An AWS_PROXY integration's URI: API Gateway's path to Lambda's Invoke for the function."""
    return f"arn:aws:apigateway:{cloud.region}:lambda:path/2015-03-31/functions/{function_arn}/invocations"


def allow(cloud, function, api_id):
    cloud.client("lambda").add_permission(
        FunctionName=function, StatementId=f"apigw-{api_id}", Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{cloud.region}:{cloud.account_id}:{api_id}/*/*/*")


def documents(cloud, trace_id):
    cloud.xray.flush()
    traces = cloud.client("xray").batch_get_traces(TraceIds=[trace_id])["Traces"]
    return [json.loads(s["Document"]) for t in traces for s in t["Segments"]]


@pytest.fixture
def echo(fresh, code):
    return fresh.deploy("echo", code(ECHO), "handler.handler")["FunctionArn"]


def test_a_proxy_resource_serves_every_path_of_the_stage(fresh, echo):
    """`ANY /{proxy+}` takes any method and path under the stage; the event is payload 1.0 with the
    path after the stage; a path outside any resource is 403 Missing Authentication Token."""
    api_id, url = rest_api(fresh, echo)
    allow(fresh, "echo", api_id)
    status, body = post(url + "/orders/7")
    assert status == 201
    assert {k: body[k] for k in ("path", "resource", "method", "stage")} == {
        "path": "/orders/7", "resource": "/{proxy+}", "method": "POST", "stage": "prod"}
    assert post(url) == (403, {"message": "Missing Authentication Token"})  # `/` has no method
    assert post(f"{fresh.endpoint}/_aws/execute-api/{api_id}/nostage/x") == (403, {"message": "Forbidden"})


def test_a_stage_serves_its_deployment_not_later_changes(fresh, echo):
    """A method added after the deployment is served only once a new deployment reaches the stage."""
    api_id, url = rest_api(fresh, echo)
    allow(fresh, "echo", api_id)
    gw = fresh.client("apigateway")
    root = next(r["id"] for r in gw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    gw.put_method(restApiId=api_id, resourceId=root, httpMethod="POST", authorizationType="NONE")
    gw.put_integration(restApiId=api_id, resourceId=root, httpMethod="POST", type="AWS_PROXY",
                       integrationHttpMethod="POST", uri=lambda_uri(fresh, echo))
    assert post(url)[0] == 403
    deployment = gw.create_deployment(restApiId=api_id)
    gw.update_stage(restApiId=api_id, stageName="prod",
                    patchOperations=[{"op": "replace", "path": "/deploymentId", "value": deployment["id"]}])
    assert post(url)[1]["resource"] == "/"


def test_without_a_permission_for_api_gateway_the_api_answers_500(fresh, echo):
    _, url = rest_api(fresh, echo)
    assert post(url + "/x") == (500, {"message": "Internal server error"})
    assert fresh.records("echo") == []


def test_delete_rest_api_stops_serving(fresh, echo):
    api_id, url = rest_api(fresh, echo)
    allow(fresh, "echo", api_id)
    assert post(url + "/x")[0] == 201
    fresh.client("apigateway").delete_rest_api(restApiId=api_id)
    assert post(url + "/x") == (403, {"message": "Forbidden"})


def test_a_traced_stage_records_its_segment_above_lambdas(fresh, echo):
    """tracingEnabled: the stage samples by the default rule (the first request of a second is
    sampled), records an AWS::ApiGateway::Stage segment named `{api}/{stage}` and passes
    `Parent=<its segment>;Sampled=1`, so even a PassThrough function is traced and Lambda's
    service segment's parent is the stage's segment."""
    api_id, url = rest_api(fresh, echo, tracing=True)
    allow(fresh, "echo", api_id)
    time.sleep(1.01 - time.time() % 1)  # a new second: the reservoir's first request
    response_headers = {}
    status, body = post(url + "/orders", answer_headers=response_headers)
    assert status == 201
    header = dict(p.split("=", 1) for p in body["trace"].split(";"))
    assert header["Sampled"] == "1"
    docs = {d["origin"]: d for d in documents(fresh, header["Root"])}
    assert set(docs) == {"AWS::ApiGateway::Stage", "AWS::Lambda", "AWS::Lambda::Function"}
    stage, service, function = docs["AWS::ApiGateway::Stage"], docs["AWS::Lambda"], docs["AWS::Lambda::Function"]
    assert stage["name"] == "orders-api/prod" and "parent_id" not in stage
    assert stage["resource_arn"] == f"arn:aws:apigateway:{fresh.region}::/restapis/{api_id}/stages/prod"
    assert stage["http"]["request"]["method"] == "POST" and stage["http"]["response"]["status"] == 201
    assert stage["annotations"] == {"aws:api_id": api_id, "aws:api_stage": "prod"}
    assert service["parent_id"] == stage["id"]
    assert response_headers["X-Amzn-Trace-Id"] == f"Root={header['Root']}"  # the client learns its trace
    assert function["parent_id"] == service["id"] and function["id"] == header["Parent"]
    assert stage["start_time"] <= service["start_time"] and service["end_time"] <= stage["end_time"]


def test_a_traced_stage_keeps_the_callers_trace_and_decision(fresh, echo):
    """A caller's `X-Amzn-Trace-Id` with Sampled=1 continues its trace: the stage's segment's
    parent is the caller's segment; with Sampled=0 nothing is recorded."""
    api_id, url = rest_api(fresh, echo, tracing=True)
    allow(fresh, "echo", api_id)
    trace_id, caller = new_trace_id(), new_segment_id()
    post(url + "/a", headers={"X-Amzn-Trace-Id": f"Root={trace_id};Parent={caller};Sampled=1"})
    stage = next(d for d in documents(fresh, trace_id) if d["origin"] == "AWS::ApiGateway::Stage")
    assert stage["parent_id"] == caller
    unsampled = new_trace_id()
    post(url + "/b", headers={"X-Amzn-Trace-Id": f"Root={unsampled};Sampled=0"})
    assert documents(fresh, unsampled) == []


def test_an_untraced_stage_records_no_segment(fresh, code):
    """Without tracingEnabled the stage records nothing; an Active function still traces itself,
    and its trace starts at Lambda (as with an HTTP API, which does not support X-Ray)."""
    fresh.deploy("active", code(ECHO), "handler.handler", TracingConfig={"Mode": "Active"})
    arn = fresh.client("lambda").get_function(FunctionName="active")["Configuration"]["FunctionArn"]
    api_id, url = rest_api(fresh, arn, tracing=False)
    allow(fresh, "active", api_id)
    time.sleep(1.01 - time.time() % 1)
    header = dict(p.split("=", 1) for p in post(url + "/x")[1]["trace"].split(";"))
    assert header["Sampled"] == "1"
    docs = {d["origin"]: d for d in documents(fresh, header["Root"])}
    assert set(docs) == {"AWS::Lambda", "AWS::Lambda::Function"}
    assert "parent_id" not in docs["AWS::Lambda"]


def test_tracing_switched_on_with_update_stage(fresh, echo):
    """UpdateStage's patch operation `/tracingEnabled` turns tracing on for the next request."""
    api_id, url = rest_api(fresh, echo)
    allow(fresh, "echo", api_id)
    fresh.client("apigateway").update_stage(
        restApiId=api_id, stageName="prod",
        patchOperations=[{"op": "replace", "path": "/tracingEnabled", "value": "true"}])
    trace_id = new_trace_id()
    post(url + "/a", headers={"X-Amzn-Trace-Id": f"Root={trace_id};Sampled=1"})
    assert "AWS::ApiGateway::Stage" in {d["origin"] for d in documents(fresh, trace_id)}
