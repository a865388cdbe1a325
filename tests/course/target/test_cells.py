"""The marker of local-only cells and the cost line a lesson prints before it creates anything.

Prices are Lambda's published on-demand rates (https://aws.amazon.com/lambda/pricing/): per
request and per GB-second, x86_64 in us-east-1.
"""

from __future__ import annotations

import pytest

from lambdalab.course.target.cells import LOCAL_ONLY, cost_line, local_only
from lambdalab.runtime.metering import PRICE_PER_GB_SECOND, PRICE_PER_REQUEST


def test_a_local_only_cell_runs_locally_and_says_what_aws_shows_instead(monkeypatch, capsys) -> None:
    monkeypatch.delenv("LAMBDALAB_TARGET", raising=False)
    assert local_only("the console shows it") is True and capsys.readouterr().out == ""
    monkeypatch.setenv("LAMBDALAB_TARGET", "aws")
    assert local_only("the console shows it") is False
    assert capsys.readouterr().out == f"({LOCAL_ONLY}) On AWS: the console shows it\n"
    with pytest.raises(ValueError, match="what AWS shows instead"):
        local_only(" ")


def test_the_cost_line_prices_the_invocations_at_the_meters_rates() -> None:
    line = cost_line(100, 250, 1024, other="S3 requests under a cent")
    dollars = 100 * (1.0 * 0.25 * PRICE_PER_GB_SECOND["x86_64"] + PRICE_PER_REQUEST)
    assert f"${dollars:.4f} for 100 Lambda invocations" in line and line.endswith("S3 requests under a cent")
