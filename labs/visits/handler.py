# Generated from solutions/visits/handler.py by `lambdalab labs build`. This copy is yours: edit it.
# Replace each `raise NotImplementedError` with your code, then run `lambdalab check visits`.
# `lambdalab labs build` never overwrites your edits (unless you pass --force).
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
    # TODO(atomic): Count this visit in TABLE (the item whose key "page" is this page)
    # so that no visit is lost when environments count at the same moment: let DynamoDB do the addition, atomically,
    # in one request (no read-then-write). Look up UpdateItem's update expressions (the ADD
    # action) and its ReturnValues parameter in the boto3 DynamoDB client documentation.
    # Set `visits` to the count after this visit, as an int.
    raise NotImplementedError("Exercise 'atomic' in labs/visits/handler.py: Count this visit in TABLE (the item whose key \"page\" is this page) so that no visit is lost when environments count at the same moment: let DynamoDB do the addition, atomically, in one request (no read-then-write). Look up UpdateItem's update expressions (the ADD action) and its ReturnValues parameter in the boto3 DynamoDB client documentation. Set `visits` to the count after this visit, as an int.")
    return {"page": page, "visits": visits}
