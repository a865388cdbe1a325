"""Lesson 05's instruments: grants and their ablation, and roles in the local cloud under moto's IAM
enforcement (the thumbnail stage, probes, audits)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdalab.course.iampolicy import Finding, lint
from lambdalab.course.lessons import least_privilege, thumbnails
from lambdalab.course.lessons.least_privilege import Grant, ThumbnailStage
from lambdalab.course.paths import package
from lambdalab.course.target.local import LocalTarget

ROOT = Path(__file__).resolve().parents[3]
ACCOUNT, REGION = "123456789012", "us-east-1"
LEAST = least_privilege.policy_builder(ROOT / "solutions" / "leastpriv")("photos", "photos-thumbnails", "thumbnails",
                                                                         REGION, ACCOUNT)


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "arn:aws:s3:::photos/*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


# --- grants -----------------------------------------------------------------------------------------


def test_grants_split_statements_into_single_permissions():
    policy = doc(allow(["s3:GetObject", "s3:GetObjectTagging"], ["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"], Sid="Read"),
                 {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"},
                 {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert least_privilege.grants(policy) == [
        Grant(0, "s3:GetObject", "arn:aws:s3:::a/*"), Grant(0, "s3:GetObject", "arn:aws:s3:::b/*"),
        Grant(0, "s3:GetObjectTagging", "arn:aws:s3:::a/*"), Grant(0, "s3:GetObjectTagging", "arn:aws:s3:::b/*"),
        Grant(2, None, None)]
    assert str(Grant(2, None, None)) == "Statement[2] as a whole"
    assert str(Grant(0, "s3:GetObject", "arn:aws:s3:::a/*")) == "s3:GetObject on arn:aws:s3:::a/*"


def test_without_removes_exactly_one_grant():
    policy = doc(allow(["s3:GetObject", "s3:GetObjectTagging"], ["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"], Sid="Read",
                       Condition={"Bool": {"aws:SecureTransport": "true"}}),
                 allow("s3:PutObject", "arn:aws:s3:::c/*"))
    for grant in least_privilege.grants(policy):
        smaller = least_privilege.without(policy, grant)
        remaining = {(g.action, g.resource) for g in least_privilege.grants(smaller)}
        assert remaining == ({(g.action, g.resource) for g in least_privilege.grants(policy)}
                             - {(grant.action, grant.resource)})
        assert lint(smaller) == []  # still a valid document: Sids unique, conditions kept
        assert all(st.get("Condition") for st in smaller["Statement"][:-1])
    assert policy["Statement"][0]["Action"] == ["s3:GetObject", "s3:GetObjectTagging"]  # the original is untouched
    smaller["Statement"][-1]["Resource"] = "changed"
    assert policy["Statement"][1]["Resource"] == "arn:aws:s3:::c/*"  # and shares nothing with the copy
    only = doc(allow("s3:GetObject"))
    assert least_privilege.without(only, least_privilege.grants(only)[0])["Statement"] == []
    with pytest.raises(ValueError, match="does not grant"):
        least_privilege.without(only, Grant(0, "s3:PutObject", "arn:aws:s3:::photos/*"))
    with pytest.raises(ValueError, match="no Statement\\[3\\]"):
        least_privilege.without(only, Grant(3, "s3:GetObject", "arn:aws:s3:::photos/*"))


def test_allows_uses_motos_evaluator_on_named_resources():
    stream = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/thumbnails:log-stream:abc"
    assert least_privilege.allows(LEAST, "logs:PutLogEvents", stream)
    assert not least_privilege.allows(LEAST, "logs:PutLogEvents", stream.replace("thumbnails", "payroll"))
    assert least_privilege.allows(LEAST, "s3:GetObject", "arn:aws:s3:::photos/uploads/a.jpg")
    assert not least_privilege.allows(LEAST, "s3:PutObject", "arn:aws:s3:::photos/uploads/a.jpg")


def test_policy_builder_reports_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="policy.py does not exist"):
        least_privilege.policy_builder(tmp_path)
    (tmp_path / "policy.py").write_text("POLICY = {}\n")
    with pytest.raises(AttributeError, match="defines no function policy"):
        least_privilege.policy_builder(tmp_path)
    (tmp_path / "policy.py").write_text("def policy(**names):\n    return names\n")
    assert least_privilege.policy_builder(tmp_path)(a=1) == {"a": 1}  # imported afresh: the edit counts


def test_ablate_restores_the_policy_even_when_the_workload_raises():
    installed: list[Any] = []

    def run() -> tuple[bool, str]:
        if len(installed) == 2:
            raise RuntimeError("boom")
        return False, "AccessDenied"

    with pytest.raises(RuntimeError, match="boom"):
        least_privilege.ablate(LEAST, installed.append, run)
    assert installed[-1] == LEAST and len(installed) == 3
    installed.clear()
    results = least_privilege.ablate(LEAST, installed.append, lambda: (False, "AccessDenied"),
                                     only=lambda g: g.action.startswith("s3:"))
    assert [str(r.grant) for r in results] == ["s3:GetObject on arn:aws:s3:::photos/*",
                                               "s3:PutObject on arn:aws:s3:::photos-thumbnails/*"]
    assert installed[-1] == LEAST


# --- roles under moto's IAM enforcement ---------------------------------------------------------------


@pytest.fixture(scope="module")
def stage() -> Iterator[ThumbnailStage]:
    with LocalTarget(iam_enforcement=True, cpu_limit=False) as target:
        yield ThumbnailStage(target, package(ROOT / "solutions" / "thumbnail"), ROOT / "solutions" / "lesson05")


@pytest.fixture(scope="module")
def least(stage) -> dict[str, Any]:
    """The lab's least-privilege policy for the stage's names (every one carries the run's prefix)."""
    return least_privilege.policy_builder(ROOT / "solutions" / "leastpriv")(**stage.names())


PHOTO = thumbnails.jpeg(thumbnails.quadrants(640, 480))


def demo(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "solutions" / "lesson05" / name).read_text())


