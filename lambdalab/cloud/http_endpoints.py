"""The HTTP APIs (`apigatewayv2`) and Lambda function URLs that moto stores, served on 127.0.0.1.

Each HTTP API and each function URL gets its own listener on a free loopback port, so its
address (`ApiEndpoint`, `FunctionUrl`) is `http://127.0.0.1:PORT` and a learner's code appends
paths to it exactly as to AWS's address. Both reuse `lambdalab.cloud.apigateway.HttpApi`
(route matching, payload 1.0/2.0 events and responses, API Gateway's errors):

- `GatewayApi` reads its routes, integrations (AWS_PROXY to Lambda) and stages from moto's model
  on every request, so routes created after the API work at once, as with an auto-deploying
  stage. A `$default` stage serves `/path`; a named stage serves `/stage/path`. Without a
  resource-based policy letting `apigateway.amazonaws.com` invoke the function (for the
  request's `execute-api` source ARN) the API answers 500, as API Gateway does.
- `FunctionUrl` serves a function's URL with payload 2.0. AuthType NONE needs both
  `lambda:InvokeFunctionUrl` and `lambda:InvokeFunction` for everyone in the function's policy;
  AWS_IAM checks the request's SigV4 signature against the caller's secret in moto's IAM and the
  caller's permission. A refused request gets 403 `{"Message": "Forbidden"}`.
"""

from __future__ import annotations

import threading
from typing import Any

from lambdalab.cloud.apigateway import HttpApi, _Request
from lambdalab.cloud.apigateway_proxy import HttpResponse, Route, json_response, parse_route
from lambdalab.cloud.lambda_service import LambdaService, function_name_from
from lambdalab.cloud.resource_policy import allows, function_statements
from lambdalab.cloud.sigv4 import SignatureError, verify_request

_FORBIDDEN = (403, {"Message": "Forbidden"})


def integration_function(uri: str | None) -> str | None:
    """The function an AWS_PROXY integration URI names (a function ARN, or API Gateway's
    `arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/ARN/invocations`)."""
    if not uri or ":function:" not in uri:
        return None
    return function_name_from(uri.split(":function:", 1)[1].split("/", 1)[0])


class PermissionDeniedError(Exception):
    """The function's resource-based policy does not let this caller invoke it."""


class GatewayApi(HttpApi):
    """One of moto's HTTP APIs, served on its own port."""

    def __init__(self, service: LambdaService, moto_api: Any):
        self._moto = moto_api
        self._service = service
        self._local = threading.local()
        super().__init__(self._invoke_checked, kind="http", region=service.region, account=service.account_id)
        self.api_id = moto_api.api_id

    @property
    def stage(self) -> str:  # type: ignore[override] - per request: the stage the path named
        return getattr(self._local, "stage", "$default")

    @stage.setter
    def stage(self, value: str) -> None:
        self._local.stage = value

    @property
    def routes(self) -> list[Route]:  # type: ignore[override]
        found = []
        for route in list(self._moto.routes.values()):
            target = route.target or ""
            integration = self._moto.integrations.get(target.split("/", 1)[-1]) \
                if target.startswith("integrations/") else None
            if integration is None or (integration.integration_type or "").upper() != "AWS_PROXY":
                continue
            function = integration_function(integration.integration_uri)
            if function is None:
                continue
            found.append(parse_route(route.route_key, function, integration.payload_format_version or "2.0"))
        return found

    def handle(self, request: _Request) -> HttpResponse:
        stages = self._moto.stages
        parts = request.raw_path.split("/", 2)
        if "$default" in stages:
            stage, path = "$default", request.raw_path
        elif len(parts) > 1 and parts[1] in stages:
            stage, path = parts[1], "/" + (parts[2] if len(parts) > 2 else "")
        else:
            return json_response(404, {"message": "Not Found"})
        self._local.stage = stage
        self.stage_variables = dict(stages[stage].stage_variables or {})
        request.raw_path = path
        return super().handle(request)

    def _invoke_checked(self, function: str, event: dict, trace_header: str | None = None) -> Any:
        fn = self._service.function_or_404(function)
        context = event.get("requestContext", {})
        method = (context.get("http") or {}).get("method") or context.get("httpMethod", "")
        key = event.get("routeKey") or f"{method} {event.get('resource', '')}"
        resource = "$default" if key == "$default" else method + key.split(" ", 1)[-1]
        source_arn = (f"arn:aws:execute-api:{self.region}:{self.account}:{self.api_id}/"
                      f"{context.get('stage', self.stage)}/{resource}")
        if not allows(function_statements(fn), "lambda:InvokeFunction", service="apigateway.amazonaws.com",
                      context={"AWS:SourceArn": source_arn, "AWS:SourceAccount": self.account}):
            raise PermissionDeniedError(f"API Gateway may not invoke {function} for {source_arn}: "
                                   "add a permission for apigateway.amazonaws.com (lambda add_permission)")
        return self._service.invoke(function, event, trace_header=trace_header)


