"""The `aws` target against a `lambdalab cloud --iam` stand-in: the account confirmation, a run's
names and tags, REPORT records from CloudWatch Logs, and a teardown that leaves nothing.

AWS behaviour followed: STS GetCallerIdentity names the account the credentials reach
(https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html); Lambda writes
a REPORT line per invocation to `/aws/lambda/<function>`, with `Init Duration` on a cold start
(https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html); a bucket is deleted only when
every object version and delete marker is gone
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucket.html); a role only when its
inline policies are deleted and managed ones detached
(https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteRole.html); the Resource Groups
Tagging API does not cover IAM roles, Scheduler or API Gateway v2
(https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/supported-services.html),
so the teardown lists each service by name. Budgets: CreateBudget / DescribeBudget
(https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_CreateBudget.html).
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from lambdalab.course.target import on_aws, open_target, teardown
from lambdalab.course.target.aws import aws_session, clients_of
from lambdalab.course.target.safety import BUDGET_NAME, AccountNotConfirmed


def lambdalab(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lambdalab.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def everything(env: dict) -> list[teardown.Resource]:
    """Every resource of every run on the stand-in, listed service by service."""
    return teardown.inventory(clients_of(aws_session(env)))


def test_without_the_account_confirmation_nothing_is_created(sandbox, monkeypatch, capsys) -> None:
    monkeypatch.delenv("LAMBDALAB_AWS_ACCOUNT")
    with pytest.raises(AccountNotConfirmed, match="LAMBDALAB_AWS_ACCOUNT is not set") as info:
        open_target(["a function"])
    assert f"LAMBDALAB_AWS_ACCOUNT={sandbox['LAMBDALAB_AWS_ACCOUNT']}" in str(info.value)  # how to set it
    shown = capsys.readouterr().out
    assert f"AWS account {sandbox['LAMBDALAB_AWS_ACCOUNT']}, region us-east-1" in shown and "a function" in shown

    monkeypatch.setenv("LAMBDALAB_AWS_ACCOUNT", "999999999999")
    with pytest.raises(AccountNotConfirmed, match="LAMBDALAB_AWS_ACCOUNT=999999999999 but these credentials reach"):
        open_target(["a function"])

    assert everything(sandbox) == []
    budgets = aws_session(sandbox).client("budgets").describe_budgets(AccountId=sandbox["LAMBDALAB_AWS_ACCOUNT"])
    assert budgets.get("Budgets", []) == []  # not even the budget


def test_the_teardown_command_refuses_an_unconfirmed_account(sandbox) -> None:
    env = {k: v for k, v in sandbox.items() if k != "LAMBDALAB_AWS_ACCOUNT"}
    done = lambdalab(env, "teardown", "--all")
    assert done.returncode == 2 and "LAMBDALAB_AWS_ACCOUNT" in done.stderr


def test_a_run_is_prefixed_tagged_reported_and_torn_down_to_nothing(sandbox, function_code) -> None:
    assert on_aws()
    target = open_target(["a function", "a role", "a bucket", "a queue", "a table", "a rule", "a schedule", "an API"])
    account = sandbox["LAMBDALAB_AWS_ACCOUNT"]
    budget = target.client("budgets").describe_budget(AccountId=account, BudgetName=BUDGET_NAME)["Budget"]
    assert float(budget["BudgetLimit"]["Amount"]) == 5.0 and budget["BudgetLimit"]["Unit"] == "USD"
    assert budget["TimeUnit"] == "MONTHLY"
    name = target.name("fn")
    assert name.startswith("lw-") and name.endswith("-fn") and target.run.run_id in name

    role = target.create_role("fn-role", [target.logging_statement(name)])
    config = target.create_function("fn", function_code, "handler.lambda_handler", role=role)
    lam = target.client("lambda")
    assert lam.list_tags(Resource=config["FunctionArn"])["Tags"] == {"course": "serverless-workbook",
                                                                     "run": target.run.run_id}
    group = target.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"][0]
    assert group["retentionInDays"] == 1

    assert target.invoke("fn", {"n": 1})["Payload"] == {"ok": True}
    assert target.invoke("fn", {"n": 2})["Payload"] == {"ok": True}
    records = target.settle("fn", 2, timeout=30)
    assert [r.cold for r in records] == [True, False]
    assert records[0].report.init_ms > 0 and records[1].report.billed_ms >= 1

    s3, sqs = target.client("s3"), target.client("sqs")
    bucket = target.name("photos")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": target.tag_list()})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"1", b"2"):
        s3.put_object(Bucket=bucket, Key="photo.jpg", Body=body)
    s3.delete_object(Bucket=bucket, Key="photo.jpg")  # a delete marker over two versions
    lam.add_permission(FunctionName=name, StatementId="s3", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::{bucket}", SourceAccount=account)
    queue = sqs.create_queue(QueueName=target.name("jobs"), tags=target.tags)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name, Tags=target.tags)
    target.client("dynamodb").create_table(
        TableName=target.name("items"), BillingMode="PAY_PER_REQUEST", Tags=target.tag_list(),
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    events = target.client("events")
    events.put_rule(Name=target.name("hourly"), ScheduleExpression="rate(1 hour)", Tags=target.tag_list())
    events.put_targets(Rule=target.name("hourly"), Targets=[{"Id": "fn", "Arn": config["FunctionArn"]}])
    invoker = target.create_role("scheduler", [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                                "Resource": config["FunctionArn"]}], service="scheduler.amazonaws.com")
    target.client("scheduler").create_schedule(
        Name=target.name("every-hour"), ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": config["FunctionArn"], "RoleArn": invoker})
    api = target.client("apigatewayv2").create_api(Name=target.name("api"), ProtocolType="HTTP",
                                                   Target=config["FunctionArn"], Tags=target.tags)
    lam.add_permission(FunctionName=name, StatementId="api", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com", SourceAccount=account,
                       SourceArn=target.arn("execute-api", f"{api['ApiId']}/*/$default"))

    kinds = sorted({r.kind for r in target.leftovers()})
    assert kinds == sorted(["schedule", "rule", "HTTP API", "event source mapping", "function", "queue", "table",
                            "bucket", "log group", "role"])
    target.close()
    assert target.leftovers() == [] and everything(sandbox) == []
    # a second teardown (after an interrupted one) finds nothing and fails on nothing
    assert teardown.teardown(target.client, target.run.prefix) == []


INTERRUPTED = '''
import sys, time
from lambdalab.course.target import open_target
target = open_target(["a function", "a bucket", "a queue"])
role = target.create_role("fn-role", [target.logging_statement(target.name("fn"))])
target.create_function("fn", sys.argv[1], "handler.lambda_handler", role=role)
target.invoke("fn", {})
target.client("s3").create_bucket(Bucket=target.name("photos"))
target.client("s3").put_object(Bucket=target.name("photos"), Key="a.jpg", Body=b"x")
target.client("sqs").create_queue(QueueName=target.name("jobs"))
print("RUN", target.run.run_id, flush=True)
time.sleep(600)  # the learner's kernel, killed mid-lesson
'''


def test_an_interrupted_run_is_cleaned_by_teardown_all_and_status_shows_nothing(sandbox, function_code) -> None:
    kernel = subprocess.Popen([sys.executable, "-c", INTERRUPTED, str(function_code)], stdout=subprocess.PIPE,
                              text=True, env=sandbox)
    try:
        lines = iter(kernel.stdout.readline, "")
        line = next((line for line in lines if line.startswith("RUN ")), "")  # after the plan it prints
        assert line, "the interrupted run never got going"
        run_id = line.split()[1]
    finally:
        kernel.send_signal(signal.SIGKILL)
        kernel.wait()
        kernel.stdout.close()

    status = lambdalab(sandbox, "status")
    assert status.returncode == 0, status.stderr
    assert f"run {run_id} (started " in status.stdout and "function" in status.stdout and "bucket" in status.stdout

    other = lambdalab(sandbox, "teardown", "--run", "2001010000-beef")  # another run: this one is untouched
    assert other.returncode == 0 and "deleted" not in other.stdout
    assert f"run {run_id} (started " in lambdalab(sandbox, "status").stdout
    assert "not a run id" in lambdalab(sandbox, "teardown", "--run", "yesterday").stderr

    done = lambdalab(sandbox, "teardown", "--all")
    assert done.returncode == 0, done.stderr
    assert "deleted s3 bucket" in done.stdout and "nothing of every run remains" in done.stdout
    assert everything(sandbox) == []
    status = lambdalab(sandbox, "status")
    assert "0 run(s) with resources" in status.stdout

    again = lambdalab(sandbox, "teardown", "--all")  # rerunnable: nothing to delete, nothing fails
    assert again.returncode == 0, again.stderr
