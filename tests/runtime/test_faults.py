"""The local Lambda service under hostile or broken handlers: nothing crashes the service, every
invocation leaves a record.

Lambda's Invoke API returns the function's response bytes as they are (`Payload`, "The response
from the function, or an error object", https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html);
a response that is not JSON is not the service's failure and is never retried.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.service import LocalRuntime

RAW_RESPONSE = textwrap.dedent('''
    import os, urllib.request

    def handler(event, context):
        api = os.environ["AWS_LAMBDA_RUNTIME_API"]
        url = f"http://{api}/2018-06-01/runtime/invocation/{context.aws_request_id}/response"
        request = urllib.request.Request(url, data=bytes.fromhex(event["hex"]), method="POST",
                                         headers={"Content-Type": event["type"]})
        urllib.request.urlopen(request).read()
        return None
''')


@pytest.fixture
def rt():
    with LocalRuntime(cpu_limit=False, async_retry_delays=(0.05, 0.05)) as runtime:
        yield runtime


@pytest.fixture
def raw_fn(rt, tmp_path: Path) -> str:
    (tmp_path / "raw.py").write_text(RAW_RESPONSE)
    rt.deploy(FunctionConfig(name="raw", code_dir=tmp_path, handler="raw.handler", timeout_s=10))
    return "raw"


@pytest.mark.parametrize("body", [b"\xff\xfe\x00not utf-8", b'{"amount": 1', b"plain words"])
def test_a_response_that_is_not_json_is_returned_as_bytes_and_recorded(rt, raw_fn, body: bytes) -> None:
    inv = rt.invoke(raw_fn, {"hex": body.hex(), "type": "application/json"})
    assert inv.payload == body
    assert inv.error is None and inv.function_error is None
    assert inv.result == body
    assert rt.records(raw_fn)[-1] is inv


def test_an_async_response_that_is_not_json_succeeds_once_with_a_text_payload(rt, raw_fn) -> None:
    successes: list[dict] = []
    rt.set_event_invoke_config(raw_fn, on_success=successes.append)
    rt.invoke_async(raw_fn, {"hex": b"\xffok".hex(), "type": "application/json"})
    assert rt.wait_idle(10)
    assert len(rt.records(raw_fn)) == 1
    assert [s["responsePayload"] for s in successes] == ["\ufffdok"]
    assert successes[0]["requestContext"]["approximateInvokeCount"] == 1


SLOW_INIT = textwrap.dedent('''
    import time
    time.sleep(1.5)

    def handler(event, context):
        return "ready"
''')


def test_an_init_longer_than_the_init_limit_is_retried_under_the_function_timeout(rt, tmp_path, monkeypatch) -> None:
    """On-demand INIT has 10 s; "if all three tasks don't complete within 10 seconds, Lambda retries
    the Init phase at the time of the first function invocation with the configured function
    timeout" (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html).
    The limit is shortened to 0.5 s here so the test runs in seconds."""
    from lambdalab.runtime import environment
    monkeypatch.setattr(environment, "INIT_LIMIT_S", 0.5)
    (tmp_path / "slow.py").write_text(SLOW_INIT)
    rt.deploy(FunctionConfig(name="slow", code_dir=tmp_path, handler="slow.handler", timeout_s=10))
    first = rt.invoke("slow")
    assert (first.error, first.result) == (None, "ready")
    second = rt.invoke("slow")
    assert second.result == "ready" and not second.cold
    assert second.environment_id == first.environment_id


def test_an_init_past_the_function_timeout_still_fails(rt, tmp_path, monkeypatch) -> None:
    from lambdalab.runtime import environment
    monkeypatch.setattr(environment, "INIT_LIMIT_S", 0.5)
    (tmp_path / "slow.py").write_text(SLOW_INIT)
    rt.deploy(FunctionConfig(name="slow", code_dir=tmp_path, handler="slow.handler", timeout_s=1))
    assert rt.invoke("slow").error_type == "Runtime.InitTimeout"


CLOSES_STDOUT = textwrap.dedent('''
    import logging, os, sys

    def handler(event, context):
        if event.get("close") == "object":
            sys.stdout.close()
        elif event.get("close") == "descriptor":
            os.close(1)
        logging.getLogger().warning("still logging")
        return "closed"
''')


@pytest.mark.parametrize("how", ["object", "descriptor"])
def test_a_handler_that_closes_its_stdout_does_not_kill_the_runtime(rt, tmp_path, how: str) -> None:
    """On Lambda the runtime client writes its own records as frames on `_LAMBDA_TELEMETRY_LOG_FD`,
    not on stdout (awslambdaric's `create_log_sink`, FramedTelemetryLogSink,
    https://github.com/aws/aws-lambda-python-runtime-interface-client/blob/main/awslambdaric/bootstrap.py):
    a handler that closes stdout breaks its own prints, never the next invocation (was: exit status 120)."""
    (tmp_path / "closer.py").write_text(CLOSES_STDOUT)
    rt.deploy(FunctionConfig(name="closer", code_dir=tmp_path, handler="closer.handler", timeout_s=10))
    first = rt.invoke("closer", {"close": how})
    assert first.result == "closed"
    second = rt.invoke("closer", {})
    assert second.error_type != "Runtime.ExitError", second.error
    assert (second.error, second.result) == (None, "closed")
    assert second.environment_id == first.environment_id  # the same worker, still serving
    assert any("still logging" in line for line in second.log_lines)
