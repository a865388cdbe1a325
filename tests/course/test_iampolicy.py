"""The policy linter rule by rule, the repository scan, grants, and roles under moto's IAM enforcement."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from lambdalab.cli import lint_policy
from lambdalab.cloud.local_cloud import LocalCloud
from lambdalab.course import iampolicy
from lambdalab.course.iampolicy import Finding, Grant, ThumbnailStage, lint
from lambdalab.course.lessons import thumbnails as images
from lambdalab.course.paths import package

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, REGION = "123456789012", "us-east-1"

# Policies in the repository that are bad on purpose (lesson 05 shows what the linter says about
# them), with the (rule, statement index) findings each must produce, no more and no less.
KNOWN_BAD = {
    "solutions/lesson05/AdministratorAccess.json": [("admin", 0)],
    "solutions/lesson05/AmazonS3FullAccess.json": [("wildcard-action", 0), ("wildcard-action", 0),
                                                   ("wildcard-resource", 0)],
    "solutions/lesson05/AWSLambdaBasicExecutionRole.json": [("wildcard-resource", 0)],
}
# Clean policies the scan must find (so that it cannot pass by finding nothing).
KNOWN_GOOD = ["solutions/lesson05/first-attempt-policy.json", "solutions/lesson05/trust-policy.json",
              "solutions/lesson05/least-privilege-policy.json"]


def doc(*statements: dict[str, Any], version: str | None = "2012-10-17") -> dict[str, Any]:
    policy: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        policy["Version"] = version
    return policy


def allow(action: Any, resource: Any = "arn:aws:s3:::photos/*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


def rules(policy: Any) -> list[tuple[str, int | None]]:
    return [(f.rule, f.statement) for f in lint(policy)]


def reasons(policy: Any) -> str:
    return " | ".join(f.reason for f in lint(policy))


def load_solution_policy():
    return iampolicy.policy_builder(ROOT / "solutions" / "leastpriv")


LEAST = load_solution_policy()("photos", "photos-thumbnails", "thumbnails", REGION, ACCOUNT)


# --- clean policies ------------------------------------------------------------------------------


def test_the_solution_policy_is_clean_for_any_names():
    assert lint(LEAST) == []
    other = load_solution_policy()("in-bucket", "out-bucket", "resize-images", "eu-west-1", "210987654321")
    assert lint(other) == []
    assert "arn:aws:logs:eu-west-1:210987654321:log-group:/aws/lambda/resize-images:*" in json.dumps(other)


def test_the_least_privilege_json_is_the_solution_for_the_lessons_names():
    # The lab's answer rendered for notebook 05's buckets and function, as JSON for the IAM console.
    # It lives in solutions/lesson05/ because labs/leastpriv/ mirrors solutions/leastpriv/.
    assert json.loads((ROOT / "solutions" / "lesson05" / "least-privilege-policy.json").read_text()) == LEAST


def test_trust_policy_without_resource_is_clean():
    trust = doc({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"})
    assert lint(trust) == []


def test_deny_statements_may_be_broad():
    assert lint(doc(allow("s3:GetObject"), {"Effect": "Deny", "Action": "*", "Resource": "*"},
                    {"Effect": "Deny", "NotAction": "s3:GetObject", "NotResource": "arn:aws:s3:::photos/*"})) == []


def test_actions_that_take_only_star_may_use_it():
    assert lint(doc(allow(["s3:ListAllMyBuckets", "xray:PutTraceSegments", "ec2:DescribeNetworkInterfaces"], "*"))) == []


# --- malformed and version ------------------------------------------------------------------------


@pytest.mark.parametrize("policy, expected", [
    ("not a dict", "a policy must be a JSON object, not str"),
    ({"Version": "2012-10-17"}, "Statement must be a statement object or a non-empty list"),
    ({"Version": "2012-10-17", "Statement": []}, "Statement must be a statement object or a non-empty list"),
    ({"Version": "2012-10-17", "Statement": ["s3:GetObject"]}, "a statement must be a JSON object, not str"),
    ({"Version": "2012-10-17", "Statement": [allow("s3:GetObject")], "Statements": []}, "unknown key 'Statements'"),
    ({"Version": "2012-10-18", "Statement": [allow("s3:GetObject")]}, "Version must be \"2012-10-17\""),
    (doc({"Effect": "Allow", "Action": "s3:GetObject", "Resources": "arn:aws:s3:::photos/*"}),
     "unknown key 'Resources' (did you mean 'Resource'?)"),
    (doc(allow("s3:GetObject", Effect="allow")), "Effect must be \"Allow\" or \"Deny\" (exactly), not 'allow'"),
    (doc({"Effect": "Allow", "Resource": "*"}), "exactly one of Action and NotAction"),
    (doc(allow("s3:GetObject", NotAction="s3:PutObject")), "exactly one of Action and NotAction"),
    (doc(allow("GetObject")), "Action 'GetObject' is not an action (actions are written service:Action"),
    (doc(allow([])), "Action must be a string or a non-empty list of strings"),
    (doc(allow("s3:GetObject", "photos/*")), "Resource 'photos/*' is not an ARN or \"*\""),
    (doc(allow("s3:GetObject", NotResource="*")), "Resource or NotResource, not both"),
    (doc({"Effect": "Allow", "Action": "s3:GetObject"}), "needs Resource"),
    (doc(allow("s3:GetObject", Condition="yes")), "Condition must be a JSON object"),
    (doc(allow("s3:GetObject", Sid="Read"), allow("s3:PutObject", Sid="Read")), "Sid 'Read' is used twice"),
])
def test_malformed_policies_say_what_is_wrong(policy, expected):
    findings = lint(policy)
    assert findings and all(f.rule == "malformed" for f in findings), findings
    assert expected in reasons(policy)


def test_a_malformed_statement_is_not_judged_further():
    # "Action": "*" would be admin if the statement were readable; it is not (no Effect).
    assert rules(doc({"Action": "*", "Resource": "*"})) == [("malformed", 0)]


def test_missing_version():
    assert rules(doc(allow("s3:GetObject"), version=None)) == [("version", None)]
    assert "2008-10-17" in reasons(doc(allow("s3:GetObject"), version=None))


def test_a_single_statement_object_is_read_as_a_list():
    assert rules({"Version": "2012-10-17", "Statement": allow("*", "*")}) == [("admin", 0)]


# --- the rules ------------------------------------------------------------------------------------


def test_admin():
    for action in ("*", ["*:*"], ["s3:GetObject", "*"]):
        assert rules(doc(allow(action, "*"))) == [("admin", 0)]
    assert "AdministratorAccess" in reasons(doc(allow("*", "*")))
    no_resource = {"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:s3:::photos/*"}
    assert rules(doc(no_resource)) == [("not-resource", 0), ("admin", 0)]


def test_wildcard_actions():
    assert rules(doc(allow("s3:*"))) == [("wildcard-action", 0)]
    assert "every s3 action" in reasons(doc(allow("s3:*")))
    assert rules(doc(allow(["s3:GetObject", "s3:Get*"]))) == [("wildcard-action", 0)]
    assert "'s3:Get*' is every s3 action that matches it" in reasons(doc(allow("s3:Get*")))
    assert rules(doc(allow("*"))) == [("wildcard-action", 0)]  # everything, but on one resource
    assert rules(doc(allow("s3:GetObjec?"))) == [("wildcard-action", 0)]
    assert "matches actions of every AWS service" in reasons(doc(allow("*:GetObject")))


def test_wildcard_resource_star():
    assert rules(doc(allow("s3:GetObject", "*"))) == [("wildcard-resource", 0)]
    mixed = doc(allow(["s3:ListAllMyBuckets", "s3:GetObject"], "*"))
    assert rules(mixed) == [("wildcard-resource", 0)]
    assert "(s3:GetObject)" in reasons(mixed)  # only the action that could be scoped is named


@pytest.mark.parametrize("resource", ["arn:aws:s3:::*", "arn:aws:s3:::*/*", "arn:aws:logs:us-east-1:123456789012:*",
                                      "arn:aws:logs:*:*:*", "arn:aws:logs:us-east-1:123456789012:log-group:*",
                                      "arn:aws:dynamodb:us-east-1:123456789012:table/*", "arn:aws:sqs:*:*:*"])
def test_arns_that_name_nothing(resource):
    assert rules(doc(allow("s3:GetObject", resource))) == [("wildcard-resource", 0)]
    assert "names no particular resource" in reasons(doc(allow("s3:GetObject", resource)))


@pytest.mark.parametrize("resource", ["arn:aws:s3:::photos/*", "arn:aws:s3:::photos",
                                      "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/thumbnails:*",
                                      "arn:aws:dynamodb:us-east-1:123456789012:table/visits",
                                      "arn:aws:sqs:us-east-1:123456789012:jobs"])
def test_arns_that_name_something(resource):
    assert lint(doc(allow("s3:GetObject", resource))) == []


def test_not_action_and_not_resource_with_allow():
    not_action = doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::photos/*"})
    assert rules(not_action) == [("not-action", 0)]
    assert "every action except iam:*" in reasons(not_action)
    not_resource = doc({"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::payroll/*"})
    assert rules(not_resource) == [("not-resource", 0)]


def test_pass_role():
    assert rules(doc(allow("iam:PassRole", "*"))) == [("wildcard-resource", 0), ("pass-role", 0)]
    assert rules(doc(allow("iam:PassRole", "arn:aws:iam::123456789012:role/*"))) == [
        ("wildcard-resource", 0), ("pass-role", 0)]
    assert rules(doc(allow("iam:passrole", "*")))[-1] == ("pass-role", 0)  # actions ignore case
    assert ("pass-role", 0) in rules(doc(allow("iam:Pass*", "*")))
    assert lint(doc(allow("iam:PassRole", "arn:aws:iam::123456789012:role/thumbnails-role"))) == []


def test_privilege_escalation():
    named_role = "arn:aws:iam::123456789012:role/thumbnails-role"
    assert rules(doc(allow("iam:PutRolePolicy", named_role))) == [("privilege-escalation", 0)]
    assert "iam:AttachRolePolicy" in reasons(doc(allow("iam:Attach*", named_role)))
    assert lint(doc(allow("iam:GetRole", named_role))) == []


def test_public_principal():
    bucket_policy = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::photos/*"}
    assert rules(doc(bucket_policy)) == [("public-principal", 0)]
    assert rules(doc(bucket_policy | {"Principal": {"AWS": "*"}})) == [("public-principal", 0)]
    assert rules(doc(bucket_policy | {"Principal": {"AWS": ["arn:aws:iam::1:root", "*"]}})) == [("public-principal", 0)]
    restricted = bucket_policy | {"Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}
    assert lint(doc(restricted)) == []


def test_every_rule_has_an_example_here():
    one_each = [doc(allow("GetObject")), doc(allow("s3:GetObject"), version=None), doc(allow("*", "*")),
                doc(allow("s3:*")), doc(allow("s3:GetObject", "*")),
                doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::photos/*"}),
                doc({"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::payroll/*"}),
                doc(allow("iam:PassRole", "*")), doc(allow("iam:PutRolePolicy", "arn:aws:iam::1:role/x")),
                doc({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::p/*"})]
    assert {f.rule for policy in one_each for f in lint(policy)} == set(iampolicy.RULES)


def test_findings_name_the_statement_by_index_and_sid():
    policy = doc(allow("s3:GetObject"), allow("s3:PutObject", "arn:aws:s3:::photos-thumbnails/*"),
                 allow("s3:DeleteObject", "*", Sid="CleanUp"))
    [finding] = lint(policy)
    assert finding == Finding("wildcard-resource", 2, finding.reason, "CleanUp")
    assert str(finding).startswith('Statement[2] (CleanUp): wildcard-resource: Resource "*"')
    assert str(Finding("version", None, "no Version")) == "policy: version: no Version"
    with pytest.raises(ValueError, match="unknown rule 'stars'"):
        Finding("stars", 0, "too many")


# --- files and the repository ----------------------------------------------------------------------


def test_lint_file(tmp_path):
    (tmp_path / "event.json").write_text('{"Records": []}')
    (tmp_path / "admin.json").write_text(json.dumps(doc(allow("*", "*"))))
    (tmp_path / "policy.json").write_text('{"Version": "2012-10-17", "Statement": [')
    (tmp_path / "not-json.json").write_text("{")
    assert iampolicy.lint_file(tmp_path / "event.json") is None
    assert iampolicy.lint_file(tmp_path / "not-json.json") is None
    assert [f.rule for f in iampolicy.lint_file(tmp_path / "admin.json")] == ["admin"]
    [broken] = iampolicy.lint_file(tmp_path / "policy.json")
    assert broken.rule == "malformed" and broken.reason.startswith("not valid JSON")
    with pytest.raises(ValueError, match="cannot read"):
        iampolicy.lint_file(tmp_path / "missing.json")


def test_lint_repository_scans_json_and_skips_tool_directories(tmp_path):
    good, bad = json.dumps(LEAST), json.dumps(doc(allow("s3:*", "*")))
    files = {"solutions/a/policy.json": good, "policies/broad.json": bad, "tests/fixtures/event.json": '{"x": 1}',
             ".venv/lib/policy.json": bad, "build/policy.json": bad, "node_modules/p/policy.json": bad,
             "x.egg-info/policy.json": bad, "notes/policy.txt": bad}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    results = iampolicy.lint_repository(tmp_path)
    assert sorted(results) == ["policies/broad.json", "solutions/a/policy.json"]
    assert results["solutions/a/policy.json"] == []
    assert [f.rule for f in results["policies/broad.json"]] == ["wildcard-action", "wildcard-resource"]
    with pytest.raises(ValueError, match="not a directory"):
        iampolicy.lint_repository(tmp_path / "nowhere")


def test_every_policy_in_the_repository_passes_or_is_a_known_bad_example():
    results = iampolicy.lint_repository(ROOT)
    for path in KNOWN_GOOD + list(KNOWN_BAD):
        assert path in results, f"the scan did not find {path}"
    for path, findings in results.items():
        got = sorted((f.rule, f.statement) for f in findings)
        if path in KNOWN_BAD:
            assert got == sorted(KNOWN_BAD[path]), f"{path}: {[str(f) for f in findings]}"
            assert all(f.reason for f in findings)
        else:
            assert findings == [], f"{path} has findings: {[str(f) for f in findings]}"


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lambdalab")
    lint_policy.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_lints_files_and_the_repository(tmp_path, capsys, monkeypatch):
    clean = tmp_path / "least.json"
    clean.write_text(json.dumps(LEAST))
    admin = ROOT / "solutions" / "lesson05" / "AdministratorAccess.json"
    assert run_cli(["lint-policy", str(clean)]) == 0
    assert "1 policies, 0 with findings" in capsys.readouterr().err
    assert run_cli(["lint-policy", str(clean), str(admin)]) == 1
    out = capsys.readouterr().out
    assert f"{admin}: Statement[0]: admin: Allow \"*\" on every resource" in out
    (tmp_path / "event.json").write_text("{}")
    assert run_cli(["lint-policy", str(tmp_path / "event.json")]) == 1
    assert "not an IAM policy document" in capsys.readouterr().out
    assert run_cli(["lint-policy", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    monkeypatch.setenv("LAMBDALAB_ROOT", str(tmp_path))  # no file named: the repository at the root
    assert run_cli(["lint-policy"]) == 0
    assert "1 policies, 0 with findings" in capsys.readouterr().err


# --- grants -----------------------------------------------------------------------------------------


def test_grants_split_statements_into_single_permissions():
    policy = doc(allow(["s3:GetObject", "s3:GetObjectTagging"], ["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"], Sid="Read"),
                 {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"},
                 {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert iampolicy.grants(policy) == [
        Grant(0, "s3:GetObject", "arn:aws:s3:::a/*"), Grant(0, "s3:GetObject", "arn:aws:s3:::b/*"),
        Grant(0, "s3:GetObjectTagging", "arn:aws:s3:::a/*"), Grant(0, "s3:GetObjectTagging", "arn:aws:s3:::b/*"),
        Grant(2, None, None)]
    assert str(Grant(2, None, None)) == "Statement[2] as a whole"
    assert str(Grant(0, "s3:GetObject", "arn:aws:s3:::a/*")) == "s3:GetObject on arn:aws:s3:::a/*"


def test_without_removes_exactly_one_grant():
    policy = doc(allow(["s3:GetObject", "s3:GetObjectTagging"], ["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"], Sid="Read",
                       Condition={"Bool": {"aws:SecureTransport": "true"}}),
                 allow("s3:PutObject", "arn:aws:s3:::c/*"))
    for grant in iampolicy.grants(policy):
        smaller = iampolicy.without(policy, grant)
        remaining = {(g.action, g.resource) for g in iampolicy.grants(smaller)}
        assert remaining == {(g.action, g.resource) for g in iampolicy.grants(policy)} - {(grant.action, grant.resource)}
        assert lint(smaller) == []  # still a valid document: Sids unique, conditions kept
        assert all(st.get("Condition") for st in smaller["Statement"][:-1])
    assert policy["Statement"][0]["Action"] == ["s3:GetObject", "s3:GetObjectTagging"]  # the original is untouched
    smaller["Statement"][-1]["Resource"] = "changed"
    assert policy["Statement"][1]["Resource"] == "arn:aws:s3:::c/*"  # and shares nothing with the copy
    only = doc(allow("s3:GetObject"))
    assert iampolicy.without(only, iampolicy.grants(only)[0])["Statement"] == []
    with pytest.raises(ValueError, match="does not grant"):
        iampolicy.without(only, Grant(0, "s3:PutObject", "arn:aws:s3:::photos/*"))
    with pytest.raises(ValueError, match="no Statement\\[3\\]"):
        iampolicy.without(only, Grant(3, "s3:GetObject", "arn:aws:s3:::photos/*"))


def test_allows_uses_motos_evaluator_on_named_resources():
    stream = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/thumbnails:log-stream:abc"
    assert iampolicy.allows(LEAST, "logs:PutLogEvents", stream)
    assert not iampolicy.allows(LEAST, "logs:PutLogEvents", stream.replace("thumbnails", "payroll"))
    assert iampolicy.allows(LEAST, "s3:GetObject", "arn:aws:s3:::photos/uploads/a.jpg")
    assert not iampolicy.allows(LEAST, "s3:PutObject", "arn:aws:s3:::photos/uploads/a.jpg")


def test_policy_builder_reports_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="policy.py does not exist"):
        iampolicy.policy_builder(tmp_path)
    (tmp_path / "policy.py").write_text("POLICY = {}\n")
    with pytest.raises(AttributeError, match="defines no function policy"):
        iampolicy.policy_builder(tmp_path)
    (tmp_path / "policy.py").write_text("def policy(**names):\n    return names\n")
    assert iampolicy.policy_builder(tmp_path)(a=1) == {"a": 1}  # imported afresh: the edit counts


def test_ablate_restores_the_policy_even_when_the_workload_raises():
    installed: list[Any] = []

    def run() -> tuple[bool, str]:
        if len(installed) == 2:
            raise RuntimeError("boom")
        return False, "AccessDenied"

    with pytest.raises(RuntimeError, match="boom"):
        iampolicy.ablate(LEAST, installed.append, run)
    assert installed[-1] == LEAST and len(installed) == 3
    installed.clear()
    results = iampolicy.ablate(LEAST, installed.append, lambda: (False, "AccessDenied"),
                               only=lambda g: g.action.startswith("s3:"))
    assert [str(r.grant) for r in results] == ["s3:GetObject on arn:aws:s3:::photos/*",
                                               "s3:PutObject on arn:aws:s3:::photos-thumbnails/*"]
    assert installed[-1] == LEAST


# --- roles under moto's IAM enforcement ---------------------------------------------------------------


@pytest.fixture(scope="module")
def stage() -> Iterator[ThumbnailStage]:
    with LocalCloud(iam_enforcement=True, cpu_limit=False, async_retry_delays=(0.1, 0.1)) as cloud:
        yield ThumbnailStage(cloud, package(ROOT / "solutions" / "thumbnail"), ROOT / "solutions" / "lesson05")


PHOTO = images.jpeg(images.quadrants(640, 480))


def demo(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "solutions" / "lesson05" / name).read_text())


def test_the_least_privilege_role_works_and_each_s3_grant_is_needed(stage):
    assert stage.names() == {"source_bucket": "photos", "thumbnail_bucket": "photos-thumbnails",
                             "function_name": "thumbnails", "region": REGION, "account": ACCOUNT}
    stage.use(LEAST)
    upload = stage.upload(PHOTO)
    assert upload.ok and upload.attempts == 1 and upload.error == ""
    results = stage.ablate(LEAST, PHOTO)
    assert [(str(r.grant), r.ok) for r in results] == [("s3:GetObject on arn:aws:s3:::photos/*", False),
                                                        ("s3:PutObject on arn:aws:s3:::photos-thumbnails/*", False)]
    assert "AccessDenied" in results[0].error and "GetObject operation" in results[0].error
    assert "AccessDenied" in results[1].error and "PutObject operation" in results[1].error
    assert stage.upload(PHOTO).ok  # ablate put the whole policy back


def test_a_missing_permission_fails_with_access_denied_in_the_records_and_logs(stage):
    stage.use(demo("first-attempt-policy.json"))
    upload = stage.upload(PHOTO, key="forgot-put.jpg")
    assert not upload.ok and upload.attempts == 3  # Lambda retried the async event twice
    assert [inv.attempt for inv in stage.invocations(upload.key)] == [1, 2, 3]
    assert upload.error == ("AccessDenied: An error occurred (AccessDenied) when calling the PutObject operation: "
                            "Access Denied")
    assert not stage.thumbnail_exists(upload.key)
    retries = [json.loads(line.split("\t")[-1]) for line in stage.cloud.logs(stage.function)
               if '"outcome": "retry"' in line and "forgot-put.jpg" in line]
    assert len(retries) == 3 and {r["error"] for r in retries} == {"AccessDenied"}


def test_extra_grants_are_found_by_ablation_and_probes(stage):
    generous = json.loads(json.dumps(LEAST))
    generous["Statement"].append(allow("s3:ListBucket", "arn:aws:s3:::photos", Sid="ListUploads"))
    generous["Statement"].append(allow("s3:PutObject", "arn:aws:s3:::photos/*", Sid="WriteAnywhere"))
    stage.use(generous)
    assert lint(generous) == []  # named resources only: the linter cannot know they are not needed
    results = stage.ablate(generous, PHOTO)
    assert [str(r.grant) for r in results if r.ok] == ["s3:ListBucket on arn:aws:s3:::photos",
                                                       "s3:PutObject on arn:aws:s3:::photos/*"]
    outcomes = stage.probe()
    allowed = {label for label, outcome in outcomes.items() if iampolicy.probe_verdict(outcome) == "allowed"}
    assert allowed == {"read an upload", "write a thumbnail", "list the source bucket", "write into the source bucket"}


def test_probes_compare_administrator_and_least_privilege(stage):
    stage.use(demo("AdministratorAccess.json"))
    admin = stage.probe()
    assert {iampolicy.probe_verdict(o) for o in admin.values()} == {"allowed"}
    stage.use(LEAST)
    least = stage.probe()
    assert least["read an upload"] == least["write a thumbnail"] == "allowed"
    denied = {label: outcome for label, outcome in least.items() if label not in ("read an upload", "write a thumbnail")}
    assert set(denied.values()) == {"AccessDenied", "AccessDeniedException"}  # S3 and IAM; DynamoDB's JSON code
    assert denied["list DynamoDB tables"] == "AccessDeniedException"
    assert iampolicy.probe_verdict("NoSuchKey") == "allowed"  # authorized, then failed for another reason


def test_an_attached_administrator_policy_is_flagged_by_the_audit(stage):
    iam = stage.iam
    arn = iam.create_policy(PolicyName="AdministratorAccess",
                            PolicyDocument=json.dumps(demo("AdministratorAccess.json")))["Policy"]["Arn"]
    try:
        stage.use(LEAST)
        iam.attach_role_policy(RoleName=stage.role, PolicyArn=arn)
        audit = iampolicy.audit_role(iam, stage.role)
        assert audit == {"inline:permissions": [], arn: [Finding("admin", 0, audit[arn][0].reason)]}
        stage.use(LEAST)  # replaces every permission: the managed policy is detached
        assert iampolicy.role_policies(iam, stage.role) == {"inline:permissions": LEAST}
        stage.use(None)
        assert iampolicy.role_policies(iam, stage.role) == {}
        assert not stage.upload(PHOTO).ok
    finally:
        iam.delete_policy(PolicyArn=arn)
        stage.use(LEAST)


def test_malformed_policies_are_refused_by_iam(stage):
    with pytest.raises(stage.iam.exceptions.MalformedPolicyDocumentException, match="prefaced by a vendor"):
        stage.use(doc(allow("GetObject")))


def test_log_access_is_judged_on_the_log_group_arns(stage):
    assert stage.log_access(LEAST) == {
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

    probes = iampolicy.thumbnail_probes("photos", "photos-thumbnails", "uploads/", "payroll")[:3]
    columns = {"admin": {p.label: "allowed" for p in probes},
               "least": {probes[0].label: "allowed", probes[1].label: "NoSuchKey", probes[2].label: "AccessDenied"},
               "yours": None}
    ax = iampolicy.plot_probes(probes, columns)
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
    assert not ablated[0] and "the function worked without: s3:ListBucket on arn:aws:s3:::photos" in ablated[1]
    logs = outcome["test_logs_go_to_its_own_group_only"]
    assert not logs[0] and "in other functions' log groups too" in logs[1]
    probed = outcome["test_nothing_else_is_allowed"]
    assert not probed[0] and "the role can also write into the source bucket" in probed[1]
    assert "read another bucket (payroll)" in probed[1] and "list IAM roles" not in probed[1]
