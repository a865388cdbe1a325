"""`lambdalab deploy thumbnail | status | teardown` against the `lambdalab cloud --iam` stand-in:
the app template.yaml declares, deployed through the course's target under IAM enforcement, used
(an upload becomes a thumbnail in the other bucket), listed, and torn down to nothing.

AWS behaviour followed: S3 invokes a function for a bucket notification only with a resource-based
permission for `s3.amazonaws.com`, which should name the bucket (`SourceArn`) and its account
(`SourceAccount`) (https://docs.aws.amazon.com/lambda/latest/dg/with-s3.html); the notification's
`prefix` filter limits which keys trigger it
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-how-to-filtering.html); the
function's role carries only lesson 05's grants
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

from lambdalab.course import deploy
from lambdalab.course.lessons import thumbnails
from lambdalab.course.target import teardown
from lambdalab.course.target.aws import aws_session, clients_of
from lambdalab.course.target.runs import Run


def lambdalab(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lambdalab.cli.main", *args], capture_output=True, text=True,
                          env={**env, "LAMBDALAB_TRACK": "solutions"}, timeout=300)


def test_deploy_refuses_an_unconfirmed_account_and_creates_nothing(sandbox) -> None:
    env = {k: v for k, v in sandbox.items() if k != "LAMBDALAB_AWS_ACCOUNT"}
    done = lambdalab(env, "deploy", "thumbnail")
    assert done.returncode == 2 and "LAMBDALAB_AWS_ACCOUNT" in done.stderr
    assert "an IAM role with lesson 05's least-privilege policy" in done.stdout  # the plan was shown first
    assert teardown.inventory(clients_of(aws_session(sandbox))) == []


def test_deploy_use_status_teardown(sandbox) -> None:
    done = lambdalab(sandbox, "deploy", "thumbnail")
    assert done.returncode == 0, done.stderr
    run = Run(re.search(r"lambdalab deploy teardown --run (\S+)", done.stdout)[1])
    clients = clients_of(aws_session(sandbox))
    function = run.name(deploy.FUNCTION)
    uploads, thumbs = run.name(deploy.UPLOADS), run.name(deploy.THUMBNAILS)

    # the permission is scoped to the uploads bucket and this account
    (statement,) = json.loads(clients("lambda").get_policy(FunctionName=function)["Policy"])["Statement"]
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == f"arn:aws:s3:::{uploads}"
    assert statement["Condition"]["StringEquals"]["AWS:SourceAccount"] == sandbox["LAMBDALAB_AWS_ACCOUNT"]
    role = clients("lambda").get_function_configuration(FunctionName=function)["Role"].rsplit("/", 1)[-1]
    policy = clients("iam").get_role_policy(RoleName=role, PolicyName="lesson")["PolicyDocument"]
    assert {s["Sid"] for s in policy["Statement"]} == {"ReadUploads", "WriteThumbnails", "WriteOwnLogs"}
    assert clients("iam").list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []

    s3 = clients("s3")
    photo = thumbnails.photo_jpeg(800, 600)
    s3.put_object(Bucket=uploads, Key="elsewhere/ignored.jpg", Body=photo)  # outside the prefix: no event
    s3.put_object(Bucket=uploads, Key="uploads/cat.jpg", Body=photo)
    deadline = time.monotonic() + 60
    keys: list[str] = []
    while time.monotonic() < deadline and not keys:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=thumbs).get("Contents", [])]
        time.sleep(0.5)
    assert keys == ["thumb-uploads/cat.jpg"]

    status = lambdalab(sandbox, "deploy", "status")
    assert status.returncode == 0, status.stderr
    assert "1 thumbnail app(s) deployed" in status.stdout and function in status.stdout
    assert f"s3://{thumbs}: 1 object(s)" in status.stdout

    down = lambdalab(sandbox, "deploy", "teardown")
    assert down.returncode == 0, down.stderr
    assert f"run {run.run_id}: nothing left" in down.stdout
    assert teardown.inventory(clients) == []
    assert "0 thumbnail app(s) deployed" in lambdalab(sandbox, "deploy", "status").stdout
