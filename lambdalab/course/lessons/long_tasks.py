"""Instruments for notebook 11 (long tasks and the 15-minute limit), on either target.

Time is scaled down so the lesson runs in seconds: a function timeout of `TIMEOUT_S` (2 s) stands
for Lambda's maximum of 900 s, so every lesson second is `SCALE` (450) real seconds, and a job of
4 s of items stands for 30 minutes of work. Three ways to run the job are measured from the
functions' REPORT lines in CloudWatch Logs: one invocation (killed at the timeout), chunks through
an SQS queue with a checkpoint per chunk in DynamoDB, and a Step Functions Map state whose tasks
invoke the worker. `gantt` draws their invocations; `Approach.row` prices each at full scale.
`run_durable` runs the durable-function version with the SDK's local test runner (Python 3.11+).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lambdalab.course.labs import load_module
from lambdalab.course.plots import KIND_COLOURS, KIND_LABELS, axes_or_new
from lambdalab.course.target.base import CloudTarget
from lambdalab.course.target.reports import LoggedReport
from lambdalab.runtime.metering import PRICE_PER_GB_SECOND, PRICE_PER_REQUEST, projected_cost

if TYPE_CHECKING:
    from matplotlib.axes import Axes

LAMBDA_MAX_TIMEOUT_S = 900  # https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html
TIMEOUT_S = 2
SCALE = LAMBDA_MAX_TIMEOUT_S / TIMEOUT_S
MEMORY_MB = 128

# us-east-1 list prices, read on 2026-12-07 from https://aws.amazon.com/step-functions/pricing/,
# https://aws.amazon.com/sqs/pricing/, https://aws.amazon.com/dynamodb/pricing/on-demand/ and
# https://aws.amazon.com/fargate/pricing/ (Linux/x86); free tiers left out, as the meter does.
PRICE_PER_STATE_TRANSITION = 0.025 / 1000  # Standard workflows
PRICE_PER_SQS_REQUEST = 0.40 / 1_000_000  # standard queue, per 64 KB chunk of a request
PRICE_PER_DYNAMODB_WRITE = 0.625 / 1_000_000  # on-demand write request unit (item up to 1 KB)
PRICE_PER_DYNAMODB_READ = 0.125 / 1_000_000  # on-demand read request unit (strongly consistent, 4 KB)
FARGATE_PER_VCPU_HOUR = 0.04048
FARGATE_PER_GB_HOUR = 0.004445
FARGATE_MINIMUM_S = 60  # Fargate bills per second with a one-minute minimum


def make_job(n: int = 100, mean_ms: int = 40) -> list[dict[str, Any]]:
    """`n` items whose `ms` vary around `mean_ms` (±40%, the same every run): a job of n*mean_ms ms."""
    spread = max(1, int(mean_ms * 0.4))
    return [{"id": f"rec-{i:03d}", "ms": mean_ms + (i * 37) % (2 * spread + 1) - spread} for i in range(n)]


def chunk_events(job: str, chunks: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One worker event per chunk: {"job", "chunk", "items"}."""
    return [{"job": job, "chunk": n, "items": list(items)} for n, items in enumerate(chunks)]


# -- the cloud's side: roles, the state machine, running each approach -------------------------

def worker_statements(target: CloudTarget, functions: Iterable[str], table: str, queue_arn: str) -> list[dict]:
    """What the lesson's functions need: their own logs, the checkpoint table, the chunk queue."""
    return [*(target.logging_statement(target.name(f)) for f in functions),
            {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
             "Resource": target.arn("dynamodb", f"table/{target.name(table)}")},
            {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
             "Resource": queue_arn}]


def map_definition(worker_arn: str, max_concurrency: int) -> dict[str, Any]:
    """A Map state over `$.chunks`, each item invoking the worker; a task that fails with a
    Lambda service error is retried as AWS recommends
    (https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html)."""
    task = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": worker_arn, "Payload.$": "$"}, "OutputPath": "$.Payload",
            "Retry": [{"ErrorEquals": ["Lambda.ServiceException", "Lambda.TooManyRequestsException"],
                       "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2.0}],
            "End": True}
    return {"Comment": "one worker invocation per chunk", "StartAt": "EachChunk", "States": {"EachChunk": {
        "Type": "Map", "ItemsPath": "$.chunks", "MaxConcurrency": max_concurrency,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Work", "States": {"Work": task}},
        "End": True}}}


def create_state_machine(target: CloudTarget, base: str, definition: dict[str, Any], role_arn: str,
                         *, wait_s: float = 60) -> str:
    """Create the state machine; a role made seconds ago may not be assumable yet (AWS says so), so retry."""
    sfn = target.client("stepfunctions")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return sfn.create_state_machine(name=target.name(base), definition=json.dumps(definition),
                                            roleArn=role_arn, tags=target.tag_list("key", "value"))["stateMachineArn"]
        except ClientError as e:
            if e.response["Error"]["Code"] != "AccessDeniedException" or time.monotonic() > deadline:
                raise
            time.sleep(2.0)


@dataclass(frozen=True)
class Execution:
    """A finished Step Functions execution: its status, wall time, output and state transitions."""

    status: str
    wall_s: float
    output: Any
    transitions: int
    error: str | None = None


def run_execution(target: CloudTarget, machine_arn: str, execution_input: dict[str, Any], *,
                  timeout_s: float = 60) -> Execution:
    """Start an execution and wait for it to end; transitions are the history's `*StateEntered`
    events, which is what Standard workflows are billed for."""
    from tqdm.auto import tqdm

    sfn = target.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps(execution_input))["executionArn"]
    deadline = time.monotonic() + timeout_s
    with tqdm(desc="execution running", bar_format="{desc}: {elapsed}", leave=False) as bar:
        while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {arn} still running after {timeout_s:g} s")
            time.sleep(0.2)
            bar.update()
    events = [e for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
              for e in page["events"]]
    return Execution(status=described["status"],
                     wall_s=(described["stopDate"] - described["startDate"]).total_seconds(),
                     output=json.loads(described["output"]) if described.get("output") else None,
                     transitions=sum(1 for e in events if e["type"].endswith("StateEntered")),
                     error=described.get("error"))


