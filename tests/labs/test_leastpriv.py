"""Checks for lab `leastpriv` (notebook 05): the thumbnail function's role, and nothing more.

The track's `policy(...)` builds the role's permissions policy. The checks give it to a role in
the local cloud with IAM ENFORCEMENT ON (moto checks every call's signature and the caller's
policies), run the reference thumbnail function (solutions/thumbnail) under that role through
its S3 trigger, and:

- the function must work;
- without any one of the policy's S3 grants it must fail with AccessDenied (each is needed);
- a probe function with the same role must be refused everything else;
- the log-writing grants must cover the function's own log group and no other (Lambda writes
  the logs, not the handler, so they are checked with moto's policy evaluator);
- the linter (`lambdalab.course.iampolicy.lint`) must find nothing.

Run them with `check("leastpriv")` in a notebook or `lambdalab check leastpriv` in a shell.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lambdalab.course import iampolicy
from lambdalab.course.lessons import least_privilege, thumbnails
from lambdalab.course.lessons.least_privilege import ThumbnailStage
from lambdalab.course.paths import package, solution_dir
from lambdalab.course.target.local import LocalTarget

PHOTO = thumbnails.jpeg(thumbnails.quadrants(640, 480))
# What the function must not be able to do to its own log group, besides writing to it.
OTHER_LOG_ACTIONS = ("logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy",
                     "logs:GetLogEvents", "logs:FilterLogEvents", "logs:DeleteLogStream")


@pytest.fixture(scope="module")
def stage() -> Iterator[ThumbnailStage]:
    with LocalTarget(iam_enforcement=True, cpu_limit=False) as target:
        yield ThumbnailStage(target, package(solution_dir("thumbnail")), solution_dir("lesson05"))


@pytest.fixture(scope="module")
def policy(lab_dir, stage) -> dict[str, Any]:
    """The track's policy for this stage's buckets and function."""
    builder = least_privilege.policy_builder(lab_dir("leastpriv"))
    try:
        document = builder(**stage.names())
    except NotImplementedError as e:
        pytest.fail(f"NotImplementedError: {e}", pytrace=False)
    if not isinstance(document, dict):
        pytest.fail(f"policy(...) returned {type(document).__name__}, not a dict", pytrace=False)
    return document


@pytest.fixture(scope="module")
def installed(stage, policy) -> dict[str, Any]:
    """The policy, as the role's only permissions (IAM validates it)."""
    try:
        stage.use(policy)
    except stage.iam.exceptions.MalformedPolicyDocumentException as e:
        pytest.fail(f"IAM refuses the policy: {e.response['Error']['Message']}", pytrace=False)
    return policy


def test_policy_is_a_valid_document(policy, stage):
    """IAM accepts your policy document.

    Hint: return {"Version": "2012-10-17", "Statement": [...]}; each statement has "Effect": "Allow",
    an "Action" (written service:Action, e.g. "s3:GetObject") and a "Resource" (an ARN such as
    "arn:aws:s3:::my-bucket/*").
    """
    malformed = [str(f) for f in iampolicy.lint(policy) if f.rule in ("malformed", "version")]
    assert not malformed, "; ".join(malformed)
    try:
        stage.use(policy)
    except stage.iam.exceptions.MalformedPolicyDocumentException as e:
        pytest.fail(f"IAM refuses the policy: {e.response['Error']['Message']}", pytrace=False)


def test_linter_finds_nothing(policy):
    """The policy linter finds nothing to flag.

    Hint: no "*" anywhere: name each action (s3:GetObject, not s3:* or s3:Get*) and each resource by
    its ARN (the bucket's objects, arn:aws:s3:::<bucket>/*, not "*").
    """
    findings = iampolicy.lint(policy)
    assert not findings, "; ".join(str(f) for f in findings)


def test_function_works(installed, stage):
    """The thumbnail function works with your role (IAM enforcement on).

    Hint: the function reads each upload (s3:GetObject on the source bucket's objects) and writes
    its thumbnail (s3:PutObject on the thumbnail bucket's objects). Object ARNs end in /*.
    """
    upload = stage.upload(PHOTO)
    assert upload.ok, f"uploading {upload.key} failed: {upload.error}"


def test_every_grant_is_needed(installed, stage):
    """Without any one of your S3 permissions, the function fails with AccessDenied.

    Hint: keep only what the function calls: GetObject on the source bucket's objects and PutObject
    on the thumbnail bucket's objects, each once.
    """
    baseline = stage.upload(PHOTO)
    assert baseline.ok, f"the function must work with the whole policy first: {baseline.error}"
    results = stage.ablate(installed, PHOTO)
    unneeded = [str(r.grant) for r in results if r.ok]
    assert not unneeded, "the function worked without: " + "; ".join(unneeded) + " (so it does not need them)"
    other = [f"{r.grant}: {r.error}" for r in results if "AccessDenied" not in r.error]
    assert not other, "removing a permission should give AccessDenied, but: " + "; ".join(other)
    assert results, "the policy grants no S3 permission at all"


def test_logs_go_to_its_own_group_only(installed, stage):
    """Lambda can write the function's logs, into its own log group and no other.

    Hint: allow logs:CreateLogStream and logs:PutLogEvents on
    arn:aws:logs:<region>:<account>:log-group:/aws/lambda/<function name>:* and nothing else in logs.
    """
    access = stage.log_access(installed)
    missing = [action for action, where in access.items() if not where["own log group"]]
    assert not missing, f"the role cannot {' or '.join(missing)} in {stage.log_group}"
    elsewhere = [action for action, where in access.items() if where["another function's"]]
    assert not elsewhere, f"the role can {' and '.join(elsewhere)} in other functions' log groups too"
    extra = [a for a in OTHER_LOG_ACTIONS if least_privilege.allows(installed, a, stage.log_group_arn + ":*")
             or least_privilege.allows(installed, a, stage.log_group_arn)]
    assert not extra, f"the function only writes logs, but the role also allows {', '.join(extra)}"


def test_nothing_else_is_allowed(installed, stage):
    """Code running with your role can do nothing else (each call is decided by IAM enforcement).

    Hint: scope each permission to its bucket: GetObject only on the source bucket's objects, PutObject
    only on the thumbnail bucket's objects (writing into the source bucket would trigger the function
    again), and no other action.
    """
    outcomes = stage.probe()
    needed = {p.label for p in stage.probes() if p.needed}
    refused = [label for label in needed if least_privilege.probe_verdict(outcomes[label]) == "denied"]
    assert not refused, "the role cannot " + ", ".join(refused)
    allowed = [label for label, outcome in outcomes.items()
               if label not in needed and least_privilege.probe_verdict(outcome) == "allowed"]
    assert not allowed, "the role can also " + ", ".join(allowed)
