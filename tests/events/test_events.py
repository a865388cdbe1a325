"""Generated events keep the contract of AWS's sample events, encode what AWS encodes, and the
`events` CLI prints them or fails with exit code 2 and a message naming the problem."""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import re
import subprocess
import sys
from datetime import datetime, timezone
from urllib.parse import unquote_plus

import boto3
import pytest
from contract import CONTRACT_EXCEPTIONS, contract_problems, sample
from moto import mock_aws

from lambdalab import events
from lambdalab.cli.events import register
from lambdalab.events import SOURCES, generate
from lambdalab.events.apigateway import apigateway_v1_event, apigateway_v2_event
from lambdalab.events.dynamodb import dynamodb_event, dynamodb_record, item_size
from lambdalab.events.eventbridge import eventbridge_event, schedule_event
from lambdalab.events.s3 import encode_key, s3_put_event
from lambdalab.events.sqs import sqs_event

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ISO_S = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
CLF = re.compile(r"^\d\d/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/\d{4}:\d\d:\d\d:\d\d \+0000$")


def assert_conforms(source: str, event: dict) -> None:
    assert contract_problems(source, event, sample(source)) == []
    json.dumps(event)  # and it is plain JSON


# --- the contract -------------------------------------------------------------------------------

RICH_OPTIONS = {
    "s3-put": dict(bucket="photos", key="uploads/My Photo.jpg", size=2048, etag="0" * 32, region="eu-west-1"),
    "sqs": dict(body='{"message": "hi"}', count=3, queue="orders", attributes={"kind": "test", "n": 7}),
    "dynamodb": dict(table="Music", event_name="MODIFY", keys={"Id": {"N": "1"}},
                     old_image={"Id": {"N": "1"}, "Title": {"S": "old"}},
                     new_image={"Id": {"N": "1"}, "Title": {"S": "new"}, "Tags": {"SS": ["a", "b"]}}),
    "eventbridge": dict(source="com.shop.orders", detail_type="OrderPlaced", detail={"id": 1, "items": [1, 2]},
                        resources=["arn:aws:s3:::photos"]),
    "schedule": dict(rule="nightly-report"),
    "apigateway-v1": dict(method="POST", path="/items/42", resource="/items/{id}", body={"name": "x"},
                          headers={"X-Custom": ["a", "b"]}, query={"q": ["1", "2"], "page": "3"}),
    "apigateway-v2": dict(method="POST", path="/items/42", route="/items/{id}", body="hello",
                          headers={"Cookie": "a=1; b=2"}, query="q=1&q=2", cookies=["c=3"]),
}


def test_the_sources_are_the_seven_documented_ones():
    assert SOURCES == ("s3-put", "sqs", "dynamodb", "eventbridge", "schedule", "apigateway-v1", "apigateway-v2")
    assert set(CONTRACT_EXCEPTIONS) == set(SOURCES)
    assert CONTRACT_EXCEPTIONS["schedule"].sample == "eventbridge.json"


@pytest.mark.parametrize("source", SOURCES)
def test_default_event_has_every_key_of_the_sample(source):
    assert_conforms(source, generate(source))


@pytest.mark.parametrize("source", SOURCES)
def test_event_with_every_option_has_every_key_of_the_sample(source):
    assert_conforms(source, generate(source, **RICH_OPTIONS[source]))


def test_rich_http_api_event_carries_the_keys_aws_leaves_out_when_empty():
    event = generate("apigateway-v2", **RICH_OPTIONS["apigateway-v2"])
    for key in ("cookies", "queryStringParameters", "pathParameters", "body"):
        assert key in event


