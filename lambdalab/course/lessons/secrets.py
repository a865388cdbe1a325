"""Instruments for lesson 12 (secrets): a secret scanner over a folder, the signing function's
stage on either target, the cache's API calls, latency and cost per 1,000 invocations, and the
time a rotated secret takes to reach a function that caches it.

The scanner is detect-secrets (Yelp's), run with its default plugins, as
`detect-secrets scan <folder>` runs it. The stage keeps the partner's key in Secrets Manager
and its endpoint in Parameter Store, and deploys `solutions/secretcache` (Powertools Parameters)
with a role allowed exactly that secret and that parameter. Counting the GetSecretValue requests
is the function's own doing (botocore reports each call it sends); durations come from the REPORT
lines on both targets.

Prices are Secrets Manager's published ones (https://aws.amazon.com/secrets-manager/pricing/,
read 2026-12): $0.40 per secret per month and $0.05 per 10,000 API calls. Standard parameters
read at standard throughput cost nothing (https://aws.amazon.com/systems-manager/pricing/).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdalab.course.target.base import CloudTarget
from lambdalab.runtime.metering import projected_cost

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SECRET_PRICE_PER_MONTH = 0.40
SECRETS_API_PRICE_PER_CALL = 0.05 / 10_000
SIGNER_MEMORY_MB = 256  # Powertools and boto3 at init: 128 MB makes the cold start slower for no saving
ORDER = {"id": "o-1001", "total_cents": 4200}


# -- the scanner -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SecretFinding:
    """One suspected secret: where it is and which detect-secrets plugin recognised it."""

    file: str
    line: int
    kind: str


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def scan(folder: str | Path) -> list[SecretFinding]:
    """detect-secrets' findings in every file under `folder`, with its default plugins and filters."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    root = Path(folder)
    collection = SecretsCollection(root=str(root))
    with default_settings():
        for path in _files(root):
            collection.scan_file(str(path.relative_to(root)))
    return sorted((SecretFinding(name, secret.line_number, secret.type) for name, secret in collection),
                  key=lambda f: (f.file, f.line, f.kind))


# -- the stage ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stage:
    """The partner's key and endpoint, as stored."""

    secret_name: str
    secret_arn: str
    parameter_name: str
    key: str  # the key stored now; a notebook never prints it, it checks signatures with it


