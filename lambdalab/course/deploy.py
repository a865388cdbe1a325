"""The thumbnail app deployed through a `CloudTarget`: what `lambdalab deploy` and lesson 15 create.

`deploy_thumbnail(target)` makes, in this order, everything `template.yaml` declares, with the
run's names and tags so the course's teardown finds all of it: the uploads bucket and the
thumbnails bucket (a second bucket, so the function never writes where it is triggered), the
function's log group with a retention and the role with lesson 05's least-privilege policy
(`CloudTarget.create_function` and `create_role`), the function from the package `lambdalab build`
makes (Pillow's Linux wheels included), S3's permission to invoke it (scoped with `SourceArn` and
`SourceAccount`), and the bucket notification. `deployments(clients)` finds the deployed apps by
their function's name, for `lambdalab deploy status` and `teardown`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdalab.course.lessons.least_privilege import policy_builder
from lambdalab.course.paths import lab_dir
from lambdalab.course.target.base import CloudTarget
from lambdalab.course.target.runs import PREFIX, Run, run_of

APP = "thumbnail"  # the app `lambdalab deploy` knows
FUNCTION = "thumbnail-app"
UPLOADS = "uploads"
THUMBNAILS = "thumbnails"
UPLOAD_PREFIX = "uploads/"
MEMORY_MB = 256  # as in template.yaml
TIMEOUT_S = 30
CREATES = ("an S3 bucket for uploads", "an S3 bucket for thumbnails", "a log group (1-day retention)",
           "an IAM role with lesson 05's least-privilege policy", "a Lambda function (thumbnails)",
           "S3's permission to invoke it", "the bucket notification")


@dataclass(frozen=True)
class Deployment:
    """A deployed thumbnail app: its run and the names and ARNs a learner uses."""

    run: Run
    function: str
    function_arn: str
    role_arn: str
    uploads_bucket: str
    thumbnails_bucket: str
    package_bytes: int

    def describe(self) -> str:
        return (f"run {self.run.run_id}: upload to s3://{self.uploads_bucket}/{UPLOAD_PREFIX}, thumbnails in "
                f"s3://{self.thumbnails_bucket}, function {self.function} "
                f"(package {self.package_bytes / 2**20:.1f} MiB)")


def least_privilege_policy(target: CloudTarget, code_dir: Path | None = None) -> dict[str, Any]:
    """Lesson 05's `policy(...)` (the `leastpriv` lab on the current track) for this target's names."""
    builder = policy_builder(code_dir or lab_dir("leastpriv"))
    return builder(source_bucket=target.name(UPLOADS), thumbnail_bucket=target.name(THUMBNAILS),
                   function_name=target.name(FUNCTION), region=target.region, account=target.account_id)


def _bucket(target: CloudTarget, base: str) -> str:
    name = target.create_bucket(base)
    target.client("s3").put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    return name


def deploy_thumbnail(target: CloudTarget, *, code_dir: Path | None = None, policy_dir: Path | None = None,
                     memory: int = MEMORY_MB, show: Callable[[str], Any] = print) -> Deployment:
    """Deploy the thumbnail app on `target` (see the module docstring); returns where it is."""
    code_dir = code_dir or lab_dir("thumbnail")
    uploads, thumbnails = _bucket(target, UPLOADS), _bucket(target, THUMBNAILS)
    show(f"buckets {uploads} and {thumbnails}")
    role = target.create_role(f"{FUNCTION}-role", least_privilege_policy(target, policy_dir)["Statement"])
    show(f"role {role} (lesson 05's policy, nothing else)")
    package = target.package(code_dir)
    config = target.create_function(FUNCTION, code_dir, "handler.lambda_handler", role=role, memory=memory,
                                    timeout=TIMEOUT_S,
                                    env={"THUMBNAIL_BUCKET": thumbnails, "SOURCE_PREFIX": UPLOAD_PREFIX})
    show(f"function {config['FunctionName']} ({len(package) / 2**20:.1f} MiB package, {memory} MB)")
    target.client("lambda").add_permission(
        FunctionName=config["FunctionName"], StatementId="s3-uploads", Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::{uploads}", SourceAccount=target.account_id)
    target.client("s3").put_bucket_notification_configuration(Bucket=uploads, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{
            "Id": "make-thumbnails", "LambdaFunctionArn": config["FunctionArn"], "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": UPLOAD_PREFIX}]}}}]})
    show(f"notification: s3://{uploads}/{UPLOAD_PREFIX}* -> {config['FunctionName']}")
    return Deployment(target.run, config["FunctionName"], config["FunctionArn"], role, uploads, thumbnails,
                      len(package))


def deployed_runs(lambda_client: Any, prefix: str = PREFIX) -> list[Run]:
    """The runs that hold a deployed thumbnail app (a function `lw-<run>-thumbnail-app`), oldest first."""
    found = set()
    for page in lambda_client.get_paginator("list_functions").paginate():
        for fn in page.get("Functions", []):
            name = fn["FunctionName"]
            run = run_of(name)
            if run is not None and name.startswith(prefix) and name == run.name(FUNCTION):
                found.add(run)
    return sorted(found, key=lambda r: r.run_id)
