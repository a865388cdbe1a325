"""Checks for lab `receipts` (notebook 10): a consumer that sends one receipt per order however
often the order is delivered.

The track's handler runs in the local cloud (moto's DynamoDB plus the local Lambda runtime), with
its Powertools packaged from its requirements.txt as `lambdalab build` does. Each check delivers
OrderPlaced events the way EventBridge can: the same event twice (at-least-once delivery), and the
same order under a new event id (a checkout that retried its PutEvents).
Run them with `check("receipts")` in a notebook or `lambdalab check receipts` in a shell.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from lambdalab.cloud.local_cloud import LocalCloud
from lambdalab.course.checks import fail_invocation

RECEIPTS, IDEMPOTENCY = "receipts", "idempotency"


@pytest.fixture(scope="module")
def cloud(lab_dir) -> Iterator[LocalCloud]:
    """The local cloud with both tables and the track's handler deployed as "receipts"."""
    with LocalCloud() as c:
        ddb = c.client("dynamodb")
        for table, key in ((RECEIPTS, "order_id"), (IDEMPOTENCY, "id")):
            ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                             KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}])
        c.deploy("receipts", lab_dir("receipts"), "handler.lambda_handler", memory=256, timeout=10,
                 env={"RECEIPTS_TABLE": RECEIPTS, "IDEMPOTENCY_TABLE": IDEMPOTENCY})
        yield c


def order_placed(order_id: str, event_id: str | None = None) -> dict:
    return {"version": "0", "id": event_id or str(uuid.uuid4()), "detail-type": "OrderPlaced",
            "source": "shop.checkout", "account": "123456789012", "time": "2026-12-07T03:00:00Z",
            "region": "us-east-1", "resources": [],
            "detail": {"order_id": order_id, "customer": "ada@example.com", "items": [{"sku": "MUG-1", "qty": 1}],
                       "total": 12.5}}


def deliver(cloud: LocalCloud, event: dict) -> object:
    inv = cloud.invoke("receipts", event)
    if not inv.ok:
        fail_invocation(inv)
    return inv.result


def receipts(cloud: LocalCloud, order_id: str) -> int:
    item = cloud.client("dynamodb").get_item(TableName=RECEIPTS, Key={"order_id": {"S": order_id}},
                                             ConsistentRead=True).get("Item")
    return int(item["receipts"]["N"]) if item else 0


def test_one_delivery_sends_one_receipt(cloud):
    """A first delivery sends the receipt and returns {"order_id": ..., "receipt": "sent"}.

    Hint: the decorated function must still call send_receipt(order_id) and return what it returns.
    """
    result = deliver(cloud, order_placed("o-first"))
    assert result == {"order_id": "o-first", "receipt": "sent"}, f"the handler returned {result!r}"
    sent = receipts(cloud, "o-first")
    assert sent == 1, f"one delivery should send one receipt, the table says {sent}"


def test_the_same_event_delivered_three_times_sends_one_receipt(cloud):
    """At-least-once delivery: the same event (same id) three times, one receipt, the same result each time.

    Hint: decorate a function with @idempotent_function(data_keyword_argument="order",
    persistence_store=persistence, config=config) and call it with order=... from the handler.
    """
    event = order_placed("o-dup")
    results = [deliver(cloud, event) for _ in range(3)]
    count = receipts(cloud, "o-dup")
    assert count == 1, f"3 deliveries of one event sent {count} receipts: a repeat must not run send_receipt"
    assert results == [results[0]] * 3, f"a repeat should return the first result, got {results}"


def test_the_same_order_under_a_new_event_id_sends_one_receipt(cloud):
    """A retried PutEvents publishes the same order under a new event id: still one receipt.

    Hint: key the idempotency on the order's id (pass only {"order_id": ...} as the data, or set
    IdempotencyConfig(event_key_jmespath="order_id")), not on the whole event, whose "id" differs.
    """
    for _ in range(2):
        deliver(cloud, order_placed("o-retried"))
    count = receipts(cloud, "o-retried")
    assert count == 1, f"one order published twice (two event ids) sent {count} receipts"


def test_different_orders_each_get_their_receipt(cloud):
    """Idempotency must not swallow new orders: three orders, one receipt each.

    Hint: the key must be the order id, so that different orders have different keys.
    """
    for order_id in ("o-a", "o-b", "o-c"):
        deliver(cloud, order_placed(order_id))
    got = {order_id: receipts(cloud, order_id) for order_id in ("o-a", "o-b", "o-c")}
    assert got == {"o-a": 1, "o-b": 1, "o-c": 1}, f"expected one receipt per order, the table says {got}"