@pytest.mark.parametrize("event_name, view_type, expected", [
    ("INSERT", "NEW_AND_OLD_IMAGES", {"NewImage"}),
    ("MODIFY", "NEW_AND_OLD_IMAGES", {"NewImage", "OldImage"}),
    ("REMOVE", "NEW_AND_OLD_IMAGES", {"OldImage"}),
    ("MODIFY", "NEW_IMAGE", {"NewImage"}),
    ("MODIFY", "OLD_IMAGE", {"OldImage"}),
    ("MODIFY", "KEYS_ONLY", set()),
])
def test_dynamodb_images_follow_event_name_and_view_type(event_name, view_type, expected):
    event = generate("dynamodb", event_name=event_name, view_type=view_type)
    assert_conforms("dynamodb", event)
    stream = event["Records"][0]["dynamodb"]
    assert {"NewImage", "OldImage"} & set(stream) == expected
    assert stream["StreamViewType"] == view_type and event["Records"][0]["eventName"] == event_name


def test_the_contract_check_catches_missing_keys_wrong_types_and_empty_lists():
    good = generate("sqs")
    broken = copy.deepcopy(good)
    del broken["Records"][0]["attributes"]["SenderId"]
    broken["Records"][0]["md5OfBody"] = 5
    assert contract_problems("sqs", broken, sample("sqs")) == [
        "Records[].attributes.SenderId: missing", "Records[].md5OfBody: expected string, got number"]
    assert contract_problems("sqs", {"Records": []}, sample("sqs")) == ["Records: empty, the sample has elements"]
    assert contract_problems("dynamodb", {"Records": [{}]}, sample("dynamodb"))[0] == "Records[].eventID: missing"
    # A type that is not JSON at all never matches.
    odd = generate("eventbridge")
    odd["time"] = datetime.now(timezone.utc)
    assert contract_problems("eventbridge", odd, sample("eventbridge")) == ["time: expected string, got datetime"]


def test_the_contract_exceptions_are_only_where_aws_varies():
    # Optional keys are optional, nothing else is: a replayed event carries replay-name.
    plain = generate("eventbridge")
    assert "replay-name" not in plain
    assert generate("eventbridge", replay_name="archive-1")["replay-name"] == "archive-1"
    missing_detail = dict(plain)
    del missing_detail["detail"]
    assert contract_problems("eventbridge", missing_detail, sample("eventbridge")) == ["detail: missing"]
    # Nullable: v1 sends null for an absent query string and body, not for headers.
    v1 = generate("apigateway-v1")
    assert v1["queryStringParameters"] is None and v1["body"] is None
    v1["headers"] = None
    assert contract_problems("apigateway-v1", v1, sample("apigateway-v1")) == ["headers: expected object, got null"]


# --- values: fresh, well-formed, ARNs from account and region -----------------------------------


def test_ids_are_fresh_for_every_event():
    assert generate("sqs")["Records"][0]["messageId"] != generate("sqs")["Records"][0]["messageId"]
    assert generate("eventbridge")["id"] != generate("eventbridge")["id"]
    first, second = (generate("dynamodb")["Records"][0]["dynamodb"]["SequenceNumber"] for _ in range(2))
    assert int(second) > int(first)


