"""The HTTP APIs (`apigatewayv2`), REST APIs (`apigateway`) and Lambda function URLs that moto
stores, served on 127.0.0.1.

Each HTTP API and each function URL gets its own listener on a free loopback port, so its
address (`ApiEndpoint`, `FunctionUrl`) is `http://127.0.0.1:PORT` and a learner's code appends
paths to it exactly as to AWS's address. Both reuse `lambdalab.cloud.apigateway.HttpApi`
(route matching, payload 1.0/2.0 events and responses, API Gateway's errors):

- `GatewayApi` reads its routes, integrations (AWS_PROXY to Lambda) and stages from moto's model
  on every request, so routes created after the API work at once, as with an auto-deploying
  stage. A `$default` stage serves `/path`; a named stage serves `/stage/path`. Without a
  resource-based policy letting `apigateway.amazonaws.com` invoke the function (for the
  request's `execute-api` source ARN) the API answers 500, as API Gateway does.
- `RestApi` serves a REST API's stages (payload 1.0, AWS_PROXY methods, `ANY` and `{proxy+}`
  included) at the cloud's own endpoint, `http://127.0.0.1:PORT/_aws/execute-api/{api id}/{stage}`
  (LocalStack's shape; AWS's is `https://{api id}.execute-api.{region}.amazonaws.com/{stage}`),
  since AWS returns no invoke URL a client could read. A stage serves the routes of its
  deployment as they were when it was made (API Gateway's snapshot): methods added later need a
  new deployment. The same permission check as HTTP APIs; a stage with `tracingEnabled` records
  its X-Ray segment (`lambdalab.cloud.xray.StageTracer`).
- `FunctionUrl` serves a function's URL with payload 2.0. AuthType NONE needs both
  `lambda:InvokeFunctionUrl` and `lambda:InvokeFunction` for everyone in the function's policy;
  AWS_IAM checks the request's SigV4 signature against the caller's secret in moto's IAM and the
  caller's permission. A refused request gets 403 `{"Message": "Forbidden"}`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from lambdalab.cloud.apigateway import HttpApi, _Request, incoming_trace
from lambdalab.cloud.apigateway_proxy import HttpResponse, Route, json_response, parse_route
from lambdalab.cloud.lambda_service import LambdaService, function_name_from
from lambdalab.cloud.loops import TraceHeader
from lambdalab.cloud.resource_policy import allows, function_statements
from lambdalab.cloud.sigv4 import SignatureError, verify_request
from lambdalab.cloud.xray import StageRequest, StageTracer

_FORBIDDEN = (403, {"Message": "Forbidden"})
EXECUTE_API_PREFIX = "/_aws/execute-api/"  # where the cloud's endpoint serves REST API stages


def integration_function(uri: str | None) -> str | None:
    """The function an AWS_PROXY integration URI names (a function ARN, or API Gateway's
    `arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/ARN/invocations`)."""
    if not uri or ":function:" not in uri:
        return None
    return function_name_from(uri.split(":function:", 1)[1].split("/", 1)[0])


class PermissionDeniedError(Exception):
    """The function's resource-based policy does not let this caller invoke it."""


class _MotoApi(HttpApi):
    """An API moto stores, served here: the stage is per request, and API Gateway may invoke
    a function only as its resource-based policy allows."""

    def __init__(self, service: LambdaService, moto_api: Any, kind: str):
        self._moto = moto_api
        self._service = service
        self._local = threading.local()
        super().__init__(self._invoke_checked, kind=kind, region=service.region, account=service.account_id)

    @property
    def stage(self) -> str:  # type: ignore[override] - per request: the stage the path named
        return getattr(self._local, "stage", "$default")

    @stage.setter
    def stage(self, value: str) -> None:
        self._local.stage = value

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


class GatewayApi(_MotoApi):
    """One of moto's HTTP APIs, served on its own port."""

    def __init__(self, service: LambdaService, moto_api: Any):
        super().__init__(service, moto_api, "http")
        self.api_id = moto_api.api_id

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


def rest_routes(moto_api: Any) -> list[Route]:
    """The routes of a REST API's methods with an AWS_PROXY integration to a Lambda function."""
    found = []
    for resource in list(moto_api.resources.values()):
        for method, spec in list(resource.resource_methods.items()):
            integration = spec.method_integration
            if integration is None or (integration.integration_type or "").upper() != "AWS_PROXY":
                continue
            function = integration_function(integration.uri)
            if function is not None:
                found.append(parse_route(f"{method} {resource.get_path()}", function, "1.0", "rest"))
    return found


