"""The `aws` target: boto3 against a real account (or a stand-in at `AWS_ENDPOINT_URL`).

Credentials come from boto3's standard chain, or the named profile in `AWS_PROFILE`; the course
never writes them anywhere. Opening the target asks STS which account the credentials reach,
prints it with the region and what the lesson will create, and refuses (`AccountNotConfirmed`)
unless `LAMBDALAB_AWS_ACCOUNT` names that account; then it makes sure the account's monthly budget
exists and shows it. Functions are packaged for Lambda's platform, or for this machine when
`AWS_ENDPOINT_URL` points at a stand-in that runs them here (`lambdalab cloud --iam`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lambdalab.build.targets import local_target, upload_target
from lambdalab.course.target.base import CloudTarget
from lambdalab.course.target.runs import Run
from lambdalab.course.target.safety import Plan, confirm_account, ensure_budget

DEFAULT_REGION = "us-east-1"


def aws_session(env: Mapping[str, str] | None = None) -> Any:
    """A boto3 session from the standard credential chain (`AWS_PROFILE` names a profile)."""
    import boto3

    env = os.environ if env is None else env
    session = boto3.session.Session(profile_name=env.get("AWS_PROFILE") or None)
    if session.region_name is None:
        session = boto3.session.Session(profile_name=env.get("AWS_PROFILE") or None, region_name=DEFAULT_REGION)
    return session


def clients_of(session: Any) -> Callable[[str], Any]:
    """One boto3 client per service for `session`, made on first use (making one takes a while)."""
    return functools.cache(session.client)


def confirmed_account(session: Any, env: Mapping[str, str] | None = None) -> str:
    """STS's account id for the session, once `LAMBDALAB_AWS_ACCOUNT` confirms it."""
    account = session.client("sts").get_caller_identity()["Account"]
    confirm_account(account, env)
    return account


class AwsTarget(CloudTarget):
    """A lesson's run in an AWS account the learner confirmed."""

    kind = "aws"

    def __init__(self, creates: Sequence[str], *, run: Run | None = None, env: Mapping[str, str] | None = None,
                 show: Any = print):
        env = os.environ if env is None else env
        session = aws_session(env)
        account = session.client("sts").get_caller_identity()["Account"]
        run = run or Run.new()
        show(Plan(account, session.region_name, run.prefix, tuple(creates)).text())
        confirm_account(account, env)  # before anything is created
        stand_in = bool(env.get("AWS_ENDPOINT_URL"))
        super().__init__(session, run, account, local_target() if stand_in else upload_target("python3.12"),
                         online_build=not stand_in)
        self.endpoint_url = env.get("AWS_ENDPOINT_URL") or None
        self.budget = ensure_budget(session, account, env)
        limit = self.budget["BudgetLimit"]
        show(f"monthly budget {self.budget['BudgetName']}: {limit['Amount']} {limit['Unit']}")