def test_the_least_privilege_role_works_and_each_s3_grant_is_needed(stage, least):
    run = stage.target.run
    assert stage.names() == {"source_bucket": run.name("photos"), "thumbnail_bucket": run.name("photos-thumbnails"),
                             "function_name": run.name("thumbnails"), "region": REGION, "account": ACCOUNT}
    stage.use(least)
    upload = stage.upload(PHOTO)
    assert upload.ok and upload.attempts == 1 and upload.error == ""
    results = stage.ablate(least, PHOTO)
    assert [(str(r.grant), r.ok) for r in results] == [(f"s3:GetObject on arn:aws:s3:::{stage.source}/*", False),
                                                        (f"s3:PutObject on arn:aws:s3:::{stage.thumbs}/*", False)]
    assert "AccessDenied" in results[0].error and "GetObject operation" in results[0].error
    assert "AccessDenied" in results[1].error and "PutObject operation" in results[1].error
    assert stage.upload(PHOTO).ok  # ablate put the whole policy back


def test_a_missing_permission_fails_with_access_denied_in_the_logs(stage):
    """The lesson's first attempt, written for plain names, applies to the run's names: it forgets PutObject."""
    stage.use(stage.as_written(demo("first-attempt-policy.json")))
    upload = stage.upload(PHOTO, key="forgot-put.jpg")
    assert not upload.ok and upload.attempts == 1  # the stage turns Lambda's retries off
    assert upload.error == ("AccessDenied: An error occurred (AccessDenied) when calling the PutObject operation: "
                            "Access Denied")
    assert not stage.thumbnail_exists(upload.key)
    lines = stage.log_lines(upload.key)
    assert [(line["outcome"], line["error"]) for line in lines] == [("retry", "AccessDenied")]


def test_extra_grants_are_found_by_ablation_and_probes(stage, least):
    generous = json.loads(json.dumps(least))
    generous["Statement"].append(allow("s3:ListBucket", f"arn:aws:s3:::{stage.source}", Sid="ListUploads"))
    generous["Statement"].append(allow("s3:PutObject", f"arn:aws:s3:::{stage.source}/*", Sid="WriteAnywhere"))
    stage.use(generous)
    assert lint(generous) == []  # named resources only: the linter cannot know they are not needed
    results = stage.ablate(generous, PHOTO)
    assert [str(r.grant) for r in results if r.ok] == [f"s3:ListBucket on arn:aws:s3:::{stage.source}",
                                                       f"s3:PutObject on arn:aws:s3:::{stage.source}/*"]


def test_probes_find_the_extra_grants(stage, least):
    """https://docs.aws.amazon.com/AmazonS3/latest/userguide/list_amazons3.html: ListObjectsV2 needs
    s3:ListBucket on arn:aws:s3:::<bucket>, which the generous policy grants."""
    generous = json.loads(json.dumps(least))
    generous["Statement"].append(allow("s3:ListBucket", f"arn:aws:s3:::{stage.source}", Sid="ListUploads"))
    generous["Statement"].append(allow("s3:PutObject", f"arn:aws:s3:::{stage.source}/*", Sid="WriteAnywhere"))
    stage.use(generous)
    outcomes = stage.probe()
    allowed = {label for label, outcome in outcomes.items() if least_privilege.probe_verdict(outcome) == "allowed"}
    assert allowed == {"read an upload", "write a thumbnail", "list the source bucket", "write into the source bucket"}


def test_probes_compare_administrator_and_least_privilege(stage, least):
    stage.use(demo("AdministratorAccess.json"))
    admin = stage.probe()
    assert {least_privilege.probe_verdict(o) for o in admin.values()} == {"allowed"}
    stage.use(least)
    probed = stage.probe()
    assert probed["read an upload"] == probed["write a thumbnail"] == "allowed"
    denied = {label: outcome for label, outcome in probed.items()
              if label not in ("read an upload", "write a thumbnail")}
    assert set(denied.values()) == {"AccessDenied", "AccessDeniedException"}  # S3 and IAM; DynamoDB's JSON code
    assert denied["list DynamoDB tables"] == "AccessDeniedException"
    assert least_privilege.probe_verdict("NoSuchKey") == "allowed"  # authorized, then failed for another reason


