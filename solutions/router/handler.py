"""Lab `router`: one function behind six triggers: tell the events apart and summarise each.

A function wired to several triggers receives events of different shapes, and nothing in an
event says "I came from S3" in one agreed place. `event_source(event)` recognises each kind by
its shape; one summariser per kind picks out what matters; the handler prints the summary and
returns it (an HTTP caller receives it as the JSON body of a 200 response).

What each kind looks like, and the summary to return for it:

- "s3": Records[0]["eventSource"] == "aws:s3"
    {"source": "s3", "objects": ["<bucket>/<key>", ...]}
- "sqs": Records[0]["eventSource"] == "aws:sqs"
    {"source": "sqs", "queue": "<queue name>", "bodies": [<body>, ...]}
- "dynamodb": Records[0]["eventSource"] == "aws:dynamodb"
    {"source": "dynamodb", "table": "<table name>",
     "changes": [{"event": "INSERT", "keys": {"id": "order-42"}}, ...]}
- "schedule": an object with "schedule_arn" (an EventBridge Scheduler schedule sends exactly
  the Input its target was given; the course's schedules send {"job": ..., "schedule_arn":
  "<aws.scheduler.schedule-arn>", "scheduled_time": "<aws.scheduler.scheduled-time>"}, which
  Scheduler fills in when it fires)
    {"source": "schedule", "schedule": "<schedule name>", "time": <scheduled_time>}
- "eventbridge": an object with "source" and "detail-type"
    {"source": "eventbridge", "from": <source>, "detail_type": <detail-type>, "detail": <detail>}
- "http": "requestContext" holds "http" (API Gateway HTTP API, payload format 2.0)
    {"source": "http", "method": "GET", "path": <rawPath>,
     "query": <queryStringParameters, or {}>, "body": <body, or None>}

Anything else (another service's event, an empty "Records" list, a list, a string) raises
`UnknownEventError` whose message says what the event was: its sorted top-level keys for an
object ("unknown event with keys ['hello']"), its type otherwise ("unknown event: a list").

Lists in a summary keep the order of the records. S3 keys arrive URL-encoded ("my+photo.jpg"
for "my photo.jpg"): decode them with `urllib.parse.unquote_plus`. Queue and table names come
from each record's "eventSourceARN"; DynamoDB keys lose their type tags ({"id": {"S": "a"}}
becomes {"id": "a"}); a schedule's name ends its ARN (".../schedule/<group>/<name>").
"""

import json
from urllib.parse import unquote_plus


class UnknownEventError(ValueError):
    """The event is not one of the six kinds this router knows."""


def event_source(event):
    """ "s3", "sqs", "dynamodb", "schedule", "eventbridge" or "http"; UnknownEventError otherwise."""
    # BEGIN SOLUTION detect
    # Return which kind of event this is, by the rules in the table at the top of this file;
    # raise UnknownEventError (saying what the event was) for anything else.
    if not isinstance(event, dict):
        raise UnknownEventError(f"unknown event: a {type(event).__name__}")
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        kind = {"aws:s3": "s3", "aws:sqs": "sqs", "aws:dynamodb": "dynamodb"}.get(records[0].get("eventSource"))
        if kind:
            return kind
    if "schedule_arn" in event:
        return "schedule"
    if "source" in event and "detail-type" in event:
        return "eventbridge"
    if isinstance(event.get("requestContext"), dict) and "http" in event["requestContext"]:
        return "http"
    raise UnknownEventError(f"unknown event with keys {sorted(event)}")
    # END SOLUTION


def summarise_s3(event):
    # BEGIN SOLUTION s3
    # {"source": "s3", "objects": ["<bucket>/<key>" for each record]}, each key decoded with unquote_plus.
    objects = [f"{r['s3']['bucket']['name']}/{unquote_plus(r['s3']['object']['key'])}" for r in event["Records"]]
    return {"source": "s3", "objects": objects}
    # END SOLUTION


def summarise_sqs(event):
    # BEGIN SOLUTION sqs
    # {"source": "sqs", "queue": the queue's name (the last part of a record's eventSourceARN),
    # "bodies": [each record's body, as it came]}.
    records = event["Records"]
    return {"source": "sqs", "queue": records[0]["eventSourceARN"].split(":")[-1],
            "bodies": [r["body"] for r in records]}
    # END SOLUTION


def summarise_dynamodb(event):
    # BEGIN SOLUTION dynamodb
    # {"source": "dynamodb", "table": the table's name (eventSourceARN is arn:...:table/<name>/stream/...),
    # "changes": [{"event": eventName, "keys": dynamodb.Keys without type tags} for each record]}.
    records = event["Records"]
    changes = [{"event": r["eventName"],
                "keys": {name: next(iter(typed.values())) for name, typed in r["dynamodb"]["Keys"].items()}}
               for r in records]
    return {"source": "dynamodb", "table": records[0]["eventSourceARN"].split("/")[1], "changes": changes}
    # END SOLUTION


def summarise_eventbridge(event):
    # BEGIN SOLUTION eventbridge
    # {"source": "eventbridge", "from": event["source"], "detail_type": event["detail-type"],
    #  "detail": event["detail"]}.
    return {"source": "eventbridge", "from": event["source"], "detail_type": event["detail-type"],
            "detail": event["detail"]}
    # END SOLUTION


def summarise_schedule(event):
    # BEGIN SOLUTION schedule
    # {"source": "schedule", "schedule": the schedule's name (the end of schedule_arn, after its last "/"),
    # "time": event["scheduled_time"]}.
    return {"source": "schedule", "schedule": event["schedule_arn"].split("/")[-1], "time": event["scheduled_time"]}
    # END SOLUTION


def summarise_http(event):
    # BEGIN SOLUTION http
    # {"source": "http", "method": requestContext.http.method, "path": rawPath,
    # "query": queryStringParameters (or {} when absent), "body": body (or None when absent)}.
    return {"source": "http", "method": event["requestContext"]["http"]["method"], "path": event["rawPath"],
            "query": event.get("queryStringParameters") or {}, "body": event.get("body")}
    # END SOLUTION


SUMMARISERS = {"s3": summarise_s3, "sqs": summarise_sqs, "dynamodb": summarise_dynamodb,
               "eventbridge": summarise_eventbridge, "schedule": summarise_schedule, "http": summarise_http}


def lambda_handler(event, context):
    summary = SUMMARISERS[event_source(event)](event)
    print(json.dumps(summary))
    return summary
