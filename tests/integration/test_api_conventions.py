"""The API's conventions (API.md): error shape, strict integers, auth, idempotency, lists."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from restitution.api.errors import ERROR_RESPONSES
from restitution.services import idempotency
from tests.integration.case_steps import FULL_L1, act, ok, open_case, refund_request, usd
from tests.integration.conftest import Api, order_body

# Every method and path of the contract (API.md), path parameters blanked.
CONTRACT_PATHS = [
    ("post", "/v1/party_tokens"),
    ("put", "/v1/orders/{}"),
    ("get", "/v1/orders/{}"),
    ("get", "/v1/orders/{}/eligibility"),
    ("post", "/v1/cases"),
    ("get", "/v1/cases"),
    ("get", "/v1/cases/{}"),
    ("get", "/v1/cases/{}/events"),
    ("post", "/v1/cases/{}/messages"),
    ("post", "/v1/cases/{}/offers"),
    ("post", "/v1/cases/{}/accept"),
    ("post", "/v1/cases/{}/reject"),
    ("post", "/v1/cases/{}/escalate"),
    ("post", "/v1/cases/{}/decision"),
    ("post", "/v1/cases/{}/withdraw"),
    ("post", "/v1/cases/{}/return/label"),
    ("post", "/v1/cases/{}/return/shipment"),
    ("post", "/v1/cases/{}/return/delivered"),
    ("post", "/v1/cases/{}/inspection"),
    ("post", "/v1/cases/{}/replacement/shipment"),
    ("post", "/v1/cases/{}/replacement/delivered"),
    ("post", "/v1/attachments"),
    ("get", "/v1/attachments/{}"),
    ("get", "/v1/refunds"),
    ("post", "/v1/refunds/{}/succeeded"),
    ("post", "/v1/refunds/{}/failed"),
    ("post", "/v1/webhook_endpoints"),
    ("get", "/v1/test/clock"),
    ("post", "/v1/test/clock"),
]


def error_of(response: Any, status: int, kind: str, code: str | None = None) -> dict[str, Any]:
    """The contract's error shape: {"error": {type, code, message, param}} and nothing else."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert {"type", "code", "message", "param"} <= set(error)
    assert error["type"] == kind
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    return dict(error)


def case_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "order_id": "o_1",
        "lines": [{"line_id": "l1", "quantity": 1}],
        "reason": "damaged",
        "description": "Cracked.",
        "request": refund_request(),
        "attachments": [],
    }
    body.update(overrides)
    return body


def change_of_mind_orders(api: Api, orders: dict[str, tuple[str, str]], lines: int) -> None:
    """Orders whose sellers accept a change of mind: cases on them need no evidence."""
    for order_id, (buyer_id, seller_id) in orders.items():
        body = order_body(
            buyer_id=buyer_id,
            seller_id=seller_id,
            lines=[
                {"line_id": f"l{n}", "category": "accessories", "quantity": 1, "unit_amount": 500}
                for n in range(lines)
            ],
            seller_terms={"accepts_change_of_mind": True},
        )
        ok(api.client.put(f"/v1/orders/{order_id}", json=body, headers=api.auth()), 201)


def open_change_of_mind_cases(api: Api, order_ids: list[str], lines: int) -> list[str]:
    """One case per line, opened by the operator for each order's buyer; ids in opening order."""
    ids = []
    for order_id in order_ids:
        for n in range(lines):
            body = case_body(
                order_id=order_id,
                lines=[{"line_id": f"l{n}"}],
                reason="changed_mind",
                request=refund_request(100, return_required=True),
            )
            ids.append(ok(api.client.post("/v1/cases", json=body, headers=api.auth()), 201)["id"])
    return ids


def list_cases(api: Api, query: str = "") -> Any:
    return api.client.get(f"/v1/cases{query}", headers=api.auth())


# --------------------------------------------------------------------------- malformed requests


def test_malformed_json_is_an_invalid_request(api: Api) -> None:
    api.put_order()

    response = api.client.post(
        "/v1/cases",
        content=b'{"order_id": "o_1", "lines": [',
        headers={**api.auth("buyer", "b_1"), "Content-Type": "application/json"},
    )

    error_of(response, 400, "invalid_request")


