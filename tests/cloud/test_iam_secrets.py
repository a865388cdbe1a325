"""Under IAM enforcement the local cloud scopes Secrets Manager and Parameter Store calls to the
secret or parameter they name, as AWS does.

AWS documents the resource each action is authorized against: a secret's ARN (with its six
random characters) for `secretsmanager:GetSecretValue`, `DescribeSecret`, `PutSecretValue`
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html);
the named parameter for `ssm:GetParameter`, each named parameter for `ssm:GetParameters`, and the
requested path, not the parameters returned, for `ssm:GetParametersByPath`
(https://docs.aws.amazon.com/systems-manager/latest/userguide/ps-retrieval-authorization.html).
A request that no statement allows is refused with `AccessDeniedException`
(https://docs.aws.amazon.com/secretsmanager/latest/userguide/determine-acccess_examine-iam-policies.html).
"""

from __future__ import annotations

import pytest
from test_iam_enforcement import arn, denied, user_session

from lambdalab.cloud.local_cloud import LocalCloud


@pytest.fixture(scope="module")
def iam_cloud():
    with LocalCloud(cpu_limit=False, iam_enforcement=True) as c:
        yield c


def test_a_secrets_allow_scoped_to_one_secret_arn_allows_it_and_denies_another(iam_cloud) -> None:
    sm = iam_cloud.client("secretsmanager")
    mine = sm.create_secret(Name="app/api-key", SecretString="v1")["ARN"]
    sm.create_secret(Name="app/db-password", SecretString="hunter2")
    assert mine.startswith(arn(iam_cloud, "secretsmanager", "secret:app/api-key-")) and len(mine) == len(
        arn(iam_cloud, "secretsmanager", "secret:app/api-key-")) + 6
    user = user_session(iam_cloud, "secret-reader", [
        {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
         "Resource": mine},
    ]).client("secretsmanager", endpoint_url=iam_cloud.endpoint)
    assert user.get_secret_value(SecretId="app/api-key")["SecretString"] == "v1"  # by name
    assert user.get_secret_value(SecretId=mine)["SecretString"] == "v1"  # by full ARN
    assert user.describe_secret(SecretId="app/api-key")["ARN"] == mine
    with pytest.raises(user.exceptions.ClientError) as info:
        user.get_secret_value(SecretId="app/db-password")
    error = info.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert "secretsmanager:GetSecretValue" in error["Message"]
    assert denied(user.put_secret_value, SecretId="app/api-key", SecretString="v2") == "AccessDeniedException"
    assert denied(user.list_secrets) == "AccessDeniedException"  # ListSecrets takes Resource "*"


def test_a_secret_pattern_with_question_marks_matches_the_random_suffix(iam_cloud) -> None:
    sm = iam_cloud.client("secretsmanager")
    sm.create_secret(Name="svc/token", SecretString="t")
    sm.create_secret(Name="svc/token-admin", SecretString="a")  # a longer name the pattern must not match
    user = user_session(iam_cloud, "pattern-reader", [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": arn(iam_cloud, "secretsmanager", "secret:svc/token-??????")},
    ]).client("secretsmanager", endpoint_url=iam_cloud.endpoint)
    assert user.get_secret_value(SecretId="svc/token")["SecretString"] == "t"
    assert denied(user.get_secret_value, SecretId="svc/token-admin") == "AccessDeniedException"


def test_an_ssm_allow_scoped_to_one_parameter_allows_it_and_denies_another(iam_cloud) -> None:
    ssm = iam_cloud.client("ssm")
    ssm.put_parameter(Name="/shop/config/endpoint", Value="https://partner.example", Type="String")
    ssm.put_parameter(Name="/shop/config/limit", Value="10", Type="String")
    ssm.put_parameter(Name="/payroll/bank", Value="secret", Type="String")
    user = user_session(iam_cloud, "parameter-reader", [
        {"Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:GetParameters"],
         "Resource": arn(iam_cloud, "ssm", "parameter/shop/config/*")},
    ]).client("ssm", endpoint_url=iam_cloud.endpoint)
    assert user.get_parameter(Name="/shop/config/endpoint")["Parameter"]["Value"] == "https://partner.example"
    assert denied(user.get_parameter, Name="/payroll/bank") == "AccessDeniedException"
    both = user.get_parameters(Names=["/shop/config/endpoint", "/shop/config/limit"])["Parameters"]
    assert sorted(p["Value"] for p in both) == ["10", "https://partner.example"]
    # One name outside the allowed ARNs refuses the whole call.
    assert denied(user.get_parameters, Names=["/shop/config/limit", "/payroll/bank"]) == "AccessDeniedException"
    # GetParametersByPath is its own action: the GetParameter grant does not cover it.
    assert denied(user.get_parameters_by_path, Path="/shop/config") == "AccessDeniedException"


def test_get_parameters_by_path_is_authorized_against_the_path(iam_cloud) -> None:
    ssm = iam_cloud.client("ssm")
    ssm.put_parameter(Name="/team/app/a", Value="1", Type="String")
    ssm.put_parameter(Name="/team/app/b", Value="2", Type="String")
    user = user_session(iam_cloud, "path-reader", [
        {"Effect": "Allow", "Action": "ssm:GetParametersByPath",
         "Resource": arn(iam_cloud, "ssm", "parameter/team/app")},
    ]).client("ssm", endpoint_url=iam_cloud.endpoint)
    found = user.get_parameters_by_path(Path="/team/app")["Parameters"]
    assert sorted(p["Name"] for p in found) == ["/team/app/a", "/team/app/b"]
    assert denied(user.get_parameters_by_path, Path="/team") == "AccessDeniedException"
    assert denied(user.get_parameter, Name="/team/app/a") == "AccessDeniedException"  # another action
