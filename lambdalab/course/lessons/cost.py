"""Lesson 14's instruments: what a workload costs on Lambda, on an always-on instance and on Fargate.

Lambda's rates (on demand, provisioned concurrency, free tier) are `lambdalab.runtime.metering`'s.
The always-on alternatives' rates are one table here, `SERVER_PRICES`: on-demand Linux prices in
us-east-1 from the EC2 and Fargate pricing pages (`SOURCES`), read on `SERVER_PRICES_AS_OF`. A
month is AWS's pricing month of 730 hours.

`measure_thumbnails` runs lesson 04's thumbnail function on a target at a few memory sizes and
returns the billed durations its REPORT lines show; everything else prices numbers like those:
`lambda_monthly` (requests, GB-seconds, the free tier), `break_even` (the monthly volume at which
Lambda's bill reaches an always-on price, found by bisection on `lambda_monthly`), provisioned
concurrency (`provisioned_monthly`, `provisioned_break_even_utilisation`), the budget a lesson
creates (`create_budget`, with its SNS topic) and the plots.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdalab.events.s3 import s3_put_event
from lambdalab.runtime.metering import (
    FREE_TIER_GB_SECONDS,
    FREE_TIER_REQUESTS,
    PRICE_PER_GB_SECOND,
    PRICE_PER_REQUEST,
    PRICES_AS_OF,
    PRICES_SOURCE,
    PROVISIONED_DURATION_PRICE_PER_GB_SECOND,
    PROVISIONED_PRICE_PER_GB_SECOND,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lambdalab.course.target.base import CloudTarget

HOURS_PER_MONTH = 730  # the month AWS's pricing pages use
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
SERVER_PRICES_AS_OF = "2026-12-07"
SOURCES: Mapping[str, str] = {"EC2": "https://aws.amazon.com/ec2/pricing/on-demand/",
                              "Fargate": "https://aws.amazon.com/fargate/pricing/"}


@dataclass(frozen=True)
class Price:
    """One row of the price table: a service's item, its unit and its on-demand price in us-east-1."""

    service: str  # "EC2" or "Fargate"
    item: str  # an instance type, or "vCPU" / "GB" for Fargate's two dimensions
    architecture: str
    unit: str
    usd: float
    vcpus: float = 0.0  # an instance's size; 0 for Fargate's per-dimension rows
    memory_gb: float = 0.0


SERVER_PRICES: tuple[Price, ...] = (
    Price("EC2", "m5.large", "x86_64", "instance-hour", 0.096, vcpus=2, memory_gb=8),
    Price("EC2", "m6g.large", "arm64", "instance-hour", 0.077, vcpus=2, memory_gb=8),
    Price("EC2", "t3.small", "x86_64", "instance-hour", 0.0208, vcpus=2, memory_gb=2),
    Price("EC2", "t4g.small", "arm64", "instance-hour", 0.0168, vcpus=2, memory_gb=2),
    Price("Fargate", "vCPU", "x86_64", "vCPU-hour", 0.04048),
    Price("Fargate", "GB", "x86_64", "GB-hour", 0.004445),
    Price("Fargate", "vCPU", "arm64", "vCPU-hour", 0.03238),
    Price("Fargate", "GB", "arm64", "GB-hour", 0.00356),
)


def server_price(service: str, item: str, architecture: str) -> Price:
    for row in SERVER_PRICES:
        if (row.service, row.item, row.architecture) == (service, item, architecture):
            return row
    raise KeyError(f"no {service} {item} ({architecture}) in the price table; it has: "
                   + ", ".join(f"{r.service} {r.item} ({r.architecture})" for r in SERVER_PRICES))


@dataclass(frozen=True)
class AlwaysOn:
    """Something billed by the hour whether or not requests come: an instance or a Fargate task."""

    name: str
    architecture: str
    vcpus: float
    memory_gb: float
    hourly_usd: float

    @property
    def monthly_usd(self) -> float:
        return self.hourly_usd * HOURS_PER_MONTH


def ec2_instance(instance_type: str, architecture: str) -> AlwaysOn:
    row = server_price("EC2", instance_type, architecture)
    return AlwaysOn(f"EC2 {instance_type}", architecture, row.vcpus, row.memory_gb, row.usd)


def fargate_task(vcpus: float, memory_gb: float, architecture: str = "x86_64") -> AlwaysOn:
    """A Fargate task of that size running all month (billed per vCPU-hour and per GB-hour)."""
    hourly = (vcpus * server_price("Fargate", "vCPU", architecture).usd
              + memory_gb * server_price("Fargate", "GB", architecture).usd)
    return AlwaysOn(f"Fargate {vcpus:g} vCPU / {memory_gb:g} GB", architecture, vcpus, memory_gb, hourly)


