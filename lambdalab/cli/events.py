"""`lambdalab events SOURCE`: print a sample event shaped as the AWS service sends it."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from lambdalab.events import generate, options
from lambdalab.events.dynamodb import DYNAMODB_EVENT_NAMES, STREAM_VIEW_TYPES
from lambdalab.runtime.config import ACCOUNT_ID, REGION


def _json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e.msg} at character {e.pos}): {text!r}") from None


def _pair_arg(separator: str) -> Callable[[str], tuple[str, str]]:
    def parse(text: str) -> tuple[str, str]:
        name, sep, value = text.partition(separator)
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"expected NAME{separator}VALUE, got {text!r}")
        return name.strip(), value.strip() if separator == ":" else value
    return parse


def _common(p: argparse.ArgumentParser, account: bool = True) -> None:
    p.add_argument("--region", help=f"AWS region (default {REGION})")
    if account:
        p.add_argument("--account", help=f"12-digit account id (default {ACCOUNT_ID})")


def _http_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", help="HTTP method (default GET)")
    p.add_argument("--path", help="request path, e.g. /items/42 (default /)")
    p.add_argument("--body", help="request body, sent as is")
    p.add_argument("--header", dest="headers", action="append", type=_pair_arg(":"), metavar="'NAME: VALUE'",
                   help="a request header; repeat for more")
    p.add_argument("--query", help="query string, e.g. 'a=1&a=2&b=x'")
    p.add_argument("--stage", help="stage name")
    _common(p)


def _add_source_parsers(sources: Any) -> None:
    def parser(name: str, help_: str) -> argparse.ArgumentParser:
        # SUPPRESS: options not given stay out of the namespace, so the builder's defaults apply.
        return sources.add_parser(name, help=help_, description=help_, argument_default=argparse.SUPPRESS)

    p = parser("s3-put", "S3 ObjectCreated:Put notification")
    p.add_argument("--bucket", help="bucket name (default example-bucket)")
    p.add_argument("--key", help="object key, as uploaded; the event carries it URL-encoded (default test/key)")
    p.add_argument("--size", type=int, help="object size in bytes (default 1024)")
    p.add_argument("--etag", help="object ETag (default random)")
    p.add_argument("--configuration-id", dest="configuration_id", help="notification configuration id")
    _common(p)

    p = parser("sqs", "SQS batch from an event source mapping")
    p.add_argument("--body", help="message body (default 'Hello from SQS!')")
    p.add_argument("--count", type=int, help="number of records, each with that body (default 1)")
    p.add_argument("--queue", help="queue name; '.fifo' suffix for FIFO (default my-queue)")
    p.add_argument("--attribute", dest="attributes", action="append", type=_pair_arg("="), metavar="NAME=VALUE",
                   help="a String message attribute; repeat for more")
    p.add_argument("--group-id", dest="group_id", help="message group id (FIFO queues)")
    _common(p)

    p = parser("dynamodb", "DynamoDB Streams record")
    p.add_argument("--table", help="table name (default my-table)")
    p.add_argument("--event-name", dest="event_name", choices=DYNAMODB_EVENT_NAMES, help="default INSERT")
    p.add_argument("--keys", type=_json_arg, help='key attributes in DynamoDB JSON, e.g. \'{"Id": {"N": "101"}}\'')
    p.add_argument("--new-image", dest="new_image", type=_json_arg, help="new item in DynamoDB JSON")
    p.add_argument("--old-image", dest="old_image", type=_json_arg, help="old item in DynamoDB JSON")
    p.add_argument("--view-type", dest="view_type", choices=STREAM_VIEW_TYPES, help="default NEW_AND_OLD_IMAGES")
    _common(p)

    p = parser("eventbridge", "EventBridge event, as a rule delivers it")
    p.add_argument("--source", help="event source (default com.example.app)")
    p.add_argument("--detail-type", dest="detail_type", help="detail-type (default ExampleEvent)")
    p.add_argument("--detail", type=_json_arg, help="detail, a JSON object (default {})")
    p.add_argument("--resource", dest="resources", action="append", metavar="ARN",
                   help="a resource ARN; repeat for more")
    p.add_argument("--replay-name", dest="replay_name", help="archive replay name (replayed events only)")
    _common(p)

    p = parser("schedule", "EventBridge scheduled event (rate or cron rule)")
    p.add_argument("--rule", help="rule name (default my-schedule)")
    _common(p)

    p = parser("apigateway-v1", "API Gateway REST API proxy request (payload 1.0)")
    _http_args(p)
    p.add_argument("--resource", help="resource template, e.g. /items/{id} (default: the path)")

    p = parser("apigateway-v2", "API Gateway HTTP API / function URL request (payload 2.0)")
    _http_args(p)
    p.add_argument("--cookie", dest="cookies", action="append", metavar="NAME=VALUE", help="a cookie; repeat for more")
    p.add_argument("--route", help="route template, e.g. /items/{id} (default: the $default route)")


def _run_cli(args: argparse.Namespace) -> int:
    source = args.events_source
    given = {k: v for k, v in vars(args).items() if k in options(source)}
    if "attributes" in given:
        names = [name for name, _ in given["attributes"]]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            print(f"lambdalab events {source}: error: attribute given twice: {', '.join(duplicated)}", file=sys.stderr)
            return 2
        given["attributes"] = dict(given["attributes"])
    try:
        event = generate(source, **given)
    except ValueError as e:
        print(f"lambdalab events {source}: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(event, indent=2))
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add `events SOURCE [options]` to a CLI's subparsers; the command prints the event as JSON."""
    parser = subparsers.add_parser(
        "events", help="print a sample AWS event for a Lambda trigger",
        description="Print a fresh AWS event as JSON, shaped as the service sends it to Lambda.")
    sources = parser.add_subparsers(dest="events_source", metavar="SOURCE", required=True)
    _add_source_parsers(sources)
    parser.set_defaults(func=_run_cli)
    return parser
