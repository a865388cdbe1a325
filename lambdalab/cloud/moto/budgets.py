"""Patches to moto's AWS Budgets (`moto.budgets`): a budget's tags, as Budgets keeps them.

moto drops `CreateBudget`'s `ResourceTags` and answers `ListTagsForResource` with an unknown
action. Budgets stores the tags with the budget, lists them by the budget's ARN
(`arn:aws:budgets::<account>:budget/<name>`, no region) and forgets them when the budget is
deleted; an ARN naming no budget is a NotFoundException.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from lambdalab.cloud.moto import Patches

_TAGS = "lambdalab_resource_tags"  # where a moto Budget keeps its tags while patched
_ARN_PREFIX = "arn:aws:budgets::"


def install(patches: Patches) -> None:
    from moto.budgets.responses import BudgetsResponse

    def create_with_tags(original: Callable) -> Callable:
        def create_budget(self: Any) -> str:
            answer = original(self)
            tags = self._get_param("ResourceTags") or []
            budget = self.backend.budgets[self._get_param("AccountId")][self._get_param("Budget")["BudgetName"]]
            setattr(budget, _TAGS, [{"Key": t["Key"], "Value": t["Value"]} for t in tags])
            return answer
        return create_budget

    def list_tags_for_resource(self: Any) -> str:
        budget = _budget_of(self.backend, self._get_param("ResourceARN"))
        return json.dumps({"ResourceTags": getattr(budget, _TAGS, [])})

    patches.replace(BudgetsResponse, "create_budget", create_with_tags)
    patches.add(BudgetsResponse, "list_tags_for_resource", list_tags_for_resource)


def _budget_of(backend: Any, arn: str) -> Any:
    from moto.budgets.exceptions import NotFoundException

    account, _, name = arn.removeprefix(_ARN_PREFIX).partition(":budget/")
    if not arn.startswith(_ARN_PREFIX) or name not in backend.budgets.get(account, {}):
        raise NotFoundException(f"Unable to get budget tags: {arn} - the budget doesn't exist.")
    return backend.budgets[account][name]
