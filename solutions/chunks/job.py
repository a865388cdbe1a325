"""The whole job in one invocation: fine for a small job, killed at the timeout for a big one.

The event: {"job": "nightly", "items": [{"id": ..., "ms": ...}, ...]}. Lambda stops the handler
when the function's timeout passes (at most 900 s on AWS), whatever it was doing: the work done
so far is lost and the caller gets `Sandbox.Timedout`.
"""

from work import process_all


def lambda_handler(event, context):
    return {"job": event["job"], **process_all(event["items"])}
