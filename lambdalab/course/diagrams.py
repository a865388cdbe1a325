"""Each lesson's architecture as a small picture, drawn by code from a per-lesson spec.

A spec names the boxes (who starts the work, the functions, the services they use) and the
arrows between them; `draw` lays them out left to right by how far each box is from a box no
arrow points at, so a spec stays a few lines and the picture follows it. `show("04")` draws
lesson 04's picture in a notebook. The specs live here, beside the code that draws them, and
`tests/course/test_diagrams.py` holds every lesson to having one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

# Box colours by kind: who starts the work, the Lambda functions, the services around them.
COLOURS = {"client": "#e8e8e8", "trigger": "#fde2b8", "function": "#f7b267", "service": "#bcd4e6"}
BOX_W, BOX_H = 2.2, 0.9  # in data units: one column is 3 wide, one row 1.3 high
COLUMN_STEP, ROW_STEP = 3.0, 1.3


@dataclass(frozen=True)
class Box:
    """One part of the architecture: `name` is its label (and its id in the arrows)."""

    name: str
    kind: str  # one of COLOURS


@dataclass(frozen=True)
class Arrow:
    """`source` sends something to `target`: an event, a call, a write (`label` says what)."""

    source: str
    target: str
    label: str = ""


@dataclass(frozen=True)
class Architecture:
    """A lesson's picture: its title, boxes and arrows."""

    title: str
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]

    def __post_init__(self) -> None:
        names = [b.name for b in self.boxes]
        unknown = sorted({n for a in self.arrows for n in (a.source, a.target)} - set(names))
        if unknown or len(set(names)) != len(names):
            raise ValueError(f"{self.title}: arrows name unknown boxes {unknown}, or a box name repeats: {names}")
        kinds = sorted({b.kind for b in self.boxes} - set(COLOURS))
        if kinds:
            raise ValueError(f"{self.title}: unknown box kinds {kinds}; use {sorted(COLOURS)}")


def _spec(title: str, boxes: str, *arrows: tuple[str, str, str]) -> Architecture:
    """`boxes` as "kind:name; kind:name" (short enough to read the picture off the spec)."""
    parsed = tuple(Box(name.strip(), kind.strip()) for kind, name in
                   (item.split(":", 1) for item in boxes.split(";")))
    return Architecture(title, parsed, tuple(Arrow(*a) for a in arrows))


