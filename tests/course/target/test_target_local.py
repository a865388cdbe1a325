"""The `local` target runs the same calls as `aws` against a LocalCloud it starts: the function
from the built package, REPORT records read back from CloudWatch Logs with the cold start first
(https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html), and a teardown that leaves
nothing; `LAMBDALAB_TARGET` picks the target and names the choices when it is wrong."""

from __future__ import annotations

import pytest

from lambdalab.course.target import on_aws, open_target
from lambdalab.runtime.errors import LambdaLabError


def test_the_local_target_is_the_default_and_runs_the_same_calls(monkeypatch, function_code) -> None:
    monkeypatch.delenv("LAMBDALAB_TARGET", raising=False)
    assert not on_aws()
    target = open_target(["a function"], cpu_limit=False)
    try:
        assert target.kind == "local"
        role = target.create_role("fn-role", [target.logging_statement(target.name("fn"))])
        config = target.create_function("fn", function_code, "handler.lambda_handler", role=role)
        assert target.client("lambda").list_tags(Resource=config["FunctionArn"])["Tags"]["run"] == target.run.run_id
        for n in range(3):
            assert target.invoke("fn", {"n": n})["Payload"] == {"ok": True}
        records = target.settle("fn", 3, timeout=30)
        assert [r.cold for r in records] == [True, False, False]
        assert {r.report.memory_mb for r in records} == {128}
        target.teardown()
        assert target.leftovers() == []
    finally:
        target.close()
    target.close()  # a second close does nothing


def test_an_unknown_target_is_named_with_the_choices(monkeypatch) -> None:
    monkeypatch.setenv("LAMBDALAB_TARGET", "azure")
    with pytest.raises(LambdaLabError, match="LAMBDALAB_TARGET='azure': choose one of local, aws"):
        open_target(["a function"])
