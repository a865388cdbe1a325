"""The local cloud's Lambda service: what moto's patched Lambda API, triggers and pollers call.

moto keeps the functions (their configuration, code and event invoke config); this module runs
them. `LambdaService` mirrors every function into the `LocalRuntime`, serves Invoke (with the
recursion guard's loop detection), asynchronous deliveries from triggers (S3, SNS, EventBridge,
destinations), batches from event source mappings, the provisioned-concurrency and
recursion-config APIs moto lacks, the execution role's credentials, CloudWatch Logs, and where
a failed asynchronous event goes (dead-letter queue, on-failure destination). `LocalCloud` owns
one and keeps its own attributes for the learner.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lambdalab._util.logtext import entry_lines
from lambdalab._util.owned import owned_tempdir, remove_tree
from lambdalab.cloud.loops import Admission, RecursionGuard
from lambdalab.cloud.request_context import serving
from lambdalab.cloud.xray import LambdaTracer
from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.errors import (
    InvalidParameterValueException,
    RequestTooLargeException,
    ResourceNotFoundException,
    TooManyRequestsException,
)

TAIL_BYTES = 4096


class LambdaApiError(Exception):
    """An error the Lambda API returns: HTTP status, error type, message, extra body fields."""

    def __init__(self, status: int, error_type: str, message: str, **fields: Any):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.fields = fields


@dataclass(frozen=True)
class BatchOutcome:
    """What became of a batch handed to a function by an event source mapping."""

    invoked: bool  # False when throttled or stopped before the handler ran
    ok: bool
    result: Any = None


def function_name_from(ref: str) -> str:
    """A function name from a name, a partial ARN or a full ARN (qualifier dropped)."""
    ref = unquote(ref)
    if ":function:" in ref:
        ref = ref.split(":function:", 1)[1]
    return ref.split(":", 1)[0]


def _arn(ref: str) -> Any:
    """moto's parse of a full ARN (`account`, `region`, `service`, `resource_id`...), or None."""
    from moto.utilities.arns import parse_arn

    try:
        return parse_arn(ref) if ref.startswith("arn:") else None
    except ValueError:
        return None


def _pc_status(count: int) -> dict[str, Any]:
    return {"RequestedProvisionedConcurrentExecutions": count, "AvailableProvisionedConcurrentExecutions": count,
            "AllocatedProvisionedConcurrentExecutions": count, "Status": "READY",
            "LastModified": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime())}


def _run_api(call: Callable[[], Any]) -> Any:
    """A runtime call whose InvalidParameterValueException the Lambda API reports as a 400."""
    try:
        return call()
    except InvalidParameterValueException as e:
        raise LambdaApiError(400, "InvalidParameterValueException", str(e)) from None