class RestApi(_MotoApi):
    """One of moto's REST APIs, its stages served at the cloud's endpoint (`EXECUTE_API_PREFIX`)."""

    def __init__(self, service: LambdaService, moto_api: Any, tracer: Callable[[], StageTracer | None]):
        super().__init__(service, moto_api, "rest")
        self.api_id = moto_api.id
        self._tracer = tracer
        self._deployments: dict[str, list[Route]] = {}  # deployment id -> its routes, as deployed
        self._deployed_lock = threading.Lock()

    def deployed(self, deployment_id: str) -> None:
        """A deployment was made: keep the routes as they are now."""
        routes = rest_routes(self._moto)
        with self._deployed_lock:
            self._deployments[deployment_id] = routes

    @property
    def routes(self) -> list[Route]:  # type: ignore[override] - the requested stage's deployment
        stage = self._moto.stages.get(self.stage)
        with self._deployed_lock:
            return list(self._deployments.get(getattr(stage, "deployment_id", None) or "", []))

    @property
    def port(self) -> int:  # the cloud's endpoint serves it, not a listener of its own
        return int(getattr(self._local, "port", 0))

    def handle(self, request: _Request) -> HttpResponse:
        """`request.raw_path` is `/{stage}/path`."""
        parts = request.raw_path.split("/", 2)
        stage = parts[1] if len(parts) > 1 else ""
        spec = self._moto.stages.get(stage)
        if spec is None:
            return json_response(403, {"message": "Forbidden"})
        self._local.stage = stage
        self.stage_variables = dict(spec.variables or {})
        url = f"http://{request.host}{EXECUTE_API_PREFIX}{self.api_id}{request.raw_path}"
        request.raw_path = "/" + (parts[2] if len(parts) > 2 else "")
        tracer = self._tracer() if spec.tracing_enabled else None
        incoming = incoming_trace(request)
        self._local.trace = tracer.decide(incoming) if tracer is not None else None
        self._local.sent = None
        started = time.time()
        response = super().handle(request)
        sent = TraceHeader.parse(self._local.sent)
        if sent is not None:  # a REST API tells its client the trace it ran under
            response.headers.append(("X-Amzn-Trace-Id", f"Root={sent.root}"))
        if tracer is not None:
            upstream = TraceHeader.parse(incoming)
            tracer.record(self._local.trace, upstream.parent if upstream else None,
                          self._served(request, stage, url, response, started))
        return response

    def _served(self, request: _Request, stage: str, url: str, response: HttpResponse, started: float) -> StageRequest:
        request_id = next((v for k, v in response.headers if k.lower() == "x-amzn-requestid"), "")
        return StageRequest(self.api_id, self._moto.name, stage, request.method, url, request.client_ip,
                            response.status, len(response.body), request_id, started, time.time())

    def serve_wsgi(self, environ: dict[str, Any], path: str) -> HttpResponse:
        """A request the cloud's WSGI server received for `path` (`/{stage}/...`) of this API."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        headers = [(k[5:].replace("_", "-").title(), v) for k, v in environ.items() if k.startswith("HTTP_")]
        headers += [(name, environ[key]) for key, name in (("CONTENT_TYPE", "Content-Type"),
                                                           ("CONTENT_LENGTH", "Content-Length")) if environ.get(key)]
        self._local.port = environ.get("SERVER_PORT", "0")
        return self.handle(_Request(
            method=environ["REQUEST_METHOD"], raw_path=path, raw_query=environ.get("QUERY_STRING", ""),
            headers=headers, body=environ["wsgi.input"].read(length) if length else b"",
            client_ip=environ.get("REMOTE_ADDR", "127.0.0.1"), host=environ.get("HTTP_HOST", "127.0.0.1")))

    def _trace_header(self, request: _Request) -> str:
        traced = getattr(self._local, "trace", None)
        self._local.sent = str(traced) if traced is not None else super()._trace_header(request)
        return self._local.sent


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
        self.rest_apis: dict[str, RestApi] = {}
        self.urls: dict[str, FunctionUrl] = {}
        self.tracer: StageTracer | None = None  # REST API stages' X-Ray part, set by the cloud

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

    def open_rest_api(self, moto_api: Any) -> None:
        with self._lock:
            self.rest_apis[moto_api.id] = RestApi(self._service, moto_api, lambda: self.tracer)

    def rest_deployed(self, api_id: str, deployment_id: str) -> None:
        with self._lock:
            api = self.rest_apis.get(api_id)
        if api is not None:
            api.deployed(deployment_id)

    def close_rest_api(self, api_id: str) -> None:
        with self._lock:
            self.rest_apis.pop(api_id, None)

    def serve_rest(self, environ: dict[str, Any]) -> HttpResponse:
        """A WSGI request for `EXECUTE_API_PREFIX{api id}/{stage}/path`, answered by that API."""
        raw = (environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")).split("?", 1)[0]
        api_id, _, path = raw[len(EXECUTE_API_PREFIX):].partition("/")
        with self._lock:
            api = self.rest_apis.get(api_id)
        if api is None:
            return json_response(403, {"message": "Forbidden"})
        return api.serve_wsgi(environ, "/" + path)

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
            self.rest_apis.clear()
            self.urls.clear()
        for endpoint in served:
            endpoint.close()

    close = reset


