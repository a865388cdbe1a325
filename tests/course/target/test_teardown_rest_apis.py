"""REST APIs (API Gateway v1) a run creates are in its inventory and deleted by its teardown;
another run's, and APIs outside any run, are left alone; a stage's invoke URL on each target.

GetRestApis and DeleteRestApi:
https://docs.aws.amazon.com/apigateway/latest/api/API_GetRestApis.html
https://docs.aws.amazon.com/apigateway/latest/api/API_DeleteRestApi.html
"""

from __future__ import annotations

from types import SimpleNamespace

from lambdalab.course.target import open_target, teardown
from lambdalab.course.target.base import CloudTarget
from lambdalab.course.target.runs import Run


def test_a_runs_rest_apis_are_listed_and_torn_down(monkeypatch) -> None:
    monkeypatch.delenv("LAMBDALAB_TARGET", raising=False)
    target = open_target(["a REST API"], cpu_limit=False)
    try:
        gw = target.client("apigateway")
        mine = gw.create_rest_api(name=target.name("orders-api"), tags=target.tags)
        gw.create_rest_api(name="lw-otherrun-orders-api")
        gw.create_rest_api(name="not-a-run")
        assert target.leftovers() == [teardown.Resource("apigateway", "REST API", target.name("orders-api"),
                                                        mine["id"])]
        target.teardown()
        assert target.leftovers() == []
        assert sorted(a["name"] for a in gw.get_rest_apis()["items"]) == ["lw-otherrun-orders-api", "not-a-run"]
    finally:
        target.close()


def test_a_stage_url_is_awss_or_the_local_clouds(monkeypatch) -> None:
    """AWS: `https://{api}.execute-api.{region}.amazonaws.com/{stage}`
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-call-api.html); a local
    cloud, or the stand-in at AWS_ENDPOINT_URL, serves it at `{endpoint}/_aws/execute-api/{api}/{stage}`."""
    on_aws = CloudTarget(SimpleNamespace(region_name="eu-west-1"), Run.new(), "123456789012")
    assert on_aws.stage_url("a1b2c3d4e5", "prod") == "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/prod"
    on_aws.endpoint_url = "http://127.0.0.1:4566/"
    assert on_aws.stage_url("a1b2c3d4e5", "prod") == "http://127.0.0.1:4566/_aws/execute-api/a1b2c3d4e5/prod"