def test_an_attached_administrator_policy_is_flagged_by_the_audit(stage, least):
    iam = stage.iam
    arn = iam.create_policy(PolicyName="AdministratorAccess",
                            PolicyDocument=json.dumps(demo("AdministratorAccess.json")))["Policy"]["Arn"]
    try:
        stage.use(least)
        iam.attach_role_policy(RoleName=stage.role, PolicyArn=arn)
        audit = least_privilege.audit_role(iam, stage.role)
        assert audit == {"inline:permissions": [], arn: [Finding("admin", 0, audit[arn][0].reason)]}
        stage.use(least)  # replaces every permission: the managed policy is detached
        assert least_privilege.role_policies(iam, stage.role) == {"inline:permissions": least}
        stage.use(None)
        assert least_privilege.role_policies(iam, stage.role) == {}
        assert not stage.upload(PHOTO).ok
    finally:
        iam.delete_policy(PolicyArn=arn)
        stage.use(least)


def test_malformed_policies_are_refused_by_iam(stage):
    with pytest.raises(stage.iam.exceptions.MalformedPolicyDocumentException, match="prefaced by a vendor"):
        stage.use(doc(allow("GetObject")))


def test_log_access_is_judged_on_the_log_group_arns(stage, least):
    assert stage.log_access(least) == {
        "logs:CreateLogStream": {"own log group": True, "another function's": False},
        "logs:PutLogEvents": {"own log group": True, "another function's": False}}
    broad = demo("AWSLambdaBasicExecutionRole.json")
    assert all(v == {"own log group": True, "another function's": True} for v in stage.log_access(broad).values())
    assert stage.is_log_write(Grant(2, "logs:PutLogEvents", stage.log_group_arn + ":*"))
    assert not stage.is_log_write(Grant(2, "logs:PutLogEvents", "*"))
    assert not stage.is_log_write(Grant(0, "s3:GetObject", "arn:aws:s3:::photos/*"))


def test_plot_probes_colours_each_call_by_verdict():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probes = least_privilege.thumbnail_probes("photos", "photos-thumbnails", "uploads/", "payroll")[:3]
    columns = {"admin": {p.label: "allowed" for p in probes},
               "least": {probes[0].label: "allowed", probes[1].label: "NoSuchKey", probes[2].label: "AccessDenied"},
               "yours": None}
    ax = least_privilege.plot_probes(probes, columns)
    try:
        grid = ax.images[0].get_array().tolist()
        assert grid == [[1, 1, 2], [1, 1, 2], [1, 0, 2]]  # allowed 1, denied 0, not run 2
        assert [t.get_text() for t in ax.get_yticklabels()] == [
            "✓ read an upload", "✓ write a thumbnail", "write into the source bucket"]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["admin", "least", "yours"]
        assert sorted(t.get_text() for t in ax.texts).count("not run") == 3
    finally:
        plt.close(ax.figure)


BROAD_LAB = '''
def policy(source_bucket, thumbnail_bucket, function_name, region, account):
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::*/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{source_bucket}"},
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"},
    ]}
'''


@pytest.mark.slow
def test_the_lab_check_catches_a_working_but_broad_policy(tmp_path):
    """The leastpriv checks fail, each for its own reason, on a policy that works but grants too much."""
    import shutil

    from lambdalab.course import checks

    for rel in ("solutions/leastpriv", "solutions/thumbnail", "solutions/lesson05"):
        shutil.copytree(ROOT / rel, tmp_path / rel, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "tests" / "labs").mkdir(parents=True)
    for name in ("conftest.py", "test_leastpriv.py"):
        shutil.copy(ROOT / "tests" / "labs" / name, tmp_path / "tests" / "labs" / name)
    (tmp_path / "labs" / "leastpriv").mkdir(parents=True)
    (tmp_path / "labs" / "leastpriv" / "policy.py").write_text(BROAD_LAB)
    report = checks.check("leastpriv", track="labs", root=tmp_path)
    outcome = {r.name: (r.passed, r.message) for r in report.results}
    assert outcome["test_policy_is_a_valid_document"] == (True, "")
    assert outcome["test_function_works"] == (True, "")
    linted = outcome["test_linter_finds_nothing"]
    assert not linted[0] and "wildcard-resource" in linted[1] and "arn:aws:s3:::*/*" in linted[1]
    ablated = outcome["test_every_grant_is_needed"]
    assert not ablated[0] and re.search(r"the function worked without: s3:ListBucket on arn:aws:s3:::lw-\S+-photos\b",
                                        ablated[1])
    logs = outcome["test_logs_go_to_its_own_group_only"]
    assert not logs[0] and "in other functions' log groups too" in logs[1]
    probed = outcome["test_nothing_else_is_allowed"]
    assert not probed[0] and "the role can also write into the source bucket" in probed[1]
    assert re.search(r"read another bucket \(lw-\S+-payroll\)", probed[1]) and "list IAM roles" not in probed[1]
