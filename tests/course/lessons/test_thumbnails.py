"""Hostile inputs to the thumbnail service (solutions/thumbnail), each with its exact outcome.

Uploads go through the real path: boto3 PutObject into moto's S3, S3's notification (prefix
filter `uploads/`), the local Lambda runtime running the handler in a worker process at
128 MB, the thumbnail written back into moto. Events S3 itself would never send (malformed
ones, test events, late deliveries) are invoked directly. For every refused upload the tests
check the promise of the service: the invocation did not fail (so Lambda does not retry it),
the result, the ERROR log line and the failure-queue record all name the key and the reason,
and no thumbnail exists. The pure image function is also tested in-process at the end.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import re
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import numpy as np
import pytest
from PIL import Image, ImageCms

from lambdalab.cloud.local_cloud import LocalCloud
from lambdalab.course.lessons import thumbnails
from lambdalab.course.paths import package
from lambdalab.events.s3 import s3_put_event
from lambdalab.runtime.records import Invocation

ROOT = Path(__file__).resolve().parents[3]
SOLUTION = ROOT / "solutions" / "thumbnail"
SOURCE, THUMBS, PREFIX = "photos-source", "photos-thumbnails", "uploads/"
FUNCTION = "thumbnails"
NO_RESULT = {"thumbnails": [], "failures": [], "skipped": []}


@dataclass
class Outcome:
    """Everything observable about one upload or one direct invocation."""

    key: str | None
    invocations: list[Invocation]
    thumbnail: bytes | None
    content_type: str | None
    queue_records: list[dict] = field(default_factory=list)

    @property
    def only(self) -> Invocation:
        assert len(self.invocations) == 1, f"expected one invocation (no retry), got {len(self.invocations)}"
        return self.invocations[0]

    @property
    def image(self) -> Image.Image:
        assert self.thumbnail is not None, f"no thumbnail for {self.key!r}"
        return Image.open(io.BytesIO(self.thumbnail))


def _event_key(inv: Invocation) -> str | None:
    try:
        return unquote_plus(inv.event["Records"][0]["s3"]["object"]["key"])
    except (KeyError, IndexError, TypeError):
        return None


class Service:
    """The deployed thumbnail service: source and thumbnail buckets, failure queue, function, trigger."""

    def __init__(self, cloud: LocalCloud):
        self.cloud = cloud
        self.s3 = cloud.client("s3")
        self.sqs = cloud.client("sqs")
        self.s3.create_bucket(Bucket=SOURCE)
        self.s3.create_bucket(Bucket=THUMBS)
        self.queue_url = self.sqs.create_queue(QueueName="thumbnail-failures")["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._queued: list[dict] = []
        fn = self.deploy(FUNCTION, {"THUMBNAIL_BUCKET": THUMBS, "FAILURE_QUEUE_URL": self.queue_url,
                                    "SOURCE_PREFIX": PREFIX})
        self.s3.put_bucket_notification_configuration(Bucket=SOURCE, NotificationConfiguration={
            "LambdaFunctionConfigurations": [{
                "Id": "thumbnails", "LambdaFunctionArn": fn["FunctionArn"], "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": PREFIX}]}}}]})

    def deploy(self, name: str, env: dict[str, str]) -> dict:
        fn = self.cloud.deploy(name, package(SOLUTION), "handler.lambda_handler", memory=128, timeout=15, env=env)
        self.cloud.client("lambda").put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnFailure": {"Destination": self.queue_arn}})
        return fn

    def fresh_environment(self) -> None:
        """Retire the function's warm environments: Max Memory Used is a high-water mark of the
        environment's process, so a memory assertion needs an environment of its own."""
        self.cloud.runtime.deploy(self.cloud.runtime.get(FUNCTION))

    def upload(self, key: str, body: bytes) -> Outcome:
        """PutObject, then wait for every invocation the notification causes."""
        before = {inv.request_id for inv in self.cloud.records(FUNCTION)}
        self.s3.put_object(Bucket=SOURCE, Key=key, Body=body)
        assert self.cloud.settle(60), "the cloud did not settle"
        invocations = [inv for inv in self.cloud.records(FUNCTION)
                       if inv.request_id not in before and _event_key(inv) == key]
        return self._outcome(key, invocations)

    def invoke(self, event: Any, key: str | None = None) -> Outcome:
        """A synchronous invocation with a hand-made event (what S3 would never send)."""
        inv = self.cloud.invoke(FUNCTION, event)
        return self._outcome(key, [inv])

    def thumbnail(self, key: str) -> tuple[bytes | None, str | None]:
        try:
            obj = self.s3.get_object(Bucket=THUMBS, Key=f"thumb-{key}")
        except self.s3.exceptions.NoSuchKey:
            return None, None
        return obj["Body"].read(), obj["ContentType"]

    def _outcome(self, key: str | None, invocations: list[Invocation]) -> Outcome:
        thumbnail, content_type = self.thumbnail(key) if key else (None, None)
        ids = {inv.request_id for inv in invocations}
        return Outcome(key, invocations, thumbnail, content_type,
                       [r for r in self.queue_records() if r["requestContext"]["requestId"] in ids])

    def queue_records(self) -> list[dict]:
        """Everything the failure queue has received so far (drained into memory)."""
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return self._queued
            for m in messages:
                self._queued.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    with LocalCloud(cpu_limit=False, async_retry_delays=(0.1, 0.1)) as cloud:
        yield Service(cloud)


