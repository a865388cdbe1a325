"""Lesson 11 on the `aws` target: the notebook runs to the end against the `lambdalab cloud --iam`
stand-in (IAM enforced, as AWS always does), and afterwards the stand-in holds nothing of the run:
`target.close()` deleted it all, the state machine included. The local target runs the same
notebook under `make test` (nbval over notebooks/).

AWS behaviour followed: Step Functions invokes a Task's function as the state machine's role
(https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html); a function
that runs past its timeout ends with `Sandbox.Timedout`
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html).
"""

from __future__ import annotations

from lambdalab.course.target import teardown
from lambdalab.course.target.aws import aws_session, clients_of


def test_lesson_11_runs_on_aws_and_leaves_nothing(sandbox, run_notebook) -> None:
    shown = run_notebook("11_long_tasks")
    assert f"AWS account {sandbox['LAMBDALAB_AWS_ACCOUNT']}" in shown  # the plan, before anything was created
    assert "expected cost of a full run on aws" in shown
    assert "Sandbox.Timedout" in shown  # the single invocation timed out as Lambda reports it
    assert "SUCCEEDED" in shown and "every item done, in order" in shown  # the Map state did the whole job
    assert teardown.inventory(clients_of(aws_session(sandbox))) == []