def test_times_are_now_in_each_services_format():
    before = datetime.now(timezone.utc).timestamp()
    s3 = generate("s3-put")["Records"][0]
    assert ISO_MS.match(s3["eventTime"])
    sqs = generate("sqs")["Records"][0]["attributes"]
    assert sqs["SentTimestamp"].isdigit() and abs(int(sqs["SentTimestamp"]) / 1000 - before) < 60
    assert int(sqs["ApproximateFirstReceiveTimestamp"]) >= int(sqs["SentTimestamp"])
    ddb = generate("dynamodb")["Records"][0]["dynamodb"]["ApproximateCreationDateTime"]
    assert isinstance(ddb, float) and abs(ddb - before) < 60
    eb = generate("eventbridge")["time"]
    assert ISO_S.match(eb)
    assert abs(datetime.strptime(eb, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp() - before) < 60
    v1 = generate("apigateway-v1")["requestContext"]
    assert CLF.match(v1["requestTime"]) and abs(v1["requestTimeEpoch"] / 1000 - before) < 60
    v2 = generate("apigateway-v2")["requestContext"]
    assert CLF.match(v2["time"]) and isinstance(v2["timeEpoch"], int)


def test_a_given_time_is_used():
    when = datetime(2024, 3, 4, 19, 15, 17, 123000, tzinfo=timezone.utc)
    assert s3_put_event("b-1", "k", time=when)["Records"][0]["eventTime"] == "2024-03-04T19:15:17.123Z"
    assert schedule_event("r", time=when)["time"] == "2024-03-04T19:15:17Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule_event("r", time=datetime(2024, 1, 1))


def test_arns_use_the_default_account_and_region_unless_given():
    assert generate("sqs")["Records"][0]["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:my-queue"
    assert (generate("sqs", queue="q", region="eu-west-1", account="111122223333")["Records"][0]["eventSourceARN"]
            == "arn:aws:sqs:eu-west-1:111122223333:q")
    arn = generate("dynamodb", table="Music")["Records"][0]["eventSourceARN"]
    assert re.match(r"^arn:aws:dynamodb:us-east-1:123456789012:table/Music/stream/\d{4}-\d\d-\d\dT[\d:.]+$", arn)
    assert generate("s3-put", bucket="photos")["Records"][0]["s3"]["bucket"]["arn"] == "arn:aws:s3:::photos"
    assert generate("s3-put")["Records"][0]["awsRegion"] == "us-east-1"
    assert generate("eventbridge")["account"] == "123456789012"
    v1 = generate("apigateway-v1", region="eu-central-1")["requestContext"]
    assert v1["domainName"] == f"{v1['apiId']}.execute-api.eu-central-1.amazonaws.com"


def test_a_scheduled_event_has_aws_shape():
    event = generate("schedule", rule="nightly", account="111122223333", region="eu-west-2")
    assert event["source"] == "aws.events" and event["detail-type"] == "Scheduled Event"
    assert event["detail"] == {} and event["version"] == "0"
    assert event["resources"] == ["arn:aws:events:eu-west-2:111122223333:rule/nightly"]
    assert event["account"] == "111122223333" and event["region"] == "eu-west-2"


# --- S3 -----------------------------------------------------------------------------------------

KEYS = ["a b+c.jpg", "100% real.txt", "photos/2024/My Photo (1).jpg", "a+b/c d/e%2Bf", "ünïcödé/straße.txt",
        "emoji 🎉/🐍 snake.png", "=&?#:;,@$!'*~", "deep/nested/prefix/with spaces/and+plus/", "%20+%2B"]


@pytest.mark.parametrize("key", KEYS)
def test_s3_keys_round_trip_through_unquote_plus(key):
    event = s3_put_event("my-bucket", key)
    encoded = event["Records"][0]["s3"]["object"]["key"]
    assert unquote_plus(encoded) == key
    assert " " not in encoded and encoded.isascii()


def test_s3_keys_are_form_encoded_with_slashes_kept():
    assert encode_key("a b+c.jpg") == "a+b%2Bc.jpg"
    assert encode_key("red flower.jpg") == "red+flower.jpg"  # the example in S3's documentation
    assert encode_key("dt=2018-05-04/_SUCCESS") == "dt%3D2018-05-04/_SUCCESS"
    assert encode_key("100%") == "100%25"
    assert encode_key("é") == "%C3%A9"


def test_s3_event_carries_the_object_as_given():
    record = s3_put_event("photos", "k", size=12345, etag="abc123", configuration_id="thumbs")["Records"][0]
    assert record["eventName"] == "ObjectCreated:Put" and record["eventSource"] == "aws:s3"
    assert record["s3"]["object"]["size"] == 12345 and record["s3"]["object"]["eTag"] == "abc123"
    assert record["s3"]["configurationId"] == "thumbs"
    assert re.match(r"^[0-9A-F]{18}$", record["s3"]["object"]["sequencer"])


@pytest.mark.parametrize("options, message", [
    (dict(bucket="Bad_Bucket"), "bucket 'Bad_Bucket'"),
    (dict(key=""), "key ''"),
    (dict(key="k" * 1025), "1024 UTF-8 bytes"),
    (dict(size=-1), "size -1"),
    (dict(size="10"), "size '10'"),
    (dict(region="mars"), "region 'mars'"),
    (dict(account="12"), "account '12'"),
])
def test_bad_s3_options_are_named(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        generate("s3-put", **options)


# --- SQS ----------------------------------------------------------------------------------------


def test_sqs_count_makes_distinct_records_with_the_body():
    records = generate("sqs", body="hello", count=4)["Records"]
    assert len(records) == 4 and len({r["messageId"] for r in records}) == 4
    for record in records:
        assert record["body"] == "hello"
        assert record["md5OfBody"] == hashlib.md5(b"hello").hexdigest()
        assert record["eventSource"] == "aws:sqs" and "md5OfMessageAttributes" not in record


def test_sqs_message_attribute_md5_matches_what_sqs_computes(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    attributes = {"kind": "order", "count": 3, "blob": b"\x00\x01binary", "text": "cödé 🐍"}
    record = sqs_event(["x"], attributes=attributes)["Records"][0]
    as_sent = {name: ({"DataType": "Binary", "BinaryValue": v} if isinstance(v, bytes) else
                      {"DataType": "Number" if isinstance(v, int) else "String", "StringValue": str(v)})
               for name, v in attributes.items()}
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        sent = sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=as_sent)
    assert record["md5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert record["md5OfBody"] == sent["MD5OfMessageBody"]
    assert record["messageAttributes"]["count"] == {"stringValue": "3", "stringListValues": [],
                                                    "binaryListValues": [], "dataType": "Number"}
    assert base64.b64decode(record["messageAttributes"]["blob"]["binaryValue"]) == b"\x00\x01binary"


def test_fifo_queue_records_carry_the_fifo_attributes():
    records = generate("sqs", queue="orders.fifo", count=2, group_id="customer-7")["Records"]
    for record in records:
        assert record["attributes"]["MessageGroupId"] == "customer-7"
        assert "MessageDeduplicationId" in record["attributes"]
    assert int(records[1]["attributes"]["SequenceNumber"]) > int(records[0]["attributes"]["SequenceNumber"])


@pytest.mark.parametrize("options, message", [
    (dict(count=0), "count 0"),
    (dict(count=11, queue="q.fifo"), "1-10 messages"),
    (dict(body=""), "body must not be empty"),
    (dict(queue="bad name"), "queue 'bad name'"),
    (dict(group_id="g"), "group_id applies only to FIFO"),
    (dict(attributes={"a": None}), "message attribute 'a'"),
    (dict(attributes={"ünï": "x"}), "message attribute name 'ünï'"),
    (dict(attributes={"AWS.trace": "x"}), "not starting with 'AWS.'"),
])
def test_bad_sqs_options_are_named(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        generate("sqs", **options)


# --- DynamoDB -----------------------------------------------------------------------------------


def test_size_bytes_follows_dynamodb_item_size_rules_as_in_the_sample():
    records = sample("dynamodb")["Records"]
    for original in records:
        s = original["dynamodb"]
        record = dynamodb_record("Table", original["eventName"], keys=s["Keys"], new_image=s.get("NewImage"),
                                 old_image=s.get("OldImage"))
        assert record["dynamodb"]["SizeBytes"] == s["SizeBytes"]  # 26 and 59
    assert item_size({"n": {"N": "-0.000123"}, "m": {"M": {"a": {"BOOL": True}}}, "l": {"L": [{"NULL": True}]}}) \
        == (1 + 3) + (1 + 3 + 1 + 1 + 1) + (1 + 3 + 1 + 1)


def test_dynamodb_event_carries_the_items_as_given():
    keys = {"pk": {"S": "user#1"}, "sk": {"N": "2"}}
    new = {**keys, "name": {"S": "Ada"}, "tags": {"SS": ["x"]}, "meta": {"M": {"ok": {"BOOL": True}}}}
    record = dynamodb_event("Users", "INSERT", keys=keys, new_image=new)["Records"][0]
    assert record["dynamodb"]["Keys"] == keys and record["dynamodb"]["NewImage"] == new
    assert record["eventSource"] == "aws:dynamodb" and record["awsRegion"] == "us-east-1"


@pytest.mark.parametrize("options, message", [
    (dict(event_name="UPSERT"), "event_name 'UPSERT' is not one of INSERT, MODIFY, REMOVE"),
    (dict(view_type="ALL"), "view_type 'ALL'"),
    (dict(keys={"Id": 101}), "keys.Id must be a DynamoDB JSON value"),
    (dict(keys={"Id": {"N": "abc"}}), "keys.Id.N must be a number"),
    (dict(keys={"Id": {"N": "1"}}, new_image={"Id": {"N": "1"}, "m": {"M": {"x": {"Q": "1"}}}}),
     "new_image.m.x must be a DynamoDB JSON value"),
    (dict(keys={"Id": {"N": "1"}}, new_image={"Other": {"S": "x"}}), "new_image must carry the key attributes"),
    (dict(event_name="INSERT", old_image={"Id": {"N": "101"}}), "an INSERT has no old image"),
    (dict(event_name="REMOVE", new_image={"Id": {"N": "101"}}), "a REMOVE has no new image"),
    (dict(table="x"), "table 'x'"),
])
def test_bad_dynamodb_options_are_named(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        generate("dynamodb", **options)


# --- EventBridge --------------------------------------------------------------------------------


def test_eventbridge_event_carries_source_detail_type_and_detail():
    event = eventbridge_event("com.shop", "OrderPlaced", {"order": {"id": 7}}, resources=["arn:x"])
    assert event["source"] == "com.shop" and event["detail-type"] == "OrderPlaced"
    assert event["detail"] == {"order": {"id": 7}} and event["resources"] == ["arn:x"]


@pytest.mark.parametrize("options, message", [
    (dict(detail=[1, 2]), "detail must be a JSON object"),
    (dict(detail={"when": datetime.now()}), "detail is not JSON-serialisable"),
    (dict(source=""), "source ''"),
    (dict(resources="arn:x"), "resources must be a list"),
])
def test_bad_eventbridge_options_are_named(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        generate("eventbridge", **options)


def test_bad_schedule_rule_is_named():
    with pytest.raises(ValueError, match="rule 'no spaces'"):
        generate("schedule", rule="no spaces")


# --- API Gateway --------------------------------------------------------------------------------


def test_rest_api_event_splits_single_and_multi_values_and_reads_path_parameters():
    event = apigateway_v1_event("post", "/items/42/photos/a/b.jpg", resource="/items/{id}/photos/{proxy+}",
                                body={"name": "x"}, headers={"X-Custom": ["a", "b"]}, query="q=1&q=2&page=3",
                                stage="dev")
    assert event["httpMethod"] == "POST" and event["resource"] == "/items/{id}/photos/{proxy+}"
    assert event["pathParameters"] == {"id": "42", "proxy": "a/b.jpg"}
    assert event["headers"]["X-Custom"] == "b" and event["multiValueHeaders"]["X-Custom"] == ["a", "b"]
    assert event["headers"]["Content-Type"] == "application/json"
    assert event["queryStringParameters"] == {"q": "2", "page": "3"}
    assert event["multiValueQueryStringParameters"] == {"q": ["1", "2"], "page": ["3"]}
    assert json.loads(event["body"]) == {"name": "x"} and event["isBase64Encoded"] is False
    assert event["requestContext"]["path"] == "/dev/items/42/photos/a/b.jpg"
    assert event["requestContext"]["stage"] == "dev"


def test_rest_api_event_sends_null_where_aws_does():
    event = apigateway_v1_event()
    assert event["queryStringParameters"] is None and event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None and event["stageVariables"] is None and event["body"] is None


def test_binary_bodies_are_base64_encoded():
    event = apigateway_v1_event("POST", "/upload", body=b"\x89PNG")
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\x89PNG"
    assert apigateway_v2_event("POST", "/upload", body=b"\x00")["isBase64Encoded"] is True


def test_http_api_event_lowercases_joins_and_splits_cookies():
    event = apigateway_v2_event("GET", "/users/7", route="/users/{id}", query={"tag": ["a", "b"]},
                                headers=[("X-Multi", "1"), ("X-Multi", "2"), ("Cookie", "s=1; t=2")],
                                cookies=["u=3"])
    assert event["routeKey"] == "GET /users/{id}" and event["requestContext"]["routeKey"] == "GET /users/{id}"
    assert event["rawPath"] == "/users/7" and event["rawQueryString"] == "tag=a&tag=b"
    assert event["queryStringParameters"] == {"tag": "a,b"}
    assert event["headers"]["x-multi"] == "1,2" and "cookie" not in event["headers"]
    assert event["cookies"] == ["u=3", "s=1", "t=2"]
    assert event["pathParameters"] == {"id": "7"}
    assert all(name == name.lower() for name in event["headers"])


def test_http_api_event_leaves_out_what_aws_leaves_out():
    event = apigateway_v2_event()
    assert event["routeKey"] == "$default" and event["rawQueryString"] == ""
    for key in ("cookies", "queryStringParameters", "pathParameters", "stageVariables", "body"):
        assert key not in event


@pytest.mark.parametrize("source, options, message", [
    ("apigateway-v1", dict(method="FETCH"), "method 'FETCH'"),
    ("apigateway-v1", dict(path="items"), "path 'items' must start with '/'"),
    ("apigateway-v1", dict(path="/a/b", resource="/x/{id}"), "path '/a/b' does not match '/x/{id}'"),
    ("apigateway-v2", dict(path="/a", route="/a/{id}"), "path '/a' does not match '/a/{id}'"),
    ("apigateway-v2", dict(headers={"X": 1}), "headers['X'] must be a str"),
    ("apigateway-v2", dict(cookies="a=1"), "cookies must be a list"),
])
def test_bad_http_options_are_named(source, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        generate(source, **options)


# --- generate() errors --------------------------------------------------------------------------


def test_an_unknown_source_lists_the_valid_ones():
    with pytest.raises(ValueError) as info:
        generate("kinesis")
    assert str(info.value) == ("unknown event source 'kinesis'; valid sources: s3-put, sqs, dynamodb, "
                               "eventbridge, schedule, apigateway-v1, apigateway-v2")


def test_an_unknown_option_lists_the_valid_ones():
    with pytest.raises(ValueError) as info:
        generate("s3-put", buckt="b")
    message = str(info.value)
    assert message.startswith("unknown option 'buckt' for event source 's3-put'; valid options: bucket, key, size")
    with pytest.raises(ValueError, match="unknown option 'bucket' for event source 'sqs'.*body, count, queue"):
        generate("sqs", bucket="b")


# --- CLI ----------------------------------------------------------------------------------------


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lambdalab")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_prints_the_event_as_indented_json(capsys):
    assert run_cli(["events", "s3-put", "--bucket", "b-1", "--key", "a b+c.jpg", "--size", "7"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('{\n  "Records": [\n')
    record = json.loads(out)["Records"][0]
    assert record["s3"]["object"]["key"] == "a+b%2Bc.jpg" and record["s3"]["object"]["size"] == 7
    assert record["s3"]["bucket"]["name"] == "b-1"
    assert_conforms("s3-put", json.loads(out))


@pytest.mark.parametrize("argv, check", [
    (["sqs", "--body", "hi", "--count", "2", "--queue", "q", "--attribute", "k=v=w"],
     lambda e: len(e["Records"]) == 2 and e["Records"][0]["messageAttributes"]["k"]["stringValue"] == "v=w"),
    (["dynamodb", "--event-name", "REMOVE", "--table", "Users", "--keys", '{"pk": {"S": "1"}}'],
     lambda e: e["Records"][0]["dynamodb"]["OldImage"] == {"pk": {"S": "1"}}),
    (["eventbridge", "--source", "my.app", "--detail-type", "Thing", "--detail", '{"a": 1}', "--resource", "arn:1"],
     lambda e: e["detail"] == {"a": 1} and e["resources"] == ["arn:1"] and e["source"] == "my.app"),
    (["schedule", "--rule", "hourly", "--account", "111122223333"],
     lambda e: e["resources"] == ["arn:aws:events:us-east-1:111122223333:rule/hourly"]),
    (["apigateway-v1", "--method", "PUT", "--path", "/a", "--header", "X-A: 1", "--header", "X-A: 2",
      "--query", "x=1"], lambda e: e["multiValueHeaders"]["X-A"] == ["1", "2"] and e["httpMethod"] == "PUT"),
    (["apigateway-v2", "--path", "/u/9", "--route", "/u/{id}", "--cookie", "s=1", "--body", "{}"],
     lambda e: e["pathParameters"] == {"id": "9"} and e["cookies"] == ["s=1"] and e["body"] == "{}"),
])
def test_cli_options_reach_each_builder(argv, check, capsys):
    assert run_cli(["events", *argv]) == 0
    assert check(json.loads(capsys.readouterr().out))


@pytest.mark.parametrize("argv, message", [
    (["events", "kinesis"], "invalid choice: 'kinesis'"),
    (["events", "sqs", "--bucket", "b"], "unrecognized arguments: --bucket b"),
    (["events", "s3-put", "--size", "big"], "argument --size: invalid int value: 'big'"),
    (["events", "eventbridge", "--detail", "{oops"], "argument --detail: not valid JSON"),
    (["events", "dynamodb", "--event-name", "UPSERT"], "argument --event-name: invalid choice: 'UPSERT'"),
    (["events", "apigateway-v1", "--header", "no-colon"], "expected NAME:VALUE, got 'no-colon'"),
    (["events"], "required: SOURCE"),
])
def test_cli_rejects_bad_arguments_with_exit_code_2(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        run_cli(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["events", "s3-put", "--size", "-3"], "lambdalab events s3-put: error: size -3 must be a non-negative integer"),
    (["events", "s3-put", "--bucket", "UPPER"], "lambdalab events s3-put: error: bucket 'UPPER'"),
    (["events", "sqs", "--attribute", "a=1", "--attribute", "a=2"], "attribute given twice: a"),
    (["events", "apigateway-v1", "--path", "/x", "--resource", "/y"], "path '/x' does not match '/y'"),
])
def test_cli_reports_bad_values_with_exit_code_2(argv, message, capsys):
    assert run_cli(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_every_builder_option_is_reachable_from_the_cli():
    parser = argparse.ArgumentParser(prog="lambdalab")
    events_parser = register(parser.add_subparsers(dest="command"))
    source_parsers = next(a for a in events_parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(source_parsers) == set(SOURCES)
    # Options that only Python callers need (values the local cloud supplies).
    python_only = {"time", "source_ip"}
    for source, sub in source_parsers.items():
        dests = {a.dest for a in sub._actions if a.dest != "help"}
        assert dests == set(events.options(source)) - python_only, source


def test_the_lambdalab_command_prints_events_and_exits_2_on_bad_input():
    command = [sys.executable, "-m", "lambdalab.cli.main", "events"]
    done = subprocess.run([*command, "s3-put", "--bucket", "my-bucket", "--key", "a b+c.jpg"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    key = json.loads(done.stdout)["Records"][0]["s3"]["object"]["key"]
    assert key == "a+b%2Bc.jpg" and unquote_plus(key) == "a b+c.jpg"
    bad = subprocess.run([*command, "s3-put", "--bucket", "b"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "bucket 'b' is not a valid S3 bucket name" in bad.stderr