def assert_rejected(outcome: Outcome, error: str, reason: str, bucket: str | None = SOURCE) -> dict:
    """The service's promise for a permanent failure: reported once, everywhere, with key and reason."""
    inv = outcome.only  # exactly one invocation: a permanent failure is not retried
    assert inv.ok, f"the handler raised {inv.error_type}: {inv.error}"
    assert inv.result["thumbnails"] == [] and inv.result["skipped"] == []
    [failure] = inv.result["failures"]
    assert failure["bucket"] == bucket and failure["key"] == outcome.key and failure["error"] == error, failure
    assert re.search(reason, failure["reason"]), f"reason {failure['reason']!r} does not match {reason!r}"
    logged = [json.loads(line.split("\t")[-1]) for line in inv.log_lines if line.startswith("[ERROR]")]
    assert logged == [{"outcome": "rejected", **failure}]
    [record] = outcome.queue_records
    assert record["requestContext"]["condition"] == "PermanentFailure"
    assert record["responsePayload"] == {"errorType": error, "errorMessage": failure["reason"],
                                         "bucket": bucket, "key": outcome.key}
    assert outcome.thumbnail is None, f"a thumbnail exists for refused {outcome.key!r}"
    return failure


def assert_thumbnail(outcome: Outcome, size: tuple[int, int], content_type: str, mode: str) -> Image.Image:
    inv = outcome.only
    assert inv.ok, f"the handler raised {inv.error_type}: {inv.error}"
    [made] = inv.result["thumbnails"]
    assert made["key"] == outcome.key and made["thumbnail_key"] == f"thumb-{outcome.key}"
    assert made["content_type"] == content_type == outcome.content_type
    assert outcome.queue_records == [] and inv.result["failures"] == []
    logged = [json.loads(line.split("\t")[-1]) for line in inv.log_lines if line.startswith("[INFO]")]
    assert logged == [{"outcome": "thumbnail", **made}]
    im = outcome.image
    assert (im.size, im.mode, Image.MIME[im.format]) == (size, mode, content_type)
    assert max(im.size) == 200 or im.size == size
    return im


def near(pixel: tuple, expected: tuple, tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected))


# --- files that are not images, or broken ones ---------------------------------------------------


def test_zero_byte_file(service):
    outcome = service.upload("uploads/empty.jpg", b"")
    assert_rejected(outcome, "EmptyFile", r"^the file is empty \(0 bytes\)$")


def test_text_file_named_jpg(service):
    outcome = service.upload("uploads/holiday.jpg", thumbnails.TEXT)
    assert_rejected(outcome, "NotAnImage", r"^not a supported image: the data starts with b'Dear diary, '")


def test_svg_is_refused_as_vector_graphics(service):
    outcome = service.upload("uploads/logo.svg", thumbnails.SVG)
    assert_rejected(outcome, "NotAnImage", r"^an SVG drawing is vector graphics, not a raster image")


