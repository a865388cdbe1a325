"""moto's triggers run real handlers: S3 notifications, SQS and DynamoDB Streams mappings, SNS, and the Lambda API."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
from botocore.config import Config
from contract import contract_problems, sample

from lambdalab.cloud.local_cloud import LocalCloud

ECHO = '''
import json, os

def lambda_handler(event, context):
    print(json.dumps(event))
    return {"version": os.environ.get("VERSION", "1"), "memory": context.memory_limit_in_mb,
            "init": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]}
'''

BATCH = '''
def lambda_handler(event, context):
    bodies = [r["body"] for r in event["Records"]]
    if any("crash" in b for b in bodies):
        raise RuntimeError("this batch fails as a whole")
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if "bad" in r["body"]]}
'''

SLEEPY = '''
import time

def lambda_handler(event, context):
    time.sleep(event.get("sleep", 0))
    return "slept"
'''


def _queue(cloud: LocalCloud, name: str, **attributes: str) -> tuple[str, str]:
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _wait_for(condition, timeout: float = 20.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    return condition()


# --- S3 -----------------------------------------------------------------------------------


def test_s3_notification_honours_prefix_and_suffix_and_encodes_keys(fresh, code):
    s3 = fresh.client("s3")
    s3.create_bucket(Bucket="uploads-bucket")
    fn = fresh.deploy("on-upload", code(ECHO), "handler.lambda_handler")
    s3.put_bucket_notification_configuration(Bucket="uploads-bucket", NotificationConfiguration={
        "LambdaFunctionConfigurations": [{
            "Id": "images", "LambdaFunctionArn": fn["FunctionArn"], "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "images/"},
                                               {"Name": "suffix", "Value": ".jpg"}]}}}]})
    matching = ["images/cat.jpg", "images/my holiday/beach day.jpg", "images/a+b=c.jpg",
                "images/100% real.jpg", "images/ünïcødé/日本.jpg", "images/deep/er/still/deeper.jpg"]
    ignored = ["docs/cat.jpg", "images/cat.png", "cat.jpg", "images.jpg"]
    for key in matching + ignored:
        s3.put_object(Bucket="uploads-bucket", Key=key, Body=b"x" * 7)
    assert fresh.settle(30)
    records = fresh.records("on-upload")
    assert all(r.invocation_type == "Event" for r in records)  # S3 invokes asynchronously
    raw = [r.event["Records"][0]["s3"]["object"]["key"] for r in records]
    assert sorted(unquote_plus(k) for k in raw) == sorted(matching)  # each matching key once, no other
    by_key = {unquote_plus(k): k for k in raw}
    assert by_key["images/my holiday/beach day.jpg"] == "images/my+holiday/beach+day.jpg"
    assert by_key["images/a+b=c.jpg"] == "images/a%2Bb%3Dc.jpg"
    assert by_key["images/100% real.jpg"] == "images/100%25+real.jpg"
    assert by_key["images/ünïcødé/日本.jpg"] == "images/%C3%BCn%C3%AFc%C3%B8d%C3%A9/%E6%97%A5%E6%9C%AC.jpg"


def test_s3_event_carries_every_key_of_the_sample(fresh, code):
    s3 = fresh.client("s3")
    s3.create_bucket(Bucket="fidelity-bucket")
    fn = fresh.deploy("fidelity", code(ECHO), "handler.lambda_handler")
    s3.put_bucket_notification_configuration(Bucket="fidelity-bucket", NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"Id": "all", "LambdaFunctionArn": fn["FunctionArn"],
                                          "Events": ["s3:ObjectCreated:Put"]}]})
    s3.put_object(Bucket="fidelity-bucket", Key="one", Body=b"12345")
    s3.put_object(Bucket="fidelity-bucket", Key="two", Body=b"12345")
    assert fresh.settle(30)
    events = [r.event for r in fresh.records("fidelity")]
    for event in events:
        assert contract_problems("s3-put", event, sample("s3-put")) == []
    first = next(e["Records"][0] for e in events if e["Records"][0]["s3"]["object"]["key"] == "one")
    second = next(e["Records"][0] for e in events if e["Records"][0]["s3"]["object"]["key"] == "two")
    assert first["eventName"] == "ObjectCreated:Put" and first["s3"]["configurationId"] == "all"
    assert first["s3"]["object"]["size"] == 5
    assert first["s3"]["object"]["eTag"] == "827ccb0eea8a706c4c34a16891f84e7b"  # md5("12345")
    assert first["requestParameters"]["sourceIPAddress"] == "127.0.0.1"
    assert first["userIdentity"]["principalId"].startswith("AWS:")
    # Later writes get a greater sequencer (S3 documents comparing them as hex strings).
    assert int(second["s3"]["object"]["sequencer"], 16) > int(first["s3"]["object"]["sequencer"], 16)


def test_s3_put_returns_before_the_handler_finishes(fresh, code):
    s3 = fresh.client("s3")
    s3.create_bucket(Bucket="slow-bucket")
    fn = fresh.deploy("slow-reader", code('''
import time
def lambda_handler(event, context):
    time.sleep(1.5)
'''), "handler.lambda_handler", timeout=5)
    s3.put_bucket_notification_configuration(Bucket="slow-bucket", NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"LambdaFunctionArn": fn["FunctionArn"], "Events": ["s3:ObjectCreated:*"]}]})
    started = time.monotonic()
    s3.put_object(Bucket="slow-bucket", Key="k", Body=b"x")
    assert time.monotonic() - started < 1.0
    assert fresh.settle(30) and len(fresh.records("slow-reader")) == 1


# --- SQS ----------------------------------------------------------------------------------


def test_sqs_mapping_honours_batch_size_and_deletes_on_success(fresh, code):
    url, arn = _queue(fresh, "orders")
    sqs = fresh.client("sqs")
    for i in range(11):
        sqs.send_message(QueueUrl=url, MessageBody=f"order-{i}",
                         MessageAttributes={"n": {"DataType": "Number", "StringValue": str(i)}})
    fresh.deploy("batcher", code(ECHO), "handler.lambda_handler")
    fresh.client("lambda").create_event_source_mapping(FunctionName="batcher", EventSourceArn=arn, BatchSize=4)
    assert fresh.settle(30)
    batches = [r.event["Records"] for r in fresh.records("batcher")]
    assert sorted(len(b) for b in batches) == [3, 4, 4]
    assert sorted(r["body"] for b in batches for r in b) == sorted(f"order-{i}" for i in range(11))
    for batch in batches:
        assert contract_problems("sqs", {"Records": batch}, sample("sqs")) == []
    record = batches[0][0]
    assert record["eventSourceARN"] == arn and record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["n"]["dataType"] == "Number"
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_sqs_failing_batch_is_retried_then_lands_in_the_dlq(fresh, code):
    dlq_url, dlq_arn = _queue(fresh, "jobs-dlq")
    url, arn = _queue(fresh, "jobs", VisibilityTimeout="1",
                      RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}))
    fresh.deploy("jobber", code(BATCH), "handler.lambda_handler")
    fresh.client("lambda").create_event_source_mapping(FunctionName="jobber", EventSourceArn=arn, BatchSize=1)
    sqs = fresh.client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody="crash me")
    sqs.send_message(QueueUrl=url, MessageBody="fine")
    dead = _wait_for(lambda: sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages"))
    assert [m["Body"] for m in dead] == ["crash me"]
    attempts = [r for r in fresh.records("jobber") if r.event["Records"][0]["body"] == "crash me"]
    assert [r.event["Records"][0]["attributes"]["ApproximateReceiveCount"] for r in attempts] == ["1", "2"]
    assert all(not r.ok for r in attempts)
    assert [r.ok for r in fresh.records("jobber") if r.event["Records"][0]["body"] == "fine"] == [True]


def test_sqs_partial_batch_failure_redelivers_only_the_failed_messages(fresh, code):
    url, arn = _queue(fresh, "mixed", VisibilityTimeout="1")
    sqs = fresh.client("sqs")
    for body in ("a", "b bad", "c", "d"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    fresh.deploy("partial", code(BATCH), "handler.lambda_handler")
    fresh.client("lambda").create_event_source_mapping(
        FunctionName="partial", EventSourceArn=arn, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
    redelivered = _wait_for(lambda: [r for r in fresh.records("partial")[1:]], timeout=20)
    first = fresh.records("partial")[0]
    assert sorted(r["body"] for r in first.event["Records"]) == ["a", "b bad", "c", "d"]
    assert all([r["body"] for r in inv.event["Records"]] == ["b bad"] for inv in redelivered)
    assert redelivered[0].event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"


def test_sqs_without_report_batch_item_failures_redelivers_the_whole_batch(fresh, code):
    url, arn = _queue(fresh, "whole", VisibilityTimeout="1")
    sqs = fresh.client("sqs")
    for body in ("a", "b crash"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    fresh.deploy("whole", code(BATCH), "handler.lambda_handler")
    fresh.client("lambda").create_event_source_mapping(FunctionName="whole", EventSourceArn=arn, BatchSize=10)
    again = _wait_for(lambda: fresh.records("whole")[1:], timeout=20)
    assert sorted(r["body"] for r in again[0].event["Records"]) == ["a", "b crash"]


# --- DynamoDB Streams -----------------------------------------------------------------------


def _stream_table(ddb, name: str, view_type: str) -> dict:
    return ddb.create_table(
        TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": view_type})


def test_dynamodb_stream_gives_insert_then_modify_with_both_images(fresh, code):
    ddb = fresh.client("dynamodb")
    table = _stream_table(ddb, "notes", "NEW_AND_OLD_IMAGES")
    stream_arn = table["TableDescription"]["LatestStreamArn"]
    fresh.deploy("on-change", code(ECHO), "handler.lambda_handler")
    fresh.client("lambda").create_event_source_mapping(FunctionName="on-change", EventSourceArn=stream_arn,
                                                       StartingPosition="LATEST", BatchSize=10)
    ddb.put_item(TableName="notes", Item={"id": {"S": "n1"}, "text": {"S": "first"}})
    assert fresh.settle(20)
    ddb.update_item(TableName="notes", Key={"id": {"S": "n1"}}, UpdateExpression="SET #t = :t",
                    ExpressionAttributeNames={"#t": "text"}, ExpressionAttributeValues={":t": {"S": "second"}})
    assert fresh.settle(20)
    records = [rec for inv in fresh.records("on-change") for rec in inv.event["Records"]]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY"]
    insert, modify = records
    assert insert["dynamodb"]["NewImage"] == {"id": {"S": "n1"}, "text": {"S": "first"}}
    assert "OldImage" not in insert["dynamodb"]
    assert modify["dynamodb"]["OldImage"]["text"] == {"S": "first"}
    assert modify["dynamodb"]["NewImage"]["text"] == {"S": "second"}
    assert modify["dynamodb"]["Keys"] == {"id": {"S": "n1"}}
    assert int(modify["dynamodb"]["SequenceNumber"]) > int(insert["dynamodb"]["SequenceNumber"])
    assert all(r["eventSourceARN"] == stream_arn for r in records)
    for inv in fresh.records("on-change"):
        assert contract_problems("dynamodb", inv.event, sample("dynamodb")) == []


def test_dynamodb_stream_batches_pending_records(fresh, code):
    ddb = fresh.client("dynamodb")
    table = _stream_table(ddb, "bulk", "NEW_IMAGE")
    for i in range(5):
        ddb.put_item(TableName="bulk", Item={"id": {"S": f"i{i}"}})
    fresh.deploy("bulk", code(ECHO), "handler.lambda_handler")
    fresh.client("lambda").create_event_source_mapping(
        FunctionName="bulk", EventSourceArn=table["TableDescription"]["LatestStreamArn"],
        StartingPosition="TRIM_HORIZON", BatchSize=2)
    assert fresh.settle(20)
    sizes = [len(inv.event["Records"]) for inv in fresh.records("bulk")]
    assert sizes == [2, 2, 1]


# --- SNS ----------------------------------------------------------------------------------


def test_sns_subscription_delivers_the_message_asynchronously(fresh, code):
    sns = fresh.client("sns")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    fn = fresh.deploy("alert-reader", code(ECHO), "handler.lambda_handler")
    subscription = sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=fn["FunctionArn"])["SubscriptionArn"]
    message_id = sns.publish(TopicArn=topic, Message="disk full", Subject="ops",
                             MessageAttributes={"severity": {"DataType": "String", "StringValue": "high"}})["MessageId"]
    assert fresh.settle(20)
    [inv] = fresh.records("alert-reader")
    assert inv.invocation_type == "Event"
    record = inv.event["Records"][0]
    assert record["EventSource"] == "aws:sns" and record["EventSubscriptionArn"] == subscription
    assert record["Sns"]["MessageId"] == message_id and record["Sns"]["TopicArn"] == topic
    assert (record["Sns"]["Message"], record["Sns"]["Subject"]) == ("disk full", "ops")
    assert record["Sns"]["MessageAttributes"] == {"severity": {"Type": "String", "Value": "high"}}


# --- the Lambda API, mirrored into the runtime ----------------------------------------------


def test_code_and_configuration_updates_reach_the_runtime(fresh, code):
    lam = fresh.client("lambda")
    fresh.deploy("evolving", code(ECHO, "v1"), "handler.lambda_handler")
    assert json.loads(lam.invoke(FunctionName="evolving")["Payload"].read())["version"] == "1"
    lam.update_function_configuration(FunctionName="evolving", MemorySize=512,
                                      Environment={"Variables": {"VERSION": "2"}})
    assert json.loads(lam.invoke(FunctionName="evolving")["Payload"].read()) == \
        {"version": "2", "memory": "512", "init": "on-demand"}
    lam.update_function_code(FunctionName="evolving",
                             ZipFile=_zip(code("def lambda_handler(e, c):\n    return 'v3'\n", "v3")))
    assert lam.invoke(FunctionName="evolving")["Payload"].read() == b'"v3"'
    assert fresh.runtime.get("evolving").memory_mb == 512


def test_ephemeral_storage_set_by_update_function_configuration_reaches_the_runtime(fresh, code):
    """UpdateFunctionConfiguration takes EphemeralStorage (512-10,240 MB)
    (https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionConfiguration.html)."""
    lam = fresh.client("lambda")
    fresh.deploy("scratchy", code(ECHO, "v1"), "handler.lambda_handler")
    answer = lam.update_function_configuration(FunctionName="scratchy", EphemeralStorage={"Size": 1024})
    assert answer["EphemeralStorage"] == {"Size": 1024}
    assert lam.get_function_configuration(FunctionName="scratchy")["EphemeralStorage"] == {"Size": 1024}
    assert fresh.runtime.get("scratchy").ephemeral_storage_mb == 1024
    with pytest.raises(lam.exceptions.ClientError):
        lam.update_function_configuration(FunctionName="scratchy", EphemeralStorage={"Size": 20480})


def _zip(directory: Path) -> bytes:
    from lambdalab.cloud.local_cloud import zip_directory
    return zip_directory(directory)


def test_reserved_concurrency_throttles_with_429(fresh, code):
    lam = fresh.client("lambda", config=Config(retries={"max_attempts": 0}))
    fresh.deploy("narrow", code(SLEEPY), "handler.lambda_handler")
    lam.put_function_concurrency(FunctionName="narrow", ReservedConcurrentExecutions=1)
    assert fresh.runtime.get("narrow").reserved_concurrency == 1
    from concurrent.futures import ThreadPoolExecutor

    def call(_):
        try:
            return lam.invoke(FunctionName="narrow", Payload=b'{"sleep": 1}')["StatusCode"]
        except lam.exceptions.TooManyRequestsException as e:
            return (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Reason"])

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(map(str, pool.map(call, range(2))))
    assert outcomes == ["(429, 'ReservedFunctionConcurrentInvocationLimitExceeded')", "200"]
    lam.delete_function_concurrency(FunctionName="narrow")
    assert fresh.runtime.get("narrow").reserved_concurrency is None


def test_provisioned_concurrency_prepares_environments(fresh, code):
    lam = fresh.client("lambda")
    fresh.deploy("warm", code(ECHO), "handler.lambda_handler")
    version = lam.publish_version(FunctionName="warm")["Version"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.put_provisioned_concurrency_config(FunctionName="warm", Qualifier="$LATEST",
                                               ProvisionedConcurrentExecutions=1)
    answer = lam.put_provisioned_concurrency_config(FunctionName="warm", Qualifier=version,
                                                    ProvisionedConcurrentExecutions=2)
    assert answer["RequestedProvisionedConcurrentExecutions"] == 2 and answer["Status"] == "READY"
    assert len(fresh.runtime.environments("warm")) == 2
    assert json.loads(lam.invoke(FunctionName="warm")["Payload"].read())["init"] == "provisioned-concurrency"
    got = lam.get_provisioned_concurrency_config(FunctionName="warm", Qualifier=version)
    assert got["AllocatedProvisionedConcurrentExecutions"] == 2
    lam.delete_provisioned_concurrency_config(FunctionName="warm", Qualifier=version)
    with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName="warm", Qualifier=version)
    assert fresh.runtime.get("warm").provisioned_concurrency == 0


def test_event_invoke_config_and_on_failure_destination(fresh, code):
    lam = fresh.client("lambda")
    dest_url, dest_arn = _queue(fresh, "failures")
    fresh.deploy("flaky", code("def lambda_handler(e, c):\n    raise ValueError('nope')\n"), "handler.lambda_handler")
    lam.put_function_event_invoke_config(FunctionName="flaky", MaximumRetryAttempts=1,
                                         DestinationConfig={"OnFailure": {"Destination": dest_arn}})
    assert fresh.runtime.event_invoke_config("flaky").maximum_retry_attempts == 1
    assert lam.invoke(FunctionName="flaky", InvocationType="Event", Payload=b'{"n": 1}')["StatusCode"] == 202
    messages = _wait_for(lambda: fresh.client("sqs").receive_message(QueueUrl=dest_url).get("Messages"))
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestPayload"] == {"n": 1}
    assert record["responsePayload"]["errorType"] == "ValueError"


def test_deprecated_invoke_async_queues_an_event(fresh, code):
    fresh.deploy("legacy", code(ECHO), "handler.lambda_handler")
    answer = fresh.client("lambda").invoke_async(FunctionName="legacy", InvokeArgs=b'{"old": "api"}')
    assert answer["Status"] == 202
    assert fresh.settle(20)
    [inv] = fresh.records("legacy")
    assert inv.invocation_type == "Event" and inv.event == {"old": "api"}


def test_delete_function_removes_it_from_the_runtime(fresh, code):
    lam = fresh.client("lambda")
    fresh.deploy("doomed", code(ECHO), "handler.lambda_handler")
    assert "doomed" in fresh.runtime.functions()
    lam.delete_function(FunctionName="doomed")
    assert "doomed" not in fresh.runtime.functions()
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="doomed")


def test_non_python_runtimes_and_bad_configuration_are_refused(fresh, code):
    lam = fresh.client("lambda")
    package = _zip(code(ECHO))
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="Python"):
        lam.create_function(FunctionName="js", Runtime="nodejs20.x", Role=fresh.default_role(),
                            Handler="index.handler", Code={"ZipFile": package})
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="memory"):
        lam.create_function(FunctionName="huge", Runtime="python3.12", Role=fresh.default_role(),
                            Handler="handler.lambda_handler", Code={"ZipFile": package}, MemorySize=20000)
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]] == []
