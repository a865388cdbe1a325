"""The lesson-13 helpers that compute from what the APIs return: nearest-rank percentiles (as
Logs Insights' pct), REPORT summaries, and a trace's segments and subsegments as a waterfall.

Logs Insights pct: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-operations-functions.html
Segment documents (parent_id, nested subsegments, annotations):
https://docs.aws.amazon.com/xray/latest/devguide/xray-api-segmentdocuments.html
"""

from lambdalab.course.lessons.observability import annotations, percentile, spans, summarise, trace_root
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