def run_queue(target: CloudTarget, queue_url: str, table: str, job: str, events: Sequence[dict[str, Any]], *,
              timeout_s: float = 60) -> float:
    """Send one message per chunk, then wait until the table has a checkpoint for every chunk;
    returns the wall time in seconds, from the first send to the last checkpoint seen."""
    from boto3.dynamodb.conditions import Key
    from tqdm.auto import tqdm

    sqs = target.client("sqs")
    checkpoints = target.session.resource("dynamodb", endpoint_url=target.client("dynamodb").meta.endpoint_url)
    started = time.monotonic()
    for event in events:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))
    with tqdm(total=len(events), desc="chunks checkpointed", leave=False) as bar:
        while True:
            done = checkpoints.Table(target.name(table)).query(
                KeyConditionExpression=Key("job").eq(job), ConsistentRead=True, Select="COUNT")["Count"]
            bar.update(done - bar.n)
            if done >= len(events):
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"{done} of {len(events)} chunks checkpointed after {timeout_s:g} s")
            time.sleep(0.1)


# -- what the REPORT lines say: bars for the Gantt chart, and a price per approach -------------

@dataclass(frozen=True)
class Bar:
    """One invocation on the chart: its row, seconds since its approach started, and what happened."""

    row: str
    start_s: float
    end_s: float
    init_s: float  # INIT before it (a cold start), 0 when warm
    kind: str  # "invoke", "error" or "timeout" (plots.KIND_COLOURS)


def bars(label: str, reports: Sequence[LoggedReport]) -> list[Bar]:
    """The invocations of one approach, oldest first, timed from the first one's INIT (or start):
    a REPORT line is logged as its invocation ends, so it started `Duration` earlier."""
    spans = []
    for r in sorted(reports, key=lambda r: r.timestamp_ms):
        end = r.timestamp_ms / 1000
        start = end - r.report.duration_ms / 1000
        init = (r.report.init_ms or 0) / 1000
        kind = {"timeout": "timeout", "error": "error"}.get(r.report.status or "", "invoke")
        spans.append((start, end, init, kind))
    origin = min((s - i for s, _, i, _ in spans), default=0.0)
    return [Bar(f"{label} {n + 1}" if len(spans) > 1 else label, s - origin, e - origin, i, k)
            for n, (s, e, i, k) in enumerate(spans)]


