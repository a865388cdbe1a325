"""Tables the lessons show: a lesson's bill in a unit that shows the number."""

from __future__ import annotations

import pytest

from lambdalab.course.display import bill_per_million
from lambdalab.runtime.metering import Meter


def test_a_small_bill_is_shown_per_million_invocations():
    """200 invocations of 300 ms at 128 MB cost about $0.0001: per million that is $0.83 of compute plus
    the $0.20 request charge, numbers a learner can read ($0.00 would show for the raw cost).
    Prices: https://aws.amazon.com/lambda/pricing/ (x86, us-east-1: $0.0000166667 per GB-s, $0.20 per million requests).
    """
    rows = [{"function": "thumbnails", "requests": 200, "GB-s": 7.5, "compute $": 7.5 * 0.0000166667,
             "requests $": 200 * 0.2e-6, "total $": 7.5 * 0.0000166667 + 200 * 0.2e-6}]
    table = bill_per_million(rows)
    (row,) = table.rows
    assert row["compute $ per million"] == pytest.approx(0.625, rel=1e-4)
    assert row["requests $ per million"] == pytest.approx(0.20)
    assert row["total $ per million"] == pytest.approx(0.825, rel=1e-4)
    assert "0.83" in str(table) and "0.20" in str(table)


def test_a_function_never_invoked_has_no_price_per_invocation():
    table = bill_per_million([{"function": "idle", "requests": 0, "GB-s": 0.0, "compute $": 0.0,
                               "requests $": 0.0, "total $": 0.0}])
    assert table.rows[0]["total $ per million"] is None


def test_the_meters_own_table_fits():
    """The rows come from Meter.table(): the names it uses are the ones read here."""
    assert bill_per_million(Meter().table()).rows[-1]["requests"] == 0