def test_pdf_named_png(service):
    outcome = service.upload("uploads/scan.png", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\nendobj\n")
    assert_rejected(outcome, "NotAnImage", r"^a PDF document, not an image")


def test_truncated_jpeg(service):
    outcome = service.upload("uploads/cut-off.jpg", thumbnails.truncated(thumbnails.photo_jpeg(1600, 1200)))
    assert_rejected(outcome, "CorruptImage", r"^corrupt or truncated JPEG image: image file is truncated")


def test_truncated_png(service):
    outcome = service.upload("uploads/cut-off.png", thumbnails.truncated(thumbnails.rgba_png()))
    assert_rejected(outcome, "CorruptImage", r"^corrupt or truncated PNG image: image file is truncated")


def test_corrupt_png(service):
    outcome = service.upload("uploads/corrupt.png", thumbnails.corrupt_png())
    assert_rejected(outcome, "CorruptImage", r"^corrupt or truncated PNG image: broken data stream")


def test_png_signature_alone(service):
    outcome = service.upload("uploads/signature-only.png", b"\x89PNG\r\n\x1a\n")
    assert_rejected(outcome, "CorruptImage", r"^starts like a PNG file but its header is damaged or missing$")


# --- bombs and giants: refused before decoding ---------------------------------------------------


def test_decompression_bomb(service):
    service.fresh_environment()
    bomb = thumbnails.png_bomb(20_000, 20_000)
    assert len(bomb) < 100_000  # 400 MP in a few tens of kB
    outcome = service.upload("uploads/bomb.png", bomb)
    assert_rejected(outcome, "TooManyPixels", r"^declares 20000x20000 pixels \(400\.0 MP\); the budget is 100 MP "
                                              r"\(refused before decoding\)$")
    assert outcome.only.max_memory_used_mb < 100  # 400 MP of RGB would be 1.2 GB


def test_30000_by_30000_declared_png(service):
    outcome = service.upload("uploads/giant.png", thumbnails.header_only_png(30_000, 30_000))
    assert_rejected(outcome, "TooManyPixels", r"^declares 30000x30000 pixels \(900\.0 MP\)")


def test_30000_by_30000_declared_jpeg(service):
    outcome = service.upload("uploads/giant.jpg", thumbnails.header_only_jpeg(30_000, 30_000))
    assert_rejected(outcome, "TooManyPixels", r"^declares 30000x30000 pixels \(900\.0 MP\)")


def test_bomb_under_the_declared_limit_is_over_the_decode_budget(service):
    service.fresh_environment()
    outcome = service.upload("uploads/grey-bomb.png", thumbnails.greyscale_bomb(6000))
    assert_rejected(outcome, "TooManyPixels", r"^decoding 6000x6000 L pixels needs about 172 MB; 56 MB of this "
                                              r"function's 128 MB are free for it \(refused before decoding\)$")
    assert outcome.only.max_memory_used_mb < 100


def _gradient(side: int, bands: int) -> Image.Image:
    ramp = (np.add.outer(np.arange(side), np.arange(side)) % 256).astype(np.uint8)
    return Image.fromarray(np.stack([ramp, ramp[::-1], ramp.T, ramp][:bands], axis=2), "RGBA" if bands == 4 else "RGB")


@pytest.mark.parametrize("name, make", [
    ("rgba-2500.png", lambda: thumbnails.png(_gradient(2500, 4), compress_level=1)),           # 6.3 MP with alpha
    ("rgb-3400.png", lambda: thumbnails.png(_gradient(3400, 3), compress_level=1)),            # 11.6 MP
    ("rgba-1300.webp", lambda: _webp(_gradient(1300, 4))),                                  # libwebp's own buffer
], ids=["rgba-png", "rgb-png", "webp"])
def test_the_largest_images_within_the_budget_fit_in_128_mb(service, name, make):
    service.fresh_environment()
    outcome = service.upload(f"uploads/budget/{name}", make())
    assert outcome.only.ok and outcome.only.result["thumbnails"], outcome.only.result or outcome.only.error
    assert outcome.only.max_memory_used_mb < 128
    assert outcome.image.size == (200, 200)


def test_just_over_the_budget_is_refused_before_decoding(service):
    outcome = service.upload("uploads/budget/rgba-2600.png", thumbnails.png(_gradient(2600, 4), compress_level=1))
    assert_rejected(outcome, "TooManyPixels", r"^decoding 2600x2600 RGBA pixels needs about 58 MB; 56 MB of this "
                                              r"function's 128 MB are free for it \(refused before decoding\)$")


def _webp(im: Image.Image) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, "WEBP", lossless=True)
    return buffer.getvalue()


def test_text_chunk_bomb(service):
    outcome = service.upload("uploads/comment-bomb.png", thumbnails.text_chunk_bomb(64))
    assert_rejected(outcome, "DecompressionBomb", r"^a metadata chunk decompresses to more than Pillow's limit")


def test_60_mb_object_is_refused_from_the_event_without_downloading(service):
    service.fresh_environment()
    outcome = service.upload("uploads/huge.jpg", b"\xff\xd8\xff" + bytes(60 * 1024 * 1024))
    assert_rejected(outcome, "ObjectTooLarge", r"^the object is 62,914,563 bytes \(from the event\); the limit is "
                                               r"20,971,520 bytes: not downloaded$")
    assert outcome.only.max_memory_used_mb < 100


def test_60_mb_object_with_a_lying_event_is_refused_from_getobjects_headers(service):
    key = "uploads/huge.jpg"  # uploaded by the previous test too; put it again to be independent
    service.s3.put_object(Bucket=SOURCE, Key=key, Body=b"\xff\xd8\xff" + bytes(60 * 1024 * 1024))
    assert service.cloud.settle(60)
    service.fresh_environment()
    outcome = service.invoke(s3_put_event(SOURCE, key, size=100), key)
    assert_rejected(outcome, "ObjectTooLarge", r"^the object is 62,914,563 bytes; the limit is 20,971,520 bytes: "
                                               r"not downloaded$")
    assert outcome.only.max_memory_used_mb < 100  # the body was never read


