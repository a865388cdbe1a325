"""`template.yaml`, the thumbnail app as infrastructure as code: valid CloudFormation (cfn-lint),
accepted by the SAM transform (what `sam deploy` runs in CloudFormation), and the same app the
course deploys: lesson 05's least-privilege policy and nothing else, the trigger on the uploads
bucket only, S3's permission scoped to that bucket and account, the log group with a retention.

AWS behaviour followed: an S3 event of AWS::Serverless::Function adds an AWS::Lambda::Permission and
the bucket's NotificationConfiguration
(https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-s3.html);
a function given `Role` gets no generated role and no AWSLambdaBasicExecutionRole
(https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-resource-function.html);
writing to the bucket that triggers the function would invoke it recursively
(https://docs.aws.amazon.com/lambda/latest/dg/with-s3.html).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from lambdalab.course.lessons.least_privilege import policy_builder

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
STACK, ACCOUNT, REGION = "thumbs", "123456789012", "us-east-1"


def loaded() -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(TEMPLATE.read_text())


def transformed() -> dict[str, Any]:
    """The template after the SAM transform, as CloudFormation runs it for `sam deploy`."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    def no_managed_policies() -> dict[str, str]:  # the transform asks IAM only for names it must resolve
        raise AssertionError("template.yaml must not need AWS managed policies")

    template = loaded()
    # `sam deploy` packages CodeUri (after `sam build`) and uploads it before CloudFormation transforms
    fn = template["Resources"]["ThumbnailFunction"]["Properties"]
    assert (ROOT / fn["CodeUri"] / "handler.py").is_file() and (ROOT / fn["CodeUri"] / "requirements.txt").is_file()
    fn["CodeUri"] = "s3://sam-artifacts-bucket/thumbnail-package.zip"
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    return translator.translate(template, parameter_values={}, get_managed_policy_map=no_managed_policies)


def resolve(value: Any, parameters: dict[str, str]) -> Any:
    """`value` with Fn::Sub of pseudo parameters and parameters replaced (enough for this template)."""
    names = {"AWS::StackName": STACK, "AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws",
             **parameters}
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        return re.sub(r"\$\{([^}]+)\}", lambda m: names[m[1]], value["Fn::Sub"])
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in names:
        return names[value["Ref"]]
    if isinstance(value, dict):
        return {k: resolve(v, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, parameters) for v in value]
    return value


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def problems(text: str) -> list[str]:
    """cfn-lint's errors (E) and warnings (W); informational rules (I) are advice, e.g. I4010's
    AI-context metadata, and `cfn-lint` exits 0 on them."""
    from cfnlint.api import lint_all

    return [str(m) for m in lint_all(text) if m.rule.id[0] in "EW"]


def test_cfn_lint_finds_nothing() -> None:
    assert problems(TEMPLATE.read_text()) == []


def test_cfn_lint_is_not_blind() -> None:
    """The same check on broken copies (a retired runtime, less memory than Lambda allows) must complain."""
    text = TEMPLATE.read_text()
    assert any(p.startswith("[E2533") for p in problems(text.replace("Runtime: python3.12", "Runtime: python2.7")))
    assert any(p.startswith("[E3034") for p in problems(text.replace("MemorySize: 256", "MemorySize: 64")))


def test_the_sam_transform_makes_the_app_of_lesson_15() -> None:
    out = transformed()
    functions = of_type(out, "AWS::Lambda::Function")
    assert len(functions) == 1
    fn = next(iter(functions.values()))["Properties"]
    assert fn["Handler"] == "handler.lambda_handler" and fn["Runtime"] == "python3.12"
    assert fn["Role"] == {"Fn::GetAtt": ["ThumbnailRole", "Arn"]}  # ours: SAM generated no role
    assert of_type(out, "AWS::IAM::Role").keys() == {"ThumbnailRole"}
    env = resolve(fn["Environment"]["Variables"], {"UploadPrefix": "uploads/"})
    assert env == {"THUMBNAIL_BUCKET": f"{STACK}-thumbnails-{ACCOUNT}", "SOURCE_PREFIX": "uploads/"}

    # S3 may invoke the function for the uploads bucket of this account only
    (permission,) = of_type(out, "AWS::Lambda::Permission").values()
    props = permission["Properties"]
    assert props["Principal"] == "s3.amazonaws.com" and props["Action"] == "lambda:InvokeFunction"
    assert props["SourceAccount"] == {"Ref": "AWS::AccountId"}

    # the trigger is on the uploads bucket, under the prefix; the thumbnails bucket triggers nothing
    buckets = of_type(out, "AWS::S3::Bucket")
    notified = {name for name, b in buckets.items() if "NotificationConfiguration" in b["Properties"]}
    assert notified == {"UploadsBucket"}
    (config,) = buckets["UploadsBucket"]["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    assert config["Event"] == "s3:ObjectCreated:*"
    assert config["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": {"Ref": "UploadPrefix"}}]
    assert env["THUMBNAIL_BUCKET"] == resolve(buckets["ThumbnailsBucket"]["Properties"]["BucketName"], {})
    assert permission["Type"] and buckets["UploadsBucket"].get("DependsOn")  # the permission exists first

    # the log group, with its retention, before the function
    (group,) = of_type(out, "AWS::Logs::LogGroup").values()
    assert resolve(group["Properties"]["LogGroupName"], {}) == f"/aws/lambda/{resolve(fn['FunctionName'], {})}"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert "ThumbnailLogGroup" in next(iter(functions.values())).get("DependsOn", [])


@pytest.mark.parametrize("track", ["solutions"])
def test_the_role_has_lesson_05s_policy_and_nothing_else(track: str) -> None:
    role = of_type(transformed(), "AWS::IAM::Role")["ThumbnailRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    (inline,) = role["Policies"]
    in_template = resolve(inline["PolicyDocument"], {})
    lesson_05 = policy_builder(ROOT / track / "leastpriv")(
        source_bucket=f"{STACK}-uploads-{ACCOUNT}", thumbnail_bucket=f"{STACK}-thumbnails-{ACCOUNT}",
        function_name=f"{STACK}-thumbnail", region=REGION, account=ACCOUNT)
    assert json.loads(json.dumps(in_template)) == lesson_05
