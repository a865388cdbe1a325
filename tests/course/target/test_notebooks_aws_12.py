"""Lesson 12 on the `aws` target: the notebook runs to the end against the `lambdalab cloud --iam`
stand-in (IAM enforced, as AWS always does), and afterwards the stand-in holds nothing of the run:
no secret, no parameter, no function, role or log group (`target.close()` deleted them). The
local target runs the same notebook under `make test` (nbval over notebooks/).

AWS behaviour followed: a secret deleted with `ForceDeleteWithoutRecovery` is gone at once, one
deleted without it stays for a 7 to 30 day recovery window
(https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteSecret.html).
"""

from __future__ import annotations

from lambdalab.course.target import teardown
from lambdalab.course.target.aws import aws_session, clients_of


def test_lesson_12_runs_on_aws_and_leaves_nothing(sandbox, run_notebook) -> None:
    shown = run_notebook("12_secrets")
    assert f"AWS account {sandbox['LAMBDALAB_AWS_ACCOUNT']}" in shown  # the plan, before anything was created
    assert "expected cost of a full run on aws" in shown
    assert "AccessDeniedException" in shown
    clients = clients_of(aws_session(sandbox))
    assert teardown.inventory(clients) == []
    assert clients("secretsmanager").list_secrets(IncludePlannedDeletion=True)["SecretList"] == []
