"""Checks for lab `coldstart` (notebook 08): the track's handler against the original, measured together.

The original (`solutions/lesson08/slow_init.py`) and the track's `coldstart/handler.py` are deployed
side by side in one runtime. Their cold starts are taken in turns, one at a time (so neither
shares the CPU with the other's INIT), each in a fresh execution environment; Init Duration comes
from the REPORT line of each cold invocation, and each of yours is compared with the original's
just before it. Run them with `check("coldstart")` in a notebook or `lambdalab check coldstart` in a shell.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lambdalab.course.labs import find_root
from lambdalab.course.lessons.cold_starts import TimedRequest, fresh_cold_starts, median, timed_invoke, warm_calls
from lambdalab.course.paths import package
from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.service import LocalRuntime

ORIGINAL = "original"
YOURS = "yours"
COLD_STARTS = 5  # per handler; the original's INIT is several times the target, so 5 suffice
QUOTE = {"postcode": "10115", "weight_kg": 2.5}
# What "the same behaviour" is checked on: quotes (with unknown and tricky postcodes), stats, labels.
EVENTS = [
    QUOTE,
    {"postcode": "80331"},
    {"postcode": "00000", "weight_kg": 0},
    {"postcode": "99999", "weight_kg": 31.5},
    {"postcode": 20095, "weight_kg": "1.5"},
    {"postcode": "1011", "weight_kg": 2},
    {"postcode": "101150"},
    {"postcode": "ABCDE"},
    {"postcode": "１０１１５"},
    {},
    {"action": "stats", "weights": [1.2, 0.4, 3.3, 7.9, 0.05]},
    {"action": "stats", "weights": [2]},
    {"action": "label", "postcode": "10115"},
    {"action": "label", "postcode": "99999"},
]
WARM_POSTCODES = [f"{n:05d}" for n in range(12345, 12357)]


@dataclass
class Measured:
    """Both handlers' cold starts, and the runtime that still holds their warm environments."""

    runtime: LocalRuntime
    cold: dict[str, list[TimedRequest]]


@pytest.fixture(scope="module")
def measured(lab_dir) -> Measured:
    """Deploy both handlers and take their cold starts in turns: original, yours, original, ..."""
    original_dir = package(find_root() / "solutions" / "lesson08")
    with LocalRuntime(cpu_limit=False) as rt:
        rt.deploy(FunctionConfig(name=ORIGINAL, code_dir=original_dir, handler="slow_init.lambda_handler",
                                 memory_mb=512, timeout_s=10))
        rt.deploy(FunctionConfig(name=YOURS, code_dir=lab_dir("coldstart"), handler="handler.lambda_handler",
                                 memory_mb=512, timeout_s=10))
        cold: dict[str, list[TimedRequest]] = {ORIGINAL: [], YOURS: []}
        for _ in range(COLD_STARTS):
            for name in (ORIGINAL, YOURS):
                cold[name] += fresh_cold_starts(rt, name, 1, event=QUOTE, parallel=1, progress=False)
        yield Measured(rt, cold)


def failure(sample: TimedRequest, event: object) -> str:
    return f"{sample.error} (for the event {event!r})"


def test_init_is_at_least_twice_as_fast(measured):
    """INIT takes at most half as long as the original's (median of several fresh environments).

    Hint: everything at module level runs in INIT. Build nothing there that a request can
    compute when it needs it, and import numpy and Pillow only inside the functions that use them.
    """
    original = measured.cold[ORIGINAL]
    assert all(s.ok for s in original), f"the original handler failed: {original[0].error}"
    for sample in measured.cold[YOURS]:
        if not sample.ok:
            pytest.fail(failure(sample, QUOTE), pytrace=False)
    # Each of your cold starts against the original's just before it: a machine that gets busier or
    # quieter during the check changes both alike, so the ratio of a pair holds where medians drift.
    ratio = median([y.init_ms / o.init_ms for o, y in zip(original, measured.cold[YOURS])])
    theirs = median([s.init_ms for s in original])
    yours = median([s.init_ms for s in measured.cold[YOURS]])
    assert ratio <= 0.5, (
        f"your Init Duration is {ratio:.0%} of the original's (median of {len(original)} cold starts taken in "
        f"pairs; yours {yours:.0f} ms, the original's {theirs:.0f} ms); it must be at most 50%")


def test_responses_match_the_original(measured):
    """Answers every test event exactly as the original does (quotes, unknown postcodes, stats, labels).

    Hint: the original's ZONES holds exactly the keys f"{n:05d}" for n in range(100_000); any
    other postcode is unknown. stats() and label() must compute what they computed before.
    """
    rt = measured.runtime
    for event in EVENTS:
        expected = timed_invoke(rt, ORIGINAL, event)
        got = timed_invoke(rt, YOURS, event)
        assert expected.ok, f"the original handler failed on {event!r}: {expected.error}"
        if not got.ok:
            pytest.fail(failure(got, event), pytrace=False)
        assert got.invocation.result == expected.invocation.result, (
            f"for the event {event!r} the original returns {expected.invocation.result!r}, "
            f"yours {got.invocation.result!r}")


def test_warm_quotes_stay_fast(measured):
    """Warm quotes take about as long as the original's (no rebuilding a table on every request).

    Hint: only INIT should get faster. A quote needs one postcode's entry: compute that one, not all
    100,000 of them, on every call.
    """
    rt = measured.runtime
    durations: dict[str, list[float]] = {}
    for name in (ORIGINAL, YOURS):
        samples = [warm_calls(rt, name, 1, event={"postcode": p, "weight_kg": 1})[0] for p in WARM_POSTCODES]
        for sample in samples:
            if not sample.ok:
                pytest.fail(failure(sample, {"postcode": "12345", "weight_kg": 1}), pytrace=False)
        durations[name] = [s.duration_ms for s in samples]
    theirs, yours = median(durations[ORIGINAL]), median(durations[YOURS])
    # Generous: a warm quote is well under a millisecond either way; rebuilding the table is ~100x that.
    assert yours <= 2 * theirs + 20, (
        f"a warm quote takes {yours:.1f} ms with your handler (median Duration), {theirs:.1f} ms with the original")