# -- Lambda's bill -------------------------------------------------------------------------------

@dataclass(frozen=True)
class LambdaBill:
    """A month of on-demand Lambda for one workload: its two charges, after the free tier if asked."""

    requests: float
    gb_seconds: float
    request_usd: float
    compute_usd: float

    @property
    def total_usd(self) -> float:
        return self.request_usd + self.compute_usd


def lambda_monthly(requests: float, billed_ms: float, memory_mb: int, architecture: str = "x86_64", *,
                   free_tier: bool = False) -> LambdaBill:
    """`requests` a month, each billed `billed_ms` at `memory_mb`; the free tier (1M requests and
    400,000 GB-s a month) deducted when `free_tier`."""
    if requests < 0 or billed_ms < 0 or memory_mb <= 0:
        raise ValueError("lambda_monthly needs requests >= 0, billed_ms >= 0 and memory_mb > 0")
    gb_seconds = requests * memory_mb / 1024 * billed_ms / 1000
    billable_requests = max(0.0, requests - FREE_TIER_REQUESTS) if free_tier else requests
    billable_gb_s = max(0.0, gb_seconds - FREE_TIER_GB_SECONDS) if free_tier else gb_seconds
    return LambdaBill(requests, gb_seconds, billable_requests * PRICE_PER_REQUEST,
                      billable_gb_s * PRICE_PER_GB_SECOND[architecture])


def break_even(billed_ms: float, memory_mb: int, monthly_usd: float, architecture: str = "x86_64", *,
               free_tier: bool = False) -> float:
    """Requests a month at which Lambda's bill reaches `monthly_usd` (bisection on `lambda_monthly`,
    whose bill only grows with requests)."""
    if monthly_usd <= 0:
        raise ValueError(f"monthly_usd {monthly_usd!r} must be > 0: Lambda costs at least as much as a free server")

    def bill(requests: float) -> float:
        return lambda_monthly(requests, billed_ms, memory_mb, architecture, free_tier=free_tier).total_usd

    low, high = 0.0, 1.0
    while bill(high) < monthly_usd:
        low, high = high, high * 2
    while high - low > 0.5:
        middle = (low + high) / 2
        low, high = (middle, high) if bill(middle) < monthly_usd else (low, middle)
    return high


# -- provisioned concurrency -----------------------------------------------------------------------

def provisioned_monthly(concurrency: int, memory_mb: int, hours: float, requests: float, billed_ms: float,
                        architecture: str = "x86_64") -> LambdaBill:
    """Provisioned concurrency enabled `hours` for `concurrency` environments, serving `requests`
    of `billed_ms`: the enabled GB-seconds at their rate, the duration at the provisioned duration
    rate, the requests at the usual rate; no free tier (compute_usd holds both GB-second charges)."""
    if concurrency < 0 or hours < 0:
        raise ValueError("provisioned_monthly needs concurrency >= 0 and hours >= 0")
    enabled_gb_s = concurrency * memory_mb / 1024 * hours * 3600
    used_gb_s = requests * memory_mb / 1024 * billed_ms / 1000
    compute = (enabled_gb_s * PROVISIONED_PRICE_PER_GB_SECOND[architecture]
               + used_gb_s * PROVISIONED_DURATION_PRICE_PER_GB_SECOND[architecture])
    return LambdaBill(requests, used_gb_s, requests * PRICE_PER_REQUEST, compute)


def provisioned_break_even_utilisation(architecture: str = "x86_64") -> float:
    """The share of the enabled time an environment must be busy for provisioned concurrency to
    cost less than on demand: enabled rate / (on-demand rate - provisioned duration rate)."""
    return PROVISIONED_PRICE_PER_GB_SECOND[architecture] / (
        PRICE_PER_GB_SECOND[architecture] - PROVISIONED_DURATION_PRICE_PER_GB_SECOND[architecture])


# -- measuring the thumbnail workload ---------------------------------------------------------------

@dataclass(frozen=True)
class Measured:
    """One memory size's invocations of the workload, from their REPORT lines."""

    memory_mb: int
    warm_billed_ms: tuple[int, ...]
    warm_duration_ms: tuple[float, ...]
    cold_billed_ms: int  # the first invocation: on-demand INIT is billed too

    @property
    def billed_ms(self) -> float:
        """The median warm billed duration: what a busy function mostly bills."""
        return float(statistics.median(self.warm_billed_ms))

    def row(self, architecture: str = "x86_64") -> dict[str, Any]:
        bill = lambda_monthly(1_000_000, self.billed_ms, self.memory_mb, architecture)
        return {"memory MB": self.memory_mb, "warm invocations": len(self.warm_billed_ms),
                "median billed ms": self.billed_ms, "cold billed ms (INIT included)": self.cold_billed_ms,
                "$ per million (no free tier)": round(bill.total_usd, 4)}


