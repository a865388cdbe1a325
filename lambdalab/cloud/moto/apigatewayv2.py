"""Patches to moto's API Gateway v2 (`moto.apigatewayv2`): HTTP APIs that answer, quick create.

moto stores HTTP APIs but serves none, and ignores CreateApi's `Target` and `RouteKey` (quick
create). Here every new HTTP API is served by `lambdalab.cloud.http_endpoints` and its
`ApiEndpoint` is that working `http://127.0.0.1:PORT` address; with `Target`, CreateApi also makes
what API Gateway's quick create makes: an AWS_PROXY integration (payload 2.0) to the target, a
route (`RouteKey`, default `$default`) and a `$default` stage that deploys automatically.
DeleteApi stops serving the API.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lambdalab.cloud.moto import Patches

if TYPE_CHECKING:
    from lambdalab.cloud.http_endpoints import HttpEndpoints


def install(patches: Patches, endpoints: "HttpEndpoints") -> None:
    from moto.apigatewayv2.models import ApiGatewayV2Backend
    from moto.apigatewayv2.responses import ApiGatewayV2Response

    def create_api(original: Callable) -> Callable:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            api = original(self, *args, **kwargs)
            endpoints.open_api(api)
            return api
        return call

    def delete_api(original: Callable) -> Callable:
        def call(self: Any, api_id: str) -> None:
            original(self, api_id)
            endpoints.close_api(api_id)
        return call

    def create_api_response(original: Callable) -> Callable:
        def call(self: Any) -> Any:
            params = json.loads(self.body or "{}")
            status, headers, body = original(self)
            if params.get("target") and params.get("protocolType") == "HTTP":
                api = self.apigatewayv2_backend.get_api(json.loads(body)["apiId"])
                _quick_create(api, params["target"], params.get("routeKey") or "$default")
                body = json.dumps(api.to_json())
            return status, headers, body
        return call

    patches.replace(ApiGatewayV2Backend, "create_api", create_api)
    patches.replace(ApiGatewayV2Backend, "delete_api", delete_api)
    patches.replace(ApiGatewayV2Response, "create_api", create_api_response)


def _quick_create(api: Any, target: str, route_key: str) -> None:
    """What API Gateway's quick create adds to a new HTTP API with a Lambda target."""
    integration = api.create_integration(
        connection_type="INTERNET", description="", integration_method="POST",
        integration_type="AWS_PROXY", integration_uri=target, payload_format_version="2.0",
        timeout_in_millis="30000")
    api.create_route(api_key_required=False, authorization_scopes=[], route_key=route_key,
                     target=f"integrations/{integration.id}", authorization_type="NONE")
    api.create_stage({"stageName": "$default", "autoDeploy": True})
