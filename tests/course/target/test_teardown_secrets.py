"""The teardown finds and deletes a run's secrets and parameters, and nothing of another run.

AWS behaviour followed: `ListSecrets` leaves out secrets scheduled for deletion, and
`DeleteSecret` with `ForceDeleteWithoutRecovery` deletes at once instead of after the 7 to 30 day
recovery window (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteSecret.html);
`DescribeParameters` lists every parameter of the account and region, hierarchical names start
with `/` (https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-hierarchies.html).
"""

from __future__ import annotations

import pytest

from lambdalab.cloud.local_cloud import LocalCloud
from lambdalab.course.target import teardown

MINE = "lw-2612070300-a1b2-"
THEIRS = "lw-2612070301-c3d4-"


@pytest.fixture(scope="module")
def cloud():
    with LocalCloud(cpu_limit=False) as c:
        yield c


def test_a_runs_secrets_and_parameters_are_listed_deleted_and_gone(cloud) -> None:
    sm, ssm = cloud.client("secretsmanager"), cloud.client("ssm")
    for prefix in (MINE, THEIRS):
        sm.create_secret(Name=f"{prefix}api-key", SecretString="k")
        ssm.put_parameter(Name=f"/{prefix}app/endpoint", Value="https://x", Type="String")
        ssm.put_parameter(Name=f"{prefix}flat", Value="1", Type="String")
    sm.create_secret(Name="not-a-run", SecretString="k")

    found = teardown.inventory(cloud.client, MINE)
    assert sorted((r.service, r.kind, r.name) for r in found) == [
        ("secretsmanager", "secret", f"{MINE}api-key"),
        ("ssm", "parameter", f"/{MINE}app/endpoint"),
        ("ssm", "parameter", f"{MINE}flat"),
    ]
    assert {r.run.run_id for r in found} == {MINE[3:-1]}  # `lambdalab status` groups them under the run

    assert teardown.teardown(cloud.client, MINE, sleep=lambda s: None) == []
    assert teardown.inventory(cloud.client, MINE) == []
    left = {s["Name"] for s in sm.list_secrets()["SecretList"]}
    assert left == {f"{THEIRS}api-key", "not-a-run"}
    assert len(teardown.inventory(cloud.client, THEIRS)) == 3
    # Deleting again (an interrupted teardown rerun) is no error.
    for resource in found:
        teardown.delete(cloud.client, resource)
