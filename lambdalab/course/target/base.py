"""What a notebook does to a cloud, through boto3 alone, so the same cell runs on either target.

`CloudTarget` holds a boto3 session, the run (`runs.Run`: prefix and tags) and the helpers a
lesson needs beyond single API calls: a role with the lesson's policy and logging scoped to the
run's own log groups; a function created from the package `lambdalab build` makes, with its log
group created first (tagged, with a retention) and a retry while a new role propagates (IAM is
eventually consistent); invocations; REPORT records and "settled" read from CloudWatch Logs
(`reports`); and `close()`, which tears the run down and proves nothing is left (`teardown`).
`LocalTarget` and `AwsTarget` differ only in where the session points and what they check first.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from lambdalab.build.package import build
from lambdalab.build.targets import Target as BuildTarget
from lambdalab.cloud.http_endpoints import EXECUTE_API_PREFIX
from lambdalab.course.target import reports, teardown
from lambdalab.course.target.runs import Run
from lambdalab.runtime.errors import LambdaLabError
from lambdalab.runtime.records import Invocation

LOG_RETENTION_DAYS = 1  # a lesson's logs are read within the hour; a day is the shortest retention
ROLE_PROPAGATION_S = 30.0  # how long a new role may take to become assumable by Lambda
# On AWS only the logs tell when a function has stopped: no new REPORT line for this long
# (S3, EventBridge and the pollers hand an event over within a second or two).
QUIET_S = 6.0
# A stand-in on loopback (`lambdalab cloud --iam`) hands events over in milliseconds: its tests
# shorten the window with this variable rather than wait as long as AWS needs.
QUIET_ENV = "LAMBDALAB_QUIET_S"


def quiet_seconds(env: Mapping[str, str] | None = None) -> float:
    """How long a function's logs must gain no REPORT line before a lesson takes it as stopped."""
    raw = (os.environ if env is None else env).get(QUIET_ENV, "")
    if not raw:
        return QUIET_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 600:
        raise ValueError(f"{QUIET_ENV}={raw!r}: give the seconds a function's logs must stay quiet, "
                         f"a number in (0, 600] (default {QUIET_S:g})")
    return value


T = TypeVar("T")


class TeardownIncomplete(LambdaLabError):
    """A teardown left resources behind (listed in the message)."""


def trust_policy(service: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}


