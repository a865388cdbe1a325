"""The `thumbnail` checks name a learner's plausible mistakes: each mistake is fed to them as a
mutated copy of the solution on the labs track of a scratch course, and the report must say it.

S3 puts object keys in event notifications URL-encoded (a space becomes '+'):
https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
An object stored without a Content-Type is served as binary/octet-stream, PutObject's default:
https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html
Writing into the bucket that triggers the function invokes it again (a recursive loop):
https://docs.aws.amazon.com/lambda/latest/dg/with-s3-tutorial.html
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lambdalab.course.checks import CheckReport, check
from lambdalab.course.labs import find_root

PUT = "s3.put_object(Bucket=target, Key=upload.thumbnail_key, Body=thumbnail, ContentType=content_type,"
MISTAKES = {
    "key left encoded": ("key = unquote_plus(encoded_key)", "key = encoded_key"),
    "key decoded with unquote": ("key = unquote_plus(encoded_key)",
                                 "key = __import__('urllib.parse').parse.unquote(encoded_key)"),
    "no ContentType": (PUT, "s3.put_object(Bucket=target, Key=upload.thumbnail_key, Body=thumbnail,"),
    "fixed ContentType": (PUT, PUT.replace("ContentType=content_type", 'ContentType="image/jpeg"')),
    "written to the source bucket": (PUT, PUT.replace("Bucket=target", "Bucket=upload.bucket")),
}


def report_with(tmp_path: Path, *mistakes: str) -> CheckReport:
    """The thumbnail checks' report on a scratch course whose labs/thumbnail is the solution with
    `mistakes` made (names in MISTAKES; two mistakes that touch different checks share a run)."""
    real = find_root()
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "thumbnail").symlink_to(real / "solutions" / "thumbnail")
    (tmp_path / "tests" / "labs").mkdir(parents=True)
    for name in ("conftest.py", "test_thumbnail.py"):
        shutil.copy(real / "tests" / "labs" / name, tmp_path / "tests" / "labs" / name)
    lab = tmp_path / "labs" / "thumbnail"
    shutil.copytree(real / "solutions" / "thumbnail", lab, ignore=shutil.ignore_patterns("__pycache__"))
    handler = lab / "handler.py"
    text = handler.read_text(encoding="utf-8")
    for mistake in mistakes:
        old, new = MISTAKES[mistake]
        assert text.count(old) == 1, f"the solution no longer holds {old!r}: update mistake {mistake!r}"
        text = text.replace(old, new)
    handler.write_text(text, encoding="utf-8")
    return check("thumbnail", "labs", root=tmp_path)


def failures(report: CheckReport) -> dict[str, str]:
    """title -> everything shown under it, for the checks that failed."""
    return {r.title: "\n".join(line.text for line in lines) for r, lines in report.details() if not r.passed}


KEYS_CHECK = "Finds an upload whose key has spaces and a plus sign."
JPEG_CHECK = "A photo's thumbnail is stored as image/jpeg."
PNG_CHECK = "A transparent PNG's thumbnail is stored as image/png."
ACCENTS_CHECK = "Finds an upload whose key has accents and an emoji."
PERCENT_CHECK = 'Keeps a key that really contains "%2F" as it is (decoded once, not twice).'


@pytest.mark.slow
def test_key_left_encoded_and_content_type_left_out_are_named(tmp_path):
    """A key used as the event carries it: the key checks say it is URL-encoded and name unquote_plus.
    PutObject without ContentType: the content-type checks say so and name ContentType."""
    failed = failures(report_with(tmp_path, "key left encoded", "no ContentType"))
    assert set(failed) == {KEYS_CHECK, ACCENTS_CHECK, PERCENT_CHECK, JPEG_CHECK, PNG_CHECK}, failed
    assert "the key as the event carries it, URL-encoded" in failed[KEYS_CHECK], failed[KEYS_CHECK]
    assert "unquote_plus" in failed[KEYS_CHECK] and "URL-encoded" in failed[PERCENT_CHECK]
    assert "stored without a ContentType" in failed[JPEG_CHECK], failed[JPEG_CHECK]
    assert "binary/octet-stream" in failed[PNG_CHECK] and "ContentType" in failed[PNG_CHECK]


@pytest.mark.slow
def test_key_decoded_with_unquote_and_a_fixed_content_type_are_named(tmp_path):
    """unquote instead of unquote_plus: the check says '+' stands for a space. A hard-coded
    "image/jpeg": the PNG's check says which content type it got and which it needs."""
    failed = failures(report_with(tmp_path, "key decoded with unquote", "fixed ContentType"))
    assert set(failed) == {KEYS_CHECK, ACCENTS_CHECK, PNG_CHECK}, failed
    assert "decoded the key with unquote" in failed[KEYS_CHECK] and "unquote_plus" in failed[KEYS_CHECK]
    assert "with ContentType 'image/jpeg', not 'image/png'" in failed[PNG_CHECK], failed[PNG_CHECK]


@pytest.mark.slow
def test_writing_to_the_source_bucket_is_named(tmp_path):
    """The thumbnail put into the upload's own bucket: every check says so and names THUMBNAIL_BUCKET."""
    report = report_with(tmp_path, "written to the source bucket")
    failed = failures(report)
    assert len(failed) == len(report.results), failed
    assert all("written into the source bucket" in shown and "THUMBNAIL_BUCKET" in shown
               for shown in failed.values()), failed