# --- awkward but valid images --------------------------------------------------------------------


def test_cmyk_jpeg_becomes_an_rgb_jpeg(service):
    print_file = thumbnails.cmyk_jpeg((640, 480))
    assert Image.open(io.BytesIO(print_file)).mode == "CMYK"
    im = assert_thumbnail(service.upload("uploads/print.jpg", print_file),
                          (200, 150), "image/jpeg", "RGB")
    assert near(im.getpixel((20, 20)), (0, 255, 255))  # cyan ink, top left
    assert near(im.getpixel((180, 130)), (0, 0, 0))  # black ink, bottom right


def test_16_bit_rgb_png_is_scaled_not_clipped(service):
    scan = thumbnails.png_16bit_rgb((600, 400))
    assert scan[24:26] == b"\x10\x02"  # IHDR: 16 bits per sample, colour type 2 (RGB)
    im = assert_thumbnail(service.upload("uploads/scan-48bit.png", scan),
                          (200, 133), "image/png", "RGB")
    assert near(im.getpixel((100, 66)), (128, 128, 128), 8)  # mid-grey stays mid-grey
    assert near(im.getpixel((2, 2)), (0, 128, 0), 8) and near(im.getpixel((197, 130)), (255, 128, 255), 8)


def test_16_bit_greyscale_png(service):
    xray = thumbnails.png_16bit_grey((600, 400))
    assert Image.open(io.BytesIO(xray)).mode == "I;16"
    im = assert_thumbnail(service.upload("uploads/xray.png", xray),
                          (200, 133), "image/png", "L")
    assert [im.getpixel((x, 60)) for x in (1, 100, 198)] == pytest.approx([1, 128, 254], abs=4)


def test_palette_png_keeps_its_transparency(service):
    im = assert_thumbnail(service.upload("uploads/sticker.png", thumbnails.palette_png_with_transparency((400, 300))),
                          (200, 150), "image/png", "RGBA")
    assert im.getpixel((3, 3))[3] == 0  # the transparent background stays transparent
    assert near(im.getpixel((100, 75)), (220, 30, 30, 255))


def test_rgba_png_keeps_its_alpha(service):
    im = assert_thumbnail(service.upload("uploads/icon.png", thumbnails.rgba_png((500, 500))),
                          (200, 200), "image/png", "RGBA")
    assert im.getpixel((2, 2))[3] == 0 and im.getpixel((100, 100))[3] == 255 and 110 < im.getpixel((30, 100))[3] < 145


def test_animated_gif_uses_its_first_frame(service):
    party = thumbnails.animated_gif((320, 240), frames=4)
    assert Image.open(io.BytesIO(party)).n_frames == 4
    im = assert_thumbnail(service.upload("uploads/party.gif", party),
                          (200, 150), "image/png", "RGB")
    assert near(im.getpixel((100, 75)), thumbnails.ANIMATION_COLOURS[0], 4)


def test_exif_rotated_phone_photo_is_upright(service):
    sideways = thumbnails.exif_rotated_jpeg(6, (300, 400))
    stored = Image.open(io.BytesIO(sideways))
    assert stored.size == (400, 300) and stored.getexif()[0x0112] == 6  # stored landscape, shown portrait
    im = assert_thumbnail(service.upload("uploads/sideways.jpg", sideways),
                          (150, 200), "image/jpeg", "RGB")
    assert near(im.getpixel((20, 20)), thumbnails.QUADRANTS["top_left"], 20)
    assert near(im.getpixel((130, 180)), thumbnails.QUADRANTS["bottom_right"], 20)
    assert "exif" not in im.info  # the orientation is applied, and no GPS tags leak into thumbnails


def test_greyscale_jpeg_stays_greyscale(service):
    assert_thumbnail(service.upload("uploads/grey.jpg", thumbnails.greyscale_jpeg((800, 600))),
                     (200, 150), "image/jpeg", "L")


def test_real_photo(service):
    assert_thumbnail(service.upload("uploads/grace hopper.jpg", thumbnails.matplotlib_sample("grace_hopper.jpg")),
                     (171, 200), "image/jpeg", "RGB")


def test_12_megapixel_photo_fits_in_128_mb(service):
    service.fresh_environment()
    outcome = service.upload("uploads/DSC_0042.JPG", thumbnails.photo_jpeg(4000, 3000))
    assert_thumbnail(outcome, (200, 150), "image/jpeg", "RGB")
    assert outcome.only.max_memory_used_mb < 128


