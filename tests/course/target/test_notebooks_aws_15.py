"""Lessons 15, 02, 03, 08 and 09 on the `aws` target: each notebook runs to the end against the
`lambdalab cloud --iam` stand-in (IAM enforced, as AWS always does), states its cost before it
creates anything, skips its local-only cells with what AWS shows instead, and leaves nothing of
its run behind. The local target runs the same notebooks under `make test` (nbval over notebooks/).

AWS behaviour followed: Invoke with LogType=Tail returns the last 4 KB of the invocation's log,
base64-encoded, in LogResult (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html);
UpdateFunctionConfiguration changes MemorySize and Lambda reports LastUpdateStatus until the
change is done (https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html); the Resource
Groups Tagging API does not cover IAM, so every service is listed by name
(https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/supported-services.html).
"""

from __future__ import annotations

import pytest

from lambdalab.course.target import teardown
from lambdalab.course.target.aws import aws_session, clients_of
from lambdalab.course.target.cells import LOCAL_ONLY

# per lesson: how many local-only cells it has, and what else its outputs must show on the stand-in
EXPECTED = {
    "15_deploy": (0, ["target: aws (stand-in: lambdalab cloud --iam)",
                      "beside it: ",  # the other column is a run on local, and the lesson says which
                      "monthly budget serverless-workbook-monthly: 5",
                      "thumb-uploads/photo-001.jpg"]),
    "02_handler_and_context": (0, ["status: 200", "OrderRejected", "RetriesExhausted", "Sandbox.Timedout",
                                   "module imported: this line belongs to INIT"]),
    "03_execution_environment": (4, ["new environments in", "Runtime.ExitError", "and the table says"]),
    "08_cold_starts": (0, ["notebook ran in"]),  # its local runtime sections measure this machine on either target
    "09_power_tuning": (1, ["REPORT RequestId:", "balanced pick:", "priced from their REPORT lines"]),
}




@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_lesson_runs_on_aws_and_leaves_nothing(sandbox, run_notebook, monkeypatch, name) -> None:
    monkeypatch.setenv("LAMBDALAB_TRACK", "solutions")
    monkeypatch.setenv("LAMBDALAB_QUICK", "1")
    shown = run_notebook(name)
    plan = f"AWS account {sandbox['LAMBDALAB_AWS_ACCOUNT']}"
    assert plan in shown  # the plan, before anything was created
    assert shown.index("expected cost of a full run on aws") < shown.index(plan)
    local_only_cells, expected = EXPECTED[name]
    assert shown.count(LOCAL_ONLY) == local_only_cells
    for text in expected:
        assert text in shown
    assert teardown.inventory(clients_of(aws_session(sandbox))) == []
