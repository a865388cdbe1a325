"""The local cloud: moto's AWS services on 127.0.0.1 joined to the local Lambda runtime.

`LocalCloud` starts moto's server in this process (so the seam in `lambdalab.cloud.seam` applies) and
a `LocalRuntime` whose workers talk to that server (`AWS_ENDPOINT_URL`), so handler code runs
unchanged here or on AWS. Functions created through the Lambda API run in the runtime with
their configuration; S3, SNS, SQS and DynamoDB Streams triggers run the real handlers; each
function gets its execution role's STS credentials; START/END/REPORT lines and handler output go
to CloudWatch Logs in moto; recursive loops are stopped after 16 hops.

IAM enforcement (`iam_enforcement=True` or `enforce_iam(True)`) switches on moto's policy checks.
moto enforces them for S3, SQS, SNS, DynamoDB, IAM and STS (also CloudWatch Logs, EventBridge,
SSM, Secrets Manager and Step Functions); its Lambda API fails signature checks while
enforcement is on, so in that mode the cloud deploys through its Python API (`deploy`), the
cloud's own clients use an administrator user's keys, and a handler cannot call the Lambda API.
Only one `LocalCloud` can be open in a process (moto's state is per process). Functions run
their `$LATEST` code whatever version or alias is invoked; layers are not mounted.
`lambdalab cloud` runs a cloud in the foreground for other processes to use.
"""

from __future__ import annotations

import base64
import io
import json
import secrets
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from lambdalab.cloud import seam
from lambdalab.cloud.loops import RecursionGuard
from lambdalab.cloud.seam import BatchOutcome, LambdaApiError, function_name_from
from lambdalab.runtime.config import ACCOUNT_ID, REGION, FunctionConfig
from lambdalab.runtime.errors import (
    InvalidParameterValueException,
    RequestTooLargeException,
    ResourceNotFoundException,
    TooManyRequestsException,
)

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
TAIL_BYTES = 4096

