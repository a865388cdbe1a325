"""Checks for lab `secretcache` (notebook 12): a key read from Secrets Manager, cached with a TTL,
by a role allowed that one secret.

The checks open a local cloud with IAM ENFORCEMENT ON, store a key in Secrets Manager and an
endpoint in Parameter Store, give the track's `policy(...)` to the function's role, deploy the
track's handler (Powertools packaged from its requirements.txt) with a 3-second TTL, and:

- the policy must be valid and the linter must find nothing;
- the function must sign with the stored key and answer the stored endpoint;
- the key must be cached: a rotation is not seen at once, and is seen once the TTL has passed,
  with one GetSecretValue per fetch;
- the role's policy must refuse another secret (AccessDeniedException).

Run them with `check("secretcache")` in a notebook or `lambdalab check secretcache` in a shell.
AWS behaviour followed: https://docs.aws.amazon.com/secretsmanager/latest/userguide/retrieving-secrets_lambda.html
(cache the secret in the function), https://docs.powertools.aws.dev/lambda/python/latest/utilities/parameters/
(`max_age`), and resource-scoped GetSecretValue
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lambdalab.course import iampolicy
from lambdalab.course.lessons import least_privilege
from lambdalab.course.lessons import secrets as lesson
from lambdalab.course.paths import lab_dir as source_dir
from lambdalab.course.target.local import LocalTarget

TTL_S = 3


@pytest.fixture(scope="module")
def target() -> Iterator[LocalTarget]:
    target = LocalTarget(iam_enforcement=True, cpu_limit=False)
    try:
        yield target
    finally:
        target.close()


@pytest.fixture(scope="module")
def code(track) -> Any:
    """The track's lab folder as written: the target builds it (requirements.txt) as `sam build` would."""
    return source_dir("secretcache", track)


@pytest.fixture(scope="module")
def builder(code) -> Any:
    return least_privilege.policy_builder(code)


@pytest.fixture(scope="module")
def stage(target) -> lesson.Stage:
    """The key in Secrets Manager and the endpoint in Parameter Store."""
    return lesson.create_stage(target)


@pytest.fixture(scope="module")
def role(target, stage, builder, code) -> str:
    """The track's handler deployed as "signer" (TTL 3 s) with the role your policy describes."""
    try:
        return lesson.deploy_signer(target, stage, "signer", code, TTL_S, builder)
    except NotImplementedError as e:
        pytest.fail(f"NotImplementedError: {e}", pytrace=False)
    except target.client("iam").exceptions.MalformedPolicyDocumentException as e:
        pytest.fail(f"IAM refuses the policy: {e.response['Error']['Message']}", pytrace=False)


@pytest.fixture(scope="module")
def signer(role) -> str:
    return "signer"


def sign(target, signer) -> dict[str, Any]:
    answer = target.invoke(signer, {"order": lesson.ORDER})
    if answer["FunctionError"]:
        payload = answer["Payload"] or {}
        pytest.fail(f"the function failed: {payload.get('errorType')}: {payload.get('errorMessage')}", pytrace=False)
    return answer["Payload"]


def test_policy_lints_clean(target, builder):
    """Your policy is valid and the linter finds nothing to flag.

    Hint: one statement per thing the function reads: secretsmanager:GetSecretValue on the secret's
    ARN (the `secret_arn` argument), ssm:GetParameter on
    arn:aws:ssm:<region>:<account>:parameter/<name without its leading slash>, and the two log
    actions on the function's own log group. No "*" anywhere.
    """
    try:
        document = builder(secret_arn=target.arn("secretsmanager", "secret:k-AbCdEf"), parameter_name="/app/endpoint",
                           function_name="fn", region=target.region, account=target.account_id)
    except NotImplementedError as e:
        pytest.fail(f"NotImplementedError: {e}", pytrace=False)
    findings = iampolicy.lint(document)
    assert not findings, "; ".join(str(f) for f in findings)


def test_signs_with_the_stored_key(target, stage, signer):
    """The function signs with the key stored in Secrets Manager and sends to the stored endpoint.

    Hint: api_key() returns secrets.get(SECRET_ID, ...)["api_key"] (the secret is JSON: Powertools'
    transform="json" parses it), and endpoint() returns settings.get(ENDPOINT_PARAMETER, ...). If the
    function fails with AccessDeniedException, your policy misses the secret or the parameter.
    """
    answer = sign(target, signer)
    assert answer["url"] == "https://partner.example/orders", f"the endpoint should come from Parameter Store, " \
                                                             f"not {answer['url']!r}"
    assert answer["signature"] == lesson.signature(stage.key), "the signature was not made with the stored key"


def test_the_key_is_cached_for_the_ttl(target, stage, signer):
    """The key is fetched once and reused until CACHE_TTL_S has passed; then the new one is fetched.

    Hint: pass max_age=CACHE_TTL_S to secrets.get (and to settings.get): without it Powertools
    keeps a value 5 seconds, whatever the function's setting; with force_fetch=True it keeps none.
    """
    sign(target, signer)  # the environment's cache now holds the key, fetched just now
    rotated = lesson.rotate(target, stage)
    soon = sign(target, signer)
    assert soon["signature"] == lesson.signature(stage.key), \
        "right after a rotation the function should still sign with the cached (old) key: it fetched it again"
    calls = soon["secret_calls"]
    time.sleep(TTL_S + 0.5)
    later = sign(target, signer)
    assert later["signature"] == lesson.signature(rotated.key), \
        f"{TTL_S + 0.5} s after the rotation (TTL {TTL_S} s) the function still signs with the old key"
    assert later["secret_calls"] == calls + 1, \
        f"one GetSecretValue per expired TTL expected through `secrets`, counted {later['secret_calls'] - calls}"


def test_the_role_reads_no_other_secret(target, stage, role):
    """Whoever holds your role's permissions is refused any other secret.

    Hint: the GetSecretValue statement's Resource is the secret's own ARN (secret_arn), not "*" and
    not a pattern that matches other secrets.
    """
    other = target.client("secretsmanager").create_secret(Name=target.name("payroll-db"), SecretString="x",
                                                           Tags=target.tag_list())["ARN"]
    reader = as_holder_of(target, role)
    try:
        reader.get_secret_value(SecretId=stage.secret_arn)
    except reader.exceptions.ClientError as e:
        pytest.fail(f"the role cannot read its own secret: {e.response['Error']['Code']}", pytrace=False)
    with pytest.raises(reader.exceptions.ClientError) as refused:
        reader.get_secret_value(SecretId=other)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"


def as_holder_of(target, role_arn: str) -> Any:
    """A Secrets Manager client for an IAM user holding exactly the role's inline policy: the same
    policy evaluation as the function's calls, without starting a second function."""
    iam = target.client("iam")
    role_name = role_arn.rsplit("/", 1)[-1]
    document = iam.get_role_policy(RoleName=role_name, PolicyName="lesson")["PolicyDocument"]
    user = target.name("policy-holder")
    iam.create_user(UserName=user, Tags=target.tag_list())
    iam.put_user_policy(UserName=user, PolicyName="lesson", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return target.client("secretsmanager", aws_access_key_id=key["AccessKeyId"],
                         aws_secret_access_key=key["SecretAccessKey"])
