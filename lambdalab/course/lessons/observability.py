"""Lesson 13 (observability): the orders function, its traffic, and what CloudWatch and X-Ray
return about it, on either target.

Everything here reads through the public APIs a learner would call on AWS: `filter_log_events`
for log queries (each with the Logs Insights query that computes the same on AWS), `get_metric_data`
for metrics, `describe_alarm_history` for an alarm's states and `batch_get_traces` for traces,
from which the service map is built as X-Ray's console builds it (moto's `get_service_graph` is
an empty stub): a node per segment origin and per AWS service called, an edge per call.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from lambdalab.course.diagrams import Architecture, Arrow, Box
from lambdalab.course.target.reports import LoggedReport, log_group

NAMESPACE = "Shop"  # the Powertools Metrics namespace of the orders function
SERVICE = "orders"

# The Logs Insights query that computes each result on AWS (moto's start_query cannot).
INSIGHTS = {
    "duration": 'filter @type = "REPORT"\n| stats pct(@duration, 50) as p50, pct(@duration, 95) as p95',
    "cold starts": 'filter @type = "REPORT"\n| stats sum(strcontains(@message, "Init Duration")) / count(*) as rate',
    "errors by type": 'filter @message like /^\\[ERROR\\]/\n| parse @message "[ERROR] *: *" as type, msg\n'
                      '| stats count(*) by type',
    "one request": 'fields @timestamp, level, message\n| filter function_request_id = "<request id>"',
}


def order(n: int, rng: random.Random) -> dict[str, Any]:
    """Order `n` of the traffic: mostly good, some without items (ValueError), some with an
    item that has no sku (KeyError)."""
    kind = rng.random()
    items = [{"sku": rng.choice(["tea", "cup", "pot"]), "qty": rng.randint(1, 3), "price": rng.choice([4.5, 9, 25])}
             for _ in range(rng.randint(1, 3))]
    if kind < 0.1:
        items = []
    elif kind < 0.15:
        items[0].pop("sku")
    return {"order_id": f"o-{n}", "channel": rng.choice(["web", "app"]), "items": items}


def traffic(invoke: Callable[[dict[str, Any]], Any], count: int, *, concurrency: int = 4, seed: int = 13,
            progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None) -> list[Any]:
    """Send `count` orders, `concurrency` at a time; returns what `invoke` returned for each."""
    rng = random.Random(seed)
    orders = [order(n, rng) for n in range(count)]
    with ThreadPoolExecutor(concurrency) as pool:
        answers: Iterable[Any] = pool.map(invoke, orders)
        if progress is not None:
            answers = progress(answers, count)
        return list(answers)


@dataclass(frozen=True)
class Answer:
    """What a client got back from the orders API: status, JSON body, and the trace id the
    API's `X-Amzn-Trace-Id` response header named."""

    status: int
    body: dict[str, Any]
    trace_id: str | None


def post_order(url: str, order: dict[str, Any], *, timeout: float = 30.0) -> Answer:
    """POST one order as JSON to `url` (a REST API stage's `/orders`)."""
    request = urllib.request.Request(url, data=json.dumps(order).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        status, headers, raw = e.code, e.headers, e.read()
    trace = headers.get("X-Amzn-Trace-Id")
    return Answer(status, json.loads(raw or b"{}"), trace_root(trace) if trace else None)


# -- queries over CloudWatch Logs ----------------------------------------------------------------

def log_events(logs: Any, function: str, pattern: str = "") -> list[dict[str, Any]]:
    """Every event of the function's log group matching `pattern` (FilterLogEvents), oldest first."""
    events: list[dict[str, Any]] = []
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=log_group(function),
                                                                filterPattern=pattern):
        events += page.get("events", [])
    return sorted(events, key=lambda e: e["timestamp"])


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile, nearest rank (as Logs Insights' pct)."""
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Summary:
    """What the REPORT lines say about a function's invocations."""

    invocations: int
    p50_ms: float
    p95_ms: float
    cold_starts: int

    @property
    def cold_start_rate(self) -> float:
        return self.cold_starts / self.invocations if self.invocations else 0.0


def summarise(reports: list[LoggedReport]) -> Summary:
    durations = [r.report.duration_ms for r in reports]
    return Summary(len(reports), percentile(durations, 50), percentile(durations, 95),
                   sum(1 for r in reports if r.cold))


def errors_by_type(logs: Any, function: str) -> Counter[str]:
    """Unhandled errors per exception type, from the runtime's `[ERROR] Type: message` lines
    and from REPORT lines of timed-out invocations."""
    found: Counter[str] = Counter()
    for event in log_events(logs, function, '"[ERROR]"'):
        head = event["message"].split("\n", 1)[0]
        if head.startswith("[ERROR] "):
            found[head[len("[ERROR] "):].split(":", 1)[0].strip()] += 1
    timeouts = len(log_events(logs, function, '"Status: timeout"'))
    if timeouts:
        found["Task timed out"] = timeouts
    return found


def request_lines(logs: Any, function: str, request_id: str) -> list[dict[str, Any]]:
    """The Powertools Logger lines of one request: JSON whose `function_request_id` is it."""
    lines = []
    for event in log_events(logs, function, f'"{request_id}"'):
        try:
            line = json.loads(event["message"])
        except ValueError:
            continue
        if isinstance(line, dict) and line.get("function_request_id") == request_id:
            lines.append(line)
    return lines


# -- metrics -------------------------------------------------------------------------------------

def metric_values(cw: Any, queries: dict[str, tuple[str, str, dict[str, str], str]], *, minutes: int = 15,
                  period: int = 60) -> dict[str, list[tuple[datetime, float]]]:
    """GetMetricData for each label: (namespace, metric, dimensions, statistic); oldest first."""
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    asked = [{"Id": f"q{i}", "Label": label, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": ns, "MetricName": name,
                   "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]},
        "Period": period, "Stat": stat}} for i, (label, (ns, name, dims, stat)) in enumerate(queries.items())]
    answer = cw.get_metric_data(MetricDataQueries=asked, StartTime=end - timedelta(minutes=minutes), EndTime=end)
    series = {}
    for result in answer["MetricDataResults"]:
        series[result["Label"]] = sorted(zip(result["Timestamps"], result["Values"]))
    return series