_open_lock = threading.Lock()
_open_cloud: "LocalCloud | None" = None


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
        self.echo_logs = echo_logs
        self._port = port
        self._want_iam = iam_enforcement
        self._runtime_options = dict(account_concurrency=account_concurrency, idle_timeout_s=idle_timeout_s,
                                     cpu_limit=cpu_limit, async_retry_delays=async_retry_delays, client=client)
        self._admin_secret = secrets.token_urlsafe(30)[:40]
        self._guard = RecursionGuard()
        self._provisioned: dict[str, dict[str, int]] = {}
        self._code_lock = threading.Lock()
        self._session_lock = threading.Lock()
        self._logs_lock = threading.Lock()
        self._patches = seam.Patches()
        self._server: Any = None
        self._pollers: seam.EventSourcePollers | None = None
        self._workdir: tempfile.TemporaryDirectory | None = None
        self._iam_saved: tuple[float, int] | None = None
        self._session: Any = None
        self._events: Any = None
        self._http: Any = None
        self.runtime: Any = None
        self._open = False

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
        from lambdalab.runtime.service import LocalRuntime

        self._open = True
        self._workdir = tempfile.TemporaryDirectory(prefix="lambdalab-cloud-")
        seam.install(self, self._patches)
        self._server = seam.make_moto_server(self, port=self._port)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.runtime = LocalRuntime(
            **self._runtime_options,
            extra_env={"AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": self.region},
            credentials=self._credentials, log_sink=self._log_sink, on_async_failure=self._on_async_failure)
        self._create_admin()
        self._pollers = seam.EventSourcePollers(self)
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

        for attached in (self._events, self._http):
            if attached is not None and hasattr(attached, "close"):
                step(attached.close)
        self._events = self._http = None
        if self._pollers is not None:
            step(self._pollers.stop)
            self._pollers = None
        if self.runtime is not None:
            step(self.runtime.close)
        if self._server is not None:
            step(self._server.stop)
            self._server = None
        if self._iam_saved is not None:
            step(lambda: self.enforce_iam(False))
        step(self._patches.remove)
        if self._open:
            from moto.moto_api._internal.models import moto_api_backend
            step(moto_api_backend.reset)  # leave no state behind for the next cloud in this process
        if self._workdir is not None:
            step(self._workdir.cleanup)
            self._workdir = None
        self._open = False
        with _open_lock:
            if _open_cloud is self:
                _open_cloud = None
        if errors:
            raise errors[0]

    def reset(self) -> None:
        """Empty every service (moto's reset) and remove every function from the runtime."""
        self._check_open()
        for attached in (self._events, self._http):
            if attached is not None and hasattr(attached, "reset"):
                attached.reset()
        for name in self.runtime.functions():
            self.runtime.remove(name)
        from moto.moto_api._internal.models import moto_api_backend
        moto_api_backend.reset()
        if self._pollers is not None:
            self._pollers.reset()
        self._guard.reset()
        self._provisioned.clear()
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
            self._events = eventbridge.attach(self)
        return self._events

    @property
    def http(self) -> Any:
        """The local HTTP API endpoint (`lambdalab.cloud.apigateway`)."""
        self._check_open()
        if self._http is None:
            from lambdalab.cloud import apigateway
            self._http = apigateway.attach(self)
        return self._http

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

    def _credentials(self, config: FunctionConfig) -> dict[str, str]:
        """The execution role's temporary credentials from STS, as Lambda puts them in the environment."""
        if not config.role_arn:
            return {}
        from moto.sts.models import sts_backends
        sts = sts_backends[config.account_id]["global"]
        role = sts.assume_role(region_name=config.region, role_session_name=config.name,
                               role_arn=config.role_arn, policy=None, duration=43200, external_id=None)
        return {"AWS_ACCESS_KEY_ID": role.access_key_id, "AWS_SECRET_ACCESS_KEY": role.secret_access_key,
                "AWS_SESSION_TOKEN": role.session_token}

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
               runtime: str = "python3.12", **options: Any) -> dict[str, Any]:
        """Zip `code_dir` and create the function with the Lambda API (or update it if it exists).

        `options` are further CreateFunction parameters, e.g. `DeadLetterConfig`.
        Returns the function's configuration as GetFunctionConfiguration does.
        """
        self._check_open()
        spec: dict[str, Any] = {"FunctionName": name, "Runtime": runtime, "Role": role or self.default_role(),
                                "Handler": handler, "MemorySize": memory, "Timeout": timeout,
                                "Environment": {"Variables": dict(env or {})}, **options}
        package = zip_directory(code_dir)
        if self.iam_enforced:
            return self._deploy_direct(spec, package)
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

    def _deploy_direct(self, spec: dict[str, Any], package: bytes) -> dict[str, Any]:
        """Deploy through moto's Python API (its Lambda HTTP API is unusable under IAM enforcement)."""
        backend = self._lambda_backend()
        zipped = base64.b64encode(package).decode()
        try:
            backend.get_function(spec["FunctionName"])
        except Exception:
            fn = backend.create_function({**spec, "Code": {"ZipFile": zipped}})
            return fn.get_configuration()
        backend.update_function_code(spec["FunctionName"], None, {"ZipFile": zipped})
        body = {k: v for k, v in spec.items() if k not in ("FunctionName", "Runtime")}
        return backend.update_function_configuration(spec["FunctionName"], None, body)

    def _lambda_backend(self, account_id: str | None = None, region: str | None = None) -> Any:
        from moto.awslambda.models import lambda_backends
        return lambda_backends[account_id or self.account_id][region or self.region]

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
                "RecursiveInvocationsDropped": self._guard.dropped(name)}

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

    # -- the Lambda service behind the seam ----------------------------------------------------
    def _code_dir(self, fn: Any) -> Path:
        """The function's deployment package, extracted once per code version."""
        assert self._workdir is not None
        target = Path(self._workdir.name) / "functions" / fn.function_name / fn.code_digest[:16]
        with self._code_lock:
            if not target.is_dir():
                partial = target.with_name(target.name + ".partial")
                try:
                    with zipfile.ZipFile(io.BytesIO(fn.code_bytes)) as zf:
                        zf.extractall(partial)
                except zipfile.BadZipFile:
                    raise LambdaApiError(400, "InvalidParameterValueException",
                                         "Could not unzip uploaded file. Please check your file, then try to upload again.")
                partial.rename(target)
        return target

    def _config_for(self, fn: Any) -> FunctionConfig:
        reserved = fn.reserved_concurrency
        try:
            return FunctionConfig(
                name=fn.function_name, code_dir=self._code_dir(fn), handler=fn.handler or "",
                memory_mb=int(fn.memory_size), timeout_s=float(fn.timeout),
                environment=dict(fn.environment_vars or {}), ephemeral_storage_mb=int(fn.ephemeral_storage),
                reserved_concurrency=None if reserved is None else int(reserved),
                provisioned_concurrency=sum(self._provisioned.get(fn.function_name, {}).values()),
                architecture=(fn.architectures or ["x86_64"])[0], region=fn.region,
                account_id=fn.account_id, role_arn=fn.role)
        except InvalidParameterValueException as e:
            raise LambdaApiError(400, "InvalidParameterValueException", str(e)) from None

    def function_created(self, fn: Any) -> None:
        self.runtime.deploy(self._config_for(fn))
        self._apply_event_config(fn)

    def function_changed(self, fn: Any) -> None:
        name = fn.function_name
        if name not in self.runtime.functions():
            return self.function_created(fn)
        new = self._config_for(fn)
        old = self.runtime.get(name)
        if replace(old, reserved_concurrency=new.reserved_concurrency) == new:
            # Reserving concurrency keeps warm environments, as on Lambda.
            if old.reserved_concurrency != new.reserved_concurrency:
                self._run_api(lambda: self.runtime.set_reserved_concurrency(name, new.reserved_concurrency))
        else:
            self._run_api(lambda: self.runtime.deploy(new))
        self._apply_event_config(fn)

    def function_deleted(self, name: str) -> None:
        self._provisioned.pop(name, None)
        self._guard.forget(name)
        if name in self.runtime.functions():
            self.runtime.remove(name)

    @staticmethod
    def _run_api(call: Any) -> Any:
        try:
            return call()
        except InvalidParameterValueException as e:
            raise LambdaApiError(400, "InvalidParameterValueException", str(e)) from None

    def _apply_event_config(self, fn: Any) -> None:
        config = fn.event_invoke_config[-1].config if fn.event_invoke_config else {}
        on_success = ((config.get("DestinationConfig") or {}).get("OnSuccess") or {}).get("Destination")
        settings: dict[str, Any] = {
            "maximum_retry_attempts": int(config.get("MaximumRetryAttempts", 2)),
            "maximum_event_age_s": float(config.get("MaximumEventAgeInSeconds", 21600)),
            "on_success": (lambda record, dest=on_success: self._send_record(dest, record, "Success"))
            if on_success else None,
        }
        self._run_api(lambda: self.runtime.set_event_invoke_config(fn.function_name, **settings))

    def _known(self, fn: Any) -> str:
        name = fn.function_name
        if name not in self.runtime.functions():
            # A function created before this cloud opened, or by a backend we did not patch.
            self.function_created(fn)
        return name

    def invoke_api(self, fn: Any, payload: bytes, invocation_type: str, log_type: str | None,
                   trace_header: str | None, response_headers: dict[str, Any]) -> bytes:
        """The Invoke API: RequestResponse, Event and DryRun, with LogType=Tail."""
        name = self._known(fn)
        if invocation_type not in ("RequestResponse", "Event", "DryRun"):
            raise LambdaApiError(400, "InvalidParameterValueException",
                                 f"Invocation type {invocation_type!r} is not one of RequestResponse, Event, DryRun")
        if log_type not in (None, "None", "Tail"):
            raise LambdaApiError(400, "InvalidParameterValueException", f"LogType {log_type!r} is not None or Tail")
        if invocation_type == "DryRun":
            return b""
        try:
            event = json.loads(payload) if payload.strip() else {}
        except ValueError as e:
            raise LambdaApiError(400, "InvalidRequestContentException",
                                 f"Could not parse request body into json: {e}") from None
        admission = self._guard.admit(name, fn.function_arn.split(":$LATEST")[0], trace_header)
        try:
            if invocation_type == "Event":
                if admission.stopped:
                    self.runtime.dead_letter(name, event, "RecursiveInvocationException")
                else:
                    self.runtime.invoke_async(name, event, trace_header=admission.header)
                return b""
            if admission.stopped:
                raise LambdaApiError(400, "RecursiveInvocationException",
                                     "Lambda has detected your function being invoked in a recursive loop "
                                     "with other AWS resources and stopped your function's invocation.")
            inv = self.runtime.invoke(name, event, trace_header=admission.header)
        except TooManyRequestsException as e:
            raise LambdaApiError(429, "TooManyRequestsException", "Rate Exceeded.", Reason=e.reason) from None
        except RequestTooLargeException as e:
            raise LambdaApiError(413, "RequestTooLargeException", str(e)) from None
        response_headers["X-Amz-Executed-Version"] = "$LATEST"
        if inv.function_error:
            response_headers["x-amz-function-error"] = inv.function_error
        if log_type == "Tail":
            tail = ("\n".join(inv.log_lines) + "\n").encode()[-TAIL_BYTES:]
            response_headers["x-amz-log-result"] = base64.b64encode(tail).decode()
        return inv.payload

    def deliver(self, function_ref: str, event: Any, trace_header: str | None = None) -> Any:
        """An asynchronous invocation by a trigger (S3, SNS, EventBridge, a destination).

        `function_ref` is a name or ARN. Returns the runtime's `AsyncEvent`, or None when the
        function does not exist (the delivery is lost, as from S3 or SNS) or the recursion
        guard stopped it (the event went to the dead-letter queue / on-failure destination).
        """
        name = function_name_from(function_ref)
        try:
            fn = self._lambda_backend(*_account_region(function_ref, self)).get_function(name)
        except Exception:
            return None
        self._known(fn)
        admission = self._guard.admit(name, fn.function_arn, trace_header)
        if admission.stopped:
            self.runtime.dead_letter(name, event, "RecursiveInvocationException")
            return None
        return self.runtime.invoke_async(name, event, trace_header=admission.header)

    def invoke(self, name: str, event: Any = None, *, trace_header: str | None = None) -> Any:
        """A synchronous invocation from Python (e.g. an HTTP API route): returns the `Invocation`.

        Raises `ResourceNotFoundException` for an unknown function and
        `TooManyRequestsException` when the function is at its concurrency limit.
        """
        self._check_open()
        try:
            fn = self._function_or_404(function_name_from(name))
        except LambdaApiError as e:
            raise ResourceNotFoundException(e.message) from None
        self._known(fn)
        admission = self._guard.admit(fn.function_name, fn.function_arn, trace_header)
        if admission.stopped:
            raise InvalidParameterValueException(
                f"RecursiveInvocationException: {fn.function_name} was stopped after "
                f"{self._guard.max_hops} invocations in one chain")
        return self.runtime.invoke(fn.function_name, {} if event is None else event,
                                   trace_header=admission.header)

    def invoke_batch(self, function_arn: str, event: dict, trace_header: str | None) -> BatchOutcome:
        """A synchronous invocation by an event source mapping (SQS, DynamoDB Streams)."""
        name = function_name_from(function_arn)
        try:
            fn = self._lambda_backend(*_account_region(function_arn, self)).get_function(name)
            self._known(fn)
        except Exception:
            return BatchOutcome(invoked=False, ok=False)
        admission = self._guard.admit(name, fn.function_arn, trace_header)
        if admission.stopped:
            return BatchOutcome(invoked=False, ok=False)
        try:
            inv = self.runtime.invoke(name, event, trace_header=admission.header)
        except (TooManyRequestsException, ResourceNotFoundException, RuntimeError):
            return BatchOutcome(invoked=False, ok=False)
        return BatchOutcome(invoked=True, ok=inv.ok, result=inv.result)

    def provisioned_concurrency(self, function_name: str, qualifier: str | None, method: str,
                                body: dict) -> tuple[int, dict]:
        """Put/Get/Delete/List ProvisionedConcurrencyConfig (moto has none of them)."""
        fn = self._function_or_404(function_name)
        configs = self._provisioned.setdefault(fn.function_name, {})
        if method == "LIST":
            return 200, {"ProvisionedConcurrencyConfigs": [
                {"FunctionArn": f"{fn.function_arn}:{q}", **_pc_status(n)} for q, n in configs.items()]}
        if not qualifier:
            raise LambdaApiError(400, "InvalidParameterValueException", "Qualifier is required")
        self._check_qualifier(fn, qualifier)
        if method == "GET":
            if qualifier not in configs:
                raise LambdaApiError(404, "ProvisionedConcurrencyConfigNotFoundException",
                                     "No Provisioned Concurrency Config found for this function")
            return 200, _pc_status(configs[qualifier])
        if method == "DELETE":
            configs.pop(qualifier, None)
            self._run_api(lambda: self.runtime.set_provisioned_concurrency(fn.function_name, sum(configs.values())))
            return 204, {}
        if method != "PUT":
            raise LambdaApiError(400, "InvalidParameterValueException", f"method {method} is not supported")
        count = body.get("ProvisionedConcurrentExecutions")
        if not isinstance(count, int) or count < 1:
            raise LambdaApiError(400, "InvalidParameterValueException",
                                 "ProvisionedConcurrentExecutions must be an integer >= 1")
        total = sum(n for q, n in configs.items() if q != qualifier) + count
        reserved = fn.reserved_concurrency
        if reserved is not None and total > int(reserved):
            raise LambdaApiError(400, "InvalidParameterValueException",
                                 f"Requested Provisioned Concurrency ({total}) should not be greater than the "
                                 f"reservedConcurrentExecution for function ({reserved})")
        if total > self.runtime.account_concurrency:
            raise LambdaApiError(400, "InvalidParameterValueException",
                                 f"Requested Provisioned Concurrency ({total}) exceeds the account's concurrency "
                                 f"limit ({self.runtime.account_concurrency})")
        configs[qualifier] = count
        self._known(fn)
        self._run_api(lambda: self.runtime.set_provisioned_concurrency(fn.function_name, total))
        return 202, _pc_status(count)

    @staticmethod
    def _check_qualifier(fn: Any, qualifier: str) -> None:
        backend = _backend_of(fn)
        if qualifier == "$LATEST":
            raise LambdaApiError(400, "InvalidParameterValueException",
                                 "Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
        try:
            backend.get_function(fn.function_name, qualifier)
        except Exception:
            raise LambdaApiError(404, "ResourceNotFoundException",
                                 f"Function not found: {fn.function_arn}:{qualifier}") from None

    def recursion_config(self, function_name: str, method: str, body: dict) -> tuple[int, dict]:
        """Put/GetFunctionRecursionConfig (moto has neither)."""
        fn = self._function_or_404(function_name)
        if method == "PUT":
            mode = body.get("RecursiveLoop")
            try:
                self._guard.set_mode(fn.function_name, mode)
            except ValueError as e:
                raise LambdaApiError(400, "ValidationException", str(e)) from None
        elif method != "GET":
            raise LambdaApiError(400, "InvalidParameterValueException", f"method {method} is not supported")
        return 200, {"RecursiveLoop": self._guard.mode(fn.function_name)}

    def set_recursive_loop(self, name: str, mode: str) -> None:
        """Python shortcut for PutFunctionRecursionConfig (`Allow` or `Terminate`)."""
        self._function_or_404(name)
        self._guard.set_mode(name, mode)

    def _function_or_404(self, name: str) -> Any:
        try:
            return self._lambda_backend().get_function(name)
        except Exception:
            raise LambdaApiError(404, "ResourceNotFoundException",
                                 f"Function not found: arn:aws:lambda:{self.region}:{self.account_id}:function:{name}") from None

    # -- where logs and failed events go ------------------------------------------------------
    def _log_sink(self, function_name: str, log_stream: str, lines: list[tuple[int, str]]) -> None:
        from moto.logs.models import logs_backends

        logs = logs_backends[self.account_id][self.region]
        group = f"/aws/lambda/{function_name}"
        events = sorted(({"timestamp": ts, "message": text} for ts, text in lines), key=lambda e: e["timestamp"])
        with self._logs_lock:
            logs.ensure_log_group(group)
            logs.ensure_log_stream(group, log_stream)
            if events:
                logs.put_log_events(group, log_stream, events)
        if self.echo_logs:
            for _, text in lines:
                print(f"[{function_name}] {text}", file=sys.stderr, flush=True)

    def _on_async_failure(self, config: FunctionConfig, record: dict) -> None:
        """An async event that failed for good goes to the dead-letter queue and on-failure destination."""
        try:
            fn = self._lambda_backend(config.account_id, config.region).get_function(config.name)
        except Exception:
            return
        dead_letter = getattr(fn, "lambdalab_dead_letter_arn", None)
        if dead_letter:
            self._send_dead_letter(dead_letter, record)
        config_ = fn.event_invoke_config[-1].config if fn.event_invoke_config else {}
        on_failure = ((config_.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        if on_failure:
            self._send_record(on_failure, record, "Failure")

    def _send_dead_letter(self, target_arn: str, record: dict) -> None:
        """A DLQ gets the event itself, with the request id and error as message attributes."""
        context = record.get("requestContext", {})
        error = record.get("responsePayload") if isinstance(record.get("responsePayload"), dict) else {}
        message = (error or {}).get("errorMessage") or context.get("condition", "")
        body = json.dumps(record.get("requestPayload"))
        attributes = {"RequestID": {"DataType": "String", "StringValue": context.get("requestId", "")},
                      "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                      "ErrorMessage": {"DataType": "String", "StringValue": str(message)[:1024]}}
        self._send_to(target_arn, body, attributes)

    def _send_record(self, destination: str, record: dict, outcome: str) -> None:
        """A destination gets the invocation record (Lambda, SQS, SNS or EventBridge)."""
        service = destination.split(":")[2] if destination.count(":") >= 5 else ""
        if service == "lambda":
            with seam.serving(None):
                self.deliver(destination, record, None)
            return
        if service == "events":
            from moto.events.models import events_backends
            account, region = _account_region(destination, self)
            events_backends[account][region].put_events([{
                "Source": "lambda", "DetailType": f"Lambda Function Invocation Result - {outcome}",
                "Detail": json.dumps(record), "EventBusName": destination,
                "Resources": [record.get("requestContext", {}).get("functionArn", "")]}])
            return
        self._send_to(destination, json.dumps(record), None)

    def _send_to(self, arn: str, body: str, attributes: dict[str, Any] | None) -> None:
        account, region = _account_region(arn, self)
        with seam.serving(None):
            if arn.split(":")[2] == "sqs":
                from moto.sqs.models import sqs_backends
                sqs_backends[account][region].send_message(arn.split(":")[-1], body, message_attributes=attributes)
            elif arn.split(":")[2] == "sns":
                from moto.sns.models import sns_backends
                sns_attributes = {k: {"Type": v["DataType"], "Value": v["StringValue"]} for k, v in (attributes or {}).items()}
                sns_backends[account][region].publish(body, arn=arn, message_attributes=sns_attributes)


def _account_region(arn: str, cloud: LocalCloud) -> tuple[str, str]:
    parts = arn.split(":")
    if len(parts) >= 5 and parts[0] == "arn":
        return parts[4] or cloud.account_id, parts[3] or cloud.region
    return cloud.account_id, cloud.region


def _backend_of(fn: Any) -> Any:
    from moto.awslambda.models import lambda_backends
    return lambda_backends[fn.account_id][fn.region]


def _pc_status(count: int) -> dict[str, Any]:
    return {"RequestedProvisionedConcurrentExecutions": count, "AvailableProvisionedConcurrentExecutions": count,
            "AllocatedProvisionedConcurrentExecutions": count, "Status": "READY",
            "LastModified": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime())}
