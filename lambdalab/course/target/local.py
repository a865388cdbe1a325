"""The `local` target: a `LocalCloud` in this process, reached through boto3 like AWS.

Its boto3 session carries the cloud's administrator keys and points at the cloud's endpoint, so a
notebook's cells are the same as on `aws`; `cloud` stays available for the cells marked
local-only (process states, the fast-forward clock, the meter). Nothing here can reach AWS, so
there is no account to confirm; closing tears the run down and then closes the cloud.
"""

from __future__ import annotations

from typing import Any

from lambdalab.build.targets import local_target
from lambdalab.cloud.local_cloud import LocalCloud
from lambdalab.course.target import reports
from lambdalab.course.target.base import CloudTarget
from lambdalab.course.target.runs import Run
from lambdalab.runtime.records import Invocation


class LocalTarget(CloudTarget):
    """A lesson's run in a local cloud it starts."""

    kind = "local"

    def __init__(self, *, run: Run | None = None, **cloud_options: Any):
        import boto3

        self.cloud = LocalCloud(**cloud_options).start()
        env = self.cloud.env()
        session = boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                                        region_name=self.cloud.region)
        super().__init__(session, run or Run.new(), self.cloud.account_id, local_target())
        self.endpoint_url = self.cloud.endpoint

    def _make_client(self, service: str, **kwargs: Any) -> Any:
        kwargs.setdefault("endpoint_url", self.cloud.endpoint)
        return self.session.client(service, **kwargs)

    def records(self, base: str) -> list[reports.LoggedReport]:
        self.cloud.runtime.flush_logs()  # the runtime writes logs in the background
        return super().records(base)

    def invocations(self, base: str) -> list[Invocation]:
        """The runtime's own records: what the logs tell, plus the event, result and trace header."""
        return self.cloud.records(self.name(base))

    def wait_until_quiet(self, base: str, count: int, *, timeout: float = 60.0) -> list[Invocation]:
        """The runtime knows when nothing runs or waits (pollers and retries included)."""
        if not self.cloud.settle(timeout):
            raise reports.SettleTimeout(f"the local cloud was still busy {timeout:g} s later")
        return self.invocations(base)

    def log_messages(self, base: str, pattern: str = "") -> list[str]:
        self.cloud.runtime.flush_logs()
        return super().log_messages(base, pattern)

    def _poll_interval(self) -> float:
        self.cloud.runtime.flush_logs()
        return 0.1

    def close(self) -> None:
        if self._closed:
            return
        try:
            super().close()
        finally:
            self.cloud.close()