def test_amount_given_as_a_string_is_refused_naming_the_field(api: Api) -> None:
    api.put_order()
    request = {"kind": "refund", "amount": {"amount": "1000", "currency": "USD"}}

    response = api.client.post(
        "/v1/cases", json=case_body(request=request), headers=api.auth("buyer", "b_1")
    )

    assert error_of(response, 400, "invalid_request")["param"] == "request.amount.amount"


def test_fractional_quantity_is_refused_naming_the_field(api: Api) -> None:
    api.put_order()

    response = api.client.post(
        "/v1/cases",
        json=case_body(lines=[{"line_id": "l1", "quantity": 10.5}]),
        headers=api.auth("buyer", "b_1"),
    )

    assert error_of(response, 400, "invalid_request")["param"] == "lines.0.quantity"


def test_order_unit_amount_given_as_a_string_is_refused(api: Api) -> None:
    body = order_body()
    body["lines"][0]["unit_amount"] = "2599"

    response = api.client.put("/v1/orders/o_1", json=body, headers=api.auth())

    assert error_of(response, 400, "invalid_request")["param"] == "lines.0.unit_amount"


def test_field_named_body_is_named_as_the_param(api: Api) -> None:
    case = open_case(api)

    response = act(api, "buyer", "b_1", case["id"], "messages", body=42)

    assert error_of(response, 400, "invalid_request")["param"] == "body"


@pytest.mark.parametrize("path", ["/v1/party_tokens", "/v1/cases"])
def test_a_body_that_is_not_json_names_no_field(api: Api, path: str) -> None:
    response = api.client.post(
        path,
        content=b'{"role": "buyer",}',
        headers={**api.auth(), "Content-Type": "application/json"},
    )

    error = error_of(response, 400, "invalid_request", "invalid_json")
    assert error["param"] is None  # not "17", the position of the fault
    assert error["message"].startswith("the body is not valid JSON")
    assert "position 17" in error["message"]


def test_text_with_a_nul_character_is_an_invalid_request(api: Api) -> None:
    case = open_case(api)

    response = act(api, "buyer", "b_1", case["id"], "messages", body="hello\x00")

    assert error_of(response, 400, "invalid_request")["param"] == "body"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/orders/o%001"),
        ("GET", "/v1/orders/o%001"),
        ("GET", "/v1/orders/o%001/eligibility"),
    ],
)
def test_an_order_id_with_a_nul_character_is_an_invalid_request(
    api: Api, method: str, path: str
) -> None:
    response = api.client.request(method, path, json=order_body(), headers=api.auth())

    assert error_of(response, 400, "invalid_request")["param"] == "order_id"


def test_nul_character_in_a_query_is_never_a_server_error(api: Api) -> None:
    response = list_cases(api, "?buyer_id=b%00")

    assert response.status_code in (200, 400), response.text


def test_unknown_line_is_refused_naming_the_lines(api: Api) -> None:
    api.put_order()

    response = api.open_case(lines=[{"line_id": "l9", "quantity": 1}])

    assert error_of(response, 422, "policy_violation", "unknown_line")["param"] == "lines"


def test_huge_token_ttl_is_an_invalid_request(api: Api) -> None:
    response = api.client.post(
        "/v1/party_tokens",
        json={"role": "buyer", "party_id": "b_1", "ttl_seconds": 10**30},
        headers=api.auth(),
    )

    assert error_of(response, 400, "invalid_request", "invalid_ttl")["param"] == "ttl_seconds"


def test_unknown_case_is_not_found(api: Api) -> None:
    response = api.client.get("/v1/cases/case_missing", headers=api.auth())

    error_of(response, 404, "not_found")


def test_action_on_an_unknown_case_is_not_found(api: Api) -> None:
    response = api.client.post("/v1/cases/case_missing/accept", headers=api.auth())

    error_of(response, 404, "not_found")


# --------------------------------------------------------------------------- authentication


