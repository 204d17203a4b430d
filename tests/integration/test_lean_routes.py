"""`LeanRoute`: routes with only path strings, a JSON body of a model and request-only
dependencies are called directly, skipping FastAPI's dependency solving; everything else, and
every request that does not pass the lean checks (a path value outside its declared lengths, a
body missing, not JSON or invalid), still goes through FastAPI's handler and answers as before."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import fastapi.routing
import pytest
from fastapi import Depends, FastAPI, Path, Request, Response
from fastapi.testclient import TestClient

from restitution.api import errors
from restitution.api.app import add_routes
from restitution.api.routes import cases, orders
from restitution.api.routing import api_router, lean_plan
from tests.integration.case_steps import open_case
from tests.integration.conftest import Api


@pytest.fixture
def fastapi_solves(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths of the requests FastAPI's own handler solved dependencies for."""
    solved: list[str] = []
    original = fastapi.routing.solve_dependencies

    async def counting(*, request: Request, **kwargs: Any) -> Any:
        solved.append(request.url.path)
        return await original(request=request, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    yield solved


def _route(router: fastapi.APIRouter, path: str, method: str) -> fastapi.routing.APIRoute:
    for route in router.routes:
        if isinstance(route, fastapi.routing.APIRoute) and (route.path, method) in (
            (path, each) for each in route.methods
        ):
            return route
    raise AssertionError(f"no {method} {path}")


def test_the_hot_reads_are_lean_and_the_rest_are_not() -> None:
    lean = {
        ("GET", "/v1/orders/{order_id}/eligibility"),
        ("GET", "/v1/orders/{order_id}"),
        ("GET", "/v1/cases/{case_id}"),
    }
    for path, method in (p[::-1] for p in lean):
        router = orders.router if path.startswith("/v1/orders") else cases.router
        assert lean_plan(_route(router, path, method).dependant) is not None, path
    # the case actions: a body of a model, required or optional
    opening = lean_plan(_route(cases.router, "/v1/cases", "POST").dependant)
    assert opening is not None and opening.body is not None and opening.body.required
    accepting = lean_plan(_route(cases.router, "/v1/cases/{case_id}/accept", "POST").dependant)
    assert accepting is not None and accepting.body is not None and not accepting.body.required
    # query parameters, a `Response` parameter: FastAPI's handler
    assert lean_plan(_route(cases.router, "/v1/cases", "GET").dependant) is None
    assert lean_plan(_route(orders.router, "/v1/orders/{order_id}", "PUT").dependant) is None


def test_eligibility_is_answered_without_fastapis_dependency_solving(
    api: Api, fastapi_solves: list[str]
) -> None:
    api.put_order()
    fastapi_solves.clear()
    response = api.client.get("/v1/orders/o_1/eligibility", headers=api.auth())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "eligibility" and body["order_id"] == "o_1"
    assert [line["line_id"] for line in body["lines"]] == ["l1", "l2"]
    assert fastapi_solves == []


def test_a_path_value_too_long_gets_fastapis_own_error(api: Api, fastapi_solves: list[str]) -> None:
    long_id = "x" * 201
    response = api.client.get(f"/v1/orders/{long_id}/eligibility", headers=api.auth())
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_field" and error["param"] == "order_id"
    assert fastapi_solves == [f"/v1/orders/{long_id}/eligibility"]


def test_case_actions_are_answered_without_fastapis_dependency_solving(
    api: Api, fastapi_solves: list[str]
) -> None:
    case = open_case(api)
    api.auth("seller", "s_1")  # its token minted now (by a route FastAPI handles)
    fastapi_solves.clear()
    offers = f"/v1/cases/{case['id']}/offers"
    counter = {"kind": "refund", "amount": {"amount": 1000, "currency": "USD"}}
    countered = api.as_("seller", "s_1")("POST", offers, json=counter)
    assert countered.status_code == 200, countered.text
    assert countered.json()["current_offer"]["amount"] == {"amount": 1000, "currency": "USD"}
    accepted = api.as_("buyer", "b_1")("POST", f"/v1/cases/{case['id']}/accept")  # no body
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["refunded"] == {"amount": 1000, "currency": "USD"}
    assert fastapi_solves == []


@pytest.mark.parametrize(
    ("content", "content_type", "solved"),
    [
        # FastAPI refuses JSON it cannot decode while reading the body, before solving
        (b'{"kind": "refund", "amount": [', "application/json", False),
        (b'{"kind": "refund", "amount": {"amount": -5, "currency": "USD"}}', "application/json",
         True),
        (b'{"kind": "refund", "amount": {"amount": 5, "currency": "USD"}}', "text/plain", True),
        (b"", "application/json", True),
    ],
)  # fmt: skip
def test_a_body_the_lean_checks_refuse_gets_fastapis_own_error(
    api: Api, fastapi_solves: list[str], content: bytes, content_type: str, solved: bool
) -> None:
    case = open_case(api)
    api.auth("seller", "s_1")
    path = f"/v1/cases/{case['id']}/offers"
    fastapi_solves.clear()
    response = api.as_("seller", "s_1")(
        "POST", path, content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request"
    assert fastapi_solves == ([path] if solved else [])
    assert (
        api.client.get(f"/v1/cases/{case['id']}", headers=api.auth()).json()["offers"]
        == (case["offers"])
    )  # nothing changed


def test_lean_routes_still_authenticate_and_hide_other_parties_orders(api: Api) -> None:
    api.put_order()  # buyer b_1, seller s_1
    case = open_case(api)
    assert api.client.get("/v1/orders/o_1/eligibility").json()["error"]["code"] == ("missing_token")
    for path in ("/v1/orders/o_1", "/v1/orders/o_1/eligibility", f"/v1/cases/{case['id']}"):
        assert api.as_("buyer", "b_1")("GET", path).status_code == 200, path
        stranger = api.as_("buyer", "b_other")("GET", path)
        assert stranger.status_code == 404, path
        assert stranger.json()["error"]["code"] == "resource_missing"


CALLS: list[str] = []  # the lean test application's dependencies, as they are called


async def who(request: Request) -> str:
    CALLS.append("who")
    return request.headers.get("x-who", "nobody")


async def greeting(name: Annotated[str, Depends(who)]) -> str:
    CALLS.append("greeting")
    return f"hello {name}"


async def thing(
    thing_id: Annotated[str, Path(min_length=2, max_length=5)],
    name: Annotated[str, Depends(who)],
    text: Annotated[str, Depends(greeting)],
) -> Response:
    return Response(f"{thing_id}: {text} ({name})")


def test_a_dependency_is_called_once_per_request_as_fastapi_caches_it() -> None:
    router = api_router(tags=["test"])
    router.add_api_route("/things/{thing_id}", thing, methods=["GET"])
    app = FastAPI()
    errors.install(app)
    add_routes(app, router)
    assert lean_plan(_route(router, "/things/{thing_id}", "GET").dependant) is not None
    CALLS.clear()
    with TestClient(app) as client:
        response = client.get("/things/ab", headers={"x-who": "ana"})
        assert (response.status_code, response.text) == (200, "ab: hello ana (ana)")
        assert CALLS == ["who", "greeting"]
        # the declared lengths hold at both ends, answered by FastAPI's validation
        for bad in ("a", "abcdef"):
            assert client.get(f"/things/{bad}").status_code == 400
        assert client.get("/things/abcde").status_code == 200


async def at_most_four(thing_id: Annotated[str, Path(max_length=4)]) -> str:
    return thing_id


async def checked_thing(
    thing_id: Annotated[str, Path(min_length=2, max_length=5)],
    checked: Annotated[str, Depends(at_most_four)],
) -> Response:
    return Response(checked)


def test_a_path_parameter_declared_twice_holds_both_declarations() -> None:
    router = api_router(tags=["test"])
    router.add_api_route("/checked/{thing_id}", checked_thing, methods=["GET"])
    plan = lean_plan(_route(router, "/checked/{thing_id}", "GET").dependant)
    assert plan is not None and plan.lengths == (("thing_id", 2, 4),)
    app = FastAPI()
    errors.install(app)
    add_routes(app, router)
    with TestClient(app) as client:
        assert client.get("/checked/abcd").text == "abcd"
        assert client.get("/checked/abcde").status_code == 400  # the dependency's limit


async def refuse(request: Request) -> None:
    raise fastapi.HTTPException(status_code=403, detail="not here")


def test_routes_included_by_another_router_keep_its_dependencies(
    fastapi_solves: list[str],
) -> None:
    router = api_router(tags=["test"])
    router.add_api_route("/things/{thing_id}", thing, methods=["GET"])
    app = FastAPI()
    app.include_router(router, prefix="/guarded", dependencies=[Depends(refuse)])
    with TestClient(app) as client:
        assert client.get("/guarded/things/ab").status_code == 403
    assert fastapi_solves == ["/guarded/things/ab"]  # FastAPI's handler, with `refuse`
