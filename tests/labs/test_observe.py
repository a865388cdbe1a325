"""Checks for lab `observe` (notebook 13): a business metric and a trace annotation, read back
through CloudWatch and X-Ray as on AWS.

The track's orders function is deployed into the local cloud with Active tracing, a DynamoDB
table and a receipts bucket; three orders are placed. CloudWatch must then hold the metric `OrderValue` (namespace
`Shop`, dimension `service=orders`) with one sample per order and their totals as values, and
each order's trace (BatchGetTraces) must carry the annotation `channel`.
Run them with `check("observe")` in a notebook or `lambdalab check observe` in a shell.

EMF: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
X-Ray annotations: https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-annotations
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from lambdalab.cloud.local_cloud import LocalCloud
from lambdalab.course.checks import fail_invocation
from lambdalab.course.lessons.observability import (
    NAMESPACE,
    SERVICE,
    annotations,
    metric_values,
    total,
    trace_documents,
    trace_root,
)

ORDERS = [
    {"order_id": "c-1", "channel": "web", "items": [{"sku": "tea", "qty": 2, "price": 4.5}]},
    {"order_id": "c-2", "channel": "app", "items": [{"sku": "pot", "qty": 1, "price": 25}]},
    {"order_id": "c-3", "channel": "phone", "items": [{"sku": "cup", "qty": 3, "price": 9}]},
]
TOTALS = [9.0, 25.0, 27.0]


@pytest.fixture(scope="module")
def placed(lab_dir) -> Iterator[tuple[LocalCloud, list]]:
    """The cloud, and the invocation of each order in ORDERS."""
    with LocalCloud() as cloud:
        cloud.client("dynamodb").create_table(
            TableName="orders", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}])
        cloud.client("s3").create_bucket(Bucket="receipts")
        cloud.deploy("orders", lab_dir("observe"), "handler.handler", env={"TABLE": "orders", "RECEIPTS": "receipts"},
                     timeout=10, TracingConfig={"Mode": "Active"})
        invocations = []
        for order in ORDERS:
            # X-Ray's default rule traces the first request of each second (and 5% of the rest).
            time.sleep(1.0 - time.time() % 1.0)
            inv = cloud.invoke("orders", order)
            if not inv.ok:
                fail_invocation(inv)
            invocations.append(inv)
        cloud.xray.flush()
        yield cloud, invocations


def test_orders_are_still_placed(placed):
    """Each order answers its total, as before your change.

    Hint: add your lines without changing what the handler returns.
    """
    _, invocations = placed
    assert [inv.result.get("total") for inv in invocations] == TOTALS


def test_order_value_metric(placed):
    """CloudWatch has `OrderValue` in `Shop` with one sample per order, summing to their totals.

    Hint: metrics.add_metric(name="OrderValue", unit=MetricUnit.NoUnit, value=total) adds it to the
    EMF line Powertools prints at the end of the invocation.
    """
    cloud, _ = placed
    query = (NAMESPACE, "OrderValue", {"service": SERVICE}, "{}")
    series = metric_values(cloud.client("cloudwatch"), {s: (*query[:3], s) for s in ("Sum", "SampleCount")})
    assert total(series["SampleCount"]) == len(ORDERS), (
        f"OrderValue should have {len(ORDERS)} samples (one per order), not {total(series['SampleCount']):g}")
    assert total(series["Sum"]) == pytest.approx(sum(TOTALS)), (
        f"OrderValue should sum to {sum(TOTALS):g}, the orders' totals, not {total(series['Sum']):g}")


def test_channel_annotation_on_each_trace(placed):
    """Each order's trace carries the annotation channel=<the order's channel>.

    Hint: tracer.put_annotation(key="channel", value=channel) annotates the handler's subsegment.
    """
    cloud, invocations = placed
    xray = cloud.client("xray")
    for order, inv in zip(ORDERS, invocations):
        found = annotations(trace_documents(xray, trace_root(inv.trace_id), timeout=10))
        assert found.get("channel") == order["channel"], (
            f"the trace of {order['order_id']} should be annotated channel={order['channel']!r}; "
            f"its annotations: {found}")