def total(series: list[tuple[datetime, float]]) -> float:
    return sum(v for _, v in series)


def wait_for_metric(cw: Any, queries: dict[str, tuple[str, str, dict[str, str], str]], label: str, at_least: float,
                    *, timeout: float = 60.0, poll: float = 0.5) -> dict[str, list[tuple[datetime, float]]]:
    """Poll until `label`'s total reaches `at_least` (metrics arrive after the logs on AWS)."""
    deadline = time.monotonic() + timeout
    while True:
        series = metric_values(cw, queries)
        if total(series.get(label, [])) >= at_least or time.monotonic() > deadline:
            return series
        time.sleep(poll)


# -- alarms --------------------------------------------------------------------------------------

def errors_alarm(function: str, name: str) -> dict[str, Any]:
    """PutMetricAlarm's parameters: any error of the function in a minute is ALARM."""
    return dict(AlarmName=name, Namespace="AWS/Lambda", MetricName="Errors",
                Dimensions=[{"Name": "FunctionName", "Value": function}], Statistic="Sum", Period=60,
                EvaluationPeriods=1, DatapointsToAlarm=1, Threshold=1,
                ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching",
                AlarmDescription="errors of the orders function (serverless-workbook lesson 13)")


def state_changes(cw: Any, alarm: str) -> list[tuple[datetime, str, str]]:
    """(when, from, to) of each state change, oldest first (DescribeAlarmHistory)."""
    items = cw.describe_alarm_history(AlarmName=alarm, HistoryItemType="StateUpdate",
                                      ScanBy="TimestampAscending")["AlarmHistoryItems"]
    changes = []
    for item in items:
        data = json.loads(item["HistoryData"])
        changes.append((item["Timestamp"], data["oldState"]["stateValue"], data["newState"]["stateValue"]))
    return changes