def gantt(rows: Sequence[Bar], ax: "Axes | None" = None, *, timeout_s: float = TIMEOUT_S) -> "Axes":
    """One row per invocation, INIT in front of it; a black tick marks where its timeout would stop it."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ax = axes_or_new(ax, 10, 0.35 * len(rows) + 1.5)
    for y, bar in enumerate(rows):
        if bar.init_s:
            ax.barh(y, bar.init_s, left=bar.start_s - bar.init_s, color=KIND_COLOURS["init"], height=0.7)
        ax.barh(y, bar.end_s - bar.start_s, left=bar.start_s, color=KIND_COLOURS[bar.kind], height=0.7)
        ax.plot([bar.start_s + timeout_s] * 2, [y - 0.45, y + 0.45], color="black", linewidth=1.5)
    ax.set_yticks(range(len(rows)), [b.row for b in rows])
    ax.invert_yaxis()
    ax.set_xlabel(f"seconds since the approach started (×{SCALE:g}: real seconds)")
    kinds = ["init"] + sorted({b.kind for b in rows}, key=list(KIND_COLOURS).index)
    ax.legend(handles=[Patch(color=KIND_COLOURS[k], label=KIND_LABELS[k]) for k in kinds]
              + [Line2D([], [], color="black", label=f"its {timeout_s:g} s timeout")],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return ax


def full_scale_billed_s(r: LoggedReport) -> float:
    """The billed seconds of an invocation had the job been SCALE times longer."""
    init_ms = r.report.init_ms or 0.0
    return ((r.report.billed_ms - init_ms) * SCALE + init_ms) / 1000


@dataclass(frozen=True)
class Approach:
    """One way of running the job, as measured: its invocations and what else it paid for."""

    name: str
    reports: Sequence[LoggedReport]
    wall_s: float
    finished: bool
    transitions: int = 0
    sqs_requests: int = 0
    dynamodb_writes: int = 0
    dynamodb_reads: int = 0

    @property
    def gb_seconds(self) -> float:
        """Lambda's billed GB-seconds at full scale: the invocations' time times SCALE; an INIT
        (billed with its cold start) takes as long whatever the job's size, so it is not scaled."""
        return sum(r.report.memory_mb / 1024 * full_scale_billed_s(r) for r in self.reports)

    def cost(self) -> float:
        """Dollars at full scale: Lambda duration and requests, state transitions, SQS and DynamoDB requests."""
        return (self.gb_seconds * PRICE_PER_GB_SECOND["x86_64"] + len(self.reports) * PRICE_PER_REQUEST
                + self.transitions * PRICE_PER_STATE_TRANSITION + self.sqs_requests * PRICE_PER_SQS_REQUEST
                + self.dynamodb_writes * PRICE_PER_DYNAMODB_WRITE + self.dynamodb_reads * PRICE_PER_DYNAMODB_READ)

    def row(self) -> dict[str, Any]:
        return {"approach": self.name, "finished": "yes" if self.finished else "no (timed out)",
                "invocations": len(self.reports), "wall time here s": round(self.wall_s, 2),
                "wall time at full scale min": round(self.wall_s * SCALE / 60, 1),
                "Lambda GB-s": round(self.gb_seconds, 1), "state transitions": self.transitions,
                "SQS + DynamoDB requests": self.sqs_requests + self.dynamodb_writes + self.dynamodb_reads,
                "cost at full scale $": f"{self.cost():.5f}"}


def lambda_task_cost(seconds: float, memory_mb: int = MEMORY_MB) -> float:
    """Dollars for one invocation of `seconds` at `memory_mb` (x86_64), as if Lambda had no time limit."""
    return projected_cost(1, seconds * 1000, memory_mb, "x86_64", 1)


def fargate_cost(seconds: float, vcpu: float = 0.25, memory_gb: float = 0.5) -> float:
    """Dollars for one Fargate task of `vcpu` and `memory_gb` running `seconds` (one-minute minimum)."""
    hours = max(seconds, FARGATE_MINIMUM_S) / 3600
    return hours * (vcpu * FARGATE_PER_VCPU_HOUR + memory_gb * FARGATE_PER_GB_HOUR)


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 60, poll_s: float = 0.5) -> None:
    """Poll `check` until it is true (e.g. an event source mapping becoming Enabled on AWS)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout_s:g} s")
        time.sleep(poll_s)


# -- durable functions, with the SDK's local runner --------------------------------------------

DURABLE_MIN_PYTHON = (3, 11)  # aws-durable-execution-sdk-python's Requires-Python


def durable_skip_reason() -> str | None:
    """Why the durable-function part cannot run in this kernel, or None when it can."""
    if sys.version_info < DURABLE_MIN_PYTHON:
        return (f"skipped: the durable execution SDK needs Python {'.'.join(map(str, DURABLE_MIN_PYTHON))} or "
                f"newer, this kernel runs {sys.version.split()[0]}")
    return None


@dataclass(frozen=True)
class DurableRun:
    """A durable execution run by the local runner: its outcome, how often the handler was
    invoked, and each checkpointed operation (step or wait) in order."""

    status: str
    result: Any
    invocations: int
    operations: list[dict[str, Any]]
    elapsed_s: float


def run_durable(handler_file: Path, code_dirs: Sequence[Path], event: dict[str, Any]) -> DurableRun:
    """Run the durable handler in `handler_file` (its imports found in `code_dirs`) on `event` with
    `DurableFunctionTestRunner`: in this process, checkpoints in memory, waits skipped on a fake clock."""
    from aws_durable_execution_sdk_python_testing import DurableFunctionTestRunner

    sys.path[:0] = [str(d) for d in code_dirs]
    try:
        handler = load_module(handler_file).lambda_handler
    finally:
        del sys.path[:len(code_dirs)]
    invocations = 0

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal invocations
        invocations += 1
        return handler(*args, **kwargs)

    started = time.monotonic()
    with DurableFunctionTestRunner(handler=counted) as runner:
        outcome = runner.run(input=json.dumps(event), execution_timeout=60)
    return DurableRun(
        status=outcome.status.name, result=json.loads(outcome.result) if outcome.result else None,
        invocations=invocations, elapsed_s=time.monotonic() - started,
        operations=[{"operation": op.name, "type": op.operation_type.name, "status": op.status.name,
                     "attempts": getattr(op, "attempt", None),
                     "lasted (its own clock) s": round((op.end_timestamp - op.start_timestamp).total_seconds(), 3)}
                    for op in outcome.operations])
