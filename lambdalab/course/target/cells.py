"""What a lesson's cells say about the target they run on: local-only cells and the cost line.

Some cells show what only the local runtime can show (process states, frozen tickers, the
fast-forward clock, a loop left running under our own budget). Each opens with
`if local_only("what AWS shows instead"):`: on `local` the cell runs; on `aws` it prints that
sentence and its body is skipped. `cost_line` is the one line a lesson prints, before it creates
anything, with what a full run costs at Lambda's prices (`runtime.metering`, no free tier).
"""

from __future__ import annotations

from lambdalab.course.target import on_aws
from lambdalab.runtime.metering import projected_cost

LOCAL_ONLY = "local-only cell, skipped on aws"


def local_only(aws_shows: str) -> bool:
    """True where the cell runs (local); on aws, say what AWS shows instead and return False."""
    if not aws_shows.strip():
        raise ValueError("local_only: say in one sentence what AWS shows instead")
    if on_aws():
        print(f"({LOCAL_ONLY}) On AWS: {aws_shows}")
        return False
    return True


def cost_line(invocations: int, mean_billed_ms: float, memory_mb: int, *, architecture: str = "x86_64",
              other: str = "") -> str:
    """One line: the Lambda bill of `invocations` at `mean_billed_ms` and `memory_mb`, at the meter's rates."""
    dollars = projected_cost(invocations, max(mean_billed_ms, 1.0), memory_mb, architecture, 1.0)
    extra = f"; {other}" if other else ""
    return (f"expected cost of a full run on aws: about ${dollars:.4f} for {invocations} Lambda invocations "
            f"(~{mean_billed_ms:g} ms billed at {memory_mb} MB, meter's prices, no free tier){extra}")
