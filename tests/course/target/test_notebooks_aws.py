"""Lessons 01, 04, 05 and 06 on the `aws` target: each notebook runs to the end against the
`lambdalab cloud --iam` stand-in (IAM enforced, as AWS always does), and afterwards the stand-in
holds nothing of the run: `target.close()` deleted it all. The local target runs the same
notebooks under `make test` (nbval over notebooks/). Two listings prove nothing is left: the
course's own inventory (every name with the course's prefix), and, independently of it, every
function, event source mapping, role, bucket, queue, table, log group, rule, schedule and HTTP API
in the stand-in whatever its name (the stand-in starts empty, so anything there came from a lesson).

AWS behaviour followed: every resource can be listed by name per service, since the Resource
Groups Tagging API does not cover IAM, Scheduler or API Gateway v2
(https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/supported-services.html);
Lambda's loop detection stops a recursive S3 loop after about 16 invocations
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-recursion.html).
"""

from __future__ import annotations

import pytest

from lambdalab.course.target import teardown
from lambdalab.course.target.aws import aws_session, clients_of


def everything(session) -> dict[str, list[str]]:
    """Every resource of the kinds issue 14's acceptance names, listed with plain boto3 calls."""
    lam, events = session.client("lambda"), session.client("events")
    return {
        "function": [f["FunctionName"] for f in lam.list_functions()["Functions"]],
        "event source mapping": [m["UUID"] for m in lam.list_event_source_mappings()["EventSourceMappings"]
                                 if m.get("State") != "Deleting"],
        "role": [r["RoleName"] for r in session.client("iam").list_roles()["Roles"]],
        "bucket": [b["Name"] for b in session.client("s3").list_buckets()["Buckets"]],
        "queue": session.client("sqs").list_queues().get("QueueUrls", []),
        "table": session.client("dynamodb").list_tables()["TableNames"],
        "log group": [g["logGroupName"] for g in session.client("logs").describe_log_groups()["logGroups"]],
        "rule": [r["Name"] for bus in events.list_event_buses()["EventBuses"]
                 for r in events.list_rules(EventBusName=bus["Name"])["Rules"]],
        "schedule": [x["Name"] for x in session.client("scheduler").list_schedules()["Schedules"]],
        "HTTP API": [a["Name"] for a in session.client("apigatewayv2").get_apis()["Items"]],
    }




@pytest.mark.parametrize("name", ["01_triggers_and_events", "04_thumbnail_service", "05_least_privilege",
                                  "06_recursive_loops"])
def test_a_lesson_runs_on_aws_and_leaves_nothing(sandbox, run_notebook, name) -> None:
    shown = run_notebook(name)
    assert f"AWS account {sandbox['LAMBDALAB_AWS_ACCOUNT']}" in shown  # the plan, before anything was created
    assert "expected cost of a full run on aws" in shown
    session = aws_session(sandbox)
    assert teardown.inventory(clients_of(session)) == []
    assert {kind: names for kind, names in everything(session).items() if names} == {}