def measure_thumbnails(target: "CloudTarget", code_dir: Path, photo: bytes, memory_sizes: Sequence[int],
                       warm: int, *, progress: bool = True) -> list[Measured]:
    """Lesson 04's thumbnail function deployed once per memory size, given the same S3 event
    `warm + 1` times (the first one cold); the billed durations read from CloudWatch Logs."""
    from tqdm.auto import tqdm

    source, thumbs = target.create_bucket("photos"), target.create_bucket("thumbs")
    key = "uploads/photo.jpg"
    target.client("s3").put_object(Bucket=source, Key=key, Body=photo)
    bases = [f"thumbnail-{m}" for m in memory_sizes]
    role = target.create_role("thumbnailer", [
        *(target.logging_statement(target.name(b)) for b in bases),
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{source}/*"},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{thumbs}/*"}])
    event = s3_put_event(source, key, len(photo), region=target.region, account=target.account_id)
    results = []
    with tqdm(total=len(bases) * (warm + 1), desc="thumbnail invocations", disable=not progress) as bar:
        for memory_mb, base in zip(memory_sizes, bases):
            target.create_function(base, code_dir, "handler.lambda_handler", role=role, memory=memory_mb,
                                   timeout=30, env={"THUMBNAIL_BUCKET": thumbs})
            for _ in range(warm + 1):
                answer = target.invoke(base, event)
                if answer["FunctionError"] or answer["Payload"].get("failures"):
                    raise RuntimeError(f"{base} failed: {answer['Payload']}")
                bar.update()
            reports = [r.report for r in target.settle(base, warm + 1)]
            results.append(Measured(memory_mb, tuple(r.billed_ms for r in reports[1:]),
                                    tuple(r.duration_ms for r in reports[1:]), reports[0].billed_ms))
    return results


# -- a budget -----------------------------------------------------------------------------------

def budget_arn(account_id: str, name: str) -> str:
    return f"arn:aws:budgets::{account_id}:budget/{name}"


def create_budget(target: "CloudTarget", base: str, limit_usd: float, alert_percent: float = 80.0) -> dict[str, Any]:
    """A monthly cost budget named and tagged for the run, alerting an SNS topic (made here, with a
    policy letting AWS Budgets publish to it) when actual spend passes `alert_percent` of the limit.
    Returns the budget as DescribeBudget shows it, with its ARN, tags and topic."""
    sns = target.client("sns")
    topic = sns.create_topic(Name=target.name(f"{base}-alerts"), Tags=target.tag_list())["TopicArn"]
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Sid": "AWSBudgetsPublish", "Effect": "Allow", "Principal": {"Service": "budgets.amazonaws.com"},
            "Action": "SNS:Publish", "Resource": topic,
            "Condition": {"StringEquals": {"aws:SourceAccount": target.account_id}}}]}))
    budgets = target.client("budgets", region_name="us-east-1")  # the Budgets API lives in us-east-1
    name = target.name(base)
    budgets.create_budget(
        AccountId=target.account_id,
        Budget={"BudgetName": name, "BudgetType": "COST", "TimeUnit": "MONTHLY",
                "BudgetLimit": {"Amount": f"{limit_usd:.2f}", "Unit": "USD"}},
        NotificationsWithSubscribers=[{
            "Notification": {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN",
                             "Threshold": alert_percent, "ThresholdType": "PERCENTAGE"},
            "Subscribers": [{"SubscriptionType": "SNS", "Address": topic}]}],
        ResourceTags=target.tag_list())
    arn = budget_arn(target.account_id, name)
    described = budgets.describe_budget(AccountId=target.account_id, BudgetName=name)["Budget"]
    tags = budgets.list_tags_for_resource(ResourceARN=arn)["ResourceTags"]
    return {**described, "Arn": arn, "ResourceTags": tags, "AlertTopic": topic}


def hours_to_spend(usd: float, hourly_usd: float) -> float:
    """How long something costing `hourly_usd` takes to spend `usd`."""
    if hourly_usd <= 0:
        raise ValueError("hours_to_spend needs hourly_usd > 0")
    return usd / hourly_usd


# -- plots --------------------------------------------------------------------------------------

def plot_break_even(billed_ms: float, memory_mb: int, servers: Sequence[AlwaysOn], ax: "Axes | None" = None) -> "Axes":
    """Monthly cost against requests a month (both log): Lambda (x86_64 and arm64, the same
    duration), each always-on option flat, a dot and a dotted line where Lambda x86_64 reaches each."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))
    low, high = 1e4, 1e9
    volumes = [low * (high / low) ** (i / 200) for i in range(201)]
    for architecture, style in (("x86_64", "-"), ("arm64", "--")):
        ax.plot(volumes, [lambda_monthly(v, billed_ms, memory_mb, architecture).total_usd for v in volumes],
                style, color="tab:orange", lw=2, label=f"Lambda {memory_mb} MB {architecture}, {billed_ms:g} ms")
    colours = ("tab:blue", "tab:green", "tab:purple", "tab:brown")
    for server, colour in zip(servers, colours):
        crossing = break_even(billed_ms, memory_mb, server.monthly_usd)
        ax.axhline(server.monthly_usd, color=colour, lw=1.5, label=f"{server.name} ({server.architecture}): "
                   f"${server.monthly_usd:,.2f}/month; break-even {crossing / 1e6:,.1f}M requests/month")
        if low <= crossing <= high:
            ax.plot([crossing], [server.monthly_usd], "o", color=colour, ms=8)
            ax.axvline(crossing, color=colour, ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("requests per month")
    ax.set_ylabel("$ per month (no free tier)")
    ax.set_title("Break-even: pay per request vs pay per hour")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    ax.grid(True, which="major", alpha=0.3)
    return ax


def plot_provisioned(memory_mb: int, architecture: str = "x86_64", ax: "Axes | None" = None) -> "Axes":
    """Per environment and month: on demand vs provisioned concurrency, against how busy it is."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    shares = [i / 100 for i in range(101)]
    busy_ms = [s * SECONDS_PER_MONTH * 1000 for s in shares]  # one environment's busy time, as one request
    ax.plot([s * 100 for s in shares], [lambda_monthly(1, ms, memory_mb, architecture).compute_usd for ms in busy_ms],
            color="tab:orange", lw=2, label="on demand")
    ax.plot([s * 100 for s in shares],
            [provisioned_monthly(1, memory_mb, HOURS_PER_MONTH, 1, ms, architecture).compute_usd for ms in busy_ms],
            color="tab:blue", lw=2, label="provisioned concurrency (enabled all month)")
    share = provisioned_break_even_utilisation(architecture)
    ax.axvline(share * 100, color="grey", ls=":")
    ax.annotate(f"break-even: busy {share:.0%} of the time", (share * 100, 0), textcoords="offset points",
                xytext=(6, 10), fontsize=9)
    ax.set_xlabel("how busy one environment is (% of the month)")
    ax.set_ylabel("$ per month (duration charges)")
    ax.set_title(f"One {memory_mb} MB {architecture} environment for a month")
    ax.legend(fontsize=9)
    ax.grid(True, alpha=0.3)
    return ax


def lambda_price_table() -> tuple[str, list[dict[str, Any]]]:
    """The meter's Lambda rates as rows, and a title naming their source and date."""
    def per_gb_s(rates: Mapping[str, float]) -> dict[str, str]:
        return {arch: f"${rate:.10f} per GB-s" for arch, rate in rates.items()}

    rows = [{"charge": "request", "x86_64": f"${PRICE_PER_REQUEST * 1e6:.2f} per million", "arm64": "the same"},
            {"charge": "duration, on demand", **per_gb_s(PRICE_PER_GB_SECOND)},
            {"charge": "provisioned concurrency, while enabled", **per_gb_s(PROVISIONED_PRICE_PER_GB_SECOND)},
            {"charge": "duration, on provisioned concurrency", **per_gb_s(PROVISIONED_DURATION_PRICE_PER_GB_SECOND)},
            {"charge": "free tier, every month (on demand only)", "x86_64": f"{FREE_TIER_REQUESTS:,} requests",
             "arm64": f"{FREE_TIER_GB_SECONDS:,} GB-s, both architectures together"}]
    return f"Lambda, us-east-1, from {PRICES_SOURCE} ({PRICES_AS_OF})", rows


def price_table() -> list[dict[str, Any]]:
    """The always-on price table as rows, with each row's source."""
    return [{"service": r.service, "item": r.item, "architecture": r.architecture, "unit": r.unit,
             "$": f"{r.usd:g}", "source": SOURCES[r.service]} for r in SERVER_PRICES]
