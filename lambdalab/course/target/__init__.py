"""One way for notebooks to reach a cloud, two targets: `local` (default) and `aws`.

`open_target(creates=[...])` returns the target `LAMBDALAB_TARGET` names: a `LocalTarget` (a
`LocalCloud` in this process) or an `AwsTarget` (boto3 against a confirmed AWS account, or the
`lambdalab cloud --iam` stand-in at `AWS_ENDPOINT_URL`). Both are `CloudTarget`s: the same
boto3 calls, names with the run's prefix, tags, REPORT records from CloudWatch Logs, and a
teardown that proves nothing is left. `creates` is what the lesson will create, shown on `aws`
before the account is confirmed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from lambdalab.course.target.base import CloudTarget
from lambdalab.runtime.errors import LambdaLabError

TARGET_VARIABLE = "LAMBDALAB_TARGET"
TARGETS = ("local", "aws")


def target_name() -> str:
    """The target `LAMBDALAB_TARGET` names (default `local`); a clear error for anything else."""
    name = os.environ.get(TARGET_VARIABLE, "local").strip().lower() or "local"
    if name not in TARGETS:
        raise LambdaLabError(f"{TARGET_VARIABLE}={name!r}: choose one of {', '.join(TARGETS)}")
    return name


def on_aws() -> bool:
    """Whether this run goes to AWS (local-only cells check it to skip themselves)."""
    return target_name() == "aws"


def open_target(creates: Sequence[str], **local_options: Any) -> CloudTarget:
    """The target for this run; `local_options` configure the local cloud (e.g. retry delays)."""
    if on_aws():
        from lambdalab.course.target.aws import AwsTarget
        return AwsTarget(creates)
    from lambdalab.course.target.local import LocalTarget
    return LocalTarget(**local_options)