def test_an_overwritten_upload_gets_a_new_thumbnail(service):
    key = "uploads/avatar.png"
    assert_thumbnail(service.upload(key, thumbnails.rgba_png((400, 400))), (200, 200), "image/png", "RGBA")
    assert_thumbnail(service.upload(key, thumbnails.greyscale_jpeg((400, 100))), (200, 50), "image/jpeg", "L")


# --- keys ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [
    "uploads/my holiday photo.jpg",          # spaces arrive as '+'
    "uploads/1+1=2.jpg",                     # a literal '+' arrives as '%2B'
    "uploads/50%2Foff.jpg",                  # a literal '%2F' is not a slash
    "uploads/café/crème brûlée.jpg",         # non-ASCII letters
    "uploads/日本/東京タワー.jpg",             # CJK
    "uploads/🎉 party 🥳.jpg",               # emoji (4-byte UTF-8)
    "uploads/" + "/".join(f"level{n}" for n in range(40)) + "/deep.jpg",  # deep prefix
], ids=["spaces", "plus", "percent-2F", "accents", "cjk", "emoji", "deep-prefix"])
def test_awkward_keys_get_thumb_keys(service, key):
    outcome = service.upload(key, thumbnails.greyscale_jpeg((400, 300)))
    assert_thumbnail(outcome, (200, 150), "image/jpeg", "L")
    decoded_twice = unquote_plus(key)
    if decoded_twice != key:  # '+' and '%2F' must not be decoded a second time
        assert service.thumbnail(decoded_twice) == (None, None)


def test_longest_key_that_fits(service):
    key = "uploads/" + "k" * (1024 - len("thumb-uploads/") - len(".jpg")) + ".jpg"
    assert len(f"thumb-{key}".encode()) == 1024
    assert_thumbnail(service.upload(key, thumbnails.greyscale_jpeg((400, 300))), (200, 150), "image/jpeg", "L")


def test_key_too_long_for_its_thumbnail(service):
    key = "uploads/" + "é" * 504 + ".jpg"  # 1020 bytes: a valid S3 key, but thumb-<key> is 1026
    outcome = service.upload(key, thumbnails.greyscale_jpeg((400, 300)))
    assert_rejected(outcome, "KeyTooLong", r"^thumb-<key> would be 1026 bytes; S3 keys are at most 1024$")


def test_key_outside_the_trigger_prefix_is_never_delivered(service):
    before = len(service.cloud.records(FUNCTION))
    service.s3.put_object(Bucket=SOURCE, Key="inbox/cat.jpg", Body=thumbnails.greyscale_jpeg((400, 300)))
    assert service.cloud.settle(30)
    assert len(service.cloud.records(FUNCTION)) == before
    assert service.thumbnail("inbox/cat.jpg") == (None, None)


def test_key_outside_the_prefix_is_refused_when_invoked_directly(service):
    service.s3.put_object(Bucket=SOURCE, Key="inbox/dog.jpg", Body=thumbnails.greyscale_jpeg((400, 300)))
    outcome = service.invoke(s3_put_event(SOURCE, "inbox/dog.jpg", size=1000), "inbox/dog.jpg")
    assert_rejected(outcome, "OutsidePrefix", r"^the key is not under 'uploads/'$")


# --- events S3 never sends, or sends late ----------------------------------------------------------


def test_s3_test_event_is_skipped(service):
    event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-01-01T00:00:00.000Z",
             "Bucket": SOURCE, "RequestId": "5582815E1AEA5ADF",
             "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}
    outcome = service.invoke(event)
    assert outcome.only.ok and outcome.only.result == {
        "thumbnails": [], "failures": [], "skipped": [{"bucket": SOURCE, "key": None, "reason": "s3:TestEvent"}]}
    assert outcome.queue_records == []


@pytest.mark.parametrize("event, shape", [
    ({}, "an empty object"),
    ({"Records": "uploads/cat.jpg"}, "an object with keys Records"),
    (["uploads/cat.jpg"], "list"),
    ("uploads/cat.jpg", "str"),
], ids=["empty-object", "records-not-a-list", "a-list", "a-string"])
def test_event_without_records(service, event, shape):
    outcome = service.invoke(json.dumps(event))  # JSON text: the runtime passes a str payload as is
    failure = assert_rejected(outcome, "MalformedEvent", r"^the event has no Records list", bucket=None)
    assert failure["reason"] == f"the event has no Records list (got {shape})"
    assert outcome.queue_records[0]["requestPayload"] == event


def test_huge_malformed_event_is_reported_without_its_payload(service):
    event = {"junk": "x" * 300_000}  # Lambda takes it (up to 1 MB async); SQS takes at most 256 KB
    outcome = service.invoke(json.dumps(event))
    assert_rejected(outcome, "MalformedEvent", r"^the event has no Records list \(got an object with keys junk\)$",
                    bucket=None)
    assert outcome.queue_records[0]["requestPayload"]["omitted"].startswith("the event was 300,")


