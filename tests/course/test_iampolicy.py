"""The policy linter rule by rule (actions checked against AWS's IAM database), the repository scan, the CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from lambdalab.cli import lint_policy
from lambdalab.course import iampolicy
from lambdalab.course.iampolicy import Finding, lint
from lambdalab.course.lessons.least_privilege import policy_builder

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
    return policy_builder(ROOT / "solutions" / "leastpriv")


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
    only_star = ["s3:ListAllMyBuckets", "xray:PutTraceSegments", "ec2:DescribeNetworkInterfaces"]
    assert lint(doc(allow(only_star, "*"))) == []


def test_which_actions_take_only_star_comes_from_the_iam_database():
    # Not a hand-kept list: any action the Service Authorization Reference lists without a resource type.
    assert lint(doc(allow(["sts:GetCallerIdentity", "xray:GetSamplingRules", "lambda:ListFunctions",
                           "dynamodb:ListTables"], "*"))) == []
    assert rules(doc(allow("xray:Put*", "*"))) == [("wildcard-action", 0)]  # every xray:Put... takes only "*"
    assert iampolicy.service_actions("s3")["listallmybuckets"] == iampolicy.KnownAction("ListAllMyBuckets", True)
    assert not iampolicy.service_actions("s3")["getobject"].star_only
    assert iampolicy.service_actions("no-such-service") is None
    [finding] = [f for f in lint(doc(allow(["s3:ListAllMyBuckets", "s3:Get*"], "*"))) if f.rule == "wildcard-resource"]
    assert "(s3:Get*)" in finding.reason  # s3:ListAllMyBuckets takes only "*"; most s3:Get... actions do not


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


def test_unknown_actions_are_flagged_with_the_nearest_real_one():
    assert rules(doc(allow("s3:GetObjekt"))) == [("unknown-action", 0)]
    assert "'s3:GetObjekt' is not a s3 action (did you mean s3:GetObject?)" in reasons(doc(allow("s3:GetObjekt")))
    assert "AWS has no service whose actions start with 'sss:'" in reasons(doc(allow("sss:GetObject")))
    assert "'s3:Gett*' matches no s3 action" in reasons(doc(allow("s3:Gett*")))
    # A misspelt Deny denies nothing, so it is flagged too; action names are case-insensitive.
    assert rules(doc(allow("s3:getobject"), {"Effect": "Deny", "NotAction": "s3:PutObjekt", "Resource": "*"})) == [
        ("unknown-action", 1)]
    assert lint(doc(allow(["S3:GETOBJECT", "s3:Get*Tagging", "s3:?etObject"]))) == [
        Finding("wildcard-action", 0, "'s3:Get*Tagging' is every s3 action that matches it, today's and future ones; "
                                      "list the actions the code calls"),
        Finding("wildcard-action", 0, "'s3:?etObject' is every s3 action that matches it, today's and future ones; "
                                      "list the actions the code calls")]


def test_every_rule_has_an_example_here():
    one_each = [doc(allow("GetObject")), doc(allow("s3:GetObjekt")), doc(allow("s3:GetObject"), version=None),
                doc(allow("*", "*")),
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