class CloudTarget:
    """A cloud reached through boto3, with one run's names and tags."""

    kind = "cloud"

    def __init__(self, session: Any, run: Run, account_id: str, build_target: BuildTarget | None = None,
                 online_build: bool = False):
        self.session = session
        self.run = run
        self.account_id = account_id
        self.region = session.region_name
        self._build_target = build_target
        self._online_build = online_build  # Lambda's platform wheels come from the index, not the local wheelhouse
        self._closed = False
        self._clients: dict[str, Any] = {}
        self.endpoint_url: str | None = None  # where the clients go when not to AWS's own endpoints

    # -- names and clients ---------------------------------------------------------------------
    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for `service` on this target (one per service, made on first use)."""
        if kwargs:
            return self._make_client(service, **kwargs)
        if service not in self._clients:
            self._clients[service] = self._make_client(service)
        return self._clients[service]

    def _make_client(self, service: str, **kwargs: Any) -> Any:
        return self.session.client(service, **kwargs)

    def name(self, base: str) -> str:
        """`base` with the run's prefix (`lw-<run>-base`)."""
        return self.run.name(base)

    @property
    def tags(self) -> dict[str, str]:
        return self.run.tags()

    def tag_list(self, key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
        """The tags as the APIs that take a list of pairs want them (IAM, EventBridge, Scheduler)."""
        return [{key: k, value: v} for k, v in self.tags.items()]

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{resource}"

    def stage_url(self, api_id: str, stage: str) -> str:
        """The invoke URL of a REST API's stage: on AWS `https://{api}.execute-api.{region}.amazonaws.com/{stage}`;
        a local cloud (or the `lambdalab cloud` stand-in at AWS_ENDPOINT_URL) serves it at
        `{endpoint}/_aws/execute-api/{api}/{stage}`."""
        if self.endpoint_url:
            return f"{self.endpoint_url.rstrip('/')}{EXECUTE_API_PREFIX}{api_id}/{stage}"
        return f"https://{api_id}.execute-api.{self.region}.amazonaws.com/{stage}"

    # -- roles -----------------------------------------------------------------------------------
    def logging_statement(self, function: str) -> dict[str, Any]:
        """Writing the function's own log streams, and nothing else (its group exists already)."""
        return {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": self.arn("logs", f"log-group:{reports.log_group(function)}:*")}

    def create_bucket(self, base: str) -> str:
        """A tagged S3 bucket named for the run, in the target's Region; returns its name."""
        s3 = self.client("s3")
        name = self.name(base)
        # us-east-1 refuses a LocationConstraint naming itself.
        where = {} if self.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
        s3.create_bucket(Bucket=name, **where)
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": self.tag_list()})
        return name

    def create_role(self, base: str, statements: list[dict[str, Any]], *,
                    service: str = "lambda.amazonaws.com") -> str:
        """A role `service` may assume, with `statements` as its one inline policy; returns its ARN."""
        iam = self.client("iam")
        name = self.name(base)
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy(service)),
                               Description=f"serverless-workbook run {self.run.run_id}", Tags=self.tag_list())
        if statements:
            iam.put_role_policy(RoleName=name, PolicyName="lesson",
                                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
        return role["Role"]["Arn"]

    # -- functions -------------------------------------------------------------------------------
    def package(self, code_dir: str | Path) -> bytes:
        """The deployment package `lambdalab build` makes for where this target runs functions."""
        return build(code_dir, target=self._build_target, online=self._online_build).zip_bytes()

    def create_function(self, base: str, code_dir: str | Path, handler: str, *, role: str,
                        memory: int = 128, timeout: int = 3, env: Mapping[str, str] | None = None,
                        runtime: str = "python3.12", **options: Any) -> dict[str, Any]:
        """Create the function from the built package, its log group first; returns its configuration."""
        name = self.name(base)
        self.log_group(name)
        spec = {"FunctionName": name, "Runtime": runtime, "Role": role, "Handler": handler,
                "MemorySize": memory, "Timeout": timeout, "Code": {"ZipFile": self.package(code_dir)},
                "Environment": {"Variables": dict(env or {})}, "Tags": self.tags, **options}
        lam = self.client("lambda")
        config = self.once_role_is_assumable(lambda: lam.create_function(**spec))
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        return config

    def log_group(self, function: str) -> str:
        """Create the function's log group before the function, tagged and with a short retention
        (Lambda would create it untagged and keep its logs forever); returns its name."""
        logs = self.client("logs")
        group = reports.log_group(function)
        try:
            logs.create_log_group(logGroupName=group, tags=self.tags)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        logs.put_retention_policy(logGroupName=group, retentionInDays=LOG_RETENTION_DAYS)
        return group

    @staticmethod
    def once_role_is_assumable(call: Callable[[], T]) -> T:
        """`call()` (a CreateFunction), retried while Lambda says the role cannot be assumed yet:
        IAM is eventually consistent, and a role made seconds ago may not have reached Lambda."""
        deadline = time.monotonic() + ROLE_PROPAGATION_S
        while True:
            try:
                return call()
            except ClientError as e:
                if "cannot be assumed" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(2.0)

    def invoke(self, base: str, event: Any = None, *, invocation_type: str = "RequestResponse") -> dict[str, Any]:
        """Invoke the function; returns status, the parsed payload and the function error (if any)."""
        answer = self.client("lambda").invoke(FunctionName=self.name(base), InvocationType=invocation_type,
                                              Payload=json.dumps(event if event is not None else {}).encode())
        raw = answer["Payload"].read()
        return {"StatusCode": answer["StatusCode"], "FunctionError": answer.get("FunctionError"),
                "Payload": json.loads(raw) if raw else None}

    # -- records ---------------------------------------------------------------------------------
    def records(self, base: str) -> list[reports.LoggedReport]:
        """The function's invocations as its REPORT lines in CloudWatch Logs, oldest first."""
        return reports.read_reports(self.client("logs"), self.name(base))

    def invocations(self, base: str) -> list[Invocation]:
        """The function's invocations as its logs tell them (`reports.read_invocations`), oldest first."""
        return reports.read_invocations(self.client("logs"), self.name(base))

    def wait_until_quiet(self, base: str, count: int, *, timeout: float = 60.0) -> list[Invocation]:
        """Wait until the function's logs show at least `count` invocations and then no new one
        for `quiet_seconds()` (retries and follow-on events included); returns its invocations.
        Raises `reports.SettleTimeout` when `timeout` passes first."""
        deadline = time.monotonic() + timeout
        seen = len(reports.wait_for_reports(self.client("logs"), self.name(base), count, timeout=timeout,
                                            poll=self._poll_interval()))
        since, quiet = time.monotonic(), quiet_seconds()
        while time.monotonic() - since < quiet:
            if time.monotonic() > deadline:
                raise reports.SettleTimeout(f"{self.name(base)} was still running {timeout:g} s later")
            time.sleep(self._poll_interval())
            now = len(self.records(base))
            if now != seen:
                seen, since = now, time.monotonic()
        return self.invocations(base)

    def log_messages(self, base: str, pattern: str = "") -> list[str]:
        """The function's log lines matching a CloudWatch Logs filter pattern, oldest first."""
        return [event["message"] for event in reports.read_events(self.client("logs"), self.name(base), pattern)]

    def settle(self, base: str, count: int, *, timeout: float = 60.0) -> list[reports.LoggedReport]:
        """Wait, with a progress bar, until the logs show `count` invocations of the function."""
        from tqdm.auto import tqdm

        with tqdm(total=count, desc=f"REPORT lines of {base}", leave=False) as bar:
            def progress(n: int) -> None:
                bar.update(min(n, count) - bar.n)
            return reports.wait_for_reports(self.client("logs"), self.name(base), count, timeout=timeout,
                                            poll=self._poll_interval(), progress=progress)

    def _poll_interval(self) -> float:
        return min(2.0, quiet_seconds() / 3)

    # -- teardown --------------------------------------------------------------------------------
    def leftovers(self) -> list[teardown.Resource]:
        return teardown.inventory(self.client, self.run.prefix)

    def teardown(self) -> list[teardown.Resource]:
        """Delete everything the run created; raise `TeardownIncomplete` if a listing still finds some."""
        left = teardown.teardown(self.client, self.run.prefix)
        if left:
            raise TeardownIncomplete(f"run {self.run.run_id}: still there after teardown: "
                                     + ", ".join(f"{r.kind} {r.name}" for r in left))
        return left

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.teardown()

    def __enter__(self) -> "CloudTarget":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
