"""Step Functions executions run in the local cloud, and their Lambda tasks run in the local runtime.

A Task state invokes its function as the state machine's execution role; a function's error becomes
the state's error, named by the function's `errorType`, with the error payload as its `Cause`
(https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html). A Retrier
re-runs the state `MaxAttempts` more times for the errors it names, then a Catcher moves on to its
`Next` state with `{"Error", "Cause"}` placed at its `ResultPath`
(https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html#error-handling-fallback-states).
A Map state runs its item processor once per element of its items array and outputs the results in
order (https://docs.aws.amazon.com/step-functions/latest/dg/state-map-inline.html). A Lambda that
runs out of time returns the function error `Sandbox.Timedout`
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html), so by the same rule the
task fails with that error name.
"""

from __future__ import annotations

import json
import time

import pytest

from lambdalab.cloud.local_cloud import LAMBDA_TRUST_POLICY

SUM = """
def lambda_handler(event, context):
    return {"chunk": event["chunk"], "total": sum(event["numbers"])}
"""
FAIL = """
def lambda_handler(event, context):
    raise ValueError("chunk " + str(event.get("chunk")) + " is bad")
"""
SLOW = """
import time

def lambda_handler(event, context):
    time.sleep(5)
"""
STATES_TRUST = {**LAMBDA_TRUST_POLICY, "Statement": [
    {**LAMBDA_TRUST_POLICY["Statement"][0], "Principal": {"Service": "states.amazonaws.com"}}]}


def state_machine(cloud, name: str, definition: dict, invoke: list[str] | None = None) -> str:
    """A state machine whose role may invoke the functions in `invoke` (every function if None)."""
    iam = cloud.client("iam")
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(STATES_TRUST))["Role"]
    resources = ["*"] if invoke is None else [f"arn:aws:lambda:{cloud.region}:{cloud.account_id}:function:{f}"
                                               for f in invoke]
    iam.put_role_policy(RoleName=f"{name}-role", PolicyName="invoke", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": resources}]}))
    sfn = cloud.client("stepfunctions")
    return sfn.create_state_machine(name=name, definition=json.dumps(definition),
                                    roleArn=role["Arn"])["stateMachineArn"]


def run(cloud, machine_arn: str, execution_input: dict, timeout_s: float = 60) -> dict:
    sfn = cloud.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps(execution_input))["executionArn"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.1)
    raise AssertionError(f"execution {arn} still running after {timeout_s} s")


def function_arn(cloud, name: str) -> str:
    return f"arn:aws:lambda:{cloud.region}:{cloud.account_id}:function:{name}"


def test_a_map_state_runs_one_lambda_task_per_chunk_in_the_runtime(fresh, code) -> None:
    fresh.deploy("summer", code(SUM), "handler.lambda_handler")
    machine = state_machine(fresh, "chunks", {
        "StartAt": "EachChunk",
        "States": {"EachChunk": {
            "Type": "Map", "ItemsPath": "$.chunks", "MaxConcurrency": 2, "End": True,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Sum", "States": {"Sum": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn(fresh, "summer"), "Payload.$": "$"},
                "OutputPath": "$.Payload", "End": True}}}}}})
    chunks = [{"chunk": i, "numbers": list(range(i * 10, i * 10 + 10))} for i in range(4)]

    done = run(fresh, machine, {"chunks": chunks})

    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"]) == [{"chunk": c["chunk"], "total": sum(c["numbers"])} for c in chunks]
    invocations = fresh.records("summer")
    assert len(invocations) == 4  # each task was a real invocation in the runtime
    assert all(inv.function_error is None for inv in invocations)


def test_a_function_error_fails_the_execution_with_its_error_type_and_payload(fresh, code) -> None:
    fresh.deploy("failer", code(FAIL), "handler.lambda_handler")
    machine = state_machine(fresh, "fails", {"StartAt": "Work", "States": {"Work": {
        "Type": "Task", "Resource": function_arn(fresh, "failer"), "End": True}}})

    done = run(fresh, machine, {"chunk": 7})

    assert done["status"] == "FAILED"
    assert done["error"] == "ValueError"
    cause = json.loads(done["cause"])
    assert cause["errorType"] == "ValueError" and cause["errorMessage"] == "chunk 7 is bad"
    assert len(fresh.records("failer")) == 1


def test_retry_reruns_the_task_then_catch_moves_on_with_error_and_cause(fresh, code) -> None:
    fresh.deploy("failer", code(FAIL), "handler.lambda_handler")
    machine = state_machine(fresh, "retries", {"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": function_arn(fresh, "failer"), "End": True,
                 "Retry": [{"ErrorEquals": ["KeyError"], "MaxAttempts": 5},
                           {"ErrorEquals": ["ValueError"], "IntervalSeconds": 1, "MaxAttempts": 2,
                            "BackoffRate": 1.0}],
                 "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Recorded"}]},
        "Recorded": {"Type": "Pass", "End": True}}})

    done = run(fresh, machine, {"chunk": 3})

    assert done["status"] == "SUCCEEDED"
    output = json.loads(done["output"])
    assert output["chunk"] == 3  # the Catcher's ResultPath keeps the state's input beside the error
    assert output["failure"]["Error"] == "ValueError"
    assert json.loads(output["failure"]["Cause"])["errorMessage"] == "chunk 3 is bad"
    assert len(fresh.records("failer")) == 3  # the first attempt and the ValueError retrier's two


def test_a_lambda_timeout_fails_the_task_with_sandbox_timedout(fresh, code) -> None:
    fresh.deploy("slow", code(SLOW), "handler.lambda_handler", timeout=1)
    machine = state_machine(fresh, "timeouts", {"StartAt": "Work", "States": {"Work": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True,
        "Parameters": {"FunctionName": function_arn(fresh, "slow"), "Payload": {}}}}})

    done = run(fresh, machine, {})

    assert done["status"] == "FAILED"
    assert done["error"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in json.loads(done["cause"])["errorMessage"]


@pytest.fixture
def iam_cloud(fresh):
    fresh.enforce_iam(True)
    yield fresh
    fresh.enforce_iam(False)


def test_under_iam_enforcement_tasks_invoke_as_the_state_machines_role(iam_cloud, code) -> None:
    """The role may invoke `allowed` only (https://docs.aws.amazon.com/step-functions/latest/dg/lambda-iam.html)."""
    iam_cloud.deploy("allowed", code(SUM), "handler.lambda_handler")
    iam_cloud.deploy("other", code(SUM), "handler.lambda_handler")
    definition = {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": "", "End": True}}}
    for name, target in (("may", "allowed"), ("may-not", "other")):
        definition["States"]["Work"]["Resource"] = function_arn(iam_cloud, target)
        state_machine(iam_cloud, name, definition, invoke=["allowed"])
    arn = f"arn:aws:states:{iam_cloud.region}:{iam_cloud.account_id}:stateMachine:"

    allowed = run(iam_cloud, arn + "may", {"chunk": 0, "numbers": [1, 2]})
    refused = run(iam_cloud, arn + "may-not", {"chunk": 0, "numbers": [1, 2]})

    assert allowed["status"] == "SUCCEEDED" and json.loads(allowed["output"])["total"] == 3
    assert refused["status"] == "FAILED"
    assert "lambda:InvokeFunction" in refused["cause"]
    assert iam_cloud.records("other") == []