def wait_for_state(cw: Any, alarm: str, state: str, *, timeout: float = 90.0, poll: float = 1.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        now = cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"]
        if now == state or time.monotonic() > deadline:
            return now
        time.sleep(poll)


# -- traces --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Span:
    """One segment or subsegment of a trace, for the waterfall."""

    name: str
    origin: str  # AWS::Lambda, AWS::Lambda::Function, a subsegment's namespace, ...
    start: float
    end: float
    depth: int
    annotations: dict[str, Any]
    fault: bool


def trace_root(header: str) -> str:
    """The trace id (`Root=`) of an `X-Amzn-Trace-Id` header."""
    return dict(p.split("=", 1) for p in header.split(";") if "=" in p)["Root"]


def sampled_traces(xray: Any, trace_ids: list[str], *, timeout: float = 30.0) -> dict[str, list[dict[str, Any]]]:
    """Every trace X-Ray holds among `trace_ids` (the sampled requests), with its documents;
    waits until each holds a function segment or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(trace_ids), 5):  # BatchGetTraces takes at most 5 ids
            for trace in xray.batch_get_traces(TraceIds=trace_ids[start:start + 5])["Traces"]:
                found[trace["Id"]] = [json.loads(s["Document"]) for s in trace.get("Segments", [])]
        complete = all(any(d.get("origin") == "AWS::Lambda::Function" for d in docs) for docs in found.values())
        if (found and complete) or time.monotonic() > deadline:
            return found
        time.sleep(1.0)


def trace_documents(xray: Any, trace_id: str, *, timeout: float = 30.0, at_least: int = 3) -> list[dict[str, Any]]:
    """The segment documents of one trace (BatchGetTraces), waiting until `at_least` have arrived."""
    return first_traced(xray, [trace_id], timeout=timeout, at_least=at_least)[1]


def first_traced(xray: Any, trace_ids: list[str], *, timeout: float = 30.0,
                 at_least: int = 3) -> tuple[str | None, list[dict[str, Any]]]:
    """The first of `trace_ids` X-Ray holds a trace for (a sampled request: its function segment
    and at least `at_least` documents), with its documents; (None, []) if none arrives in time."""
    deadline = time.monotonic() + timeout
    while True:
        for start in range(0, len(trace_ids), 5):  # BatchGetTraces takes at most 5 ids
            traces = {t["Id"]: t for t in xray.batch_get_traces(TraceIds=trace_ids[start:start + 5])["Traces"]}
            for trace_id in trace_ids[start:start + 5]:
                documents = [json.loads(s["Document"]) for s in traces.get(trace_id, {}).get("Segments", [])]
                if len(documents) >= at_least and any(d.get("origin") == "AWS::Lambda::Function" for d in documents):
                    return trace_id, documents
        if time.monotonic() > deadline:
            return None, []
        time.sleep(1.0)


def spans(documents: list[dict[str, Any]]) -> list[Span]:
    """Every segment and subsegment, nested ones included, ordered as a waterfall (parents first)."""
    nodes: dict[str, dict[str, Any]] = {}
    children: dict[str | None, list[str]] = {}

    def add(doc: dict[str, Any], parent: str | None) -> None:
        nodes[doc["id"]] = doc
        children.setdefault(parent, []).append(doc["id"])
        for sub in doc.get("subsegments", []):
            add(sub, doc["id"])

    for doc in documents:
        add(doc, doc.get("parent_id"))
    roots = [i for parent, ids in children.items() if parent not in nodes for i in ids]
    out: list[Span] = []

    def walk(ident: str, depth: int) -> None:
        doc = nodes[ident]
        out.append(Span(doc["name"], doc.get("origin") or doc.get("namespace", ""), doc["start_time"],
                        doc.get("end_time", doc["start_time"]), depth, doc.get("annotations", {}),
                        bool(doc.get("fault"))))
        for child in sorted(children.get(ident, []), key=lambda i: nodes[i]["start_time"]):
            walk(child, depth + 1)

    for root in sorted(roots, key=lambda i: nodes[i]["start_time"]):
        walk(root, 0)
    return out


def annotations(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """Every annotation in a trace's segments and subsegments."""
    found: dict[str, Any] = {}
    for span in spans(documents):
        found.update(span.annotations)
    return found


# -- the service map -----------------------------------------------------------------------------

CLIENT = "client"


@dataclass(frozen=True)
class Node:
    """A box of the service map: a segment's origin (`AWS::Lambda`, ...) or an AWS service a
    function called (a subsegment in the `aws` namespace); `name` is what X-Ray names it."""

    name: str
    kind: str  # the origin, "remote" for a called service, "client" for the caller


@dataclass
class Edge:
    """The calls from one node to another across the traces: each call's duration (the callee's
    segment or subsegment), and how many were errors (4xx) or faults (5xx, unhandled errors)."""

    source: Node
    target: Node
    durations_ms: list[float]
    errors: int = 0
    faults: int = 0

    @property
    def count(self) -> int:
        return len(self.durations_ms)

    @property
    def mean_ms(self) -> float:
        return sum(self.durations_ms) / len(self.durations_ms) if self.durations_ms else 0.0


def _owners(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each segment or subsegment id -> the segment (a document with an `origin`) it belongs to.
    Subsegments sent on their own (the SDK's streaming) belong to their parent's segment."""
    parent_of: dict[str, str | None] = {}
    segment_of: dict[str, dict[str, Any]] = {}

    def index(doc: dict[str, Any], parent: str | None, top: dict[str, Any]) -> None:
        parent_of[doc["id"]] = parent
        if top.get("origin"):
            segment_of[doc["id"]] = top
        for sub in doc.get("subsegments", []):
            index(sub, doc["id"], top)

    for doc in documents:
        index(doc, doc.get("parent_id"), doc)

    def owner(ident: str, seen: frozenset[str] = frozenset()) -> dict[str, Any] | None:
        if ident in segment_of:
            return segment_of[ident]
        parent = parent_of.get(ident)
        if parent is None or parent in seen:
            return None
        return owner(parent, seen | {ident})

    return {ident: found for ident in parent_of if (found := owner(ident)) is not None}


def _calls(documents: list[dict[str, Any]]) -> Iterator[tuple[Node, Node, dict[str, Any]]]:
    """(caller, callee, the callee's document) for each call one trace records."""
    owners = _owners(documents)

    def node(segment: dict[str, Any]) -> Node:
        return Node(segment["name"], segment["origin"])

    def walk(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield doc
        for sub in doc.get("subsegments", []):
            yield from walk(sub)

    for top in documents:
        for doc in walk(top):
            if doc is top and doc.get("origin"):
                caller = owners.get(doc.get("parent_id") or "")
                yield (node(caller) if caller else Node(CLIENT, "client")), node(doc), doc
            elif doc.get("namespace") == "aws" and doc["id"] in owners:
                yield node(owners[doc["id"]]), Node(doc["name"], "remote"), doc


def service_map(traces: Iterable[list[dict[str, Any]]]) -> list[Edge]:
    """The service map's edges over every trace (each a list of segment documents), in the
    order their first call began."""
    edges: dict[tuple[Node, Node], Edge] = {}
    starts: dict[tuple[Node, Node], float] = {}
    for documents in traces:
        for caller, callee, doc in _calls(documents):
            edge = edges.setdefault((caller, callee), Edge(caller, callee, []))
            edge.durations_ms.append((doc.get("end_time", doc["start_time"]) - doc["start_time"]) * 1000)
            edge.errors += bool(doc.get("error"))
            edge.faults += bool(doc.get("fault"))
            starts[(caller, callee)] = min(starts.get((caller, callee), doc["start_time"]), doc["start_time"])
    # Callers before callees: a node's depth is one more than its deepest caller's.
    depth = {Node(CLIENT, "client"): 0}
    for _ in edges:
        for source, target in edges:
            depth[target] = max(depth.get(target, 0), depth.get(source, 0) + 1)
    return sorted(edges.values(), key=lambda e: (depth.get(e.source, 0), starts[(e.source, e.target)]))


_BOX_KINDS = {"client": "client", "AWS::ApiGateway::Stage": "trigger", "AWS::Lambda": "function",
              "AWS::Lambda::Function": "function"}
_KIND_NAMES = {"AWS::ApiGateway::Stage": "API stage", "AWS::Lambda": "Lambda service",
               "AWS::Lambda::Function": "function", "remote": "AWS service"}


def map_architecture(edges: list[Edge], title: str, *, prefix: str = "") -> Architecture:
    """The service map as a picture `lambdalab.course.diagrams.draw` lays out left to right:
    a box per node, an arrow per edge labelled with its calls, mean latency, errors and faults.
    `prefix` (the run's) is left out of the names, so they fit their boxes."""
    def label(node: Node) -> str:
        name = node.name[len(prefix):] if prefix and node.name.startswith(prefix) else node.name
        kind = _KIND_NAMES.get(node.kind)
        return f"{name} ({kind})" if kind else name

    boxes: dict[str, Box] = {}
    for edge in edges:
        for node in (edge.source, edge.target):
            boxes.setdefault(label(node), Box(label(node), _BOX_KINDS.get(node.kind, "service")))
    arrows = tuple(Arrow(label(e.source), label(e.target),
                         f"{e.count}× {e.mean_ms:.0f} ms" + (f", {e.errors} err" if e.errors else "")
                         + (f", {e.faults} fault" if e.faults else "")) for e in edges)
    return Architecture(title, tuple(boxes.values()), arrows)


# The waterfall's colours: the API stage, Lambda's own segments, then everything the function sent.
_SPAN_COLOURS = {"AWS::ApiGateway::Stage": "tab:green", "AWS::Lambda": "tab:orange",
                 "AWS::Lambda::Function": "tab:orange"}


def plot_waterfall(trace: list[Span], title: str) -> Any:
    """A horizontal bar per span, indented by depth, on a millisecond axis from the first start."""
    import matplotlib.pyplot as plt

    t0 = min(s.start for s in trace)
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(trace) + 1))
    for row, span in enumerate(trace):
        colour = "tab:red" if span.fault else _SPAN_COLOURS.get(span.origin, "tab:blue")
        ax.barh(row, (span.end - span.start) * 1000, left=(span.start - t0) * 1000, color=colour)
        ax.text((span.end - t0) * 1000, row, f" {(span.end - span.start) * 1000:.0f} ms", va="center", fontsize=8)
    ax.set_yticks(range(len(trace)), ["  " * s.depth + s.name for s in trace])
    ax.invert_yaxis()
    ax.set_xlabel("ms since the trace's first segment began (the API stage's, if it traces)")
    ax.set_title(title)
    return fig


def iter_minutes(series: dict[str, list[tuple[datetime, float]]]) -> Iterator[dict[str, Any]]:
    """Rows of a table: one per minute, one column per label."""
    stamps = sorted({t for points in series.values() for t, _ in points})
    for stamp in stamps:
        yield {"minute": stamp.strftime("%H:%M"),
               **{label: dict(points).get(stamp, "") for label, points in series.items()}}
