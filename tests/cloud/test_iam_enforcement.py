"""Under IAM enforcement the local cloud checks what AWS checks: the signature over the bytes the
client sent, and the resource a call acts on.

A Signature Version 4 signature covers the hash of the request's payload, an empty payload
included (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html), so a
REST-JSON GET or DELETE signed by an administrator must pass. A policy may scope Lambda, DynamoDB
and CloudWatch Logs actions to one function, table or log group ARN ("Actions, resources, and
condition keys", https://docs.aws.amazon.com/service-authorization/latest/reference/list_awslambda.html,
.../list_amazondynamodb.html, .../list_amazoncloudwatchlogs.html; and
https://docs.aws.amazon.com/lambda/latest/dg/lambda-api-permissions-ref.html): the named
resource is allowed, another one is `AccessDenied(Exception)`.
"""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from lambdalab.cloud.local_cloud import LocalCloud, zip_directory

HANDLER = "def lambda_handler(event, context):\n    return {'echo': event}\n"


@pytest.fixture(scope="module")
def iam_cloud():
    with LocalCloud(cpu_limit=False, iam_enforcement=True) as c:
        yield c


def admin_session(cloud) -> boto3.session.Session:
    # plain boto3 with the keys `lambdalab cloud --iam` prints, as a learner would use them
    env = cloud.env()
    return boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                 aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=cloud.region)


def user_session(cloud, name: str, statements: list[dict]) -> boto3.session.Session:
    iam = cloud.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="scoped",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return boto3.session.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                                 region_name=cloud.region)


