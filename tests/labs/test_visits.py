"""Checks for lab `visits` (notebook 03): a visit counter that is right under concurrency 10.

The track's handler runs in the local cloud (moto's DynamoDB on 127.0.0.1 plus the local
Lambda runtime); a burst of 10 simultaneous requests runs in up to 10 execution environments
at once, and the count in the table must be exactly the number of visits.
Run them with `check("visits")` in a notebook or `lambdalab check visits` in a shell.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from lambdalab.cloud.local_cloud import LocalCloud
from lambdalab.course.checks import fail_invocation
from lambdalab.runtime.records import Invocation

BURST = 10
TABLE = "visits"


@pytest.fixture(scope="module")
def cloud(lab_dir) -> Iterator[LocalCloud]:
    """The local cloud with a `visits` table and the track's handler deployed as "visits".

    One deployment for all the checks (each counts its own pages), so that only the first
    burst pays for ten cold starts.
    """
    with LocalCloud() as c:
        c.client("dynamodb").create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "page", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "page", "AttributeType": "S"}])
        deploy(c, lab_dir("visits"), memory=512)  # a CPU share that keeps ten cold starts quick
        yield c


def deploy(cloud: LocalCloud, code_dir, memory: int) -> None:
    cloud.deploy("visits", code_dir, "handler.lambda_handler", memory=memory, timeout=10,
                  env={"VISITS_TABLE": TABLE})


def burst(cloud: LocalCloud, events: list[dict]) -> list[Invocation]:
    """Invoke "visits" with every event at once; fail with the handler's error if any failed."""
    with ThreadPoolExecutor(len(events)) as pool:
        invocations = list(pool.map(lambda event: cloud.invoke("visits", event), events))
    for inv in invocations:
        if not inv.ok:
            fail_invocation(inv)
    return invocations


def stored(cloud: LocalCloud, page: str) -> int | None:
    item = cloud.client("dynamodb").get_item(TableName=TABLE, Key={"page": {"S": page}},
                                             ConsistentRead=True).get("Item")
    if item is None:
        return None
    assert "visits" in item and "N" in item["visits"], \
        f"the item for {page!r} should have a number attribute visits, got {item}"
    return int(item["visits"]["N"])


def returned(inv: Invocation) -> object:
    return inv.result.get("visits") if isinstance(inv.result, dict) else None


def test_counts_a_burst_of_ten(cloud):
    """Counts all 10 visits of a burst of 10 simultaneous requests.

    Hint: one dynamodb.update_item call with UpdateExpression "ADD visits :one": DynamoDB adds
    atomically, so no visit is lost however many environments run at once.
    """
    invocations = burst(cloud, [{"page": "/home"}] * BURST)
    environments = len({inv.environment_id for inv in invocations})
    count = stored(cloud, "/home")
    assert count == BURST, f"{BURST} visits in {environments} environments, but the table says {count}"


def test_each_visit_sees_its_own_count(cloud):
    """Each request of the burst gets a different count: exactly 1 to 10.

    Hint: ask update_item for ReturnValues="UPDATED_NEW" and return the new count it gives back,
    as an int; do not read the item again afterwards.
    """
    invocations = burst(cloud, [{"page": "/pricing"}] * BURST)
    counts = sorted(returned(inv) for inv in invocations if isinstance(returned(inv), int))
    assert counts == list(range(1, BURST + 1)), \
        f"the {BURST} requests should return the counts 1..{BURST} once each, " \
        f"got {sorted(map(returned, invocations), key=str)}"


def test_pages_are_counted_apart(cloud):
    """Counts each page on its own item (key "page"); an event without a page counts "/".

    Hint: the key is {"page": {"S": page}} with page = event.get("page", "/").
    """
    before = stored(cloud, "/") or 0
    burst(cloud, [{"page": "/a"}] * 6 + [{"page": "/b"}] * 3 + [{}])
    got = {page: stored(cloud, page) for page in ("/a", "/b")}
    assert got == {"/a": 6, "/b": 3}, f"expected /a: 6 and /b: 3, the table says {got}"
    assert stored(cloud, "/") == before + 1, 'an event with no "page" should count one visit of "/"'


def test_the_count_survives_new_environments(cloud, lab_dir):
    """Keeps counting after every execution environment is replaced (a redeploy).

    Hint: the count must live only in the table, not in a module-level variable.
    """
    burst(cloud, [{"page": "/survivor"}] * 4)
    deploy(cloud, lab_dir("visits"), memory=1024)  # a new configuration: every environment starts cold
    (inv,) = burst(cloud, [{"page": "/survivor"}])
    assert inv.cold, "after a redeploy the first request should run in a new environment"
    assert returned(inv) == 5 and stored(cloud, "/survivor") == 5, \
        f"4 visits before the redeploy and 1 after: expected 5, the handler returned {returned(inv)!r}"


@pytest.mark.stretch
def test_stretch_the_item_remembers_the_last_visit(cloud):
    """Stretch goal: the page's item also holds the time of its last visit, "last_visit" (ISO 8601, UTC).

    Hint: one UpdateItem can do both: "ADD visits :one SET last_visit = :now", with :now the time
    as a string such as datetime.now(timezone.utc).isoformat(). Two requests would not be atomic.
    """
    before = datetime.now(timezone.utc).replace(microsecond=0)
    burst(cloud, [{"page": "/stretch"}])
    item = cloud.client("dynamodb").get_item(TableName=TABLE, Key={"page": {"S": "/stretch"}},
                                             ConsistentRead=True).get("Item") or {}
    text = item.get("last_visit", {}).get("S")
    assert text, f'the item for "/stretch" should have a string attribute last_visit, got {item}'
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pytest.fail(f"last_visit should be an ISO 8601 time such as 2026-01-31T12:00:00+00:00, got {text!r}",
                    pytrace=False)
    assert when.tzinfo is not None, f"last_visit should say its time zone (UTC), got {text!r}"
    assert before - timedelta(seconds=1) <= when <= datetime.now(timezone.utc) + timedelta(seconds=1), \
        f"last_visit {text!r} is not the time of the visit just made ({before.isoformat()})"
