"""Lesson 13 on the `aws` target: the notebook runs to the end against the `lambdalab cloud --iam`
stand-in (IAM enforced, as AWS always does), and afterwards the stand-in holds nothing of the run,
its CloudWatch alarm and REST API included: `target.close()` deleted it all. The local target runs the same
notebook under `make test` (nbval over notebooks/).

AWS behaviour followed: every resource can be listed by name per service
(https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/supported-services.html);
an alarm is listed by DescribeAlarms with AlarmNamePrefix
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html).
"""

from __future__ import annotations

from lambdalab.course.target import teardown
from lambdalab.course.target.aws import aws_session, clients_of


def test_lesson_13_runs_on_aws_and_leaves_nothing(sandbox, run_notebook) -> None:
    shown = run_notebook("13_observability")
    assert f"AWS account {sandbox['LAMBDALAB_AWS_ACCOUNT']}" in shown  # the plan, before anything was created
    assert "expected cost of a full run on aws" in shown
    assert "state: ALARM" in shown and "state: OK" in shown
    assert "/_aws/execute-api/" in shown and "tracingEnabled: True" in shown  # the stand-in's stage URL
    assert "AWS::ApiGateway::Stage" in shown and "service map of" in shown  # the trace starts at the API
    assert teardown.inventory(clients_of(aws_session(sandbox))) == []
