"""Lesson 14 on the `aws` target: the notebook runs to the end against the `lambdalab cloud --iam`
stand-in (IAM enforced, as AWS always does), and afterwards the stand-in holds nothing of the run,
its budget and the budget's SNS topic included: `target.close()` deleted it all. The local target
runs the same notebook under `make test` (nbval over notebooks/).

AWS behaviour followed: budgets are listed per account with DescribeBudgets and deleted by name
(https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_DescribeBudgets.html,
https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_DeleteBudget.html);
every other resource is listed by name per service, since the Resource Groups Tagging API does not
cover IAM (https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/supported-services.html).
"""

from __future__ import annotations

from lambdalab.course.target import teardown
from lambdalab.course.target.aws import aws_session, clients_of
from lambdalab.course.target.safety import BUDGET_NAME


def test_lesson_14_runs_on_aws_and_leaves_nothing(sandbox, run_notebook) -> None:
    shown = run_notebook("14_cost")
    assert f"AWS account {sandbox['LAMBDALAB_AWS_ACCOUNT']}" in shown  # the plan, before anything was created
    assert "expected cost of a full run on aws" in shown
    assert "local-only cell, skipped on aws" in shown  # the meter's cell
    assert "tags: {'course': 'serverless-workbook', 'run': " in shown  # the lesson's budget was tagged
    clients = clients_of(aws_session(sandbox))
    assert teardown.inventory(clients) == []
    budgets = clients("budgets").describe_budgets(AccountId=sandbox["LAMBDALAB_AWS_ACCOUNT"])["Budgets"]
    assert [b["BudgetName"] for b in budgets] == [BUDGET_NAME]  # only the account's course budget stays