def signature(key: str, order: dict[str, Any] = ORDER) -> str:
    """What the function sends the partner for `order`: HMAC-SHA256 of its JSON under `key`."""
    return hmac.new(key.encode(), json.dumps(order, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def new_key() -> str:
    """A fresh random key, as the partner's console would hand one out."""
    import secrets as random_secrets

    return random_secrets.token_hex(20)


def create_stage(target: CloudTarget) -> Stage:
    """Store the partner's key in Secrets Manager (as JSON) and its endpoint in Parameter Store."""
    key = new_key()
    secret_name = target.name("partner-key")
    secret_arn = target.client("secretsmanager").create_secret(
        Name=secret_name, SecretString=json.dumps({"api_key": key}), Description="the partner's API key",
        Tags=target.tag_list())["ARN"]
    parameter_name = "/" + target.name("partner") + "/endpoint"
    target.client("ssm").put_parameter(Name=parameter_name, Value="https://partner.example/orders", Type="String",
                                       Tags=target.tag_list())
    return Stage(secret_name, secret_arn, parameter_name, key)


def deploy_signer(target: CloudTarget, stage: Stage, base: str, code_dir: Path, ttl_s: int,
                  policy: Callable[..., dict]) -> str:
    """The signing function `base`, caching for `ttl_s` seconds (0: it fetches on every invocation),
    with its own role as `policy(...)` (lab secretcache) describes it; returns the role's ARN."""
    document = policy(secret_arn=stage.secret_arn, parameter_name=stage.parameter_name,
                      function_name=target.name(base), region=target.region, account=target.account_id)
    role_arn = target.create_role(base, document["Statement"])
    target.create_function(base, code_dir, "handler.lambda_handler", role=role_arn, memory=SIGNER_MEMORY_MB,
                           timeout=10, env={"SECRET_ID": stage.secret_name, "ENDPOINT_PARAMETER": stage.parameter_name,
                                            "CACHE_TTL_S": str(ttl_s)})
    return role_arn


def rotate(target: CloudTarget, stage: Stage) -> Stage:
    """Store a new key as the secret's new AWSCURRENT version (what a rotation does last)."""
    key = new_key()
    target.client("secretsmanager").put_secret_value(SecretId=stage.secret_arn,
                                                     SecretString=json.dumps({"api_key": key}))
    return Stage(stage.secret_name, stage.secret_arn, stage.parameter_name, key)


# -- measuring the cache -----------------------------------------------------------------------

@dataclass(frozen=True)
class CacheRun:
    """`invocations` of one signing function: the GetSecretValue requests its environments sent,
    and its REPORT lines' warm durations."""

    label: str
    ttl_s: int
    invocations: int
    secret_calls: int
    warm_ms: tuple[float, ...]
    mean_billed_ms: float

    @property
    def calls_per_1000(self) -> float:
        return self.secret_calls * 1000 / self.invocations

    @property
    def mean_warm_ms(self) -> float:
        return sum(self.warm_ms) / len(self.warm_ms) if self.warm_ms else float("nan")

    @property
    def cost_per_1000(self) -> float:
        """Dollars for 1,000 invocations: Lambda's duration and requests plus the GetSecretValue calls."""
        return self.lambda_cost_per_1000 + self.calls_per_1000 * SECRETS_API_PRICE_PER_CALL

    @property
    def lambda_cost_per_1000(self) -> float:
        return projected_cost(1000, max(self.mean_billed_ms, 1.0), SIGNER_MEMORY_MB, "x86_64", 1.0)


def secret_calls(answers: Iterable[dict[str, Any]]) -> int:
    """GetSecretValue requests sent, from the answers: each environment counts its own, so the sum
    of each environment's last count."""
    last: dict[str, int] = {}
    for answer in answers:
        last[answer["environment"]] = max(last.get(answer["environment"], 0), int(answer["secret_calls"]))
    return sum(last.values())


def measure(target: CloudTarget, base: str, label: str, ttl_s: int, invocations: int,
            progress: Callable[[Iterable[int]], Iterable[int]] = iter) -> CacheRun:
    """Invoke `base` `invocations` times in a row with the same order; count and time them."""
    answers = []
    for _ in progress(range(invocations)):
        answer = target.invoke(base, {"order": ORDER})
        if answer["FunctionError"]:
            raise RuntimeError(f"{base} failed: {answer['Payload']}")
        answers.append(answer["Payload"])
    reports = target.settle(base, invocations)
    warm = tuple(r.report.duration_ms for r in reports if not r.cold)
    billed = sum(r.report.billed_ms for r in reports) / len(reports)
    return CacheRun(label, ttl_s, invocations, secret_calls(answers), warm, billed)


def cache_rows(runs: Sequence[CacheRun]) -> list[dict[str, Any]]:
    """The table of the comparison, per 1,000 invocations."""
    return [{"function": r.label, "TTL (s)": r.ttl_s, "invocations": r.invocations,
             "GetSecretValue calls": r.secret_calls, "calls per 1,000": round(r.calls_per_1000, 1),
             "mean warm duration (ms)": round(r.mean_warm_ms, 1),
             "$ per 1,000 (Lambda)": f"{r.lambda_cost_per_1000:.6f}",
             "$ per 1,000 (Secrets Manager)": f"{r.calls_per_1000 * SECRETS_API_PRICE_PER_CALL:.6f}"}
            for r in runs]


def plot_cache(runs: Sequence[CacheRun]) -> "Figure":
    """Three bars per function: API calls, warm latency and cost, each per 1,000 invocations."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    labels = [r.label for r in runs]
    colors = ["#c0504d", "#4f81bd", "#9bbb59"][:len(runs)]
    panels = [("GetSecretValue calls per 1,000 invocations", [r.calls_per_1000 for r in runs], "{:.0f}"),
              ("mean warm duration (ms)", [r.mean_warm_ms for r in runs], "{:.1f}"),
              ("$ per 1,000 invocations", [r.cost_per_1000 for r in runs], "${:.5f}")]
    for ax, (title, values, fmt) in zip(axes, panels):
        bars = ax.bar(labels, values, color=colors)
        ax.bar_label(bars, labels=[fmt.format(v) for v in values], fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.margins(y=0.2)
    fig.tight_layout()
    return fig


# -- rotation ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RotationPoint:
    """One invocation after the rotation: when (seconds after it) and which key signed."""

    after_s: float
    key: str  # "old", "new" or "neither"


def watch_rotation(target: CloudTarget, base: str, stage: Stage, *, period_s: float, until_new: int = 3,
                   timeout_s: float = 30.0, clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> tuple[Stage, list[RotationPoint]]:
    """Warm the function's cache, rotate the key, then invoke every `period_s` until `until_new`
    answers in a row were signed with the new key; returns the rotated stage and the points."""
    target.invoke(base, {"order": ORDER})  # the cache now holds the old key, fetched just now
    old = signature(stage.key)
    rotated = rotate(target, stage)
    new = signature(rotated.key)
    start, points, streak = clock(), [], 0
    while streak < until_new and clock() - start < timeout_s:
        got = target.invoke(base, {"order": ORDER})["Payload"]["signature"]
        which = "new" if got == new else "old" if got == old else "neither"
        points.append(RotationPoint(round(clock() - start, 3), which))
        streak = streak + 1 if which == "new" else 0
        sleep(period_s)
    return rotated, points


def pickup_s(points: Sequence[RotationPoint]) -> float | None:
    """Seconds from the rotation to the first answer signed with the new key (None: never)."""
    return next((p.after_s for p in points if p.key == "new"), None)


def plot_rotation(points: Sequence[RotationPoint], ttl_s: int) -> "Figure":
    """Each invocation after the rotation, on a time axis, coloured by the key that signed it."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 1.9))
    for which, color in (("old", "#c0504d"), ("new", "#4f81bd"), ("neither", "#7f7f7f")):
        xs = [p.after_s for p in points if p.key == which]
        if xs:
            ax.scatter(xs, [1] * len(xs), color=color, label=f"signed with the {which} key", s=28)
    ax.axvline(0, color="black", lw=1)
    ax.axvline(ttl_s, color="black", lw=1, ls="--", label=f"TTL ({ttl_s} s)")
    ax.set_yticks([])
    ax.set_xlabel("seconds after the new secret version became AWSCURRENT")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=4, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


SECONDS_PER_MONTH = 30 * 24 * 3600


def monthly_secret_calls(invocations_per_month: float, ttl_s: int, mean_duration_ms: float) -> float:
    """GetSecretValue calls in a month of steady traffic. Without a cache, one per invocation.
    With one, one per environment per TTL, at most one per invocation; the environments are at
    least the concurrency, rate x duration (Little's law), and at least one."""
    if ttl_s <= 0:
        return invocations_per_month
    environments = max(1.0, math.ceil(invocations_per_month / SECONDS_PER_MONTH * mean_duration_ms / 1000))
    return min(invocations_per_month, environments * SECONDS_PER_MONTH / ttl_s)


def monthly_secret_cost(calls_per_month: float, secrets: int = 1) -> float:
    """Secrets Manager's bill for a month: the secrets stored plus the API calls made."""
    return secrets * SECRET_PRICE_PER_MONTH + calls_per_month * SECRETS_API_PRICE_PER_CALL


def monthly_rows(runs: Sequence[CacheRun], volumes: Sequence[int]) -> list[dict[str, Any]]:
    """Secrets Manager's monthly bill per function at each traffic volume (steady traffic)."""
    rows = []
    for n in volumes:
        row: dict[str, Any] = {"invocations a month": f"{n:,}"}
        for r in runs:
            calls = monthly_secret_calls(n, r.ttl_s, r.mean_warm_ms)
            row[f"calls, {r.label}"] = f"{calls:,.0f}"
            row[f"$ a month, {r.label}"] = f"{monthly_secret_cost(calls):,.2f}"
        rows.append(row)
    return rows
