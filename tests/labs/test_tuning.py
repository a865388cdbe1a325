"""Checks for lab `tuning` (notebook 09): `choose_memory` in the track's `tuning/choose.py`.

It is fed a real power-tuning run (the reference resize handler at three memory sizes, measured
by the runtime) and small tables made up to pin down the rules. Run them with
`check("tuning")` in a notebook or `lambdalab check tuning` in a shell.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from lambdalab.course.labs import find_root
from lambdalab.course.lessons.power_tuning import PowerStats, TuningResult, power_tune
from lambdalab.course.paths import package
from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.metering import PRICE_PER_GB_SECOND, PRICE_PER_REQUEST
from lambdalab.runtime.service import LocalRuntime

Choose = Callable[[TuningResult, float], int]


@pytest.fixture(scope="module")
def choose_memory(lab_module: Callable[[str], object]) -> Choose:
    """The track's `choose_memory`, imported from its file (not from whatever is on sys.path)."""
    return lab_module("tuning/choose.py").choose_memory


@pytest.fixture(scope="module")
def measured() -> Iterator[TuningResult]:
    """A real run: the reference resize handler at 256, 1024 and 1769 MB, five warm invocations each."""
    solutions = find_root() / "solutions"
    code = package(solutions / "tuning", include=(solutions / "thumbnail" / "thumbnail.py",))
    config = FunctionConfig(name="resize", code_dir=code,
                            handler="resize.lambda_handler", timeout_s=30, environment={"IMAGE_SIZE": "600x450"})
    with LocalRuntime(cpu_limit=True) as rt:
        yield power_tune(rt, config, {}, power_values=(256, 1024, 1769), num=5)


def stat(memory_mb: int, billed_ms: float, p95_ms: float) -> PowerStats:
    """A made-up memory size, priced as Lambda prices `billed_ms` at that size."""
    cost = memory_mb / 1024 * billed_ms / 1000 * PRICE_PER_GB_SECOND["x86_64"] + PRICE_PER_REQUEST
    return PowerStats(memory_mb=memory_mb, samples=10, duration_ms=billed_ms, billed_ms=billed_ms,
                      p50_ms=billed_ms, p95_ms=p95_ms, cost_per_invocation=cost)


def table(*stats: PowerStats) -> TuningResult:
    return TuningResult(function_name="made-up", stats=stats, num=10)


def cheapest_meeting(result: TuningResult, target: float) -> int:
    meeting = [s for s in result.stats if s.p95_ms <= target]
    return min(meeting, key=lambda s: (s.cost_per_invocation, s.p95_ms)).memory_mb


def test_chooses_from_a_real_run(choose_memory: Choose, measured: TuningResult):
    """Picks the cheapest size meeting the target in a real measured run.

    Hint: keep the sizes of results.stats whose p95_ms <= p95_target_ms, then return the
    memory_mb of the one with the least cost_per_invocation.
    """
    for target in sorted({s.p95_ms for s in measured.stats}) + [max(s.p95_ms for s in measured.stats) * 10]:
        got = choose_memory(measured, target)
        want = cheapest_meeting(measured, target)
        assert got == want, (f"for a p95 target of {target:.2f} ms the cheapest size meeting it is {want} MB, "
                             f"not {got!r}; measured:\n{measured}")


def test_cheapest_is_not_always_the_smallest(choose_memory: Choose):
    """Chooses by cost, not by memory size: a bigger size can be cheaper.

    Hint: for CPU-bound work a bigger size finishes so much sooner that it costs less; compare
    cost_per_invocation, not memory_mb.
    """
    result = table(stat(512, 500, 560), stat(1024, 240, 270), stat(1769, 150, 170), stat(3008, 150, 170))
    got = choose_memory(result, 600)
    assert got == 1024, f"all four sizes meet 600 ms and 1024 MB is the cheapest, but got {got!r}"


def test_judges_the_tail_not_the_average(choose_memory: Choose):
    """Judges each size by its p95, not its average duration.

    Hint: a size whose mean is under the target can still have a p95 over it; use p95_ms.
    """
    result = table(stat(512, 250, 900), stat(1024, 130, 260))  # 512 MB: a fast mean, a slow tail
    got = choose_memory(result, 300)
    assert got == 1024, f"512 MB's p95 is 900 ms, over the 300 ms target; expected 1024 MB, got {got!r}"


def test_a_p95_equal_to_the_target_meets_it(choose_memory: Choose):
    """Counts a p95 exactly at the target as meeting it.

    Hint: "meets the target" means p95_ms <= p95_target_ms.
    """
    result = table(stat(256, 400, 450), stat(1769, 60, 70))
    got = choose_memory(result, 450)
    assert got == 256, f"256 MB's p95 is exactly the 450 ms target and it is the cheaper; got {got!r}"


def test_says_so_when_no_size_is_fast_enough(choose_memory: Choose):
    """Raises ValueError naming the best p95 seen when no size meets the target.

    Hint: when no size qualifies, raise ValueError with a message that includes the lowest
    p95_ms measured, so the caller knows how far off the target is.
    """
    result = table(stat(128, 2000, 2300), stat(1024, 240, 277), stat(1769, 150, 183))
    with pytest.raises(ValueError) as caught:
        choose_memory(result, 100)
    numbers = [float(n) for n in re.findall(r"\d+(?:\.\d+)?", str(caught.value).replace(",", ""))]
    assert any(abs(n - 183) < 0.05 for n in numbers), \
        f"the message should name the best p95 measured (183 ms at 1769 MB): {caught.value}"
