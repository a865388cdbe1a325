"""The teardown finds and deletes a run's Step Functions state machines, on the `aws` target
against the `lambdalab cloud --iam` stand-in.

AWS behaviour followed: ListStateMachines lists every state machine of the account and region
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListStateMachines.html), and
DeleteStateMachine deletes one, stopping its running executions
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_DeleteStateMachine.html); the
Resource Groups Tagging API is not used, so the lister goes by name.
"""

from __future__ import annotations

import json

from lambdalab.course.target import open_target, teardown
from lambdalab.course.target.aws import aws_session, clients_of

PASS = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}


def test_a_runs_state_machine_is_listed_and_torn_down(sandbox) -> None:
    target = open_target(["a state machine", "a role"])
    role = target.create_role("states", [], service="states.amazonaws.com")
    sfn = target.client("stepfunctions")
    arn = sfn.create_state_machine(name=target.name("flow"), definition=json.dumps(PASS), roleArn=role,
                                   tags=target.tag_list("key", "value"))["stateMachineArn"]
    sfn.start_execution(stateMachineArn=arn, input="{}")
    other = sfn.create_state_machine(name="not-a-run-of-the-course", definition=json.dumps(PASS),
                                     roleArn=role)["stateMachineArn"]
    try:
        found = [(r.kind, r.name) for r in target.leftovers()]
        assert ("state machine", target.name("flow")) in found
        assert all(name != "not-a-run-of-the-course" for _, name in found)
        target.close()
        assert target.leftovers() == []
        assert teardown.inventory(clients_of(aws_session(sandbox))) == []
        assert [m["name"] for m in sfn.list_state_machines()["stateMachines"]] == ["not-a-run-of-the-course"]
    finally:
        sfn.delete_state_machine(stateMachineArn=other)
