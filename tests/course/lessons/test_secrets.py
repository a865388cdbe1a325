"""Lesson 12's instruments: the scanner's findings, counting GetSecretValue calls per environment,
the cost per 1,000 invocations at Secrets Manager's and Lambda's prices, and the rotation pickup.

Prices: https://aws.amazon.com/secrets-manager/pricing/ ($0.05 per 10,000 API calls, $0.40 per
secret per month) and Lambda's (lambdalab.runtime.metering).
"""

from __future__ import annotations

import pytest

from lambdalab.course.lessons import secrets as lesson
from lambdalab.runtime.metering import PRICE_PER_GB_SECOND, PRICE_PER_REQUEST


def test_the_scanner_finds_a_hard_coded_key_and_not_a_secrets_name(tmp_path) -> None:
    (tmp_path / "bad.py").write_text('import os\n\nAPI_KEY = "9f3b1c7e5a2d4f60b8e1c3a5d7f9b2e4c6a8e0f2"\n')
    (tmp_path / "good.py").write_text('import os\n\nSECRET_ID = os.environ["SECRET_ID"]\n')
    found = lesson.scan(tmp_path)
    assert {f.file for f in found} == {"bad.py"}
    assert {f.line for f in found} == {3}
    assert "Secret Keyword" in {f.kind for f in found}


def test_secret_calls_sum_each_environments_last_count() -> None:
    answers = [{"environment": "a", "secret_calls": 1}, {"environment": "b", "secret_calls": 1},
               {"environment": "a", "secret_calls": 1}, {"environment": "a", "secret_calls": 2}]
    assert lesson.secret_calls(answers) == 3


def test_cost_per_1000_adds_lambda_and_the_secret_calls() -> None:
    run = lesson.CacheRun("no cache", 0, invocations=50, secret_calls=50, warm_ms=(10.0, 12.0), mean_billed_ms=11.0)
    gb_s = 1000 * lesson.SIGNER_MEMORY_MB / 1024 * 0.011
    lambda_cost = gb_s * PRICE_PER_GB_SECOND["x86_64"] + 1000 * PRICE_PER_REQUEST
    assert run.calls_per_1000 == 1000
    assert run.mean_warm_ms == 11.0
    assert run.cost_per_1000 == pytest.approx(lambda_cost + 1000 * 0.05 / 10_000)
    cached = lesson.CacheRun("cached", 300, invocations=50, secret_calls=1, warm_ms=(2.0,), mean_billed_ms=2.0)
    assert cached.cost_per_1000 < run.cost_per_1000


def test_monthly_cost_is_storage_plus_calls() -> None:
    assert lesson.monthly_secret_cost(10_000_000 * 1.0) == pytest.approx(0.40 + 10_000_000 * 0.05 / 10_000)
    assert lesson.monthly_secret_cost(0, secrets=2) == pytest.approx(0.80)


def test_monthly_calls_without_a_cache_are_the_invocations_and_with_one_per_environment_per_ttl() -> None:
    month = lesson.SECONDS_PER_MONTH
    assert lesson.monthly_secret_calls(1_000_000, 0, 20.0) == 1_000_000
    # 10 million a month is ~3.9 a second; at 20 ms that is under one busy environment.
    assert lesson.monthly_secret_calls(10_000_000, 300, 20.0) == pytest.approx(month / 300)
    # 1 billion a month at 500 ms: ~193 concurrent environments, each fetching once per TTL.
    assert lesson.monthly_secret_calls(1_000_000_000, 300, 500.0) == pytest.approx(193 * month / 300)
    # Never more calls than invocations.
    assert lesson.monthly_secret_calls(1_000, 300, 20.0) == 1_000


def test_pickup_is_the_first_answer_with_the_new_key() -> None:
    points = [lesson.RotationPoint(0.1, "old"), lesson.RotationPoint(2.9, "old"), lesson.RotationPoint(3.1, "new")]
    assert lesson.pickup_s(points) == 3.1
    assert lesson.pickup_s(points[:2]) is None


def test_the_signature_changes_with_the_key() -> None:
    assert lesson.signature("a") == lesson.signature("a") != lesson.signature("b")
    assert len(lesson.new_key()) == 40 and lesson.new_key() != lesson.new_key()