def test_request_without_a_token_is_unauthenticated(api: Api) -> None:
    response = api.client.get("/v1/cases")

    error_of(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_request_with_an_unknown_token_is_unauthenticated(api: Api) -> None:
    response = api.client.get("/v1/cases", headers={"Authorization": "Bearer rst_b_nonsense"})

    error_of(response, 401, "unauthenticated")


def test_bearer_scheme_is_read_case_insensitively_and_other_schemes_are_refused(api: Api) -> None:
    key = api.auth()["Authorization"].removeprefix("Bearer ")

    for scheme in ("Bearer", "bearer", "BEARER"):
        ok(api.client.get("/v1/cases", headers={"Authorization": f"{scheme} {key}"}))
    for header in (f"Basic {key}", key, "Bearer", "Bearer "):
        error_of(
            api.client.get("/v1/cases", headers={"Authorization": header}), 401, "unauthenticated"
        )


def test_party_token_expires_after_its_ttl_on_the_servers_clock(api: Api) -> None:
    api.put_order()
    minted = api.client.post(
        "/v1/party_tokens",
        json={"role": "buyer", "party_id": "b_1", "ttl_seconds": 60},
        headers=api.auth(),
    )
    token = {"Authorization": f"Bearer {ok(minted, 201)['token']}"}
    ok(api.client.get("/v1/orders/o_1", headers=token))

    api.advance(seconds=61)

    error_of(api.client.get("/v1/orders/o_1", headers=token), 401, "unauthenticated")


# --------------------------------------------------------------------------- state


def test_action_the_status_does_not_allow_is_a_conflict(api: Api) -> None:
    case = open_case(api)

    response = act(
        api, "buyer", "b_1", case["id"], "return/shipment", carrier="UPS", tracking_number="1Z"
    )

    error_of(response, 409, "conflict")


def test_action_on_a_resolved_case_is_a_conflict(api: Api) -> None:
    case = open_case(api)
    ok(act(api, "buyer", "b_1", case["id"], "withdraw"))

    response = act(api, "seller", "s_1", case["id"], "accept")

    assert error_of(response, 409, "conflict")["code"] == "invalid_state"


# --------------------------------------------------------------------------- idempotency


def test_same_idempotency_key_and_body_replays_the_first_response(api: Api) -> None:
    api.put_order()
    body = case_body(attachments=[api.upload("buyer", "b_1")])
    headers = {**api.auth("buyer", "b_1"), "Idempotency-Key": "open-1"}

    first = api.client.post("/v1/cases", json=body, headers=headers)
    again = api.client.post("/v1/cases", json=body, headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert [case["id"] for case in ok(list_cases(api))["data"]] == [first.json()["id"]]


def test_same_idempotency_key_with_another_body_is_a_conflict(api: Api) -> None:
    api.put_order()
    body = case_body(attachments=[api.upload("buyer", "b_1")])
    headers = {**api.auth("buyer", "b_1"), "Idempotency-Key": "open-1"}
    ok(api.client.post("/v1/cases", json=body, headers=headers), 201)

    other = {**body, "description": "Something else."}
    response = api.client.post("/v1/cases", json=other, headers=headers)

    error_of(response, 409, "conflict", "idempotency_conflict")
    assert len(ok(list_cases(api))["data"]) == 1


def test_idempotent_action_replayed_does_not_act_twice(api: Api) -> None:
    case = open_case(api)
    headers = {"Idempotency-Key": "accept-1"}
    seller = api.as_("seller", "s_1")

    first = seller("POST", f"/v1/cases/{case['id']}/accept", headers=headers)
    again = seller("POST", f"/v1/cases/{case['id']}/accept", headers=headers)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    refunds = ok(api.client.get(f"/v1/refunds?case_id={case['id']}", headers=api.auth()))
    assert [r["amount"] for r in refunds["data"]] == [usd(FULL_L1)]


def _reserved_by_another_request(api: Api, path: str, raw: bytes, key: str) -> None:
    """`key` reserved as the middleware reserves it for a request still running: the same
    caller, path and body."""
    principal = hashlib.sha256(api.auth()["Authorization"].encode()).hexdigest()
    request_hash = hashlib.sha256(path.encode() + b"\n\n" + raw).hexdigest()
    assert idempotency.reserve(api.app, principal, key, request_hash) is None


def test_a_key_whose_first_request_still_runs_is_not_run_again(api: Api) -> None:
    path, raw = "/v1/party_tokens", b'{"role": "buyer", "party_id": "b_9"}'
    headers = {**api.auth(), "Idempotency-Key": "token-9", "Content-Type": "application/json"}
    _reserved_by_another_request(api, path, raw, "token-9")

    response = api.client.post(path, content=raw, headers=headers)

    error_of(response, 409, "conflict", "idempotency_in_progress")
    other_body = api.client.post(path, content=raw.replace(b"b_9", b"b_8"), headers=headers)
    error_of(other_body, 409, "conflict", "idempotency_conflict")


def test_a_key_whose_first_request_died_is_free_again_after_a_while(api: Api) -> None:
    path, raw = "/v1/party_tokens", b'{"role": "buyer", "party_id": "b_9"}'
    headers = {**api.auth(), "Idempotency-Key": "token-9", "Content-Type": "application/json"}
    _reserved_by_another_request(api, path, raw, "token-9")
    api.advance(seconds=int(idempotency.ABANDONED_AFTER.total_seconds()))

    first = ok(api.client.post(path, content=raw, headers=headers), 201)
    again = ok(api.client.post(path, content=raw, headers=headers), 201)

    assert again == first  # run once, then replayed


def test_a_kept_response_is_not_replayed_to_a_token_that_has_expired(api: Api) -> None:
    case = open_case(api)
    minted = api.client.post(
        "/v1/party_tokens",
        json={"role": "buyer", "party_id": "b_1", "ttl_seconds": 60},
        headers=api.auth(),
    )
    headers = {"Authorization": f"Bearer {ok(minted, 201)['token']}", "Idempotency-Key": "msg-1"}
    path, body = f"/v1/cases/{case['id']}/messages", {"body": "Any news?"}
    ok(api.client.post(path, json=body, headers=headers))

    api.advance(seconds=61)

    response = api.client.post(path, json=body, headers=headers)
    error_of(response, 401, "unauthenticated", "token_expired")
    assert "idempotent-replayed" not in response.headers


# --------------------------------------------------------------------------- lists


def test_list_limit_out_of_bounds_is_an_invalid_request(api: Api) -> None:
    for limit in (0, 101, -1):
        error_of(list_cases(api, f"?limit={limit}"), 400, "invalid_request")


def test_list_pages_newest_first_twenty_by_default(api: Api) -> None:
    orders = [f"o_{n}" for n in range(5)]
    change_of_mind_orders(api, dict.fromkeys(orders, ("b_1", "s_1")), lines=5)
    opened = open_change_of_mind_cases(api, orders, lines=5)

    first = ok(list_cases(api))
    assert len(first["data"]) == 20
    assert first["has_more"] is True
    second = ok(list_cases(api, f"?starting_after={first['data'][-1]['id']}"))
    assert len(second["data"]) == 5
    assert second["has_more"] is False

    seen = [case["id"] for case in first["data"] + second["data"]]
    assert sorted(seen) == sorted(opened)


@pytest.mark.parametrize(
    ("role", "party_id"), [("operator", None), ("seller", "s_2")], ids=["unknown", "not-theirs"]
)
def test_a_cursor_that_is_not_in_the_list_is_an_invalid_request(
    api: Api, role: str, party_id: str | None
) -> None:
    # It was ignored: the first page again, with has_more, for a client to loop on for ever.
    change_of_mind_orders(api, {"o_1": ("b_1", "s_1"), "o_2": ("b_2", "s_2")}, lines=3)
    [another_sellers] = open_change_of_mind_cases(api, ["o_1"], lines=1)
    open_change_of_mind_cases(api, ["o_2"], lines=3)
    cursor = "case_unknown" if role == "operator" else another_sellers

    response = api.as_(role, party_id)("GET", f"/v1/cases?limit=1&starting_after={cursor}")

    error = error_of(response, 400, "invalid_request", "invalid_cursor")
    assert error["param"] == "starting_after"
    assert cursor in error["message"]


def test_an_event_cursor_that_is_not_of_the_case_is_an_invalid_request(api: Api) -> None:
    # It was an empty page, as if the timeline had ended there.
    case = open_case(api)
    path = f"/v1/cases/{case['id']}/events?starting_after=evt_unknown"

    error = error_of(api.client.get(path, headers=api.auth()), 400, "invalid_request")

    assert (error["code"], error["param"]) == ("invalid_cursor", "starting_after")


def test_a_status_filter_that_is_no_status_is_an_invalid_request(api: Api) -> None:
    # It was an empty list, as if no case had that status: a typo went unnoticed.
    error = error_of(list_cases(api, "?status=awaiting-seller"), 400, "invalid_request")

    assert error["param"] == "status"


def test_list_limit_sets_the_page_size(api: Api) -> None:
    change_of_mind_orders(api, {"o_1": ("b_1", "s_1")}, lines=3)
    open_change_of_mind_cases(api, ["o_1"], lines=3)

    page = ok(list_cases(api, "?limit=2"))

    assert len(page["data"]) == 2
    assert page["has_more"] is True
    assert ok(list_cases(api, "?limit=3"))["has_more"] is False


def test_list_filters_by_order_buyer_and_seller(api: Api) -> None:
    orders = {"o_a": ("b_1", "s_1"), "o_b": ("b_2", "s_1"), "o_c": ("b_2", "s_2")}
    change_of_mind_orders(api, orders, lines=1)
    open_change_of_mind_cases(api, list(orders), lines=1)
    expected = {
        "order_id=o_b": ["o_b"],
        "buyer_id=b_2": ["o_b", "o_c"],
        "seller_id=s_1": ["o_a", "o_b"],
        "buyer_id=b_2&seller_id=s_1": ["o_b"],
        "buyer_id=b_9": [],
    }

    found = {
        query: sorted(case["order_id"] for case in ok(list_cases(api, f"?{query}"))["data"])
        for query in expected
    }

    assert found == expected


def test_list_filters_by_status(api: Api) -> None:
    change_of_mind_orders(api, {"o_1": ("b_1", "s_1")}, lines=3)
    opened = open_change_of_mind_cases(api, ["o_1"], lines=3)
    ok(act(api, "buyer", "b_1", opened[1], "withdraw"))

    resolved = ok(list_cases(api, "?status=resolved"))["data"]
    waiting = ok(list_cases(api, "?status=awaiting_seller"))["data"]

    assert [case["id"] for case in resolved] == [opened[1]]
    assert {case["id"] for case in waiting} == {opened[0], opened[2]}


# --------------------------------------------------------------------------- the service


def test_openapi_describes_every_path_of_the_contract(api: Api) -> None:
    document = ok(api.client.get("/openapi.json"))
    served = {
        (method, re.sub(r"\{[^}]+\}", "{}", path))
        for path, operations in document["paths"].items()
        for method in operations
    }

    missing = [entry for entry in CONTRACT_PATHS if entry not in served]

    assert missing == []


def test_openapi_names_the_bearer_scheme_on_every_operation_that_authenticates(
    api: Api,
) -> None:
    document = ok(api.client.get("/openapi.json"))
    security = {
        (method, path): operation.get("security")
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }

    open_to_all = {entry for entry, value in security.items() if value is None}

    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert open_to_all == {("get", "/healthz"), ("get", "/v1/test/clock")}
    assert len(security) > 30  # every other one needs the operator key or a party token
    assert all(security[entry] == [{"HTTPBearer": []}] for entry in security.keys() - open_to_all)


def test_openapi_documents_the_error_shape_on_every_operation(api: Api) -> None:
    document = ok(api.client.get("/openapi.json"))
    missing = {
        (method, path): sorted(set(map(str, ERROR_RESPONSES)) - set(operation["responses"]))
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }

    assert {entry: codes for entry, codes in missing.items() if codes} == {}


def test_healthz_reports_ok(api: Api) -> None:
    response = ok(api.client.get("/healthz"))

    assert response["status"] == "ok"


def test_put_order_creates_then_replaces(api: Api) -> None:
    created = api.client.put("/v1/orders/o_1", json=order_body(), headers=api.auth())
    replacement = order_body(shipping_amount=500, lines=order_body()["lines"][:1])
    replaced = api.client.put("/v1/orders/o_1", json=replacement, headers=api.auth())

    assert (created.status_code, replaced.status_code) == (201, 200)
    fetched = ok(api.client.get("/v1/orders/o_1", headers=api.auth()))
    assert fetched["shipping_amount"] == 500
    assert [line["line_id"] for line in fetched["lines"]] == ["l1"]


def test_nothing_malformed_produces_a_server_error(api: Api) -> None:
    api.put_order()
    case_id = ok(api.open_case(), 201)["id"]
    bodies: list[Any] = [None, [], "x", 1, {"kind": None}, {"amount": {"amount": 1}}]

    for body in bodies:
        for action in (
            "offers",
            "decision",
            "inspection",
            "return/label",
            "return/address",
            "return/shipment",
        ):
            response = api.client.post(
                f"/v1/cases/{case_id}/{action}", json=body, headers=api.auth()
            )
            assert response.status_code < 500, (action, body, response.text)
            assert "error" in response.json()


def test_order_time_at_the_edge_of_the_calendar_is_refused(api: Api) -> None:
    # 9999-12-31 plus a return window, or year 1 moved to UTC, is outside what a datetime holds.
    for field, value in (
        ("delivered_at", "9999-12-31T00:00:00Z"),
        ("placed_at", "0001-01-01T00:00:00+01:00"),
    ):
        body = order_body(**{field: value})

        response = api.client.put("/v1/orders/o_1", json=body, headers=api.auth())

        assert error_of(response, 400, "invalid_request")["param"] == field


def test_order_whose_total_is_beyond_exact_storage_is_refused(api: Api) -> None:
    body = order_body()
    body["lines"][0].update(quantity=1_000_000, unit_amount=10**15)

    response = api.client.put("/v1/orders/o_1", json=body, headers=api.auth())

    assert error_of(response, 400, "invalid_request", "amount_too_large")["param"] == "lines"


def test_a_method_the_path_does_not_take_is_refused_with_a_named_code(api: Api) -> None:
    api.put_order()
    response = api.client.post("/v1/orders/o_1", headers=api.auth())
    assert response.status_code == 405
    assert response.json()["error"] == {
        "type": "invalid_request",
        "code": "method_not_allowed",
        "message": "Method Not Allowed",
        "param": None,
    }


def test_order_times_out_of_order_are_refused_and_change_nothing(api: Api) -> None:
    placed = "2026-03-10T10:00:00Z"
    for field, value in (
        ("shipped_at", "2026-03-09T10:00:00Z"),  # shipped before it was placed
        ("delivered_at", "2026-03-09T10:00:00+00:00"),  # delivered before it was shipped
        ("promised_delivery_by", "2026-03-10T09:59:59Z"),
    ):
        times = {"placed_at": placed, "shipped_at": placed, "delivered_at": "2026-03-12T00:00Z",
                 "promised_delivery_by": "2026-03-20T00:00Z"}  # fmt: skip
        body = order_body(**{**times, field: value})

        response = api.client.put("/v1/orders/o_times", json=body, headers=api.auth())

        error = error_of(response, 400, "invalid_request", "times_out_of_order")
        assert error["param"] == field
        got = api.client.get("/v1/orders/o_times", headers=api.auth())
        assert got.status_code == 404
    # equal times are in order
    names = ("placed_at", "shipped_at", "delivered_at", "promised_delivery_by")
    same = dict.fromkeys(names, placed)
    response = api.client.put("/v1/orders/o_times", json=order_body(**same), headers=api.auth())
    assert response.status_code == 201, response.text
