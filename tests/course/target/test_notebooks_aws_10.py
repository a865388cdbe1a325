"""Lesson 10 on the `aws` target: the notebook runs to the end against the `lambdalab cloud --iam`
stand-in (IAM enforced, as AWS always does: every function's role, the rules' permissions to
invoke functions and to send to the queues must be right), and afterwards the stand-in holds
nothing of the run. The local target runs the same notebook under `make test` (nbval).

AWS behaviour followed: a rule's Lambda target needs the function's resource-based policy to allow
events.amazonaws.com for the rule (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html);
rules live on their bus and are listed per bus, and a custom bus is deleted after its rules
(https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_DeleteEventBus.html).
"""

from __future__ import annotations

from lambdalab.course.target import teardown
from lambdalab.course.target.aws import aws_session, clients_of


def test_lesson_10_runs_on_aws_and_leaves_nothing(sandbox, run_notebook) -> None:
    shown = run_notebook("10_event_driven")
    assert f"AWS account {sandbox['LAMBDALAB_AWS_ACCOUNT']}" in shown  # the plan, before anything was created
    assert "expected cost of a full run on aws" in shown
    assert "local-only cell, skipped on aws" in shown  # the email DLQ waits for Lambda's minutes-long retries
    assert "'ERROR_CODE': 'NO_RESOURCE'" in shown  # EventBridge's DLQ, through the stand-in's delivery
    assert teardown.inventory(clients_of(aws_session(sandbox))) == []