def test_record_without_an_object_key(service):
    event = s3_put_event(SOURCE, "uploads/cat.jpg", size=10)
    del event["Records"][0]["s3"]["object"]["key"]
    assert_rejected(service.invoke(event), "MalformedRecord", r"^record 0 has no s3\.bucket\.name or s3\.object\.key$",
                    bucket=None)


def test_record_from_another_service(service):
    event = {"Records": [{"eventSource": "aws:sqs", "body": "{}", "s3": {}}]}
    assert_rejected(service.invoke(event), "MalformedRecord", r"^record 0 comes from 'aws:sqs', not aws:s3$",
                    bucket=None)


def test_record_for_a_deleted_object_delivered_late(service):
    key = "uploads/short-lived.jpg"
    first = service.upload(key, thumbnails.greyscale_jpeg((400, 300)))
    assert_thumbnail(first, (200, 150), "image/jpeg", "L")
    service.s3.delete_object(Bucket=SOURCE, Key=key)
    service.s3.delete_object(Bucket=THUMBS, Key=f"thumb-{key}")
    outcome = service.invoke(first.only.event, key)  # S3 delivers at least once: the same event again
    assert_rejected(outcome, "ObjectMissing", r"^the object no longer exists")


def test_event_from_the_thumbnail_bucket_is_never_written_back(service):
    service.s3.put_object(Bucket=THUMBS, Key="uploads/loop.jpg", Body=thumbnails.greyscale_jpeg((400, 300)))
    outcome = service.invoke(s3_put_event(THUMBS, "uploads/loop.jpg", size=1000), "uploads/loop.jpg")
    assert_rejected(outcome, "SourceIsTarget", r"^the event comes from 'photos-thumbnails', the thumbnail bucket",
                    bucket=THUMBS)
    keys = [o["Key"] for o in service.s3.list_objects_v2(Bucket=THUMBS).get("Contents", [])]
    assert "thumb-uploads/loop.jpg" not in keys


def test_removal_records_are_skipped(service):
    event = s3_put_event(SOURCE, "uploads/removed.jpg", size=0)
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    outcome = service.invoke(event, "uploads/removed.jpg")
    assert outcome.only.result == {"thumbnails": [], "failures": [], "skipped": [
        {"bucket": SOURCE, "key": "uploads/removed.jpg", "reason": "ObjectRemoved:Delete is not an upload"}]}
    assert outcome.thumbnail is None and outcome.queue_records == []


def test_a_bad_record_does_not_stop_the_good_ones(service):
    service.s3.put_object(Bucket=SOURCE, Key="uploads/batch-good.jpg", Body=thumbnails.greyscale_jpeg((400, 300)))
    service.s3.put_object(Bucket=SOURCE, Key="uploads/batch-bad.jpg", Body=thumbnails.TEXT)
    assert service.cloud.settle(30)
    for key in ("uploads/batch-good.jpg", "uploads/batch-bad.jpg"):
        service.s3.delete_object(Bucket=THUMBS, Key=f"thumb-{key}")
    bad, good = (s3_put_event(SOURCE, k, size=1000)["Records"][0]
                 for k in ("uploads/batch-bad.jpg", "uploads/batch-good.jpg"))
    outcome = service.invoke({"Records": [bad, good]})
    inv = outcome.only
    assert inv.ok and [t["key"] for t in inv.result["thumbnails"]] == ["uploads/batch-good.jpg"]
    assert [(f["key"], f["error"]) for f in inv.result["failures"]] == [("uploads/batch-bad.jpg", "NotAnImage")]
    assert service.thumbnail("uploads/batch-good.jpg")[1] == "image/jpeg"
    assert service.thumbnail("uploads/batch-bad.jpg") == (None, None)
    assert [r["requestPayload"] for r in outcome.queue_records] == [{"Records": [bad]}]


# --- transient failures are raised, retried, then dead-lettered ------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_s3_is_retried_then_sent_to_the_on_failure_destination(service):
    service.deploy("thumbnails-offline", {"THUMBNAIL_BUCKET": THUMBS,
                                          "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{_closed_port()}"})
    key = "uploads/offline.jpg"  # never uploaded: only the unreachable function sees this event
    event = s3_put_event(SOURCE, key, size=1000)
    service.cloud.client("lambda").invoke(FunctionName="thumbnails-offline", InvocationType="Event",
                                          Payload=json.dumps(event))
    deadline = time.monotonic() + 90
    while len(service.cloud.records("thumbnails-offline")) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert service.cloud.settle(60)
    attempts = service.cloud.records("thumbnails-offline")
    assert [(inv.attempt, inv.error_type) for inv in attempts] == [
        (1, "EndpointConnectionError"), (2, "EndpointConnectionError"), (3, "EndpointConnectionError")]
    for inv in attempts:
        [line] = [line for line in inv.log_lines if line.startswith("[ERROR]") and '"outcome"' in line]
        assert json.loads(line.split("\t")[-1]) == {
            "outcome": "retry", "bucket": SOURCE, "key": key, "error": "EndpointConnectionError",
            "reason": inv.error["errorMessage"]}
    ids = {inv.request_id for inv in attempts}
    [record] = [r for r in service.queue_records() if r["requestContext"]["requestId"] in ids]
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"] == event and record["responsePayload"]["errorType"] == "EndpointConnectionError"
    assert service.thumbnail(key) == (None, None)


