"""Checks for lab `thumbnail` (notebook 04): the track's thumbnail service in the local cloud.

Each check uploads an image into the source bucket; S3's notification runs the track's
handler, which should write `thumb-<key>` into the thumbnail bucket. Exercises, both in
handler.py: `keys` (decode the key S3 puts in the event, and name the thumbnail) and `store`
(read the object from S3, make the thumbnail, write it with its content type into the bucket
named by THUMBNAIL_BUCKET). When a thumbnail is missing, the check looks for the usual
mistakes (a key left encoded or decoded the wrong way, the thumbnail written into the source
bucket) and names the one it finds.

Run them with `check("thumbnail")` in a notebook or `lambdalab check thumbnail` in a shell.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

import pytest
from PIL import Image

from lambdalab.cloud.local_cloud import LocalCloud
from lambdalab.course.checks import fail_invocation
from lambdalab.course.lessons import thumbnails
from lambdalab.events.s3 import encode_key

SOURCE, THUMBS, PREFIX = "lab-uploads", "lab-thumbnails", "uploads/"
# What S3 serves for an object stored without a Content-Type (PutObject's default).
DEFAULT_CONTENT_TYPE = "binary/octet-stream"


@dataclass(frozen=True)
class Thumbnail:
    """A thumbnail as stored in the thumbnail bucket: the image, and the content type S3 serves it with."""

    image: Image.Image
    content_type: str


def key_mistake(key: str, read_as: str) -> str:
    """What went wrong when the handler looked for upload `key` under `read_as` ("" if nothing known)."""
    encoded = encode_key(key)  # as S3 puts it in the event
    if read_as == encoded:
        return (f"the handler used the key as the event carries it, URL-encoded ({read_as!r}), not the "
                f"object's key {key!r}: decode it with urllib.parse.unquote_plus")
    if read_as == unquote(encoded):
        return (f"the handler decoded the key with unquote, which leaves each '+' (a space, in S3's "
                f"encoding) as it is ({read_as!r}): use urllib.parse.unquote_plus")
    if read_as == unquote_plus(unquote_plus(encoded)):
        return (f"the handler decoded the key twice ({read_as!r} instead of {key!r}): a key may hold "
                f"'%2F' literally; decode it exactly once")
    return ""


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

    def thumbnail_of(self, key: str, body: bytes) -> Thumbnail:
        """Upload `body` at `key` and return the thumbnail the handler wrote (the check fails
        with the handler's own error when it failed, and names the mistake when it wrote none)."""
        self.s3.put_object(Bucket=SOURCE, Key=key, Body=body)
        assert self.cloud.settle(60), "the upload's invocation did not finish within 60 s"
        mine = [inv for inv in self.cloud.records("thumbnails")
                if unquote_plus(inv.event["Records"][0]["s3"]["object"]["key"]) == key]
        assert mine, f"uploading {key!r} did not invoke the handler"
        failed = next((inv for inv in mine if not inv.ok), None)
        if failed is not None:
            fail_invocation(failed)
        try:
            stored = self.s3.get_object(Bucket=THUMBS, Key=f"thumb-{key}")
        except self.s3.exceptions.NoSuchKey:
            pytest.fail(self.missing(key, mine[-1].result), pytrace=False)
        return Thumbnail(Image.open(io.BytesIO(stored["Body"].read())), stored["ContentType"])

    def missing(self, key: str, result: object) -> str:
        """Why there is no `thumb-<key>` in the thumbnail bucket, naming the mistake when it is a known one."""
        wanted = f"thumb-{key}"
        in_source = {o["Key"] for o in self.s3.list_objects_v2(Bucket=SOURCE).get("Contents", [])}
        if wanted in in_source:
            return (f"the thumbnail {wanted!r} was written into the source bucket {SOURCE!r}: write it into "
                    f"the bucket named by the environment variable THUMBNAIL_BUCKET ({THUMBS!r}). Writing "
                    "into the bucket that triggers the function can invoke it again, without end")
        written = [o["Key"] for o in self.s3.list_objects_v2(Bucket=THUMBS).get("Contents", [])]
        failures = result.get("failures", []) if isinstance(result, dict) else []
        for read_as in [f.get("key") for f in failures] + [w.removeprefix("thumb-") for w in written]:
            if isinstance(read_as, str) and (mistake := key_mistake(key, read_as)):
                return mistake
        return (f"no object {wanted!r} in the thumbnail bucket; it holds {written}; "
                f"the handler returned {result}")


@pytest.fixture(scope="module")
def service(lab_dir) -> Iterator[Service]:
    with LocalCloud(cpu_limit=False, async_retry_delays=(0.1, 0.1)) as cloud:
        yield Service(cloud, lab_dir("thumbnail"))


def test_landscape_photo(service):
    """A 4:3 photo becomes a 200x150 thumbnail in the thumbnail bucket.

    Hint: do the `keys` exercise in handler.py first (every upload goes through it), then
    `store`: read the object with s3.get_object, make the thumbnail with make_thumbnail, and
    write it with s3.put_object into the bucket named by THUMBNAIL_BUCKET.
    """
    im = service.thumbnail_of("uploads/landscape.jpg", thumbnails.jpeg(thumbnails.quadrants(1600, 1200))).image
    assert im.size == (200, 150), f"a 1600x1200 photo should give a 200x150 thumbnail, not {im.size[0]}x{im.size[1]}"


def test_jpeg_thumbnail_has_its_content_type(service):
    """A photo's thumbnail is stored as image/jpeg.

    Hint: pass ContentType= to put_object, with the content type make_thumbnail returned;
    without it S3 serves the thumbnail as binary/octet-stream and a browser downloads it.
    """
    made = service.thumbnail_of("uploads/typed.jpg", thumbnails.greyscale_jpeg((400, 300)))
    assert made.content_type == "image/jpeg", content_type_problem(made.content_type, "image/jpeg")


def test_png_thumbnail_has_its_content_type(service):
    """A transparent PNG's thumbnail is stored as image/png.

    Hint: make_thumbnail returns the content type of the thumbnail it made (PNG for images with
    transparency, JPEG for photos): store that one, not a fixed "image/jpeg".
    """
    made = service.thumbnail_of("uploads/sticker.png", thumbnails.rgba_png((400, 300)))
    assert made.content_type == "image/png", content_type_problem(made.content_type, "image/png")


def content_type_problem(stored: str, expected: str) -> str:
    if stored == DEFAULT_CONTENT_TYPE:
        return (f"the thumbnail was stored without a ContentType (S3 serves it as {DEFAULT_CONTENT_TYPE}): "
                f"pass ContentType=content_type to put_object")
    return (f"the thumbnail was stored with ContentType {stored!r}, not {expected!r}: use the content type "
            f"make_thumbnail returned for this image")


def test_portrait_photo(service):
    """A portrait photo keeps its aspect ratio: 960x1600 becomes 120x200.

    Hint: make the thumbnail with make_thumbnail(data, MAX_SIZE) from thumbnail.py.
    """
    im = service.thumbnail_of("uploads/portrait.jpg", thumbnails.jpeg(thumbnails.quadrants(960, 1600))).image
    assert im.size == (120, 200), f"a 960x1600 photo should give a 120x200 thumbnail, not {im.size[0]}x{im.size[1]}"


def test_key_with_spaces_and_plus_signs(service):
    """Finds an upload whose key has spaces and a plus sign.

    Hint: S3 sends the key URL-encoded, with '+' for each space and '%2B' for a real '+':
    urllib.parse.unquote_plus(encoded_key) gives the real key back.
    """
    im = service.thumbnail_of("uploads/summer holiday+beach.jpg", thumbnails.greyscale_jpeg((400, 300))).image
    assert im.size == (200, 150)


def test_key_with_accents_and_emoji(service):
    """Finds an upload whose key has accents and an emoji.

    Hint: unquote_plus also turns the %XX bytes of UTF-8 back into letters.
    """
    im = service.thumbnail_of("uploads/café ☕.jpg", thumbnails.greyscale_jpeg((400, 300))).image
    assert im.size == (200, 150)


def test_key_with_a_literal_percent_sign(service):
    """Keeps a key that really contains "%2F" as it is (decoded once, not twice).

    Hint: decode the event's key exactly once; the thumbnail's key is "thumb-" + that key.
    """
    im = service.thumbnail_of("uploads/50%2Foff.jpg", thumbnails.greyscale_jpeg((400, 300))).image
    assert im.size == (200, 150)


@pytest.mark.stretch
def test_stretch_a_thumbnail_names_its_photo(service):
    """Stretch goal: each thumbnail names its photo in its user metadata, "source-key".

    Hint: pass Metadata={"source-key": ...} to put_object. User metadata travels in HTTP headers,
    which S3 takes as US-ASCII, so percent-encode the key with urllib.parse.quote (the check
    decodes it with unquote). https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingMetadata.html
    """
    key = "uploads/stretch/café ☕.jpg"
    service.thumbnail_of(key, thumbnails.greyscale_jpeg((400, 300)))
    metadata = service.s3.head_object(Bucket=THUMBS, Key=f"thumb-{key}")["Metadata"]
    source = metadata.get("source-key")
    assert source is not None, f"the thumbnail has no user metadata 'source-key'; it has {metadata}"
    assert source.isascii(), f"'source-key' should be percent-encoded ASCII, got {source!r}"
    assert unquote(source) == key, f"'source-key' decodes to {unquote(source)!r}, not the photo's key {key!r}"
