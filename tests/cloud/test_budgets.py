"""AWS Budgets in the local cloud: a budget's tags are kept as Budgets keeps them.

AWS behaviour followed: `CreateBudget` takes `ResourceTags`, `ListTagsForResource` lists them by
the budget's ARN `arn:aws:budgets::<account>:budget/<name>` (no Region), and an ARN naming no
budget is a `NotFoundException`
(https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_CreateBudget.html,
https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_ListTagsForResource.html,
https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsbudgetservice.html).
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

TAGS = [{"Key": "course", "Value": "serverless-workbook"}, {"Key": "run", "Value": "2612070240-abcd"}]


def budget(name: str) -> dict:
    return {"BudgetName": name, "BudgetType": "COST", "TimeUnit": "MONTHLY",
            "BudgetLimit": {"Amount": "1.00", "Unit": "USD"}}


def test_a_budget_keeps_its_tags_until_it_is_deleted(fresh) -> None:
    budgets = fresh.client("budgets", region_name="us-east-1")
    account = fresh.account_id
    budgets.create_budget(AccountId=account, Budget=budget("tagged"), ResourceTags=TAGS)
    budgets.create_budget(AccountId=account, Budget=budget("untagged"))
    arn = f"arn:aws:budgets::{account}:budget/tagged"
    assert budgets.list_tags_for_resource(ResourceARN=arn)["ResourceTags"] == TAGS
    assert budgets.list_tags_for_resource(
        ResourceARN=f"arn:aws:budgets::{account}:budget/untagged")["ResourceTags"] == []
    assert "ResourceTags" not in budgets.describe_budget(AccountId=account, BudgetName="tagged")["Budget"]
    budgets.delete_budget(AccountId=account, BudgetName="tagged")
    with pytest.raises(ClientError) as gone:
        budgets.list_tags_for_resource(ResourceARN=arn)
    assert gone.value.response["Error"]["Code"] == "NotFoundException"


def test_an_arn_that_names_no_budget_is_not_found(fresh) -> None:
    budgets = fresh.client("budgets", region_name="us-east-1")
    for arn in (f"arn:aws:budgets::{fresh.account_id}:budget/nobody", "arn:aws:s3:::a-bucket"):
        with pytest.raises(ClientError) as missing:
            budgets.list_tags_for_resource(ResourceARN=arn)
        assert missing.value.response["Error"]["Code"] == "NotFoundException"
