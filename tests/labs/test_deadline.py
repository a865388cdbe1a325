"""Checks for lab `deadline` (notebook 02): a batch handler that stops before its timeout.

The track's handler runs in a real LocalRuntime with a 1-second timeout; the runtime kills it
(`Sandbox.Timedout`) if it runs past that, exactly as Lambda would.
Run them with `check("deadline")` in a notebook or `lambdalab check deadline` in a shell.
"""

from __future__ import annotations

import pytest

from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.records import Invocation

TIMEOUT_S = 1


def batch(n: int, ms: int, prefix: str = "job") -> list[dict]:
    return [{"id": f"{prefix}-{i:02d}", "ms": ms} for i in range(n)]


@pytest.fixture
def deadline(runtime, lab_dir):
    """The track's `deadline` handler, deployed with a 1-second timeout."""
    runtime.deploy(FunctionConfig(name="deadline", code_dir=lab_dir("deadline"),
                                  handler="handler.lambda_handler", memory_mb=128, timeout_s=TIMEOUT_S))
    return runtime


def outcome(inv: Invocation) -> tuple[list, list]:
    """(processed ids, remaining items) of a result, with a clear failure when it is malformed."""
    r = inv.result
    assert isinstance(r, dict) and isinstance(r.get("processed"), list) and isinstance(r.get("remaining"), list), \
        f'the result should be {{"processed": [...], "remaining": [...], "complete": ...}}, got {r!r}'
    return r["processed"], r["remaining"]


def test_stops_before_the_timeout(deadline, invoke):
    """Returns before the 1-second timeout when the batch needs 3 seconds.

    Hint: before each item, compare context.get_remaining_time_in_millis() with
    slowest_ms + SAFETY_MS, and return result(processed, items[index:]) when it is smaller.
    """
    items = batch(30, 100)
    inv = invoke("deadline", {"items": items})  # a timed-out invocation fails here with Sandbox.Timedout
    processed, remaining = outcome(inv)
    assert inv.duration_ms < TIMEOUT_S * 1000, f"took {inv.duration_ms:.0f} ms, the timeout is {TIMEOUT_S * 1000} ms"
    assert len(processed) >= 4, \
        f"only {len(processed)} items of 100 ms were processed in a 1-second invocation; " \
        "stop later (use the time you have)"
    assert processed + [item["id"] for item in remaining] == [item["id"] for item in items], \
        "processed + remaining should be the whole batch, in order, each item exactly once"
    assert remaining == items[len(processed):], "remaining should hold the unprocessed items exactly as they were given"
    assert inv.result.get("complete") is False, "complete should be False when items are left"


def test_keeps_room_for_slow_items(deadline, invoke):
    """Does not start an item that cannot finish in time (items of 350 ms, 1-second timeout).

    Hint: an item may take as long as the slowest one so far: only start it when
    remaining time >= slowest_ms + SAFETY_MS.
    """
    items = batch(6, 350, "slow")
    inv = invoke("deadline", {"items": items})
    processed, remaining = outcome(inv)
    assert processed == [item["id"] for item in items[:len(processed)]] and remaining == items[len(processed):], \
        "processed + remaining should be the whole batch, in order"
    assert 1 <= len(processed) <= 2, f"processed {len(processed)} items of 350 ms in 1 second"


def test_next_runs_finish_the_batch(deadline, invoke):
    """Passing "remaining" to the next run finishes the batch: every item once, in order.

    Hint: return the items you did not process exactly as they came in the event, so they can
    be the next run's "items".
    """
    items = batch(24, 100)
    done: list = []
    todo = items
    runs = 0
    while todo and runs < 7:
        processed, todo = outcome(invoke("deadline", {"items": todo}))
        done += processed
        runs += 1
    assert not todo, f"{len(todo)} items still left after {runs} runs"
    assert done == [item["id"] for item in items], "across the runs, every item should be processed once, in order"
    assert runs >= 3, f"24 items of 100 ms cannot fit in {runs} runs of 1 second"


def test_processes_everything_when_there_is_time(deadline, invoke):
    """Processes the whole batch, and says it is complete, when there is time.

    Hint: when the loop ends normally, return result(processed, []).
    """
    items = batch(5, 50, "quick")
    inv = invoke("deadline", {"items": items})
    processed, remaining = outcome(inv)
    assert processed == [item["id"] for item in items], f"all five items fit in 1 second; processed {processed}"
    assert remaining == [] and inv.result.get("complete") is True, "nothing should be left and complete should be True"
    processed, remaining = outcome(invoke("deadline", {"items": []}))
    assert processed == [] and remaining == [], "an empty batch should return empty lists"


@pytest.mark.stretch
def test_stretch_says_how_much_time_was_left(deadline, invoke):
    """Stretch goal: a run that stops early says how much time it had left, as "left_ms".

    Hint: return the milliseconds that context.get_remaining_time_in_millis() gave when you decided
    to stop, beside "processed" and "remaining": real runs then show whether SAFETY_MS is too large.
    """
    inv = invoke("deadline", {"items": batch(30, 100, "left")})
    result = inv.result if isinstance(inv.result, dict) else {}
    assert result.get("complete") is False, f"a 3-second batch cannot finish in 1 second; the result was {result!r}"
    left = result.get("left_ms")
    assert isinstance(left, int) and not isinstance(left, bool), \
        f'the result of a run that stopped early should have an integer "left_ms", got {left!r}'
    assert 0 < left < TIMEOUT_S * 1000, f'"left_ms" should be the time left when it stopped (under 1 s), got {left}'
