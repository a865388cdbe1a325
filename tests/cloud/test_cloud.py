"""The local cloud: plain boto3 deploys and invokes, identity and IAM, logs, reset, shutdown, the CLI."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import boto3
import psutil
import pytest
from botocore.config import Config

from lambdalab.cloud.local_cloud import LocalCloud
from lambdalab.runtime.imports import python_tag

ROOT = Path(__file__).resolve().parents[2]

HELLO = '''
import json

def lambda_handler(event, context):
    print("hello", json.dumps(event))
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"greeting": "hello " + event.get("name", "world")}
'''

WHO_AM_I = '''
import os
import boto3

def lambda_handler(event, context):
    identity = boto3.client("sts").get_caller_identity()
    return {"arn": identity["Arn"], "key": os.environ["AWS_ACCESS_KEY_ID"],
            "token": bool(os.environ.get("AWS_SESSION_TOKEN")), "endpoint": os.environ["AWS_ENDPOINT_URL"]}
'''

WRITER = '''
import boto3
from botocore.exceptions import ClientError

def lambda_handler(event, context):
    try:
        if event.get("table"):
            boto3.client("dynamodb").put_item(TableName=event["table"], Item={"id": {"S": "1"}})
        else:
            boto3.client("s3").put_object(Bucket=event["bucket"], Key="report.txt", Body=b"done")
        return "written"
    except ClientError as e:
        return e.response["Error"]["Code"]
'''


class SharedCloud:
    """One cloud per module, closed by the shutdown test and reopened on the next use."""

    def __init__(self) -> None:
        self.cloud: LocalCloud | None = None

    def get(self) -> LocalCloud:
        if self.cloud is None:
            self.cloud = LocalCloud(cpu_limit=False, async_retry_delays=(0.1, 0.1)).start()
        self.cloud.reset()
        return self.cloud

    def close(self) -> None:
        if self.cloud is not None:
            self.cloud.close()
            self.cloud = None


@pytest.fixture(scope="module")
def shared():
    holder = SharedCloud()
    yield holder
    holder.close()


@pytest.fixture
def cloud(shared):
    return shared.get()


def _zip_bytes(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in directory.iterdir():
            zf.write(path, path.name)
    return buffer.getvalue()


def _plain_client(cloud: LocalCloud, service: str):
    """A boto3 client made the way any script would, from the exported environment."""
    env = cloud.env()
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                        config=Config(retries={"max_attempts": 0}))


# --- the Lambda API through plain boto3 ------------------------------------------------------


def test_function_created_with_plain_boto3_runs_in_the_runtime(cloud, code):
    iam = _plain_client(cloud, "iam")
    role = iam.create_role(RoleName="hello-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    lam = _plain_client(cloud, "lambda")
    # The local Python's runtime: a different one would add INIT's "declares runtime" line before START.
    lam.create_function(FunctionName="hello", Runtime=python_tag(), Role=role, Handler="handler.lambda_handler",
                        Code={"ZipFile": _zip_bytes(code(HELLO))}, MemorySize=256, Timeout=5,
                        Environment={"Variables": {"STAGE": "test"}})
    assert cloud.runtime.get("hello").memory_mb == 256

    response = lam.invoke(FunctionName="hello", Payload=json.dumps({"name": "Ada"}), LogType="Tail")
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"greeting": "hello Ada"}
    tail = base64.b64decode(response["LogResult"]).decode()
    assert re.search(r"^REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t"
                     r"Memory Size: 256 MB\tMax Memory Used: \d+ MB\t", tail, re.M)
    assert 'hello {"name": "Ada"}' in tail and tail.startswith("START RequestId:")
    [inv] = cloud.records("hello")
    assert inv.cold and inv.invocation_type == "RequestResponse"


def test_invocation_types_and_function_errors(cloud, code):
    cloud.deploy("hello", code(HELLO), "handler.lambda_handler")
    lam = _plain_client(cloud, "lambda")
    without_tail = lam.invoke(FunctionName="hello", Payload=b"{}")
    assert "LogResult" not in without_tail
    failed = lam.invoke(FunctionName="hello", Payload=b'{"fail": true}')
    assert failed["StatusCode"] == 200 and failed["FunctionError"] == "Unhandled"
    error = json.loads(failed["Payload"].read())
    assert error["errorType"] == "ValueError" and error["errorMessage"] == "asked to fail"
    assert lam.invoke(FunctionName="hello", InvocationType="DryRun")["StatusCode"] == 204
    queued = lam.invoke(FunctionName="hello", InvocationType="Event", Payload=b'{"name": "later"}')
    assert queued["StatusCode"] == 202 and queued["Payload"].read() == b""
    assert cloud.settle(20)
    assert [r.invocation_type for r in cloud.records("hello")] == ["RequestResponse", "RequestResponse", "Event"]
    with pytest.raises(lam.exceptions.InvalidRequestContentException):
        lam.invoke(FunctionName="hello", Payload=b"{not json")


def test_a_large_log_is_tailed_to_its_last_4_kb(cloud, code):
    cloud.deploy("chatty", code('''
def lambda_handler(event, context):
    for i in range(500):
        print(f"line {i:04d} " + "." * 40)
'''), "handler.lambda_handler")
    response = _plain_client(cloud, "lambda").invoke(FunctionName="chatty", LogType="Tail")
    tail = base64.b64decode(response["LogResult"])
    assert len(tail) == 4096
    assert tail.decode().rstrip("\n").splitlines()[-1].startswith("REPORT RequestId:")
    assert b"line 0499" in tail and b"line 0000" not in tail


# --- identity ---------------------------------------------------------------------------------


def test_each_function_runs_with_its_roles_sts_credentials(cloud, code):
    role = cloud.create_role("reader-role")
    cloud.deploy("whoami", code(WHO_AM_I), "handler.lambda_handler", role=role, timeout=30)
    result = cloud.invoke("whoami").result
    assert result["arn"] == "arn:aws:sts::123456789012:assumed-role/reader-role/whoami"
    assert result["key"].startswith("ASIA") and result["token"]
    assert result["endpoint"] == cloud.endpoint


def test_iam_enforcement_denies_what_the_role_lacks(cloud, code):
    cloud.enforce_iam(True)
    try:
        s3 = cloud.client("s3")
        s3.create_bucket(Bucket="reports-bucket")  # the cloud's own calls keep working
        weak = cloud.create_role("weak", [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])
        strong = cloud.create_role("strong", [{"Effect": "Allow", "Action": "s3:PutObject",
                                               "Resource": "arn:aws:s3:::reports-bucket/*"}])
        cloud.deploy("weak-writer", code(WRITER, "weak"), "handler.lambda_handler", role=weak, timeout=30)
        cloud.deploy("strong-writer", code(WRITER, "strong"), "handler.lambda_handler", role=strong, timeout=30)
        assert cloud.invoke("weak-writer", {"bucket": "reports-bucket"}).result == "AccessDenied"
        assert cloud.invoke("strong-writer", {"bucket": "reports-bucket"}).result == "written"
        assert s3.get_object(Bucket="reports-bucket", Key="report.txt")["Body"].read() == b"done"
        # JSON-protocol services answer a denial as AWS does, not as moto's XML.
        cloud.client("dynamodb").create_table(
            TableName="reports", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        assert cloud.invoke("strong-writer", {"table": "reports"}).result == "AccessDeniedException"
        # An unknown key is refused too: enforcement is on for every caller.
        stranger = boto3.client("s3", endpoint_url=cloud.endpoint, region_name=cloud.region,
                                aws_access_key_id="AKIAUNKNOWNUNKNOWN00", aws_secret_access_key="x" * 40)
        with pytest.raises(stranger.exceptions.ClientError, match="InvalidAccessKeyId"):
            stranger.list_buckets()
    finally:
        cloud.enforce_iam(False)
    assert not cloud.iam_enforced


# --- logs -------------------------------------------------------------------------------------


def test_report_lines_reach_cloudwatch_logs_in_moto(cloud, code):
    cloud.deploy("logged", code(HELLO), "handler.lambda_handler")
    lam = _plain_client(cloud, "lambda")
    for _ in range(2):
        assert lam.invoke(FunctionName="logged", Payload=b"{}")["StatusCode"] == 200
    assert cloud.settle(20)
    logs = _plain_client(cloud, "logs")
    streams = logs.describe_log_streams(logGroupName="/aws/lambda/logged")["logStreams"]
    assert len(streams) == 1  # one execution environment served both
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", streams[0]["logStreamName"])
    reports = logs.filter_log_events(logGroupName="/aws/lambda/logged", filterPattern="REPORT")["events"]
    request_ids = {r.request_id for r in cloud.records("logged")}
    assert {e["message"].split()[2] for e in reports} == request_ids
    everything = [e["message"] for e in logs.filter_log_events(logGroupName="/aws/lambda/logged")["events"]]
    assert any(m.startswith("START RequestId:") for m in everything)
    assert any(m.startswith("hello {}") for m in everything)


# --- reset --------------------------------------------------------------------------------------


def test_reset_empties_every_service_and_the_runtime(cloud, code):
    cloud.client("s3").create_bucket(Bucket="temporary-bucket")
    cloud.client("sqs").create_queue(QueueName="temporary")
    cloud.deploy("temporary", code(HELLO), "handler.lambda_handler")
    cloud.reset()
    assert cloud.client("s3").list_buckets()["Buckets"] == []
    assert "QueueUrls" not in cloud.client("sqs").list_queues()
    assert cloud.client("lambda").list_functions()["Functions"] == []
    assert cloud.runtime.functions() == []
    assert cloud.metrics("temporary")["RecursiveInvocationsDropped"] == 0


# --- shutdown ---------------------------------------------------------------------------------


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_closing_leaves_no_worker_thread_or_port(shared, code):
    from moto.awslambda.models import LambdaBackend

    shared.close()  # this test needs the only cloud of the process
    original_invoke = LambdaBackend.invoke
    threads_before = set(threading.enumerate())
    with LocalCloud(cpu_limit=False) as cloud:
        with pytest.raises(RuntimeError, match="already open"):
            LocalCloud().start()
        cloud.deploy("hello", code(HELLO), "handler.lambda_handler")
        lam = cloud.client("lambda")
        lam.invoke(FunctionName="hello", Payload=b"{}")
        lam.invoke(FunctionName="hello", InvocationType="Event", Payload=b"{}")
        port = int(cloud.endpoint.rsplit(":", 1)[1])
        workers = cloud.runtime.worker_pids()
        assert workers and _port_open(port)
        assert LambdaBackend.invoke is not original_invoke
    assert not _port_open(port)
    assert not [p for p in workers if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert psutil.Process().children(recursive=True) == []
    leftover = [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert leftover == []
    assert LambdaBackend.invoke is original_invoke  # moto is moto again


def test_a_busy_port_is_reported_and_leaves_the_process_usable(shared):
    shared.close()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(OSError):
            LocalCloud(port=busy.getsockname()[1]).start()
    with LocalCloud(cpu_limit=False) as cloud:  # the failed start released the process's one cloud
        assert cloud.client("s3").list_buckets()["Buckets"] == []


def test_cli_reports_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        done = subprocess.run([sys.executable, "-m", "lambdalab.cli.main", "cloud",
                               "--port", str(busy.getsockname()[1])],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "cannot listen on 127.0.0.1" in done.stderr


# --- the CLI ------------------------------------------------------------------------------------

SCRIPT = '''
import io, json, os, sys, time, zipfile
import boto3

code = "def lambda_handler(event, context):\\n    print('GOT', event['Records'][0]['s3']['object']['key'])\\n"
package = io.BytesIO()
with zipfile.ZipFile(package, "w") as zf:
    zf.writestr("handler.py", code)
s3, lam, iam, logs = (boto3.client(s) for s in ("s3", "lambda", "iam", "logs"))
role = iam.create_role(RoleName="cli-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
fn = lam.create_function(FunctionName="cli-fn", Runtime="python3.12", Role=role, Handler="handler.lambda_handler",
                         Code={"ZipFile": package.getvalue()})
s3.create_bucket(Bucket="cli-bucket")
s3.put_bucket_notification_configuration(Bucket="cli-bucket", NotificationConfiguration={
    "LambdaFunctionConfigurations": [{"LambdaFunctionArn": fn["FunctionArn"], "Events": ["s3:ObjectCreated:*"]}]})
s3.put_object(Bucket="cli-bucket", Key="hello world.txt", Body=b"hi")
deadline = time.time() + 30
while time.time() < deadline:
    try:
        events = logs.filter_log_events(logGroupName="/aws/lambda/cli-fn", filterPattern="GOT")["events"]
    except logs.exceptions.ResourceNotFoundException:
        events = []
    if events:
        print(events[0]["message"].strip())
        sys.exit(0)
    time.sleep(0.2)
sys.exit("the handler's output never reached CloudWatch Logs")
'''


def test_lambdalab_cloud_serves_another_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    server = subprocess.Popen([sys.executable, "-m", "lambdalab.cli.main", "cloud", "--port", "0", "--quiet"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for _ in range(3):
            lines.append(server.stdout.readline())
        export = next(line for line in lines if line.startswith("export "))
        script_env = dict(env)
        for pair in export.split()[1:]:
            key, _, value = pair.partition("=")
            script_env[key] = value
        assert script_env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        script = tmp_path / "client.py"
        script.write_text(SCRIPT)
        done = subprocess.run([sys.executable, str(script)], env=script_env, capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "GOT hello+world.txt"
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "Stopping the local cloud" in out
