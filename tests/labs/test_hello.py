"""Checks for lab `hello` (notebook 00): the track's handler, deployed into a real LocalRuntime.

Run them with `check("hello")` in a notebook or `lambdalab check hello` in a shell.
"""

from __future__ import annotations

import pytest

from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.records import Invocation


@pytest.fixture
def hello(runtime, lab_dir):
    """The track's `hello` handler, deployed under the name "hello"."""
    runtime.deploy(FunctionConfig(name="hello", code_dir=lab_dir("hello"),
                                  handler="handler.lambda_handler", memory_mb=128, timeout_s=3))
    return runtime


def field(inv: Invocation, key: str) -> object:
    """`key` of the handler's result, or None when the result is not a dict."""
    return inv.result.get(key) if isinstance(inv.result, dict) else None


def test_greets_by_name(hello, invoke):
    """Greets the caller by the name in the event.

    Hint: the event is a dict: read event["name"] and put it in an f-string.
    """
    inv = invoke("hello", {"name": "Ada"})
    got = field(inv, "greeting")
    assert got == "Hello, Ada!", f'for {{"name": "Ada"}} the greeting should be "Hello, Ada!", not {got!r}'


def test_greets_world_by_default(hello, invoke):
    """Greets "world" when the event has no name.

    Hint: event.get("name", "world") returns the default when the key is missing.
    """
    inv = invoke("hello", {})
    got = field(inv, "greeting")
    assert got == "Hello, world!", f'for {{}} the greeting should be "Hello, world!", not {got!r}'


def test_returns_the_request_id(hello, invoke):
    """Returns the request id Lambda gave this invocation.

    Hint: Lambda passes it in the context object: context.aws_request_id.
    """
    inv = invoke("hello", {"name": "Ada"})
    got = field(inv, "request_id")
    assert got == inv.request_id, f"request_id should be this invocation's {inv.request_id!r}, not {got!r}"


def test_counts_invocations_per_environment(hello, invoke):
    """Counts 1, 2, 3 across warm invocations of one execution environment.

    Hint: `invocations` lives at module level, so it survives from one invocation to the next
    in a warm environment: add 1 to it on every call.
    """
    calls = [invoke("hello", {"name": f"caller {n}"}) for n in range(3)]
    environments = {inv.environment_id for inv in calls}
    assert len(environments) == 1, f"three calls in a row should reuse one environment, used {environments}"
    assert [inv.cold for inv in calls] == [True, False, False], "only the first call should be a cold start"
    counts = [field(inv, "invocations") for inv in calls]
    assert counts == [1, 2, 3], f"invocations should count 1, 2, 3 in one warm environment, got {counts}"


def test_logs_the_greeting(hello, invoke):
    """Writes one log line, with the greeting, between Lambda's START and END lines.

    Hint: whatever the handler prints goes to its log; keep the print() after the exercises.
    """
    inv = invoke("hello", {"name": "Ada"})
    handler_lines = [line for line in inv.log_lines if not line.startswith(("START ", "END ", "REPORT "))]
    assert len(handler_lines) == 1 and "Hello, Ada!" in handler_lines[0], \
        f"the log should hold one line with the greeting, got {handler_lines}"


@pytest.mark.stretch
def test_stretch_trims_the_name_and_greets_world_for_a_blank_one(hello, invoke):
    """Stretch goal: trims spaces around the name, and greets "world" for an empty or blank name.

    Hint: str.strip() removes the spaces; an empty string is false, so `... or "world"` picks the default.
    """
    for name, expected in (("  Ada ", "Hello, Ada!"), ("", "Hello, world!"), ("   ", "Hello, world!")):
        got = field(invoke("hello", {"name": name}), "greeting")
        assert got == expected, f"for {{'name': {name!r}}} the greeting should be {expected!r}, not {got!r}"
