"""Checks for lab `thumbnail` (notebook 04): the track's thumbnail service in the local cloud.

Each check uploads an image into the source bucket; S3's notification runs the track's
handler, which should write `thumb-<key>` into the thumbnail bucket. Exercises: `resize`
(thumbnail.py: fit inside 200x200 keeping the aspect ratio) and `keys` (handler.py: decode
the key S3 puts in the event, and name the thumbnail).

Run them with `check("thumbnail")` in a notebook or `lambdalab check thumbnail` in a shell.
"""

from __future__ import annotations

import io
from typing import Iterator
from urllib.parse import unquote_plus

import pytest
from PIL import Image

from lambdalab.course.lessons import thumbnails
from lambdalab.cloud.local_cloud import LocalCloud
from lambdalab.course.checks import fail_invocation

SOURCE, THUMBS, PREFIX = "lab-uploads", "lab-thumbnails", "uploads/"


class Service:
    """The track's handler deployed behind an S3 trigger, with its two buckets."""

    def __init__(self, cloud: LocalCloud, code_dir) -> None:
        self.cloud = cloud
        self.s3 = cloud.client("s3")
        self.s3.create_bucket(Bucket=SOURCE)
        self.s3.create_bucket(Bucket=THUMBS)
        fn = cloud.deploy("thumbnails", code_dir, "handler.lambda_handler", memory=128, timeout=15,
                          env={"THUMBNAIL_BUCKET": THUMBS})
        self.s3.put_bucket_notification_configuration(Bucket=SOURCE, NotificationConfiguration={
            "LambdaFunctionConfigurations": [{
                "LambdaFunctionArn": fn["FunctionArn"], "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": PREFIX}]}}}]})

    def thumbnail_of(self, key: str, body: bytes) -> Image.Image:
        """Upload `body` at `key` and return the thumbnail the handler wrote (the check fails
        with the handler's own error when it failed or wrote nothing)."""
        self.s3.put_object(Bucket=SOURCE, Key=key, Body=body)
        assert self.cloud.settle(60), "the upload's invocation did not finish within 60 s"
        mine = [inv for inv in self.cloud.records("thumbnails")
                if unquote_plus(inv.event["Records"][0]["s3"]["object"]["key"]) == key]
        assert mine, f"uploading {key!r} did not invoke the handler"
        failed = next((inv for inv in mine if not inv.ok), None)
        if failed is not None:
            fail_invocation(failed)
        try:
            data = self.s3.get_object(Bucket=THUMBS, Key=f"thumb-{key}")["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            written = [o["Key"] for o in self.s3.list_objects_v2(Bucket=THUMBS).get("Contents", [])]
            pytest.fail(f"no object 'thumb-{key}' in the thumbnail bucket; it holds {written}; "
                        f"the handler returned {mine[-1].result}", pytrace=False)
        return Image.open(io.BytesIO(data))


@pytest.fixture(scope="module")
def service(lab_dir) -> Iterator[Service]:
    with LocalCloud(cpu_limit=False, async_retry_delays=(0.1, 0.1)) as cloud:
        yield Service(cloud, lab_dir("thumbnail"))


def test_landscape_photo(service):
    """A 4:3 photo becomes a 200x150 thumbnail.

    Hint: do the `keys` exercise in handler.py first: every upload goes through it. Then, in
    thumbnail.py's resize_to_fit, find the one scale factor that makes the image fit 200x200,
    multiply both sides by it, and call im.resize(size, Image.Resampling.LANCZOS).
    """
    im = service.thumbnail_of("uploads/landscape.jpg", thumbnails.jpeg(thumbnails.quadrants(1600, 1200)))
    assert im.size == (200, 150), f"a 1600x1200 photo should give a 200x150 thumbnail, not {im.size[0]}x{im.size[1]}"


def test_portrait_photo(service):
    """A portrait photo keeps its aspect ratio: 960x1600 becomes 120x200.

    Hint: use ONE scale factor for both sides, the smaller of 200/width and 200/height.
    """
    im = service.thumbnail_of("uploads/portrait.jpg", thumbnails.jpeg(thumbnails.quadrants(960, 1600)))
    assert im.size == (120, 200), f"a 960x1600 photo should give a 120x200 thumbnail, not {im.size[0]}x{im.size[1]}"


def test_small_image_is_not_enlarged(service):
    """An image that already fits keeps its size.

    Hint: a thumbnail never enlarges: cap the scale factor at 1.0.
    """
    im = service.thumbnail_of("uploads/icon.png", thumbnails.rgba_png((120, 90)))
    assert im.size == (120, 90), f"a 120x90 image should stay 120x90, not {im.size[0]}x{im.size[1]}"


def test_panorama(service):
    """A wide panorama fits the width: 3000x200 becomes 200x13.

    Hint: round each side to the nearest pixel, and never below 1.
    """
    im = service.thumbnail_of("uploads/panorama.jpg", thumbnails.jpeg(thumbnails.quadrants(3000, 200)))
    assert im.size == (200, 13), f"a 3000x200 panorama should give 200x13, not {im.size[0]}x{im.size[1]}"


def test_key_with_spaces_and_plus_signs(service):
    """Finds an upload whose key has spaces and a plus sign.

    Hint: S3 sends the key URL-encoded, with '+' for each space and '%2B' for a real '+':
    urllib.parse.unquote_plus(encoded_key) gives the real key back.
    """
    im = service.thumbnail_of("uploads/summer holiday+beach.jpg", thumbnails.greyscale_jpeg((400, 300)))
    assert im.size == (200, 150)


def test_key_with_accents_and_emoji(service):
    """Finds an upload whose key has accents and an emoji.

    Hint: unquote_plus also turns the %XX bytes of UTF-8 back into letters.
    """
    im = service.thumbnail_of("uploads/café ☕.jpg", thumbnails.greyscale_jpeg((400, 300)))
    assert im.size == (200, 150)


def test_key_with_a_literal_percent_sign(service):
    """Keeps a key that really contains "%2F" as it is (decoded once, not twice).

    Hint: decode the event's key exactly once; the thumbnail's key is "thumb-" + that key.
    """
    im = service.thumbnail_of("uploads/50%2Foff.jpg", thumbnails.greyscale_jpeg((400, 300)))
    assert im.size == (200, 150)
