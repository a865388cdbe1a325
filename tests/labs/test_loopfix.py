"""Checks for lab `loopfix` (notebook 06): a bucket trigger that cannot loop.

The track's `trigger.notification_config` is applied to a bucket in the local cloud (moto's S3
on 127.0.0.1 plus the local Lambda runtime, with Lambda's loop detection), the lab's
thumbnail function writes into that same bucket under `thumbnails/`, and objects are
uploaded: each picture under `uploads/` must cause exactly one invocation, nothing else any,
and loop detection must never have to step in.
Run them with `check("loopfix")` in a notebook or `lambdalab check loopfix` in a shell.
"""

from __future__ import annotations

import io
import itertools
from collections import Counter
from collections.abc import Iterator
from types import ModuleType
from urllib.parse import unquote_plus

import pytest
from PIL import Image

from lambdalab.cloud.local_cloud import LocalCloud
from lambdalab.course.lessons.recursive_loops import load_trigger, notification_problems

FUNCTION = "thumbnailer"
_buckets = itertools.count(1)


def picture(fmt: str, colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), colour).save(out, fmt)
    return out.getvalue()


@pytest.fixture(scope="module")
def trigger(lab_dir) -> ModuleType:
    """The track's trigger.py, loaded from its file."""
    return load_trigger(lab_dir("loopfix"))


@pytest.fixture(scope="module")
def cloud(lab_dir) -> Iterator[LocalCloud]:
    """The local cloud with the lab's thumbnail function deployed (it may read and write S3)."""
    with LocalCloud(async_retry_delays=(0.1, 0.1)) as c:
        role = c.create_role(FUNCTION, [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])
        # 1024 MB: a CPU share that keeps Pillow's cold start short.
        c.deploy(FUNCTION, lab_dir("loopfix"), "handler.lambda_handler", role=role, memory=1024, timeout=10)
        yield c


def arn(cloud: LocalCloud) -> str:
    return cloud.client("lambda").get_function(FunctionName=FUNCTION)["Configuration"]["FunctionArn"]


def upload_with(cloud: LocalCloud, trigger: ModuleType, objects: dict[str, bytes]) -> tuple[list, int]:
    """A new bucket with the track's trigger; upload `objects`, wait for the cloud to settle.

    Returns the invocations the uploads caused and how many loop detection dropped."""
    function_arn = arn(cloud)
    bucket = f"photos-{next(_buckets)}"
    config = trigger.notification_config(bucket, function_arn)
    problems = notification_problems(config, function_arn)
    if problems:
        pytest.fail("S3 would reject this configuration: " + "; ".join(problems), pytrace=False)
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    before = {r.request_id for r in cloud.records(FUNCTION)}
    dropped = cloud.metrics(FUNCTION)["RecursiveInvocationsDropped"]
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert cloud.settle(60), "the cloud was still busy 60 s after the uploads"
    caused = [r for r in cloud.records(FUNCTION) if r.request_id not in before]
    return caused, cloud.metrics(FUNCTION)["RecursiveInvocationsDropped"] - dropped


def keys_of(invocations: list) -> Counter:
    return Counter(unquote_plus(rec["s3"]["object"]["key"]) for inv in invocations
                   for rec in (inv.event or {}).get("Records", []))


def test_configuration_is_one_s3_accepts(cloud, trigger):
    """The configuration is one S3 accepts, and it invokes the thumbnail function.

    Hint: {"LambdaFunctionConfigurations": [...]}, one entry per suffix, each with its own "Id",
    "LambdaFunctionArn": function_arn, "Events": ["s3:ObjectCreated:*"] and a "Filter" with
    exactly one "prefix" rule and one "suffix" rule.
    """
    function_arn = arn(cloud)
    problems = notification_problems(trigger.notification_config("photos", function_arn), function_arn)
    assert problems == [], "S3 would reject this configuration: " + "; ".join(problems)


def test_each_upload_is_thumbnailed_exactly_once(cloud, trigger):
    """Each picture uploaded to uploads/ causes exactly one invocation, and no loop.

    Hint: the thumbnails the function writes to thumbnails/ must not match your filters:
    a "prefix" rule with UPLOAD_PREFIX does that. If loop detection dropped invocations,
    every thumbnail triggered the function again.
    """
    uploads = {"uploads/beach.jpg": picture("JPEG", (30, 120, 200)),
               "uploads/forest.jpeg": picture("JPEG", (20, 140, 40)),
               "uploads/diagram.png": picture("PNG", (240, 240, 240))}
    caused, dropped = upload_with(cloud, trigger, uploads)
    assert dropped == 0, (f"loop detection dropped {dropped} invocation(s) after {len(caused)} ran for "
                          f"{len(uploads)} uploads: each thumbnail triggered the function again")
    seen = keys_of(caused)
    assert len(caused) == len(uploads), (f"{len(caused)} invocations for {len(uploads)} uploads "
                                         f"(objects that triggered it: {dict(seen)})")
    assert seen == Counter(list(uploads)), f"expected one invocation per upload, got {dict(seen)}"
    failed = [f"{inv.error_type}: {inv.error.get('errorMessage', '')}" for inv in caused if not inv.ok]
    assert not failed, f"the thumbnail function failed: {failed[0]}"


def test_nothing_else_triggers_it(cloud, trigger):
    """Objects that are not pictures under uploads/ cause no invocation at all.

    Hint: one configuration per image suffix (IMAGE_SUFFIXES), each with the prefix rule
    UPLOAD_PREFIX: a text file in uploads/, a picture in another folder and a thumbnail written
    straight into thumbnails/ must all be ignored. Filters are case-sensitive.
    """
    others = {"uploads/notes.txt": b"not a picture",
              "avatars/me.jpg": picture("JPEG", (200, 50, 50)),
              "thumbnails/old.jpg": picture("JPEG", (90, 90, 90)),
              "uploads.jpg": picture("JPEG", (10, 10, 10))}
    caused, dropped = upload_with(cloud, trigger, others)
    assert not caused and not dropped, (f"{len(caused)} invocation(s) for objects that should not trigger "
                                        f"the function: {dict(keys_of(caused))}")