LESSONS: dict[str, Architecture] = {
    "00": _spec("00 · Your first handler",
                "client:you (notebook or shell); function:hello function; service:CloudWatch Logs",
                ("you (notebook or shell)", "hello function", "invoke (event)"),
                ("hello function", "you (notebook or shell)", "response"),
                ("hello function", "CloudWatch Logs", "START, REPORT")),
    "01": _spec("01 · Triggers and events",
                "trigger:S3 upload; trigger:SQS queue; trigger:HTTP API / function URL; trigger:EventBridge Scheduler;"
                " function:router function; service:CloudWatch Logs",
                ("S3 upload", "router function", "async push"),
                ("SQS queue", "router function", "polled batch"),
                ("HTTP API / function URL", "router function", "sync request"),
                ("EventBridge Scheduler", "router function", "async push"),
                ("router function", "CloudWatch Logs", "the event")),
    "02": _spec("02 · The handler and its context",
                "client:caller; function:handler(event, context); service:CloudWatch Logs",
                ("caller", "handler(event, context)", "event"),
                ("handler(event, context)", "caller", "result or error"),
                ("handler(event, context)", "CloudWatch Logs", "print, logging")),
    "03": _spec("03 · The execution environment",
                "client:burst of requests; service:Lambda service; function:environment 1; function:environment 2;"
                " function:environment N",
                ("burst of requests", "Lambda service", "invoke"),
                ("Lambda service", "environment 1", "warm: reuse"),
                ("Lambda service", "environment 2", "cold: INIT"),
                ("Lambda service", "environment N", "scale out")),
    "04": _spec("04 · The thumbnail service",
                "client:uploader; trigger:S3 source bucket (uploads/); function:thumbnails function;"
                " service:S3 thumbnail bucket; service:SQS failure queue",
                ("uploader", "S3 source bucket (uploads/)", "PutObject"),
                ("S3 source bucket (uploads/)", "thumbnails function", "ObjectCreated (async)"),
                ("thumbnails function", "S3 thumbnail bucket", "thumb-<key>"),
                ("thumbnails function", "SQS failure queue", "refused uploads")),
    "05": _spec("05 · Least privilege",
                "trigger:S3 source bucket; function:thumbnails function; service:IAM execution role;"
                " service:S3 thumbnail bucket; service:CloudWatch Logs",
                ("S3 source bucket", "thumbnails function", "ObjectCreated"),
                ("IAM execution role", "thumbnails function", "only the permissions it needs"),
                ("thumbnails function", "S3 thumbnail bucket", "s3:PutObject"),
                ("thumbnails function", "CloudWatch Logs", "logs:PutLogEvents")),
    "06": _spec("06 · Recursive loops",
                "trigger:S3 bucket; function:looping function; service:loop detection",
                ("S3 bucket", "looping function", "ObjectCreated"),
                ("looping function", "S3 bucket", "writes back: a loop"),
                ("looping function", "loop detection", "stopped after 16 calls")),
    "07": _spec("07 · Connection pools",
                "client:burst of requests; function:environments (many); service:pgbouncer (stands in for RDS Proxy);"
                " service:PostgreSQL (20 connections)",
                ("burst of requests", "environments (many)", "invoke"),
                ("environments (many)", "pgbouncer (stands in for RDS Proxy)", "many connections"),
                ("pgbouncer (stands in for RDS Proxy)", "PostgreSQL (20 connections)", "a few connections")),
    "08": _spec("08 · Cold starts",
                "client:first request; service:new environment (INIT: imports); function:handler;"
                " service:provisioned / snapshot",
                ("first request", "new environment (INIT: imports)", "cold start"),
                ("new environment (INIT: imports)", "handler", "then the handler"),
                ("provisioned / snapshot", "new environment (INIT: imports)", "INIT paid earlier")),
    "09": _spec("09 · Power tuning",
                "client:tuner; function:function at 128 MB; function:function at 1024 MB; function:function at 3008 MB;"
                " service:cost and duration chart",
                ("tuner", "function at 128 MB", "invoke N times"),
                ("tuner", "function at 1024 MB", "invoke N times"),
                ("tuner", "function at 3008 MB", "invoke N times"),
                ("function at 128 MB", "cost and duration chart", ""),
                ("function at 1024 MB", "cost and duration chart", ""),
                ("function at 3008 MB", "cost and duration chart", "REPORT lines")),
    "10": _spec("10 · Event-driven architecture",
                "function:checkout; service:orders bus (EventBridge); function:email (fails); function:inventory;"
                " service:SQS buffer; function:analytics (batches); function:receipts (idempotent); service:DLQs (SQS)",
                ("checkout", "orders bus (EventBridge)", "PutEvents OrderPlaced"),
                ("orders bus (EventBridge)", "email (fails)", "rule: async invoke"),
                ("orders bus (EventBridge)", "inventory", "rule: async invoke"),
                ("orders bus (EventBridge)", "SQS buffer", "rule: SendMessage"),
                ("SQS buffer", "analytics (batches)", "polled batches"),
                ("orders bus (EventBridge)", "receipts (idempotent)", "at least once"),
                ("email (fails)", "DLQs (SQS)", "after Lambda's retries")),
    "11": _spec("11 · Long tasks and the 15-minute limit",
                "client:job; function:whole job (times out); service:SQS chunks; function:chunk worker;"
                " service:DynamoDB checkpoints; service:Step Functions Map; function:durable function",
                ("job", "whole job (times out)", "one invocation"),
                ("job", "SQS chunks", "split"),
                ("SQS chunks", "chunk worker", "one chunk each"),
                ("chunk worker", "DynamoDB checkpoints", "done chunk"),
                ("job", "Step Functions Map", "StartExecution"),
                ("Step Functions Map", "chunk worker", "Lambda task per chunk"),
                ("job", "durable function", "steps, replayed")),
    "12": _spec("12 · Secrets",
                "client:caller; trigger:secret scanner; function:signing function; service:Secrets Manager;"
                " service:Parameter Store; service:role: one secret's ARN",
                ("secret scanner", "signing function", "finds a hard-coded key"),
                ("caller", "signing function", "invoke"),
                ("signing function", "Secrets Manager", "GetSecretValue (cached, TTL)"),
                ("signing function", "Parameter Store", "GetParameter (cached)"),
                ("role: one secret's ARN", "signing function", "least privilege")),
    "13": _spec("13 · Observability",
                "client:orders; trigger:REST API stage (traced); function:orders function (Powertools);"
                " service:DynamoDB table; service:receipts bucket;"
                " service:CloudWatch Logs; service:CloudWatch metrics and alarm; service:X-Ray",
                ("orders", "REST API stage (traced)", "POST /orders"),
                ("REST API stage (traced)", "orders function (Powertools)", "proxy event"),
                ("orders function (Powertools)", "DynamoDB table", "PutItem"),
                ("orders function (Powertools)", "receipts bucket", "PutObject"),
                ("orders function (Powertools)", "CloudWatch Logs", "JSON lines, REPORT, EMF"),
                ("CloudWatch Logs", "CloudWatch metrics and alarm", "EMF becomes metrics"),
                ("orders function (Powertools)", "X-Ray", "segments via the daemon")),
    "14": _spec("14 · Cost",
                "client:notebook; function:thumbnail function (3 sizes); service:CloudWatch Logs;"
                " service:price tables (Lambda, EC2, Fargate); service:AWS Budgets; service:SNS alert topic",
                ("notebook", "thumbnail function (3 sizes)", "S3 event"),
                ("thumbnail function (3 sizes)", "CloudWatch Logs", "REPORT lines"),
                ("CloudWatch Logs", "price tables (Lambda, EC2, Fargate)", "$ / month"),
                ("notebook", "AWS Budgets", "budget"),
                ("AWS Budgets", "SNS alert topic", "alert at 80%")),
    "15": _spec("15 · Deploy to your sandbox account",
                "client:you (lambdalab deploy / sam deploy); service:uploads bucket; function:thumbnail function;"
                " service:thumbnails bucket; service:CloudWatch Logs; service:least-privilege role",
                ("you (lambdalab deploy / sam deploy)", "uploads bucket", "upload a photo"),
                ("uploads bucket", "thumbnail function", "S3 event"),
                ("thumbnail function", "thumbnails bucket", "PutObject"),
                ("thumbnail function", "CloudWatch Logs", "REPORT lines"),
                ("least-privilege role", "thumbnail function", "lesson 05's policy")),
}


