"""How long a lesson on AWS waits for a function's logs to stay quiet before it takes it as
stopped: AWS documents no signal for "no more retries or follow-on events are coming", only the
logs (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html)."""

from __future__ import annotations

import pytest

from lambdalab.course.target.base import QUIET_ENV, QUIET_S, quiet_seconds


def test_the_quiet_window_is_six_seconds_unless_the_environment_says_otherwise() -> None:
    assert quiet_seconds({}) == QUIET_S == 6.0
    assert quiet_seconds({QUIET_ENV: "1.5"}) == 1.5


@pytest.mark.parametrize("raw", ["soon", "0", "-2", "601", "nan"])
def test_a_bad_quiet_window_is_named(raw: str) -> None:
    with pytest.raises(ValueError, match=f"{QUIET_ENV}='{raw}'"):
        quiet_seconds({QUIET_ENV: raw})