def test_our_failure_record_has_the_shape_of_lambdas(service):
    [ours] = service.invoke("{}").queue_records  # a MalformedEvent, reported by the handler itself
    lambdas = next((r for r in service.queue_records() if r["requestContext"]["condition"] == "RetriesExhausted"), None)
    if lambdas is None:  # run alone: make Lambda produce one from a function without its bucket variable
        service.deploy("thumbnails-unset", {})
        service.cloud.client("lambda").invoke(FunctionName="thumbnails-unset", InvocationType="Event", Payload=b"{}")
        deadline = time.monotonic() + 30
        while lambdas is None and time.monotonic() < deadline:
            time.sleep(0.2)
            lambdas = next((r for r in service.queue_records()
                            if r["requestContext"]["condition"] == "RetriesExhausted"), None)
    assert lambdas is not None
    assert set(ours) == set(lambdas)
    assert set(ours["requestContext"]) == set(lambdas["requestContext"])
    assert {"errorType", "errorMessage"} <= set(ours["responsePayload"]) & set(lambdas["responsePayload"])


def test_missing_thumbnail_bucket_variable_fails_the_invocation(service):
    service.deploy("thumbnails-unconfigured", {})
    inv = service.cloud.invoke("thumbnails-unconfigured", s3_put_event(SOURCE, "uploads/x.jpg", size=10))
    assert not inv.ok and inv.error_type == "RuntimeError"
    assert inv.error["errorMessage"] == ("the environment variable THUMBNAIL_BUCKET (the bucket for thumbnails) "
                                         "is not set")


def test_the_service_survived_all_of_it(service):
    records = service.cloud.records(FUNCTION)
    assert all(inv.ok for inv in records), [inv.error for inv in records if not inv.ok]
    assert_thumbnail(service.upload("uploads/after-the-storm.jpg", thumbnails.photo_jpeg(1600, 1200)),
                     (200, 150), "image/jpeg", "RGB")
    listed = [o["Key"] for o in service.s3.list_objects_v2(Bucket=THUMBS).get("Contents", [])]
    # Only thumbnails, none of a thumbnail, plus the object the loop test planted there itself.
    assert {key for key in listed if not key.startswith("thumb-")} <= {"uploads/loop.jpg"}
    assert not any(key.startswith("thumb-thumb-") for key in listed)
    source_keys = {o["Key"] for o in service.s3.list_objects_v2(Bucket=SOURCE).get("Contents", [])}
    assert not any(key.startswith("thumb-") for key in source_keys)  # never wrote into the source bucket


# --- make_thumbnail in-process ---------------------------------------------------------------------


@contextlib.contextmanager
def solution_modules() -> Iterator[tuple[Any, Any]]:
    """Import solutions/thumbnail's `thumbnail` and `handler` as Lambda does (its directory on sys.path)."""
    saved = {name: sys.modules.pop(name, None) for name in ("thumbnail", "handler")}
    sys.path.insert(0, str(SOLUTION))
    try:
        yield importlib.import_module("thumbnail"), importlib.import_module("handler")
    finally:
        sys.path.remove(str(SOLUTION))
        for name, module in saved.items():
            sys.modules.pop(name, None)
            if module is not None:
                sys.modules[name] = module


@pytest.fixture(scope="module")
def modules():
    with solution_modules() as pair:
        yield pair


@pytest.fixture(scope="module")
def thumb(modules):
    return modules[0]


def decode(result: tuple[bytes, str]) -> Image.Image:
    data, content_type = result
    im = Image.open(io.BytesIO(data))
    assert Image.MIME[im.format] == content_type
    return im


def test_handler_exposes_make_thumbnail(modules):
    thumbnail, handler = modules
    assert handler.make_thumbnail is thumbnail.make_thumbnail
    assert issubclass(thumbnail.ImageRejected, ValueError) and issubclass(handler.RecordRejected, ValueError)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_shown_upright(thumb, orientation):
    im = decode(thumb.make_thumbnail(thumbnails.exif_rotated_jpeg(orientation, (300, 400))))
    assert im.size == (150, 200)
    for (x, y), corner in (((15, 15), "top_left"), ((135, 15), "top_right"), ((15, 185), "bottom_left"),
                           ((135, 185), "bottom_right")):
        assert near(im.getpixel((x, y)), thumbnails.QUADRANTS[corner], 20), (orientation, corner, im.getpixel((x, y)))