def layout(arch: Architecture) -> dict[str, tuple[float, float]]:
    """The centre of each box: its column is one more than that of the boxes with an arrow to it
    declared before it (an arrow to an earlier box is an answer or a loop, and moves nothing);
    boxes in one column are stacked in spec order."""
    order = {b.name: i for i, b in enumerate(arch.boxes)}
    column: dict[str, int] = {}
    for box in arch.boxes:  # spec order: every earlier box already has its column
        sources = [a.source for a in arch.arrows if a.target == box.name and order[a.source] < order[box.name]]
        column[box.name] = 1 + max((column[s] for s in sources), default=-1)
    rows: dict[int, list[str]] = defaultdict(list)
    for box in arch.boxes:
        rows[column[box.name]].append(box.name)
    tallest = max(len(names) for names in rows.values())
    centres = {}
    for col, names in rows.items():
        top = (tallest - len(names)) * ROW_STEP / 2
        for i, name in enumerate(names):
            centres[name] = (col * COLUMN_STEP, -(top + i * ROW_STEP))
    return centres


def draw(arch: Architecture, ax: Any = None) -> Any:
    """Draw `arch` on `ax` (a new figure's, sized to the picture, when None); return the figure."""
    centres = layout(arch)
    columns = 1 + max(x for x, _ in centres.values()) / COLUMN_STEP
    rows = 1 + max(-y for _, y in centres.values()) / ROW_STEP
    if ax is None:
        _, ax = plt.subplots(figsize=(2.4 * columns + 0.4, 0.9 * rows + 0.7))
    kinds = {b.name: b.kind for b in arch.boxes}
    for name, (x, y) in centres.items():
        ax.add_patch(FancyBboxPatch((x - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H, boxstyle="round,pad=0.05",
                                    facecolor=COLOURS[kinds[name]], edgecolor="#444444"))
        ax.text(x, y, _wrap(name), ha="center", va="center", fontsize=8)
    for a in arch.arrows:
        (x1, y1), (x2, y2) = centres[a.source], centres[a.target]
        back = x2 <= x1  # an answer or a loop: drawn curved, so it does not hide the arrow out
        start, end = _edge_point((x1, y1), (x2, y2)), _edge_point((x2, y2), (x1, y1))
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="#333333",
                                     connectionstyle=f"arc3,rad={0.35 if back else 0.0}"))
        if a.label:
            mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + (0.35 if back else 0.12)
            ax.text(mx, my, a.label, ha="center", va="bottom", fontsize=7, color="#333333")
    ax.set_xlim(-BOX_W / 2 - 0.3, (columns - 1) * COLUMN_STEP + BOX_W / 2 + 0.3)
    ax.set_ylim(-(rows - 1) * ROW_STEP - BOX_H / 2 - 0.5, BOX_H / 2 + 0.6)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(arch.title, fontsize=10, loc="left")
    return ax.figure


def _edge_point(centre: tuple[float, float], toward: tuple[float, float]) -> tuple[float, float]:
    """Where the line from `centre` to `toward` leaves the box around `centre`."""
    (x, y), (tx, ty) = centre, toward
    dx, dy = tx - x, ty - y
    if dx == 0 and dy == 0:
        return centre
    scale = min((BOX_W / 2 + 0.05) / abs(dx) if dx else float("inf"),
                (BOX_H / 2 + 0.05) / abs(dy) if dy else float("inf"))
    return x + dx * scale, y + dy * scale


def _wrap(name: str, width: int = 22) -> str:
    words, lines = name.split(), [""]
    for word in words:
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}".strip()
    return "\n".join(lines)


def show(lesson: str) -> None:
    """Draw lesson `lesson`'s architecture ("04", or "4") and show it (returns nothing, so a
    notebook shows the picture once)."""
    key = lesson.zfill(2)
    if key not in LESSONS:
        raise KeyError(f"no architecture picture for lesson {lesson!r}; the lessons are {', '.join(LESSONS)}")
    draw(LESSONS[key])
    plt.show()
