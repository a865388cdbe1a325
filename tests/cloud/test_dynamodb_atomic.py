"""DynamoDB's single-item writes are atomic in the local cloud, as they are on AWS.

"UpdateItem ... You can also use the ADD action ... to increment or decrement the value" and
every write to a single item is atomic: see
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.AtomicCounters
moto computes an update from the stored item and writes it back with no lock, so concurrent
requests served by its threaded server could read the same value (lesson 03's visit counter
then counted two visits as one).
"""

from concurrent.futures import ThreadPoolExecutor


def test_concurrent_atomic_counter_updates_each_see_their_own_count(fresh):
    ddb = fresh.client("dynamodb")
    ddb.create_table(TableName="counts", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "page", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "page", "KeyType": "HASH"}])
    clients = [fresh.client("dynamodb") for _ in range(16)]  # one per thread, as handlers have

    def add(i: int) -> int:
        response = clients[i % len(clients)].update_item(
            TableName="counts", Key={"page": {"S": "/"}}, UpdateExpression="ADD visits :one",
            ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW")
        return int(response["Attributes"]["visits"]["N"])

    with ThreadPoolExecutor(16) as pool:
        seen = list(pool.map(add, range(400)))
    assert sorted(seen) == list(range(1, 401))
