"""Lab `visits`: a visit counter that stays correct however many environments serve it.

Module-level state is per execution environment, and a burst of requests runs in several
environments at once, so the count must live outside them: in a DynamoDB table (name in the
`VISITS_TABLE` environment variable, partition key `page`, a string). Reading the count,
adding 1 and writing it back is not enough: two environments can read the same value. The
fix is to let DynamoDB do the addition: one `UpdateItem` call with `ADD`, which is atomic.

The event: {"page": "/pricing"} (default "/"). The result: {"page": ..., "visits": the count
after this visit}.
"""

import os
from datetime import datetime, timezone

import boto3

TABLE = os.environ.get("VISITS_TABLE", "visits")
dynamodb = boto3.client("dynamodb")  # created once per environment, at INIT


def lambda_handler(event, context):
    page = event.get("page", "/")
    # BEGIN SOLUTION atomic
    # Count this visit in TABLE (the item whose key "page" is this page)
    # so that no visit is lost when environments count at the same moment: let DynamoDB do the addition, atomically,
    # in one request (no read-then-write). Look up UpdateItem's update expressions (the ADD
    # action) and its ReturnValues parameter in the boto3 DynamoDB client documentation.
    # Set `visits` to the count after this visit, as an int.
    response = dynamodb.update_item(
        TableName=TABLE,
        Key={"page": {"S": page}},
        # The stretch goal rides in the same request: SET the time of this visit beside the count.
        UpdateExpression="ADD visits :one SET last_visit = :now",
        ExpressionAttributeValues={":one": {"N": "1"},
                                   ":now": {"S": datetime.now(timezone.utc).isoformat(timespec="seconds")}},
        ReturnValues="UPDATED_NEW",
    )
    visits = int(response["Attributes"]["visits"]["N"])
    # END SOLUTION
    return {"page": page, "visits": visits}
