"""Lesson 14's prices and arithmetic, checked against AWS's own figures.

Lambda: the pricing page's worked example (512 MB, 3M requests of 1 s, after the free tier of 1M
requests and 400,000 GB-s: $18.33 of compute and $0.40 of requests), and provisioned concurrency
at $0.0000041667 per GB-second enabled and $0.0000097222 per GB-second of duration on x86_64, no
free tier (https://aws.amazon.com/lambda/pricing/). EC2 and Fargate: on-demand Linux prices in
us-east-1 (https://aws.amazon.com/ec2/pricing/on-demand/, https://aws.amazon.com/fargate/pricing/),
730 hours to the month.
"""

from __future__ import annotations

import pytest

from lambdalab.course.lessons import cost


def test_lambda_bill_matches_aws_worked_example() -> None:
    bill = cost.lambda_monthly(3_000_000, 1000, 512, free_tier=True)
    assert bill.gb_seconds == pytest.approx(1_500_000)
    assert bill.compute_usd == pytest.approx(18.33, abs=0.01)
    assert bill.request_usd == pytest.approx(0.40)
    no_free = cost.lambda_monthly(3_000_000, 1000, 512)
    assert no_free.total_usd == pytest.approx(1_500_000 * 0.0000166667 + 0.60)
    assert cost.lambda_monthly(3_000_000, 1000, 512, "arm64").compute_usd == pytest.approx(1_500_000 * 0.0000133334)


def test_a_month_inside_the_free_tier_costs_nothing() -> None:
    assert cost.lambda_monthly(1_000_000, 800, 512, free_tier=True).total_usd == 0.0
    assert cost.lambda_monthly(1_000_001, 800, 512, free_tier=True).total_usd > 0.0


def test_break_even_is_where_the_bill_reaches_the_server() -> None:
    server = cost.ec2_instance("m5.large", "x86_64")
    assert server.monthly_usd == pytest.approx(0.096 * 730)
    crossing = cost.break_even(60, 1024, server.monthly_usd)
    assert cost.lambda_monthly(crossing, 60, 1024).total_usd >= server.monthly_usd
    assert cost.lambda_monthly(crossing - 1, 60, 1024).total_usd < server.monthly_usd
    assert cost.break_even(60, 1024, server.monthly_usd, free_tier=True) > crossing
    assert cost.break_even(60, 1024, server.monthly_usd, "arm64") > crossing
    with pytest.raises(ValueError, match="must be > 0"):
        cost.break_even(60, 1024, 0.0)


def test_fargate_and_instances_come_from_the_one_table() -> None:
    task = cost.fargate_task(1, 2)
    assert task.monthly_usd == pytest.approx((0.04048 + 2 * 0.004445) * 730)
    assert cost.fargate_task(1, 2, "arm64").monthly_usd < task.monthly_usd
    assert cost.ec2_instance("t4g.small", "arm64").monthly_usd == pytest.approx(0.0168 * 730)
    with pytest.raises(KeyError, match="no EC2 m5.large \\(arm64\\) in the price table"):
        cost.ec2_instance("m5.large", "arm64")
    assert {row["source"] for row in cost.price_table()} == set(cost.SOURCES.values())


def test_provisioned_concurrency_is_billed_while_enabled() -> None:
    idle = cost.provisioned_monthly(1, 1024, 730, 0, 0)
    assert idle.total_usd == pytest.approx(730 * 3600 * 0.0000041667)  # $10.95 for 1 GB all month, unused
    busy = cost.provisioned_monthly(1, 1024, 730, 1000, 100)
    assert busy.compute_usd == pytest.approx(idle.total_usd + 100 * 0.0000097222)
    assert busy.request_usd == pytest.approx(1000 * 0.2 / 1e6)


@pytest.mark.parametrize("architecture", ["x86_64", "arm64"])
def test_provisioned_concurrency_pays_off_above_sixty_percent_busy(architecture) -> None:
    share = cost.provisioned_break_even_utilisation(architecture)
    assert share == pytest.approx(0.60, abs=0.001)
    month_ms = 730 * 3600 * 1000
    for busy, cheaper in ((share - 0.05, "on demand"), (share + 0.05, "provisioned")):
        on_demand = cost.lambda_monthly(1, busy * month_ms, 1024, architecture).compute_usd
        provisioned = cost.provisioned_monthly(1, 1024, 730, 1, busy * month_ms, architecture).compute_usd
        assert (on_demand < provisioned) == (cheaper == "on demand")


def test_hours_to_spend() -> None:
    assert cost.hours_to_spend(5.0, 0.5) == 10.0
    with pytest.raises(ValueError):
        cost.hours_to_spend(5.0, 0.0)
