"""A lesson's budget on the local target: created through the target, tagged with the run, listed
by the teardown's inventory (with its SNS alert topic) and deleted by it.

AWS behaviour followed: a budget is an account-level resource named per account
(https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_CreateBudget.html),
its tags are listed by its ARN
(https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_ListTagsForResource.html),
and AWS Budgets publishes alerts to an SNS topic whose policy allows `budgets.amazonaws.com`
(https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html).
"""

from __future__ import annotations

import json

from lambdalab.course.lessons.cost import create_budget
from lambdalab.course.target import open_target


def test_a_budget_is_tagged_listed_and_torn_down(monkeypatch) -> None:
    monkeypatch.delenv("LAMBDALAB_TARGET", raising=False)
    target = open_target(["a budget"], cpu_limit=False)
    try:
        budget = create_budget(target, "budget", 2.5)
        assert budget["BudgetName"] == target.name("budget")
        assert budget["BudgetLimit"] == {"Amount": "2.50", "Unit": "USD"}
        assert {t["Key"]: t["Value"] for t in budget["ResourceTags"]} == target.tags
        policy = json.loads(target.client("sns").get_topic_attributes(TopicArn=budget["AlertTopic"])
                            ["Attributes"]["Policy"])
        assert policy["Statement"][0]["Principal"] == {"Service": "budgets.amazonaws.com"}
        found = {(r.kind, r.name) for r in target.leftovers()}
        assert ("budget", target.name("budget")) in found
        assert ("topic", target.name("budget-alerts")) in found
        other = target.client("budgets", region_name="us-east-1")
        other.create_budget(AccountId=target.account_id, Budget={
            "BudgetName": "not-a-course-run", "BudgetType": "COST", "TimeUnit": "MONTHLY",
            "BudgetLimit": {"Amount": "1", "Unit": "USD"}})
        target.teardown()
        assert target.leftovers() == []
        names = [b["BudgetName"] for b in other.describe_budgets(AccountId=target.account_id)["Budgets"]]
        assert names == ["not-a-course-run"]  # the teardown deletes only what carries the run's prefix
    finally:
        target.close()
