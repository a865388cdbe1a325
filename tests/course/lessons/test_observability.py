"""The lesson-13 helpers that compute from what the APIs return: nearest-rank percentiles (as
Logs Insights' pct), REPORT summaries, a trace's segments and subsegments as a waterfall, and the
service map of many traces (X-Ray's: a node per segment origin and per AWS service called, an edge
per caller and callee with requests, mean latency, errors and faults).

Logs Insights pct: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-operations-functions.html
Segment documents (parent_id, nested subsegments, annotations):
https://docs.aws.amazon.com/xray/latest/devguide/xray-api-segmentdocuments.html
Service map (nodes, edges, errors and faults): https://docs.aws.amazon.com/xray/latest/devguide/xray-console-servicemap.html
"""

from lambdalab.course.lessons.observability import (
    CLIENT,
    Node,
    annotations,
    map_architecture,
    percentile,
    service_map,
    spans,
    summarise,
    trace_root,
)
from lambdalab.course.target.reports import LoggedReport
from lambdalab.runtime.records import Report


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile(values, 100) == 20.0
    assert percentile([7.0], 95) == 7.0


def test_summary_counts_cold_starts_from_init_duration():
    def logged(ms, init=None):
        return LoggedReport(Report("r", ms, int(ms) + 1, 128, 60, init_ms=init), 0, "s")
    summary = summarise([logged(100, 900), logged(10), logged(12), logged(11)])
    assert (summary.invocations, summary.cold_starts, summary.cold_start_rate) == (4, 1, 0.25)
    assert (summary.p50_ms, summary.p95_ms) == (11, 100)


def test_a_trace_becomes_a_waterfall_parents_first():
    """Separate documents link by parent_id; embedded subsegments nest; siblings by start time."""
    service = {"id": "s", "name": "orders", "origin": "AWS::Lambda", "start_time": 0.0, "end_time": 1.0}
    function = {"id": "f", "parent_id": "s", "name": "orders", "origin": "AWS::Lambda::Function",
                "start_time": 0.0, "end_time": 1.0,
                "subsegments": [{"id": "i", "name": "Invocation", "start_time": 0.2, "end_time": 1.0},
                                {"id": "n", "name": "Initialization", "start_time": 0.0, "end_time": 0.2}]}
    handler = {"id": "h", "parent_id": "f", "name": "## handler", "namespace": "local", "type": "subsegment",
               "start_time": 0.25, "end_time": 0.9, "annotations": {"channel": "web"},
               "subsegments": [{"id": "d", "name": "dynamodb", "namespace": "aws", "start_time": 0.3,
                                "end_time": 0.5, "fault": True}]}
    trace = spans([handler, function, service])  # in any order, as BatchGetTraces returns them
    assert [(s.name, s.depth) for s in trace] == [
        ("orders", 0), ("orders", 1), ("Initialization", 2), ("Invocation", 2), ("## handler", 2), ("dynamodb", 3)]
    assert [s.origin for s in trace][:2] == ["AWS::Lambda", "AWS::Lambda::Function"]
    assert trace[-1].fault and not trace[-2].fault
    assert annotations([handler, function, service]) == {"channel": "web"}


def test_trace_root_reads_the_header():
    assert trace_root("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1") == \
        "1-5759e988-bd862e3fe1be46a994272793"


def _trace(n: int, *, fault: bool = False) -> list[dict]:
    """One request through a traced stage: the stage, Lambda's two segments, and the handler's
    subsegment sent on its own, with DynamoDB and S3 calls unless it failed first."""
    t = float(n)
    stage = {"id": f"a{n}", "name": "shop/prod", "origin": "AWS::ApiGateway::Stage", "start_time": t,
             "end_time": t + 0.5, **({"fault": True} if fault else {})}
    service = {"id": f"s{n}", "parent_id": f"a{n}", "name": "orders", "origin": "AWS::Lambda",
               "start_time": t + 0.1, "end_time": t + 0.4}
    function = {"id": f"f{n}", "parent_id": f"s{n}", "name": "orders", "origin": "AWS::Lambda::Function",
                "start_time": t + 0.1, "end_time": t + 0.4, **({"fault": True} if fault else {}),
                "subsegments": [{"id": f"i{n}", "name": "Invocation", "start_time": t + 0.1, "end_time": t + 0.4}]}
    calls = [] if fault else [
        {"id": f"d{n}", "name": "dynamodb", "namespace": "aws", "start_time": t + 0.2, "end_time": t + 0.25},
        {"id": f"b{n}", "name": "s3", "namespace": "aws", "start_time": t + 0.25, "end_time": t + 0.35}]
    handler = {"id": f"h{n}", "parent_id": f"i{n}", "name": "## handler", "namespace": "local",
               "type": "subsegment", "start_time": t + 0.15, "end_time": t + 0.38,
               "subsegments": [{"id": f"v{n}", "name": "## save", "start_time": t + 0.18, "end_time": t + 0.36,
                                "subsegments": calls}]}
    return [handler, function, service, stage]


def test_the_service_map_sums_calls_per_caller_and_callee():
    """Edges from the client to the stage, the stage to Lambda, Lambda to the function, and the
    function to each AWS service its (nested, separately sent) subsegments called; counts, mean
    latency of the callee, faults; callers listed before their callees."""
    edges = service_map([_trace(0), _trace(1), _trace(2, fault=True)])
    stage, service = Node("shop/prod", "AWS::ApiGateway::Stage"), Node("orders", "AWS::Lambda")
    function = Node("orders", "AWS::Lambda::Function")
    assert [(e.source, e.target, e.count, e.faults) for e in edges] == [
        (Node(CLIENT, "client"), stage, 3, 1), (stage, service, 3, 0), (service, function, 3, 1),
        (function, Node("dynamodb", "remote"), 2, 0), (function, Node("s3", "remote"), 2, 0)]
    assert round(edges[0].mean_ms) == 500 and round(edges[-1].mean_ms) == 100


def test_without_a_traced_api_the_map_starts_at_lambda():
    """A trace with no stage segment (an HTTP API, or a direct invoke): the client calls Lambda."""
    edges = service_map([_trace(0)[:3]])
    assert edges[0].source == Node(CLIENT, "client") and edges[0].target == Node("orders", "AWS::Lambda")


def test_the_map_as_a_picture_drops_the_run_prefix():
    picture = map_architecture(service_map([_trace(0, fault=True)]), "map", prefix="shop/")
    assert [b.name for b in picture.boxes] == ["client", "prod (API stage)", "orders (Lambda service)",
                                               "orders (function)"]
    assert picture.arrows[0].label == "1× 500 ms, 1 fault"
