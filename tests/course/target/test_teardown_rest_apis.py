"""REST APIs (API Gateway v1) a run creates are in its inventory and deleted by its teardown;
another run's, and APIs outside any run, are left alone.

GetRestApis and DeleteRestApi:
https://docs.aws.amazon.com/apigateway/latest/api/API_GetRestApis.html
https://docs.aws.amazon.com/apigateway/latest/api/API_DeleteRestApi.html
"""

from __future__ import annotations

from lambdalab.course.target import open_target, teardown


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