class LambdaService:
    """Runs moto's functions in a `LocalRuntime`; the callbacks behind moto's patched services."""

    def __init__(self, *, region: str, account_id: str, echo_logs: bool = False):
        self.region = region
        self.account_id = account_id
        self.echo_logs = echo_logs
        self.guard = RecursionGuard()
        self.tracer: LambdaTracer | None = None  # Lambda's X-Ray part, set by the cloud
        self.runtime: Any = None
        self.endpoint: str | None = None  # the cloud's address, once started
        self._provisioned: dict[str, dict[str, int]] = {}
        self._layers: dict[str, Path] = {}  # layer version ARN -> its extracted content
        self._code_lock = threading.Lock()
        self._logs_lock = threading.Lock()
        self._workdir: Path | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, endpoint: str, runtime_options: dict[str, Any], xray_daemon: str | None = None) -> Any:
        """Start the runtime whose workers call the cloud at `endpoint` (and send segments to
        the X-Ray daemon at `xray_daemon`, `host:port`); returns it."""
        from lambdalab.runtime.service import LocalRuntime

        self.endpoint = endpoint
        self._workdir = owned_tempdir("lambdalab-cloud-")  # swept by a later start should this process be killed
        extra_env = {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": self.region}
        if xray_daemon:
            host, _, port = xray_daemon.rpartition(":")
            extra_env.update({"AWS_XRAY_DAEMON_ADDRESS": xray_daemon, "_AWS_XRAY_DAEMON_ADDRESS": host,
                              "_AWS_XRAY_DAEMON_PORT": port})
        self.runtime = LocalRuntime(
            **runtime_options,
            extra_env=extra_env,
            credentials=self._credentials, log_sink=self._log_sink, on_async_failure=self._on_async_failure)
        return self.runtime

    def close(self, step: Callable[[Callable[[], Any]], None]) -> None:
        """Stop the runtime and remove the extracted code, each through `step` (which keeps going on errors)."""
        if self.runtime is not None:
            step(self.runtime.close)
        if self._workdir is not None:
            step(functools.partial(remove_tree, self._workdir))
            self._workdir = None

    def reset(self) -> None:
        """Remove every function from the runtime and forget loop counts and provisioned concurrency."""
        for name in self.runtime.functions():
            self.runtime.remove(name)
        self.guard.reset()
        self._provisioned.clear()
        self._layers.clear()

    def backend(self, account_id: str | None = None, region: str | None = None) -> Any:
        """moto's Lambda backend for an account and region (the cloud's by default)."""
        from moto.awslambda.models import lambda_backends
        return lambda_backends[account_id or self.account_id][region or self.region]

    def _backend_for(self, ref: str) -> Any:
        """The backend holding a function, a queue or a topic named by `ref` (a name or an ARN)."""
        arn = _arn(ref)
        return self.backend() if arn is None else self.backend(arn.account or None, arn.region or None)

    def _extracted(self, data: bytes, *where: str) -> Path:
        """An archive extracted once under the work directory at `where` (named by its content)."""
        assert self._workdir is not None
        target = self._workdir.joinpath(*where)
        with self._code_lock:
            if not target.is_dir():
                partial = target.with_name(target.name + ".partial")
                try:
                    with zipfile.ZipFile(io.BytesIO(data)) as zf:
                        zf.extractall(partial)
                except zipfile.BadZipFile:
                    raise LambdaApiError(400, "InvalidParameterValueException",
                                         "Could not unzip uploaded file. "
                                         "Please check your file, then try to upload again.") from None
                partial.rename(target)
        return target

    def _code_dir(self, fn: Any) -> Path:
        """The function's deployment package, extracted once per code version."""
        return self._extracted(fn.code_bytes, "functions", fn.function_name, fn.code_digest[:16])

    def _layer_dirs(self, fn: Any) -> list[Path]:
        """The function's layers in its order, each version extracted once (Lambda extracts them into /opt)."""
        backend = self.backend(fn.account_id, fn.region)
        for ref in fn.layers:
            arn = ref["Arn"]
            # Kept once extracted: a function keeps a layer version that is deleted later, as on Lambda.
            if arn not in self._layers:
                layer = backend.layers_versions_by_arn(arn)
                if layer is None:
                    raise LambdaApiError(404, "ResourceNotFoundException", f"Layer version {arn} does not exist.")
                self._layers[arn] = self._extracted(layer.code_bytes, "layers", layer.name,
                                                    f"{layer.version}-{layer.code_digest[:16]}")
        return [self._layers[ref["Arn"]] for ref in fn.layers]

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
                account_id=fn.account_id, role_arn=fn.role, layers=self._layer_dirs(fn), runtime=fn.run_time)
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
                _run_api(lambda: self.runtime.set_reserved_concurrency(name, new.reserved_concurrency))
        else:
            _run_api(lambda: self.runtime.deploy(new))
        self._apply_event_config(fn)

    def function_deleted(self, name: str) -> None:
        self._provisioned.pop(name, None)
        self.guard.forget(name)
        if name in self.runtime.functions():
            self.runtime.remove(name)

    def _apply_event_config(self, fn: Any) -> None:
        config = fn.event_invoke_config[-1].config if fn.event_invoke_config else {}
        on_success = ((config.get("DestinationConfig") or {}).get("OnSuccess") or {}).get("Destination")
        settings: dict[str, Any] = {
            "maximum_retry_attempts": int(config.get("MaximumRetryAttempts", 2)),
            "maximum_event_age_s": float(config.get("MaximumEventAgeInSeconds", 21600)),
            "on_success": (lambda record, dest=on_success: self._send_record(dest, record, "Success"))
            if on_success else None,
        }
        _run_api(lambda: self.runtime.set_event_invoke_config(fn.function_name, **settings))

    def known(self, fn: Any) -> str:
        name = fn.function_name
        if name not in self.runtime.functions():
            # A function created before this cloud opened, or by a backend we did not patch.
            self.function_created(fn)
        return name

    def _admit(self, fn: Any, arn: str, incoming: str | None) -> Admission:
        """The recursion guard's decision, under the trace header Lambda's tracing gives the run."""
        if self.tracer is None:
            return self.guard.admit(fn.function_name, arn, incoming)
        decided = self.tracer.decide((fn.tracing_config or {}).get("Mode", "PassThrough"), incoming)
        admission = self.guard.admit(fn.function_name, arn, decided)
        self.tracer.admitted(incoming, admission.header)
        return admission

    def invoke_api(self, fn: Any, payload: bytes, invocation_type: str, log_type: str | None,
                   trace_header: str | None, response_headers: dict[str, Any]) -> bytes:
        """The Invoke API: RequestResponse, Event and DryRun, with LogType=Tail."""
        name = self.known(fn)
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
        admission = self._admit(fn, fn.function_arn.split(":$LATEST")[0], trace_header)
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
            fn = self._backend_for(function_ref).get_function(name)
        except Exception:
            return None
        self.known(fn)
        admission = self._admit(fn, fn.function_arn, trace_header)
        if admission.stopped:
            self.runtime.dead_letter(name, event, "RecursiveInvocationException")
            return None
        return self.runtime.invoke_async(name, event, trace_header=admission.header)

    def invoke(self, name: str, event: Any = None, *, trace_header: str | None = None) -> Any:
        """A synchronous invocation from Python (e.g. an HTTP API route): returns the `Invocation`.

        Raises `ResourceNotFoundException` for an unknown function and
        `TooManyRequestsException` when the function is at its concurrency limit.
        """
        try:
            fn = self.function_or_404(function_name_from(name))
        except LambdaApiError as e:
            raise ResourceNotFoundException(e.message) from None
        self.known(fn)
        admission = self._admit(fn, fn.function_arn, trace_header)
        if admission.stopped:
            raise InvalidParameterValueException(
                f"RecursiveInvocationException: {fn.function_name} was stopped after "
                f"{self.guard.max_hops} invocations in one chain")
        return self.runtime.invoke(fn.function_name, {} if event is None else event,
                                   trace_header=admission.header)

    def invoke_batch(self, function_arn: str, event: dict, trace_header: str | None) -> BatchOutcome:
        """A synchronous invocation by an event source mapping (SQS, DynamoDB Streams)."""
        name = function_name_from(function_arn)
        try:
            fn = self._backend_for(function_arn).get_function(name)
            self.known(fn)
        except Exception:
            return BatchOutcome(invoked=False, ok=False)
        admission = self._admit(fn, fn.function_arn, trace_header)
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
        fn = self.function_or_404(function_name)
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
            _run_api(lambda: self.runtime.set_provisioned_concurrency(fn.function_name, sum(configs.values())))
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
        self.known(fn)
        _run_api(lambda: self.runtime.set_provisioned_concurrency(fn.function_name, total))
        return 202, _pc_status(count)

    def _check_qualifier(self, fn: Any, qualifier: str) -> None:
        backend = self.backend(fn.account_id, fn.region)
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
        fn = self.function_or_404(function_name)
        if method == "PUT":
            mode = body.get("RecursiveLoop")
            try:
                self.guard.set_mode(fn.function_name, mode)
            except ValueError as e:
                raise LambdaApiError(400, "ValidationException", str(e)) from None
        elif method != "GET":
            raise LambdaApiError(400, "InvalidParameterValueException", f"method {method} is not supported")
        return 200, {"RecursiveLoop": self.guard.mode(fn.function_name)}

    def set_recursive_loop(self, name: str, mode: str) -> None:
        """Python shortcut for PutFunctionRecursionConfig (`Allow` or `Terminate`)."""
        self.function_or_404(name)
        self.guard.set_mode(name, mode)

    def function_or_404(self, name: str) -> Any:
        try:
            return self.backend().get_function(name)
        except Exception:
            raise LambdaApiError(404, "ResourceNotFoundException",
                                 "Function not found: "
                                 f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}") from None

    # -- what the runtime asks of Lambda: credentials, logs, failed events ------------------
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
            # An entry's lines are joined by \r (an error and its traceback): printed raw, a terminal
            # shows only the last of them. CloudWatch keeps the entry whole; the echo shows its lines.
            for _, text in lines:
                for line in entry_lines(text):
                    print(f"[{function_name}] {line}", file=sys.stderr, flush=True)

    def _on_async_failure(self, config: FunctionConfig, record: dict) -> None:
        """An async event that failed for good goes to the dead-letter queue and on-failure destination."""
        try:
            fn = self.backend(config.account_id, config.region).get_function(config.name)
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
        arn = _arn(destination)
        service = arn.service if arn else ""
        if service == "lambda":
            with serving(None):
                self.deliver(destination, record, None)
            return
        if service == "events":
            from moto.events.models import events_backends
            events_backends[arn.account or self.account_id][arn.region or self.region].put_events([{
                "Source": "lambda", "DetailType": f"Lambda Function Invocation Result - {outcome}",
                "Detail": json.dumps(record), "EventBusName": destination,
                "Resources": [record.get("requestContext", {}).get("functionArn", "")]}])
            return
        self._send_to(destination, json.dumps(record), None)

    def _send_to(self, destination: str, body: str, attributes: dict[str, Any] | None) -> None:
        """A message to an SQS queue or SNS topic, sent as the Lambda service (no caller's trace)."""
        arn = _arn(destination)
        if arn is None:
            return
        account, region = arn.account or self.account_id, arn.region or self.region
        with serving(None):
            if arn.service == "sqs":
                from moto.sqs.models import sqs_backends
                sqs_backends[account][region].send_message(arn.resource_id, body, message_attributes=attributes)
            elif arn.service == "sns":
                from moto.sns.models import sns_backends
                sns_attributes = {k: {"Type": v["DataType"], "Value": v["StringValue"]}
                                  for k, v in (attributes or {}).items()}
                sns_backends[account][region].publish(body, arn=destination, message_attributes=sns_attributes)
