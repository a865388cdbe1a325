"""Patches to moto's Lambda service (`moto.awslambda`): functions run in the local runtime.

Every change to a function (create, code, configuration, concurrency, event invoke config,
delete) is mirrored into the `LambdaService`'s runtime; Invoke, InvokeAsync and moto's internal
invocations (Kinesis, CloudWatch Logs subscriptions) are served by it, and its `LambdaApiError`s
become moto's JSON errors. moto accepts `DeadLetterConfig` but never shows it; the patched
configuration does. A function's `Layers` (published with PublishLayerVersion) are checked against
Lambda's limits (five; code and layers unzipped within the quota) before moto stores anything, and
its `Runtime` must be Python's. A new event source mapping is taken out of moto's synchronous push path so
that `lambdalab.cloud.pollers` serves it as Lambda's pollers do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from lambdalab.cloud.lambda_service import LambdaApiError, LambdaService, function_name_from
from lambdalab.cloud.moto import Patches, dynamodb, sqs
from lambdalab.cloud.packages import check_code_spec, check_layer_count, check_layers, check_package, zip_of
from lambdalab.cloud.request_context import current_trace

if TYPE_CHECKING:
    from lambdalab.cloud.http_endpoints import HttpEndpoints


def _moto_error(error_type: str, message: str, status: int = 400, **fields: Any) -> Exception:
    from moto.core.exceptions import JsonRESTError

    class LambdaError(JsonRESTError):
        code = status

        def __init__(self) -> None:
            super().__init__(error_type, message)
            self.description = json.dumps({"__type": error_type, "Type": "User", "message": message, **fields})

        def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
            headers = super().get_headers(*args, **kwargs)
            if status == 429:
                headers.append(("Retry-After", "1"))
            return headers

    return LambdaError()


def _as_moto_error(e: LambdaApiError) -> Exception:
    return _moto_error(e.error_type, e.message, e.status, **e.fields)


def install(patches: Patches, service: LambdaService) -> None:
    """Mirror moto's functions into `service`'s runtime and let it serve Invoke."""
    from moto.awslambda.models import LambdaBackend, LambdaFunction
    from moto.awslambda.responses import LambdaResponse

    def wrap_errors(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except LambdaApiError as e:
            raise _as_moto_error(e) from None

    def check_runtime(runtime: str | None, package_type: str = "Zip") -> None:
        if package_type != "Zip" or not (runtime or "").startswith("python3"):
            raise _moto_error("InvalidParameterValueException",
                              f"The local cloud runs Python zip functions only (Runtime python3.x, "
                              f"PackageType Zip); got Runtime={runtime!r}")

    def layer_zips(backend: Any, arns: list[str]) -> list[bytes]:
        """The archives of the layer versions named; an unknown one is left for moto to refuse."""
        found = [backend.layers_versions_by_arn(arn) for arn in arns]
        return [layer.code_bytes for layer in found if layer is not None]

    # -- function lifecycle: mirror every change into the runtime --
    def create_function(original: Callable) -> Callable:
        def create(self: Any, spec: dict[str, Any]) -> Any:
            check_runtime(spec.get("Runtime"), spec.get("PackageType", "Zip"))
            wrap_errors(lambda: check_code_spec(spec.get("Code") or {}))  # before anything exists
            wrap_errors(lambda: check_layer_count(spec.get("Layers") or []))
            fn = original(self, spec)
            latest = self.get_function(spec["FunctionName"])
            latest.lambdalab_dead_letter_arn = (spec.get("DeadLetterConfig") or {}).get("TargetArn")
            try:
                check_package(latest.code_bytes)  # code from S3 is known only now
                check_layers(latest.code_bytes, layer_zips(self, [layer["Arn"] for layer in latest.layers]))
                service.function_created(latest)
            except LambdaApiError as e:
                self._lambdas.del_function(spec["FunctionName"])
                raise _as_moto_error(e) from None
            return fn
        return create

    def changed_after(original: Callable) -> Callable:
        def call(self: Any, function_name: str, *args: Any, **kwargs: Any) -> Any:
            result = original(self, function_name, *args, **kwargs)
            wrap_errors(lambda: service.function_changed(self.get_function(function_name)))
            return result
        return call

    def update_function_code(original: Callable) -> Callable:
        def call(self: Any, function_name: str, qualifier: str, body: dict[str, Any]) -> Any:
            wrap_errors(lambda: check_code_spec(body, "UpdateFunctionCode"))
            code = zip_of(body)
            if code is not None:  # the new code beside the function's layers
                layers = [layer["Arn"] for layer in self.get_function(function_name).layers]
                wrap_errors(lambda: check_layers(code, layer_zips(self, layers)))
            return changed_after(original)(self, function_name, qualifier, body)
        return call

    def update_function_configuration(original: Callable) -> Callable:
        def call(self: Any, function_name: str, qualifier: Any, body: dict[str, Any]) -> Any:
            if "Runtime" in body:
                check_runtime(body["Runtime"])
            if "Layers" in body:  # checked before moto changes anything
                wrap_errors(lambda: check_layer_count(body["Layers"] or []))
                code = self.get_function(function_name).code_bytes
                wrap_errors(lambda: check_layers(code, layer_zips(self, body["Layers"] or [])))
            result = original(self, function_name, qualifier, body)
            fn = self.get_function(function_name)
            if "EphemeralStorage" in body:  # moto's update ignores it; its setter checks the 10,240 MB limit
                wrap_errors(lambda: setattr(fn, "ephemeral_storage", int(body["EphemeralStorage"]["Size"])))
                result = fn.get_configuration()
            if "DeadLetterConfig" in body:
                fn.lambdalab_dead_letter_arn = (body.get("DeadLetterConfig") or {}).get("TargetArn") or None
                result = fn.get_configuration()
            wrap_errors(lambda: service.function_changed(fn))
            return result
        return call

    def put_event_invoke_config(original: Callable) -> Callable:
        def call(self: Any, function_name: str, config: dict[str, Any]) -> Any:
            result = original(self, function_name, config)
            fn = self.get_function(function_name)
            # moto appends and then reads the first one back; Lambda keeps the last put.
            fn.event_invoke_config = fn.event_invoke_config[-1:]
            wrap_errors(lambda: service.function_changed(fn))
            return result
        return call

    def delete_function(original: Callable) -> Callable:
        def call(self: Any, function_name: str, qualifier: str | None = None) -> None:
            name = function_name_from(function_name)
            original(self, function_name, qualifier)
            if qualifier in (None, "$LATEST") and ":" not in unquote(function_name).split(":function:")[-1]:
                service.function_deleted(name)
        return call

    def invoke_api(original: Callable) -> Callable:
        def call(self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
                 response_headers: dict[str, Any]) -> bytes:
            fn = self.get_function(function_name, qualifier)
            payload = body.encode() if isinstance(body, str) else (body or b"")
            return wrap_errors(lambda: service.invoke_api(
                fn, payload, headers.get("X-Amz-Invocation-Type") or "RequestResponse",
                headers.get("X-Amz-Log-Type"), current_trace(), response_headers))
        return call

    def function_invoke(original: Callable) -> Callable:
        # moto's other callers (InvokeAsync, Kinesis, CloudWatch Logs subscriptions) land here.
        def call(self: Any, body: Any, request_headers: Any, response_headers: dict[str, Any]) -> bytes:
            payload = body.encode() if isinstance(body, str) else (body or b"")
            kind = (request_headers or {}).get("x-amz-invocation-type") or "RequestResponse"
            return wrap_errors(lambda: service.invoke_api(self, payload, kind, None, current_trace(),
                                                          response_headers))
        return call

    patches.replace(LambdaBackend, "create_function", create_function)
    patches.replace(LambdaBackend, "update_function_code", update_function_code)
    patches.replace(LambdaBackend, "update_function_configuration", update_function_configuration)
    patches.replace(LambdaBackend, "put_function_concurrency", changed_after)
    patches.replace(LambdaBackend, "delete_function_concurrency", changed_after)
    patches.replace(LambdaBackend, "put_function_event_invoke_config", put_event_invoke_config)
    patches.replace(LambdaBackend, "delete_function_event_invoke_config", changed_after)
    patches.replace(LambdaBackend, "delete_function", delete_function)

    def publish_layer_version(original: Callable) -> Callable:
        def call(self: Any, spec: dict[str, Any]) -> Any:
            # the checks of a function's zip
            wrap_errors(lambda: check_code_spec(spec.get("Content") or {}, "PublishLayerVersion"))
            layer = original(self, spec)
            try:
                check_package(layer.code_bytes)  # content from S3 is known only now
            except LambdaApiError as e:
                self.delete_layer_version(layer.name, str(layer.version))
                raise _as_moto_error(e) from None
            return layer
        return call

    patches.replace(LambdaBackend, "publish_layer_version", publish_layer_version)

    def invoke_async_api(original: Callable) -> Callable:
        # The deprecated InvokeAsync API: an Event invocation answered with {"Status": 202}.
        def call(self: Any) -> Any:
            index = -3 if self.path.endswith("/") else -2
            fn = self.backend.get_function(unquote(self.path.rsplit("/", 3)[index]), None)
            body = self.body.encode() if isinstance(self.body, str) else (self.body or b"")
            wrap_errors(lambda: service.invoke_api(fn, body, "Event", None, current_trace(), {}))
            return 202, {"status": 202}, json.dumps({"Status": 202})
        return call

    def get_configuration(original: Callable) -> Callable:
        def call(self: Any, on_create: bool = False) -> dict[str, Any]:
            config = original(self, on_create)
            dead_letter = getattr(self, "lambdalab_dead_letter_arn", None)
            if dead_letter:  # moto accepts DeadLetterConfig but never shows it
                config["DeadLetterConfig"] = {"TargetArn": dead_letter}
            return config
        return call

    patches.replace(LambdaFunction, "get_configuration", get_configuration)
    patches.replace(LambdaBackend, "invoke", invoke_api)
    patches.replace(LambdaFunction, "invoke", function_invoke)
    patches.replace(LambdaResponse, "invoke_async", invoke_async_api)

    # -- event source mappings: Lambda polls; moto's synchronous push is switched off --
    def create_event_source_mapping(original: Callable) -> Callable:
        def call(self: Any, spec: dict[str, Any]) -> Any:
            esm = original(self, spec)
            # Take the mapping out of moto's synchronous push path; the pollers serve it.
            sqs.detach_mapping(self.account_id, self.region_name, esm)
            dynamodb.detach_mapping(self.account_id, self.region_name, esm)
            return esm
        return call

    patches.replace(LambdaBackend, "create_event_source_mapping", create_event_source_mapping)


def install_function_urls(patches: Patches, endpoints: "HttpEndpoints") -> None:
    """Serve every function URL moto stores; its `FunctionUrl` is the working local address."""
    from moto.awslambda.models import LambdaBackend

    def create_url(original: Callable) -> Callable:
        def call(self: Any, name_or_arn: str, config: dict[str, Any]) -> Any:
            url_config = original(self, name_or_arn, config)
            endpoints.open_url(url_config.function, url_config)
            return url_config
        return call

    def delete_url(original: Callable) -> Callable:
        def call(self: Any, name_or_arn: str) -> None:
            fn = self.get_function(name_or_arn)
            original(self, name_or_arn)
            endpoints.close_url(fn.function_arn)
        return call

    patches.replace(LambdaBackend, "create_function_url_config", create_url)
    patches.replace(LambdaBackend, "delete_function_url_config", delete_url)
