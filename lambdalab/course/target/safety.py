"""What stands between a notebook and a real AWS bill: the account confirmation and the budget.

Before the `aws` target creates anything it shows the account id STS reports, the region and what
the lesson will create, and goes on only if `LAMBDALAB_AWS_ACCOUNT` names that same account: a
learner whose default credentials point at their employer's production account is stopped before
the first call that would change it. Once per account, a monthly AWS Budget with e-mail alerts
(amount and address from `LAMBDALAB_BUDGET_USD` and `LAMBDALAB_BUDGET_EMAIL`) is created.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdalab.runtime.errors import LambdaLabError

ACCOUNT_VARIABLE = "LAMBDALAB_AWS_ACCOUNT"
BUDGET_NAME = "serverless-workbook-monthly"
DEFAULT_BUDGET_USD = "5"


class AccountNotConfirmed(LambdaLabError):
    """The credentials reach an account the learner has not confirmed for the course."""


@dataclass(frozen=True)
class Plan:
    """What a lesson will create on the aws target, shown before anything is created."""

    account_id: str
    region: str
    prefix: str
    creates: tuple[str, ...]

    def text(self) -> str:
        lines = [f"AWS account {self.account_id}, region {self.region}",
                 f"every name starts with {self.prefix} and is tagged course + run",
                 "this lesson will create: " + ", ".join(self.creates)]
        return "\n".join(lines)


def confirm_account(reported: str, env: Mapping[str, str] | None = None) -> None:
    """Raise `AccountNotConfirmed` unless `LAMBDALAB_AWS_ACCOUNT` equals the account STS reports."""
    env = os.environ if env is None else env
    confirmed = env.get(ACCOUNT_VARIABLE, "").strip()
    how = (f"If this is your sandbox account, set {ACCOUNT_VARIABLE}={reported} (e.g. `export "
           f"{ACCOUNT_VARIABLE}={reported}` before starting Jupyter) and run the cell again; otherwise "
           f"choose the sandbox's credentials (AWS_PROFILE) first.")
    if not confirmed:
        raise AccountNotConfirmed(f"{ACCOUNT_VARIABLE} is not set: these credentials reach AWS account "
                                  f"{reported}, and the course creates nothing in an account you have not "
                                  f"confirmed. {how}")
    if not re.fullmatch(r"\d{12}", confirmed):
        raise AccountNotConfirmed(f"{ACCOUNT_VARIABLE}={confirmed!r} is not a 12-digit account id. {how}")
    if confirmed != reported:
        raise AccountNotConfirmed(f"{ACCOUNT_VARIABLE}={confirmed} but these credentials reach account "
                                  f"{reported}: nothing was created. {how}")


def ensure_budget(session: Any, account_id: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The account's monthly course budget, created on first use with alerts at 50% and 100% of
    actual spend to the settings' e-mail (none when unset); returns it as DescribeBudget does."""
    env = os.environ if env is None else env
    budgets = session.client("budgets", region_name="us-east-1")  # the Budgets API lives in us-east-1
    try:
        return budgets.describe_budget(AccountId=account_id, BudgetName=BUDGET_NAME)["Budget"]
    except budgets.exceptions.NotFoundException:
        pass
    amount = env.get("LAMBDALAB_BUDGET_USD", DEFAULT_BUDGET_USD)
    email = env.get("LAMBDALAB_BUDGET_EMAIL", "").strip()
    alerts = [{"Notification": {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN",
                                "Threshold": float(share), "ThresholdType": "PERCENTAGE"},
               "Subscribers": [{"SubscriptionType": "EMAIL", "Address": email}]} for share in (50, 100)]
    budgets.create_budget(
        AccountId=account_id,
        Budget={"BudgetName": BUDGET_NAME, "BudgetType": "COST", "TimeUnit": "MONTHLY",
                "BudgetLimit": {"Amount": str(amount), "Unit": "USD"}},
        NotificationsWithSubscribers=alerts if email else [])
    return budgets.describe_budget(AccountId=account_id, BudgetName=BUDGET_NAME)["Budget"]