def test_damaged_exif_orientation_is_ignored(thumb):
    im = decode(thumb.make_thumbnail(thumbnails.jpeg(thumbnails.quadrants(400, 300), exif_orientation=42)))
    assert im.size == (200, 150) and near(im.getpixel((10, 10)), thumbnails.QUADRANTS["top_left"], 20)


@pytest.mark.parametrize("size, box, expected", [
    ((2000, 1500), (200, 200), (200, 150)),
    ((1500, 2000), (200, 200), (150, 200)),
    ((120, 80), (200, 200), (120, 80)),      # never enlarged
    ((10_000, 10), (200, 200), (200, 1)),    # extreme panorama keeps at least one row
    ((10, 10_000), (200, 200), (1, 200)),
    ((1000, 1000), (320, 100), (100, 100)),  # a non-square box
])
def test_fits_the_box_keeping_the_aspect_ratio(thumb, size, box, expected):
    assert decode(thumb.make_thumbnail(thumbnails.png(Image.new("RGB", size, (9, 99, 199))), box)).size == expected


def test_a_12_mp_jpeg_is_decoded_small_in_draft_mode(thumb):
    im = thumb.open_image(thumbnails.photo_jpeg(4000, 3000))
    thumb.check_pixel_budget(im, (200, 200))
    assert im.size == (500, 375)  # libjpeg's 1/8 DCT scaling, still over twice the 200x150 thumbnail


def test_colour_profiles_are_kept_and_exif_dropped(thumb):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im = decode(thumb.make_thumbnail(
        thumbnails.jpeg(thumbnails.quadrants(400, 300), icc_profile=icc, exif_orientation=1)))
    assert im.info.get("icc_profile") == icc and "exif" not in im.info


def test_a_profile_that_no_longer_fits_the_colours_is_dropped(thumb):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    grey_with_transparency = thumbnails.png(Image.new("L", (400, 300), 7), transparency=7, icc_profile=icc)
    im = decode(thumb.make_thumbnail(grey_with_transparency))
    assert im.mode == "RGBA" and "icc_profile" not in im.info


def test_png_exif_with_gps_does_not_leak(thumb):
    exif = Image.Exif()
    exif[0x8825] = {2: (51.0, 30.0, 0.0)}  # GPSInfo: latitude
    source = thumbnails.png(Image.new("RGB", (400, 300), (5, 50, 200)), exif=exif.tobytes())
    assert "exif" in Image.open(io.BytesIO(source)).info
    im = decode(thumb.make_thumbnail(source))
    assert "exif" not in im.info and not im.getexif()


def test_webp_stays_webp(thumb):
    buffer = io.BytesIO()
    thumbnails.landscape(640, 480).save(buffer, "WEBP", quality=80)
    im = decode(thumb.make_thumbnail(buffer.getvalue()))
    assert (im.format, im.size) == ("WEBP", (200, 150))


def test_file_over_the_byte_limit(thumb):
    with pytest.raises(thumb.FileTooLarge, match=r"^the file is 20,971,521 bytes; the limit is 20,971,520 bytes$"):
        thumb.make_thumbnail(b"\xff" * (thumb.MAX_FILE_BYTES + 1))


def test_bad_arguments_are_programming_errors_not_rejections(thumb):
    with pytest.raises(TypeError, match="max_size must be a"):
        thumb.make_thumbnail(thumbnails.greyscale_jpeg(), (200, 0))
    with pytest.raises(TypeError, match="data must be bytes, not str"):
        thumb.make_thumbnail("not bytes")


@pytest.mark.parametrize("encoded, key", [
    ("uploads/my+holiday.jpg", "uploads/my holiday.jpg"),
    ("uploads/1%2B1%3D2.jpg", "uploads/1+1=2.jpg"),
    ("uploads/50%252Foff.jpg", "uploads/50%2Foff.jpg"),
    ("uploads/caf%C3%A9.jpg", "uploads/café.jpg"),
    ("uploads/%F0%9F%8E%89.jpg", "uploads/🎉.jpg"),
])
def test_keys_for_decodes_exactly_once(modules, encoded, key):
    assert modules[1].keys_for(encoded) == (key, f"thumb-{key}")


def test_pillow_bomb_limit_is_restored(thumb):
    limit = Image.MAX_IMAGE_PIXELS
    with pytest.raises(thumb.TooManyPixels):
        thumb.make_thumbnail(thumbnails.header_only_png(30_000, 30_000))
    assert Image.MAX_IMAGE_PIXELS == limit
