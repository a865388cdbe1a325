"""The local cloud: moto's AWS services on 127.0.0.1 joined to the local Lambda runtime.

`LocalCloud` is the learner's API. It starts moto's server in this process (`lambdalab.cloud.server`,
with the patches of `lambdalab.cloud.moto` applied, so they reach the cloud's `LambdaService`) and a
`LocalRuntime` whose workers talk to that server (`AWS_ENDPOINT_URL`), so handler code runs
unchanged here or on AWS. Functions created through the Lambda API run in the runtime with
their configuration; S3, SNS, SQS and DynamoDB Streams triggers run the real handlers; each
function gets its execution role's STS credentials; START/END/REPORT lines and handler output go
to CloudWatch Logs in moto; recursive loops are stopped after 16 hops. HTTP APIs
(`apigatewayv2`) and function URLs answer at the `http://127.0.0.1:PORT` address their API
returns, and REST APIs' stages at `{endpoint}/_aws/execute-api/{api id}/{stage}`
(`lambdalab.cloud.http_endpoints`); EventBridge Scheduler schedules fire on the same
clock as scheduled rules (`cloud.events.clock`, `lambdalab.cloud.scheduler`). Step Functions
executions run (moto's ASL interpreter), their tasks calling this cloud as the state machine's role
(`lambdalab.cloud.moto.stepfunctions`), so a Lambda task is an invocation in the runtime.

IAM enforcement (`iam_enforcement=True` or `enforce_iam(True)`) switches on moto's policy checks.
moto enforces them for S3, SQS, SNS, DynamoDB, IAM and STS (also CloudWatch Logs, EventBridge,
SSM, Secrets Manager and Step Functions), and `cloud/moto/iam.py` makes its checks AWS's: the
signature over the bytes sent (so Lambda, API Gateway v2 and Scheduler work under enforcement) and
the resource a Lambda, DynamoDB or Logs call names. The cloud's own clients use an administrator
user's keys.
Only one `LocalCloud` can be open in a process (moto's state is per process). Functions run
their `$LATEST` code whatever version or alias is invoked. Layers published with PublishLayerVersion
are extracted into the function's /opt as on Lambda.
`lambdalab cloud` runs a cloud in the foreground for other processes to use.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import threading
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lambdalab.cloud import moto as moto_patches
from lambdalab.cloud.http_endpoints import HttpEndpoints
from lambdalab.cloud.lambda_service import LambdaService
from lambdalab.cloud.metrics.service import CloudMetrics
from lambdalab.cloud.pollers import EventSourcePollers
from lambdalab.cloud.scheduler import SchedulerSource
from lambdalab.cloud.server import make_moto_server
from lambdalab.cloud.xray import LambdaTracer, StageTracer, XRayDaemon
from lambdalab.runtime.config import ACCOUNT_ID, REGION
from lambdalab.runtime.errors import InvalidParameterValueException, ResourceNotFoundException
from lambdalab.runtime.imports import python_tag

ADMIN_USER = "lambdalab-admin"
ADMIN_ACCESS_KEY_ID = "AKIALAMBDALABADMIN01"
DEFAULT_ROLE = "lambdalab-basic-execution"
LAMBDA_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}
# What AWSLambdaBasicExecutionRole grants: writing the function's own logs.
BASIC_EXECUTION_STATEMENTS = [{
    "Effect": "Allow",
    "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
    "Resource": "*",
}]

_open_lock = threading.Lock()
log = logging.getLogger(__name__)
_open_cloud: "LocalCloud | None" = None


def _each(*observers: Callable[[Any], None] | None) -> Callable[[Any], None]:
    """One runtime observer that calls each of `observers` in turn; one failing skips no other."""
    def observe(item: Any) -> None:
        for observer in observers:
            if observer is not None:
                try:
                    observer(item)
                except Exception:
                    log.exception("an invocation observer failed")
    return observe


def zip_directory(code_dir: str | Path) -> bytes:
    """A deployment package: every file under `code_dir`, paths relative to it."""
    root = Path(code_dir)
    if not root.is_dir():
        raise InvalidParameterValueException(f"code directory {str(root)!r} does not exist")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():  # bytecode too: a built package's dependencies ship theirs
                zf.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


class LocalCloud:
    """moto's AWS services plus the local Lambda runtime, on 127.0.0.1. A context manager."""

    def __init__(self, *, port: int = 0, region: str = REGION, iam_enforcement: bool = False,
                 account_concurrency: int = 10, idle_timeout_s: float = 600.0,
                 cpu_limit: bool | str = True, async_retry_delays: tuple[float, float] = (60.0, 120.0),
                 client: str = "auto", echo_logs: bool = False):
        if not 0 <= port <= 65535:
            raise InvalidParameterValueException(f"port {port!r} is outside 0-65535 (0 picks a free one)")
        self.region = region
        self.account_id = ACCOUNT_ID
        self.endpoint = ""
        self._port = port
        self._want_iam = iam_enforcement
        self._runtime_options = dict(account_concurrency=account_concurrency, idle_timeout_s=idle_timeout_s,
                                     cpu_limit=cpu_limit, async_retry_delays=async_retry_delays, client=client)
        self._admin_secret = secrets.token_urlsafe(30)[:40]
        self._lambda = LambdaService(region=region, account_id=self.account_id, echo_logs=echo_logs)
        self.endpoints = HttpEndpoints(self._lambda)  # moto's HTTP APIs and function URLs, served
        self.scheduler = SchedulerSource(self._lambda)  # EventBridge Scheduler, on the events clock
        self._session_lock = threading.Lock()
        self._patches: moto_patches.Patches | None = None
        self._server: Any = None
        self._pollers: EventSourcePollers | None = None
        self._iam_saved: tuple[float, int] | None = None
        self._session: Any = None
        self._events: Any = None
        self.cloudwatch: CloudMetrics | None = None
        self.xray: XRayDaemon | None = None  # AWS_XRAY_DAEMON_ADDRESS of every function
        self._open = False

    @property
    def runtime(self) -> Any:
        """The `LocalRuntime` the cloud's functions run in (None until the cloud starts)."""
        return self._lambda.runtime

    @property
    def echo_logs(self) -> bool:
        """Whether function log lines are also printed to stderr as they arrive."""
        return self._lambda.echo_logs

    @echo_logs.setter
    def echo_logs(self, on: bool) -> None:
        self._lambda.echo_logs = on

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> "LocalCloud":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> "LocalCloud":
        """Start moto's server and the runtime; idempotent."""
        global _open_cloud
        if self._open:
            return self
        with _open_lock:
            if _open_cloud is not None:
                raise RuntimeError("a LocalCloud is already open in this process (moto's state is "
                                   "per process); close it first or use cloud.reset()")
            _open_cloud = self
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        self._open = True
        self._patches = moto_patches.install(self._lambda, self.endpoints)
        self._server = make_moto_server(self._lambda, port=self._port, admin=(ADMIN_ACCESS_KEY_ID, self._admin_secret),
                                        endpoints=self.endpoints)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.xray = XRayDaemon()
        self._lambda.start(self.endpoint, self._runtime_options, xray_daemon=self.xray.address)
        self.cloudwatch = CloudMetrics(self._lambda.runtime, self.account_id, self.region)  # EMF, AWS/Lambda, alarms
        tracer = self._lambda.tracer = LambdaTracer(self.xray, self.account_id, self.region)
        self.endpoints.tracer = StageTracer(self.xray, self.account_id, self.region)
        runtime = self._lambda.runtime
        runtime.on_invocation = _each(runtime.on_invocation, tracer.on_invocation)
        self._create_admin()
        self.xray.start(lambda documents: self.client("xray").put_trace_segments(TraceSegmentDocuments=documents))
        self._pollers = EventSourcePollers(self._lambda)
        self._pollers.start()
        self.events  # noqa: B018 - EventBridge delivery must be in place before any rule targets a function
        if self._want_iam:
            self.enforce_iam(True)

    def close(self) -> None:
        """Stop everything the cloud started: pollers, workers, moto's server and its threads.

        Every step runs even when an earlier one fails (the first error is raised at the end),
        so a failing step never leaves workers running or the process's one cloud slot taken."""
        global _open_cloud
        errors: list[BaseException] = []

        def step(action: Any) -> None:
            try:
                action()
            except Exception as e:  # keep closing; report the first failure afterwards
                errors.append(e)

        if self._events is not None:
            step(self._events.close)
        self._events = None
        step(self.endpoints.close)
        if self._pollers is not None:
            step(self._pollers.stop)
            self._pollers = None
        if self.cloudwatch is not None:
            step(self.cloudwatch.close)
            self.cloudwatch = None
        if self.xray is not None:
            step(self.xray.close)
            self.xray = None
        self._lambda.close(step)
        if self._server is not None:
            step(self._server.stop)
            self._server = None
        if self._iam_saved is not None:
            step(lambda: self.enforce_iam(False))
        if self._patches is not None:
            step(self._patches.remove)
            self._patches = None
        if self._open:
            from moto.moto_api._internal.models import moto_api_backend
            step(moto_api_backend.reset)  # leave no state behind for the next cloud in this process
        self._open = False
        with _open_lock:
            if _open_cloud is self:
                _open_cloud = None
        if errors:
            raise errors[0]

    def reset(self) -> None:
        """Empty every service (moto's reset) and remove every function from the runtime."""
        self._check_open()
        if self._events is not None:
            self._events.reset()
        self.endpoints.reset()
        self.scheduler.invocations.clear()
        self._lambda.reset()
        if self.cloudwatch is not None:
            self.cloudwatch.reset()
        if self.xray is not None:
            self.xray.flush()  # segments of what ran before the reset belong to the emptied X-Ray
        if self._lambda.tracer is not None:
            self._lambda.tracer.reset()
        from moto.moto_api._internal.models import moto_api_backend
        moto_api_backend.reset()
        if self._pollers is not None:
            self._pollers.reset()
        self._create_admin()

    def _check_open(self) -> None:
        if not self._open:
            raise RuntimeError("this LocalCloud is not open; use it as a context manager or call start()")

    # -- what a client needs -------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """The environment variables that point boto3 and the AWS CLI at this cloud."""
        self._check_open()
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ADMIN_ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": self._admin_secret, "AWS_DEFAULT_REGION": self.region}

    def control(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """Call moto's control plane (`/moto-api/...`), signed with the administrator key, which
        is the only caller it answers; returns (status, body)."""
        import urllib.error
        import urllib.request

        from lambdalab.cloud.admin_auth import sign_admin_request

        self._check_open()
        url = self.endpoint + path
        headers = sign_admin_request(method, url, body, ADMIN_ACCESS_KEY_ID, self._admin_secret, self.region)
        request = urllib.request.Request(url, data=body or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for `service` pointed at this cloud (administrator credentials)."""
        self._check_open()
        if self._session is None:
            import boto3
            self._session = boto3.session.Session(
                aws_access_key_id=ADMIN_ACCESS_KEY_ID, aws_secret_access_key=self._admin_secret,
                region_name=self.region)
        kwargs.setdefault("endpoint_url", self.endpoint)
        with self._session_lock:  # a boto3 Session is not safe to make clients from in parallel
            return self._session.client(service, **kwargs)

    @property
    def events(self) -> Any:
        """EventBridge rules and schedules delivered to functions (`lambdalab.cloud.eventbridge.delivery`)."""
        self._check_open()
        if self._events is None:
            from lambdalab.cloud.eventbridge import delivery as eventbridge
            self._events = eventbridge.attach(self._lambda, checks_permissions=lambda: self.iam_enforced)
            self._events.clock.add_source(self.scheduler)
        return self._events

    # -- identity ------------------------------------------------------------------------------
    def _iam(self) -> Any:
        from moto.iam.models import iam_backends
        return iam_backends[self.account_id]["global"]

    def _create_admin(self) -> None:
        """An IAM user allowed everything, whose fixed keys the cloud's own clients use."""
        iam = self._iam()
        if ADMIN_USER not in iam.users:
            iam.create_user(self.region, ADMIN_USER)
            iam.put_user_policy(ADMIN_USER, "administrator", json.dumps({
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
            key = iam.create_access_key(ADMIN_USER)
            for key_id, value in list(iam.access_keys.items()):
                if value is key:
                    del iam.access_keys[key_id]
            key.access_key_id = ADMIN_ACCESS_KEY_ID
            key.secret_access_key = self._admin_secret
            iam.access_keys[ADMIN_ACCESS_KEY_ID] = key

    def create_role(self, name: str, statements: list[dict[str, Any]] | None = None,
                    basic_execution: bool = True) -> str:
        """An execution role Lambda can assume, with `statements` as its inline policy; returns its ARN."""
        self._check_open()
        iam = self._iam()
        try:
            role = iam.get_role(name)
        except Exception:
            role = iam.create_role(name, json.dumps(LAMBDA_TRUST_POLICY), "/", None,
                                   f"lambdalab execution role {name}", [], None)
        policy = list(BASIC_EXECUTION_STATEMENTS if basic_execution else []) + list(statements or [])
        if policy:
            iam.put_role_policy(name, "inline", json.dumps({"Version": "2012-10-17", "Statement": policy}))
        return role.arn

    def enforce_iam(self, on: bool = True) -> None:
        """Turn moto's IAM policy checks on or off for every request from now on."""
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin

        if on:
            self._check_open()
            if self._iam_saved is None:
                self._iam_saved = (settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count)
            settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
            ActionAuthenticatorMixin.request_count = 0
        elif self._iam_saved is not None:
            settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count = self._iam_saved
            self._iam_saved = None

    @property
    def iam_enforced(self) -> bool:
        return self._iam_saved is not None

    # -- deploying -----------------------------------------------------------------------------
    def default_role(self) -> str:
        """A role with only basic execution rights (logs), created on first use."""
        return self.create_role(DEFAULT_ROLE)

    def deploy(self, name: str, code_dir: str | Path, handler: str, *, role: str | None = None,
               memory: int = 128, timeout: int = 3, env: Mapping[str, str] | None = None,
               runtime: str | None = None, **options: Any) -> dict[str, Any]:
        """Zip `code_dir` and create the function with the Lambda API (or update it if it exists).

        `runtime` is the declared one, by default the Python that runs the workers here (`python_tag`).
        `options` are further CreateFunction parameters, e.g. `DeadLetterConfig` or `Layers`.
        Returns the function's configuration as GetFunctionConfiguration does.
        """
        self._check_open()
        spec: dict[str, Any] = {"FunctionName": name, "Runtime": runtime or python_tag(),
                                "Role": role or self.default_role(), "Handler": handler,
                                "MemorySize": memory, "Timeout": timeout,
                                "Environment": {"Variables": dict(env or {})}, **options}
        package = zip_directory(code_dir)
        lam = self.client("lambda")
        try:
            lam.get_function(FunctionName=name)
        except lam.exceptions.ResourceNotFoundException:
            return lam.create_function(Code={"ZipFile": package}, **spec)
        lam.update_function_code(FunctionName=name, ZipFile=package)
        spec.pop("FunctionName")
        for key in ("Runtime", "Tags", "Publish", "PackageType", "Architectures", "Code"):
            spec.pop(key, None)
        return lam.update_function_configuration(FunctionName=name, **spec)

    # -- inspecting ----------------------------------------------------------------------------
    def records(self, name: str | None = None) -> list[Any]:
        """Every `Invocation` of a function (or of all functions)."""
        self._check_open()
        return self.runtime.records(name)

    def metrics(self, name: str) -> dict[str, int]:
        """CloudWatch-style counts for a function since it was created."""
        self._check_open()
        try:
            records = self.runtime.records(name)
        except ResourceNotFoundException:
            records = []
        return {"Invocations": len(records), "Errors": sum(1 for r in records if not r.ok),
                "RecursiveInvocationsDropped": self._lambda.guard.dropped(name)}

    def logs(self, name: str) -> list[str]:
        """Every message in the function's CloudWatch log group in moto, oldest first."""
        self._check_open()
        self.runtime.flush_logs()
        from moto.logs.models import logs_backends
        group = logs_backends[self.account_id][self.region].groups.get(f"/aws/lambda/{name}")
        if group is None:
            return []
        events = [e for stream in group.streams.values() for e in stream.events]
        return [e.message for e in sorted(events, key=lambda e: e.timestamp)]

    def settle(self, timeout: float = 30.0) -> bool:
        """Wait until no invocation runs, no async event waits (retries included) and no queue or
        stream with an event source mapping holds unprocessed records (messages waiting out a
        visibility timeout included). Returns False if that did not happen within `timeout`."""
        self._check_open()
        deadline = time.monotonic() + timeout
        quiet_rounds = 0
        while time.monotonic() < deadline:
            idle = self.runtime.wait_idle(timeout=max(0.0, deadline - time.monotonic()))
            busy = self._pollers is not None and self._pollers.busy()
            quiet_rounds = quiet_rounds + 1 if idle and not busy else 0
            if quiet_rounds >= 3:
                self.runtime.flush_logs()
                return True
            time.sleep(0.05)
        return False

    # -- invoking from Python -------------------------------------------------------------------
    def invoke(self, name: str, event: Any = None, *, trace_header: str | None = None) -> Any:
        """A synchronous invocation from Python (e.g. an HTTP API route): returns the `Invocation`.

        Raises `ResourceNotFoundException` for an unknown function and
        `TooManyRequestsException` when the function is at its concurrency limit.
        """
        self._check_open()
        return self._lambda.invoke(name, event, trace_header=trace_header)

    def set_recursive_loop(self, name: str, mode: str) -> None:
        """Python shortcut for PutFunctionRecursionConfig (`Allow` or `Terminate`)."""
        self._check_open()
        self._lambda.set_recursive_loop(name, mode)