class FunctionUrl(HttpApi):
    """A function URL, served on its own port with payload 2.0."""

    def __init__(self, service: LambdaService, fn: Any, config: Any):
        self._service = service
        self._config = config
        self.function_name = fn.function_name
        self.function_arn = fn.function_arn
        super().__init__(lambda name, event, trace_header=None: service.invoke(name, event, trace_header=trace_header),
                         {"$default": fn.function_name}, kind="http", region=service.region,
                         account=service.account_id)

    @property
    def auth_type(self) -> str:
        return (self._config.config.get("AuthType") or "NONE").upper()

    def handle(self, request: _Request) -> HttpResponse:
        refused = self._refusal(request)
        if refused is not None:
            response = json_response(*_FORBIDDEN)
            response.headers.append(("x-amzn-ErrorType", "AccessDeniedException"))
            self.last_refusal = refused
            return response
        return super().handle(request)

    def _refusal(self, request: _Request) -> str | None:
        """Why AWS would refuse this request, or None."""
        try:
            fn = self._service.function_or_404(self.function_name)
        except Exception as e:
            return str(e)
        statements = function_statements(fn)
        if self.auth_type == "NONE":
            if not allows(statements, "lambda:InvokeFunctionUrl", caller_arn=None,
                          context={"lambda:FunctionUrlAuthType": "NONE"}):
                return "the function's policy does not allow lambda:InvokeFunctionUrl for everyone"
            if not allows(statements, "lambda:InvokeFunction", caller_arn=None,
                          context={"lambda:InvokedViaFunctionUrl": "true"}):
                return "the function's policy does not allow lambda:InvokeFunction for everyone"
            return None
        try:
            caller = verify_request(request, self._service.account_id)
        except SignatureError as e:
            return str(e)
        context = {"lambda:FunctionUrlAuthType": "AWS_IAM"}
        if caller.allowed("lambda:InvokeFunctionUrl", self.function_arn, context) or \
                allows(statements, "lambda:InvokeFunctionUrl", caller_arn=caller.arn, context=context):
            return None
        return f"{caller.arn} is not allowed lambda:InvokeFunctionUrl on {self.function_arn}"


class HttpEndpoints:
    """Every served HTTP API and function URL of a local cloud; closes them all on reset or close."""

    def __init__(self, service: LambdaService):
        self._service = service
        self._lock = threading.Lock()
        self.apis: dict[str, GatewayApi] = {}
        self.urls: dict[str, FunctionUrl] = {}

    def open_api(self, moto_api: Any) -> str:
        if getattr(moto_api, "protocol_type", "HTTP") != "HTTP":
            return moto_api.api_endpoint  # WebSocket APIs stay stored only
        api = GatewayApi(self._service, moto_api).start()
        with self._lock:
            self.apis[moto_api.api_id] = api
        moto_api.api_endpoint = api.url
        return api.url

    def close_api(self, api_id: str) -> None:
        with self._lock:
            api = self.apis.pop(api_id, None)
        if api is not None:
            api.close()

    def open_url(self, fn: Any, config: Any) -> str:
        self.close_url(fn.function_arn)
        url = FunctionUrl(self._service, fn, config).start()
        with self._lock:
            self.urls[fn.function_arn] = url
        config.url = url.url + "/"
        return config.url

    def close_url(self, function_arn: str) -> None:
        with self._lock:
            url = self.urls.pop(function_arn, None)
        if url is not None:
            url.close()

    def reset(self) -> None:
        with self._lock:
            served = list(self.apis.values()) + list(self.urls.values())
            self.apis.clear()
            self.urls.clear()
        for endpoint in served:
            endpoint.close()

    close = reset


