"""Patches to moto's API Gateway (`moto.apigateway`): REST APIs whose stages answer.

moto stores REST APIs, their resources, methods, deployments and stages, but serves none of them
(its own invocation of integrations works only in-process, never for AWS_PROXY). Here each new
REST API is handed to `lambdalab.cloud.http_endpoints`, which serves its stages at the cloud's
endpoint; each deployment keeps the API's routes as they were when it was made, as API Gateway's
deployments do; DeleteRestApi stops serving the API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lambdalab.cloud.moto import Patches

if TYPE_CHECKING:
    from lambdalab.cloud.http_endpoints import HttpEndpoints


def install(patches: Patches, endpoints: "HttpEndpoints") -> None:
    from moto.apigateway.models import APIGatewayBackend

    def create_rest_api(original: Callable) -> Callable:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            api = original(self, *args, **kwargs)
            endpoints.open_rest_api(api)
            return api
        return call

    def create_deployment(original: Callable) -> Callable:
        def call(self: Any, function_id: str, *args: Any, **kwargs: Any) -> Any:
            deployment = original(self, function_id, *args, **kwargs)
            endpoints.rest_deployed(function_id, deployment.id)
            return deployment
        return call

    def delete_rest_api(original: Callable) -> Callable:
        def call(self: Any, function_id: str) -> Any:
            api = original(self, function_id)
            endpoints.close_rest_api(function_id)
            return api
        return call

    patches.replace(APIGatewayBackend, "create_rest_api", create_rest_api)
    patches.replace(APIGatewayBackend, "create_deployment", create_deployment)
    patches.replace(APIGatewayBackend, "delete_rest_api", delete_rest_api)
