"""The course's one percentile: linear interpolation between the closest ranks, as numpy does."""

from __future__ import annotations

import random

import numpy as np
import pytest

from lambdalab._util.stats import median, percentile


@pytest.mark.parametrize("values, q, expected", [
    ([5.0], 95, 5.0), ([1, 2, 3, 4], 50, 2.5), ([1, 2, 3, 4, 5], 0, 1), ([1, 2, 3, 4, 5], 100, 5),
    ([10, 0, 20], 50, 10), (list(range(101)), 95, 95),
])
def test_percentile(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_matches_numpy():
    rng = random.Random(8)
    for size in (1, 2, 7, 20):
        data = [rng.uniform(1, 1000) for _ in range(size)]
        for q in (0, 10, 50, 90, 99, 100):
            assert percentile(data, q) == pytest.approx(float(np.percentile(data, q)))
        assert median(data) == pytest.approx(float(np.median(data)))


def test_percentile_refuses_bad_input():
    with pytest.raises(ValueError, match="at least one value"):
        percentile([], 50)
    with pytest.raises(ValueError, match="within 0-100"):
        percentile([1.0], 101)