def denied(call, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value.response["Error"]["Code"]


def arn(cloud, service: str, resource: str) -> str:
    return f"arn:aws:{service}:{cloud.region}:{cloud.account_id}:{resource}"


def test_an_administrator_calls_lambda_api_gateway_v2_and_scheduler_with_plain_boto3(iam_cloud, code) -> None:
    session = admin_session(iam_cloud)
    lam = session.client("lambda", endpoint_url=iam_cloud.endpoint)
    role = iam_cloud.default_role()
    created = lam.create_function(FunctionName="plain", Runtime="python3.12", Role=role,
                                  Handler="handler.lambda_handler", Code={"ZipFile": zip_directory(code(HANDLER))})
    assert lam.get_function(FunctionName="plain")["Configuration"]["FunctionArn"] == created["FunctionArn"]  # GET
    assert "plain" in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    answer = lam.invoke(FunctionName="plain", Payload=b'{"a": 1}')
    assert json.loads(answer["Payload"].read()) == {"echo": {"a": 1}}

    apis = session.client("apigatewayv2", endpoint_url=iam_cloud.endpoint)
    api = apis.create_api(Name="plain-api", ProtocolType="HTTP", Target=created["FunctionArn"])
    assert apis.get_api(ApiId=api["ApiId"])["Name"] == "plain-api"
    apis.delete_api(ApiId=api["ApiId"])  # DELETE, empty body
    assert api["ApiId"] not in [a["ApiId"] for a in apis.get_apis()["Items"]]

    scheduler = session.client("scheduler", endpoint_url=iam_cloud.endpoint)
    scheduler.create_schedule(Name="plain-schedule", ScheduleExpression="rate(1 hour)",
                              FlexibleTimeWindow={"Mode": "OFF"},
                              Target={"Arn": created["FunctionArn"], "RoleArn": role})
    assert scheduler.get_schedule(Name="plain-schedule")["State"] == "ENABLED"
    assert [s["Name"] for s in scheduler.list_schedules()["Schedules"]] == ["plain-schedule"]
    scheduler.delete_schedule(Name="plain-schedule")
    lam.delete_function(FunctionName="plain")
    assert denied(lam.get_function, FunctionName="plain") == "ResourceNotFoundException"


def test_a_lambda_allow_scoped_to_one_function_allows_it_and_denies_another(iam_cloud, code) -> None:
    for name in ("mine", "theirs"):
        iam_cloud.deploy(name, code(HANDLER, name), "handler.lambda_handler")
    lam = user_session(iam_cloud, "lambda-user", [
        {"Effect": "Allow", "Action": ["lambda:GetFunction", "lambda:InvokeFunction"],
         "Resource": arn(iam_cloud, "lambda", "function:mine")},
    ]).client("lambda", endpoint_url=iam_cloud.endpoint)
    assert lam.get_function(FunctionName="mine")["Configuration"]["FunctionName"] == "mine"
    assert json.loads(lam.invoke(FunctionName="mine", Payload=b"1")["Payload"].read()) == {"echo": 1}
    assert denied(lam.get_function, FunctionName="theirs") == "AccessDeniedException"
    assert denied(lam.invoke, FunctionName="theirs", Payload=b"1") == "AccessDeniedException"
    assert denied(lam.list_functions) == "AccessDeniedException"  # ListFunctions needs Resource "*"


def test_a_dynamodb_allow_scoped_to_one_table_allows_it_and_denies_another(iam_cloud) -> None:
    ddb = iam_cloud.client("dynamodb")
    for name in ("orders", "payroll"):
        ddb.create_table(TableName=name, AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    user = user_session(iam_cloud, "table-user", [
        {"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:GetItem"],
         "Resource": arn(iam_cloud, "dynamodb", "table/orders")},
    ]).client("dynamodb", endpoint_url=iam_cloud.endpoint)
    user.put_item(TableName="orders", Item={"id": {"S": "1"}})
    assert user.get_item(TableName="orders", Key={"id": {"S": "1"}})["Item"] == {"id": {"S": "1"}}
    assert denied(user.put_item, TableName="payroll", Item={"id": {"S": "1"}}) == "AccessDeniedException"


def test_a_logs_allow_scoped_to_one_log_group_allows_it_and_denies_another(iam_cloud) -> None:
    logs = iam_cloud.client("logs")
    for group in ("/app/mine", "/app/theirs"):
        logs.create_log_group(logGroupName=group)
    user = user_session(iam_cloud, "logs-user", [
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": arn(iam_cloud, "logs", "log-group:/app/mine:*")},
    ]).client("logs", endpoint_url=iam_cloud.endpoint)
    user.create_log_stream(logGroupName="/app/mine", logStreamName="s")
    user.put_log_events(logGroupName="/app/mine", logStreamName="s",
                        logEvents=[{"timestamp": 1_700_000_000_000, "message": "hello"}])
    assert denied(user.create_log_stream, logGroupName="/app/theirs", logStreamName="s") \
        == "AccessDeniedException"


def test_s3_and_sqs_allows_scoped_to_one_resource_still_hold(iam_cloud) -> None:
    s3, sqs = iam_cloud.client("s3"), iam_cloud.client("sqs")
    for bucket in ("scoped-in", "scoped-out"):
        s3.create_bucket(Bucket=bucket)
    queue = sqs.create_queue(QueueName="scoped-in")["QueueUrl"]
    other = sqs.create_queue(QueueName="scoped-out")["QueueUrl"]
    session = user_session(iam_cloud, "s3-sqs-user", [
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::scoped-in/*"},
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arn(iam_cloud, "sqs", "scoped-in")},
    ])
    user_s3 = session.client("s3", endpoint_url=iam_cloud.endpoint)
    user_sqs = session.client("sqs", endpoint_url=iam_cloud.endpoint)
    user_s3.put_object(Bucket="scoped-in", Key="k", Body=b"x")
    assert denied(user_s3.put_object, Bucket="scoped-out", Key="k", Body=b"x") == "AccessDenied"
    user_sqs.send_message(QueueUrl=queue, MessageBody="x")
    assert denied(user_sqs.send_message, QueueUrl=other, MessageBody="x") in ("AccessDenied", "AccessDeniedException")


def test_s3_calls_are_checked_under_the_iam_actions_s3_documents_not_their_operation_names(iam_cloud) -> None:
    """ListObjectsV2 needs `s3:ListBucket` on the bucket and HeadObject `s3:GetObject` on the object
    (the "Permissions" section of https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html
    and https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html); ListBuckets needs
    `s3:ListAllMyBuckets` (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListBuckets.html).
    moto names the action after the operation, so these Allows granted nothing."""
    s3 = iam_cloud.client("s3")
    for bucket in ("listed-in", "listed-out"):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="photo.jpg", Body=b"x")
    user = user_session(iam_cloud, "s3-list-user", [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::listed-in"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::listed-in/*"},
    ]).client("s3", endpoint_url=iam_cloud.endpoint)
    assert [o["Key"] for o in user.list_objects_v2(Bucket="listed-in")["Contents"]] == ["photo.jpg"]
    assert user.head_object(Bucket="listed-in", Key="photo.jpg")["ContentLength"] == 1
    assert denied(user.list_objects_v2, Bucket="listed-out") == "AccessDenied"
    assert denied(user.list_buckets) == "AccessDenied"
    with pytest.raises(ClientError) as head:  # HEAD has no body: the code is the status
        user.head_object(Bucket="listed-out", Key="photo.jpg")
    assert head.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
