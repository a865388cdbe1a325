"""Checks for lab `chunks` (notebook 11): `split` in the track's `chunks/chunks.py`.

`split(items, timeout_ms, share)` cuts a job into chunks whose estimated time (the sum of their
items' `ms`) stays within `share` of a function's timeout. The last check runs each chunk of a
3-second job through the lab's worker in a real LocalRuntime with a 1-second timeout: the runtime
kills a chunk that runs past it (`Sandbox.Timedout`), exactly as Lambda would.
Run them with `check("chunks")` in a notebook or `lambdalab check chunks` in a shell.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lambdalab.runtime.config import FunctionConfig

Split = Callable[..., list]


def job(ms: list[int]) -> list[dict]:
    return [{"id": f"rec-{i:03d}", "ms": m} for i, m in enumerate(ms)]


def chunk_ms(chunk: list[dict]) -> int:
    return sum(item["ms"] for item in chunk)


@pytest.fixture(scope="module")
def split(lab_module: Callable[[str], object]) -> Split:
    """The track's `split`, imported from its file (not from whatever is on sys.path)."""
    return lab_module("chunks/chunks.py").split


def test_every_item_once_in_order_and_each_chunk_within_its_share(split) -> None:
    """Each chunk's estimated time is at most share * timeout_ms, and the chunks, joined, are the job.

    Hint: keep a running total of the current chunk's "ms"; when the next item would push it past
    budget_ms, append the current chunk to `chunks` and start a new one. Do not forget the last chunk.
    """
    items = job([120, 80, 300, 50, 50, 50, 400, 10, 90, 260, 200, 30])
    chunks = split(items, 1000, 0.5)
    assert isinstance(chunks, list) and all(isinstance(c, list) for c in chunks), \
        f"split should return a list of lists of items, got {chunks!r}"
    assert [item for c in chunks for item in c] == items, "the chunks, joined, should be every item once, in order"
    assert all(c for c in chunks), "no chunk should be empty"
    too_long = [chunk_ms(c) for c in chunks if chunk_ms(c) > 500]
    assert not too_long, f"chunks of {too_long} ms are over the budget of 500 ms (half of a 1000 ms timeout)"


def test_chunks_are_full_so_there_are_no_more_invocations_than_needed(split) -> None:
    """A chunk is closed only when the next item would not fit: each invocation costs a request.

    Hint: start a new chunk only when current_ms + item["ms"] > budget_ms, not before.
    """
    items = job([100] * 20)
    chunks = split(items, 1000, 0.5)
    assert [len(c) for c in chunks] == [5, 5, 5, 5], \
        f"twenty items of 100 ms with a 500 ms budget make four chunks of five, got sizes {[len(c) for c in chunks]}"
    chunks = split(job([300, 150, 100, 400, 100]), 1000, 0.5)
    assert [chunk_ms(c) for c in chunks] == [450, 500, 100], \
        f"items of 300, 150, 100, 400, 100 ms make chunks of 450, 500 and 100 ms, got {[chunk_ms(c) for c in chunks]}"


def test_an_item_longer_than_a_chunk_may_be_is_refused(split) -> None:
    """An item that alone is over the budget cannot be split: ValueError, naming the item.

    Hint: before adding an item, check item["ms"] > budget_ms and raise ValueError(f"... {item['id']} ...").
    """
    with pytest.raises(ValueError, match="rec-002"):
        split(job([100, 100, 700, 100]), 1000, 0.5)


def test_each_chunk_of_a_three_second_job_runs_inside_a_one_second_timeout(split, runtime, lab_dir) -> None:
    """The worker runs every chunk of a 3-second job in a function with a 1-second timeout.

    Hint: if a chunk times out here, its items add up to more than the budget: check the sum.
    """
    runtime.deploy(FunctionConfig(name="worker", code_dir=lab_dir("chunks"), handler="worker.chunk_handler",
                                  memory_mb=128, timeout_s=1))
    items = job([60] * 50)
    chunks = split(items, 1000)
    done = []
    for n, chunk in enumerate(chunks):
        inv = runtime.invoke("worker", {"job": "check", "chunk": n, "items": chunk})
        assert inv.ok, f"chunk {n} ({chunk_ms(chunk)} ms of items) failed: {inv.function_error} {inv.result!r}"
        done += inv.result["ids"]
    assert done == [item["id"] for item in items]
