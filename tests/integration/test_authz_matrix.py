"""Who may do what: every endpoint of API.md against parties that must be refused, and
against callers without a valid token.

A refused request answers 401, 403 or 404 in the contract's error shape and changes nothing:
every row of every table is compared before and after. What is not the caller's answers
exactly as what does not exist.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from restitution.api.app import create_api
from restitution.bootstrap import build_app
from restitution.services.clock import TestClock
from restitution.settings import Settings
from tests.conftest import START, _truncate_all
from tests.integration.case_steps import snapshot
from tests.integration.conftest import ON_SQLITE, OPERATOR_KEY, Api, make_settings, order_body

BUYER, SELLER = "b_1", "s_1"
OTHERS = {
    "other_buyer": ("buyer", "b_2"),
    "other_seller": ("seller", "s_2"),
    "mediator": ("mediator", "m_1"),
    "own_buyer": ("buyer", BUYER),
    "own_seller": ("seller", SELLER),
}
MONEY = {"amount": 1000, "currency": "USD"}
SHIPMENT = {"carrier": "UPS", "tracking_number": "1Z999"}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # Refunds wait for the operator's confirmation, so a pending refund exists to poke at.
    return make_settings(database_url, tmp_path, refund_gateway="operator")


@dataclass
class World:
    """Order o_1 of b_1/s_1 with a case under negotiation and a refund awaiting confirmation."""

    case_id: str
    attachment_id: str
    refund_id: str
    webhook_endpoint_id: str

    def fill(self, template: str) -> str:
        return template.format(
            case=self.case_id,
            att=self.attachment_id,
            rfd=self.refund_id,
            whe=self.webhook_endpoint_id,
        )


def build_world(api: Api) -> World:
    api.put_order()
    attachment = api.upload("buyer", BUYER)
    target = api.open_case(attachments=[attachment])
    assert target.status_code == 201, target.text
    settled = api.open_case(
        lines=[{"line_id": "l2", "quantity": 1}],
        request={"kind": "refund", "amount": {"amount": 1300, "currency": "USD"}},
        attachments=[api.upload("buyer", BUYER)],
    )
    assert settled.status_code == 201, settled.text
    seller = api.as_("seller", SELLER)
    accepted = seller("POST", f"/v1/cases/{settled.json()['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    refunds = api.client.get(
        "/v1/refunds", params={"case_id": settled.json()["id"]}, headers=api.auth()
    ).json()["data"]
    assert [r["status"] for r in refunds] == ["pending"]
    endpoint = api.client.post(
        "/v1/webhook_endpoints",
        json={"url": "https://hooks.example.com/a", "events": ["case.*"]},
        headers=api.auth(),
    )
    assert endpoint.status_code == 201, endpoint.text
    for role, party_id in OTHERS.values():
        api.auth(role, party_id)  # mint every token before the snapshot
    return World(target.json()["id"], attachment, refunds[0]["id"], endpoint.json()["id"])


@dataclass(frozen=True)
class WorldTemplate:
    path: Path
    world: World
    tokens: dict[tuple[str, str], str]


@pytest.fixture(scope="module")
def world_template(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> WorldTemplate:
    """The world built once on SQLite; each matrix test gets a copy of the file (fast)."""
    directory = tmp_path_factory.mktemp("world")
    path = directory / "world.db"
    shutil.copy(sqlite_template, path)
    with _world_api(f"sqlite:///{path}", directory) as api:
        world = build_world(api)
        tokens = dict(api._tokens)
        with api.app.db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return WorldTemplate(path, world, tokens)


class _world_api:
    """An Api on `url` with the operator refund gateway, closed on exit."""

    def __init__(self, url: str, directory: Path) -> None:
        settings = make_settings(url, directory, refund_gateway="operator")
        self.app = build_app(settings, clock=TestClock(START), auto_migrate=False)
        self.client = TestClient(create_api(self.app, OPERATOR_KEY), raise_server_exceptions=False)

    def __enter__(self) -> Api:
        self.client.__enter__()
        return Api(self.client, self.app)

    def __exit__(self, *exc: object) -> None:
        self.client.__exit__(*exc)
        self.app.db.dispose()


@pytest.fixture
def matrix(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Api, World]]:
    """The world on a fresh database: a copy of the SQLite template, or rebuilt on PostgreSQL."""
    if request.param == "sqlite":
        template: WorldTemplate = request.getfixturevalue("world_template")
        shutil.copy(template.path, tmp_path / "world.db")
        with _world_api(f"sqlite:///{tmp_path / 'world.db'}", tmp_path) as api:
            api._tokens.update(template.tokens)
            yield api, template.world
    else:
        url = request.getfixturevalue("postgres_migrated")
        _truncate_all(url)
        with _world_api(url, tmp_path) as api:
            yield api, build_world(api)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    json: Any = None
    operator_only: bool = False
    operator_or_mediator: bool = False


ENDPOINTS: dict[str, Endpoint] = {
    "get_order": Endpoint("GET", "/v1/orders/o_1"),
    "put_order": Endpoint(
        "PUT", "/v1/orders/o_1", order_body(buyer_id="b_evil"), operator_only=True
    ),
    "eligibility": Endpoint("GET", "/v1/orders/o_1/eligibility"),
    "open_case": Endpoint(
        "POST",
        "/v1/cases",
        {
            "order_id": "o_1",
            "lines": [{"line_id": "l2", "quantity": 1}],
            "reason": "changed_mind",
            "request": {"kind": "refund", "amount": MONEY},
        },
    ),
    "get_case": Endpoint("GET", "/v1/cases/{case}"),
    "events": Endpoint("GET", "/v1/cases/{case}/events"),
    "messages": Endpoint("POST", "/v1/cases/{case}/messages", {"body": "hello"}),
    "offers": Endpoint("POST", "/v1/cases/{case}/offers", {"kind": "refund", "amount": MONEY}),
    "accept": Endpoint("POST", "/v1/cases/{case}/accept"),
    "reject": Endpoint("POST", "/v1/cases/{case}/reject", {"reason": "no"}),
    "escalate": Endpoint("POST", "/v1/cases/{case}/escalate", {"reason": "stuck"}),
    "decision": Endpoint(
        "POST", "/v1/cases/{case}/decision", {"kind": "refund", "amount": MONEY, "note": "ok"}
    ),
    "withdraw": Endpoint("POST", "/v1/cases/{case}/withdraw", {"reason": "never mind"}),
    "return_label": Endpoint(
        "POST",
        "/v1/cases/{case}/return/label",
        {"carrier": "UPS", "label_url": "https://labels.example.com/1.pdf"},
    ),
    "return_address": Endpoint(
        "POST",
        "/v1/cases/{case}/return/address",
        {
            "address": {
                "name": "Shop 1 returns",
                "line1": "9 Dock St",
                "city": "Ningbo",
                "postal_code": "315000",
                "country": "CN",
            }
        },
    ),
    "return_shipment": Endpoint("POST", "/v1/cases/{case}/return/shipment", SHIPMENT),
    "return_delivered": Endpoint("POST", "/v1/cases/{case}/return/delivered"),
    "inspection": Endpoint("POST", "/v1/cases/{case}/inspection", {"passed": True}),
    "replacement_shipment": Endpoint("POST", "/v1/cases/{case}/replacement/shipment", SHIPMENT),
    "replacement_delivered": Endpoint("POST", "/v1/cases/{case}/replacement/delivered"),
    "attachment": Endpoint("GET", "/v1/attachments/{att}"),
    "refunds_of_case": Endpoint("GET", "/v1/refunds?case_id={case}"),
    "refund_succeeded": Endpoint("POST", "/v1/refunds/{rfd}/succeeded", operator_only=True),
    "refund_failed": Endpoint(
        "POST", "/v1/refunds/{rfd}/failed", {"reason": "bounced"}, operator_only=True
    ),
    "refund_retry": Endpoint("POST", "/v1/refunds/{rfd}/retry", operator_or_mediator=True),
    "party_tokens": Endpoint(
        "POST", "/v1/party_tokens", {"role": "mediator", "party_id": "m_1"}, operator_only=True
    ),
    "create_webhook": Endpoint(
        "POST",
        "/v1/webhook_endpoints",
        {"url": "https://hooks.example.com/x", "events": ["case.*"]},
        operator_only=True,
    ),
    "list_webhooks": Endpoint("GET", "/v1/webhook_endpoints", operator_only=True),
    "get_webhook": Endpoint("GET", "/v1/webhook_endpoints/{whe}", operator_only=True),
    "webhook_deliveries": Endpoint(
        "GET", "/v1/webhook_endpoints/{whe}/deliveries", operator_only=True
    ),
    "disable_webhook": Endpoint("POST", "/v1/webhook_endpoints/{whe}/disable", operator_only=True),
    "enable_webhook": Endpoint("POST", "/v1/webhook_endpoints/{whe}/enable", operator_only=True),
}


def expected_refusal(endpoint_name: str, who: str) -> int | None:
    """The status the contract gives `who` on the endpoint, or None when it may act."""
    endpoint = ENDPOINTS[endpoint_name]
    if endpoint.operator_only:
        return 403
    if endpoint.operator_or_mediator:
        # Buyers and sellers never may, whoever's it is; the world's refund is pending on a
        # case never escalated, which mediators do not see.
        return 404 if who == "mediator" else 403
    if endpoint_name == "open_case":
        # Only a buyer opens cases; another buyer may not even see the order.
        return {"other_buyer": 404, "own_buyer": None}.get(who, 403)
    if who.startswith("own_"):
        return None  # the case's own parties: the transition table decides (tested below)
    return 404


MATRIX = [
    (name, who, status)
    for name in ENDPOINTS
    for who in OTHERS
    if (status := expected_refusal(name, who)) is not None
]
POSTGRES_SAMPLE = {
    ("get_case", "other_buyer"),
    ("events", "mediator"),
    ("accept", "other_seller"),
    ("return_address", "other_seller"),
    ("decision", "mediator"),
    ("withdraw", "other_buyer"),
    ("open_case", "own_seller"),
    ("attachment", "other_seller"),
    ("put_order", "own_buyer"),
    ("refund_succeeded", "own_seller"),
    ("refund_retry", "own_buyer"),
    ("refund_retry", "mediator"),
    ("list_webhooks", "mediator"),
}
PARAMS = [
    pytest.param("sqlite", name, who, status, id=f"sqlite-{name}-{who}")
    for name, who, status in MATRIX
] + [
    pytest.param(
        "postgres", name, who, status, id=f"postgres-{name}-{who}", marks=pytest.mark.postgres
    )
    for name, who, status in MATRIX
    if (name, who) in POSTGRES_SAMPLE
]


def assert_error(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == {403: "forbidden", 404: "not_found"}[status]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert "param" in error


@pytest.mark.parametrize(("matrix", "name", "who", "status"), PARAMS, indirect=["matrix"])
def test_refused_and_nothing_changes(
    matrix: tuple[Api, World], name: str, who: str, status: int
) -> None:
    api, world = matrix
    endpoint = ENDPOINTS[name]
    before = snapshot(api)
    call = api.as_(*OTHERS[who])
    kwargs = {"json": endpoint.json} if endpoint.json is not None else {}
    response = call(endpoint.method, world.fill(endpoint.path), **kwargs)
    assert_error(response, status)
    assert snapshot(api) == before


MISSING = World("case_missing", "att_missing", "rfd_missing", "whe_missing")
NOT_FOUND = [
    pytest.param("sqlite", name, who, id=f"sqlite-{name}-{who}")
    for name, who, status in MATRIX
    if status == 404
] + [
    pytest.param("postgres", name, who, id=f"postgres-{name}-{who}", marks=pytest.mark.postgres)
    for name, who in (("get_case", "mediator"), ("eligibility", "other_seller"))
]


def _error_naming(response: Any, ids: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """The status and error, with the ids the request named replaced by their kind."""
    error = dict(response.json()["error"])
    for object_id, kind in ids.items():
        error["message"] = error["message"].replace(object_id, kind)
    return response.status_code, error


@pytest.mark.parametrize(("matrix", "name", "who"), NOT_FOUND, indirect=["matrix"])
def test_what_is_not_yours_answers_as_what_does_not_exist(
    matrix: tuple[Api, World], name: str, who: str
) -> None:
    api, world = matrix
    endpoint = ENDPOINTS[name]
    call = api.as_(*OTHERS[who])
    missing_body = endpoint.json
    if isinstance(missing_body, dict) and missing_body.get("order_id") == "o_1":
        missing_body = {**missing_body, "order_id": "o_missing"}
    missing_path = MISSING.fill(endpoint.path).replace("/o_1", "/o_missing")

    theirs = call(endpoint.method, world.fill(endpoint.path), json=endpoint.json)
    missing = call(endpoint.method, missing_path, json=missing_body)

    named = {
        world.case_id: "<case>",
        world.attachment_id: "<att>",
        world.refund_id: "<rfd>",
        "o_1": "<order>",
    }
    unknown = {
        MISSING.case_id: "<case>",
        MISSING.attachment_id: "<att>",
        MISSING.refund_id: "<rfd>",
        "o_missing": "<order>",
    }
    assert _error_naming(theirs, named) == _error_naming(missing, unknown)


def expired_token(api: Api) -> str:
    """A token of the case's own buyer, which has just expired."""
    minted = api.client.post(
        "/v1/party_tokens",
        json={"role": "buyer", "party_id": BUYER, "ttl_seconds": 1},
        headers=api.auth(),
    )
    assert minted.status_code == 201, minted.text
    api.app.clock.advance(1)
    return str(minted.json()["token"])


def credentials(api: Api, kind: str) -> dict[str, str]:
    """Headers that do not authenticate, of one kind."""
    if kind == "expired_token":
        return {"Authorization": f"Bearer {expired_token(api)}"}
    return {
        "no_token": {},
        "unknown_token": {"Authorization": "Bearer rst_b_unknown"},
        "other_scheme": {"Authorization": f"Basic {OPERATOR_KEY}"},
    }[kind]


CREDENTIALS = ("no_token", "unknown_token", "expired_token", "other_scheme")
UNAUTHENTICATED = [
    pytest.param("sqlite", name, credential, id=f"sqlite-{name}-{credential}")
    for name in ENDPOINTS
    for credential in CREDENTIALS
] + [
    pytest.param(
        "postgres", name, "expired_token", id=f"postgres-{name}", marks=pytest.mark.postgres
    )
    for name in ("get_case", "accept", "attachment", "refund_succeeded", "refund_retry")
]


@pytest.mark.parametrize(("matrix", "name", "credential"), UNAUTHENTICATED, indirect=["matrix"])
def test_without_a_valid_token_every_endpoint_is_401_and_nothing_changes(
    matrix: tuple[Api, World], name: str, credential: str
) -> None:
    api, world = matrix
    endpoint = ENDPOINTS[name]
    headers = credentials(api, credential)
    before = snapshot(api)
    kwargs = {"json": endpoint.json} if endpoint.json is not None else {}
    response = api.client.request(
        endpoint.method, world.fill(endpoint.path), headers=headers, **kwargs
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"]["type"] == "unauthenticated"
    assert snapshot(api) == before


@ON_SQLITE
def test_matrix_covers_every_served_endpoint(api: Api) -> None:
    paths = {(e.method, e.path.split("?")[0]) for e in ENDPOINTS.values()}
    names = {
        "order_id": "o_1",
        "case_id": "{case}",
        "attachment_id": "{att}",
        "refund_id": "{rfd}",
        "endpoint_id": "{whe}",
    }
    contract = {
        (method.upper(), path.format(**names))
        for path, item in api.client.get("/openapi.json").json()["paths"].items()
        for method in item
        if path.startswith("/v1/") and not path.startswith("/v1/test/")
    }
    # Lists (tested below) and uploads (open to every party) are not refusals.
    unrefused = {("GET", "/v1/cases"), ("POST", "/v1/attachments")}
    assert contract - paths == unrefused


# --------------------------------------------------------------------------- lists


def _ids(api: Api, role: str, party_id: str, path: str = "/v1/cases") -> set[str]:
    separator = "&" if "?" in path else "?"
    response = api.as_(role, party_id)("GET", f"{path}{separator}limit=100")
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["data"]}


def _other_buyers_case(api: Api) -> str:
    """Order o_2 of buyer b_2 and seller s_2, and the case b_2 opens on it: its id."""
    api.put_order("o_2", buyer_id="b_2", seller_id="s_2")
    body = {
        "order_id": "o_2",
        "lines": [{"line_id": "l1", "quantity": 1}],
        "reason": "damaged",
        "request": {"kind": "refund", "amount": MONEY},
        "attachments": [api.upload("buyer", "b_2")],
    }
    opened = api.as_("buyer", "b_2")("POST", "/v1/cases", json=body)
    assert opened.status_code == 201, opened.text
    return str(opened.json()["id"])


def test_lists_show_each_party_only_its_own_cases(api: Api) -> None:
    api.put_order("o_1")
    mine = api.open_case("o_1").json()["id"]
    theirs_id = _other_buyers_case(api)

    assert _ids(api, "buyer", "b_1") == {mine}
    assert _ids(api, "buyer", "b_2") == {theirs_id}
    assert _ids(api, "seller", "s_1") == {mine}
    assert _ids(api, "seller", "s_2") == {theirs_id}
    assert _ids(api, "mediator", "m_1") == set()
    assert _ids(api, "operator", None) == {mine, theirs_id}
    # A filter naming someone else's id narrows, it never widens.
    assert _ids(api, "buyer", "b_1", "/v1/cases?buyer_id=b_2") == set()
    assert _ids(api, "seller", "s_1", "/v1/cases?seller_id=s_2&order_id=o_2") == set()
    assert _ids(api, "buyer", "b_2", "/v1/refunds") == set()

    seller = api.as_("seller", "s_2")
    assert seller("POST", f"/v1/cases/{theirs_id}/reject", json={"reason": "no"}).status_code == 200
    escalated = api.as_("buyer", "b_2")("POST", f"/v1/cases/{theirs_id}/escalate", json={})
    assert escalated.status_code == 200, escalated.text
    assert escalated.json()["status"] == "under_review"

    assert _ids(api, "mediator", "m_1") == {theirs_id}
    mediator = api.as_("mediator", "m_1")
    assert mediator("GET", f"/v1/cases/{theirs_id}").status_code == 200
    assert mediator("GET", f"/v1/cases/{mine}").status_code == 404
    assert mediator("GET", "/v1/orders/o_2").status_code == 200
    assert mediator("GET", "/v1/orders/o_1").status_code == 404
    assert _ids(api, "buyer", "b_1") == {mine}


def test_refund_lists_show_each_party_only_the_refunds_of_its_cases(api: Api) -> None:
    api.put_order("o_1")
    mine = api.open_case("o_1").json()["id"]
    theirs = _other_buyers_case(api)
    for seller_id, case_id in ((SELLER, mine), ("s_2", theirs)):
        accepted = api.as_("seller", seller_id)("POST", f"/v1/cases/{case_id}/accept")
        assert accepted.status_code == 200, accepted.text

    def refunded_cases(role: str, party_id: str | None, query: str = "") -> list[str]:
        response = api.as_(role, party_id)("GET", f"/v1/refunds?limit=1{query}")
        assert response.status_code == 200, response.text
        page = response.json()
        return [refund["case_id"] for refund in page["data"]] + ["more"] * page["has_more"]

    assert refunded_cases("buyer", BUYER) == [mine]
    assert refunded_cases("seller", SELLER) == [mine]
    assert refunded_cases("buyer", "b_2") == [theirs]
    assert refunded_cases("seller", "s_2") == [theirs]
    assert refunded_cases("mediator", "m_1") == []  # neither was escalated
    assert len(refunded_cases("operator", None)) == 2  # one, and has_more
    assert refunded_cases("operator", None, f"&case_id={theirs}") == [theirs]


def _listed(api: Api, role: str, party_id: str | None, starting_after: str) -> Any:
    return api.as_(role, party_id)("GET", f"/v1/cases?starting_after={starting_after}")


def test_a_cursor_on_a_case_the_caller_cannot_see_is_refused_as_an_unknown_one(api: Api) -> None:
    """`starting_after` naming someone else's case must not narrow the page: that would tell
    the caller the case exists (and when it was opened)."""
    api.put_order("o_1")
    api.put_order("o_3")
    older = api.open_case("o_1").json()["id"]
    api.advance(seconds=1)
    theirs = _other_buyers_case(api)
    api.advance(seconds=1)
    newer = api.open_case("o_3").json()["id"]
    seller = api.as_("seller", SELLER)
    assert seller("POST", f"/v1/cases/{newer}/reject", json={"reason": "no"}).status_code == 200
    escalated = api.as_("buyer", BUYER)("POST", f"/v1/cases/{newer}/escalate", json={})
    assert escalated.status_code == 200, escalated.text

    for role, party_id, hidden in (
        ("buyer", BUYER, theirs),
        ("seller", SELLER, theirs),
        ("mediator", "m_1", older),  # never escalated
    ):
        for cursor in (hidden, "case_none"):
            refused = _listed(api, role, party_id, cursor)
            assert refused.status_code == 400, refused.text
            assert refused.json()["error"]["code"] == "invalid_cursor"
    # A cursor the caller may see still pages.
    assert [c["id"] for c in _listed(api, "buyer", BUYER, newer).json()["data"]] == [older]


# --------------------------------------------------------------------------- transition table


@pytest.mark.parametrize(
    ("who", "path", "body"),
    [
        pytest.param(("buyer", BUYER), "accept", None, id="buyer-accepts-own-request"),
        pytest.param(("seller", SELLER), "withdraw", {}, id="seller-withdraws"),
        pytest.param(("buyer", BUYER), "reject", {"reason": "x"}, id="buyer-rejects-own-request"),
    ],
)
def test_actor_must_match_the_transition_table(
    api: Api, who: tuple[str, str], path: str, body: Any
) -> None:
    api.put_order()
    case = api.open_case().json()
    call = api.as_(*who)
    before = snapshot(api)
    response = call("POST", f"/v1/cases/{case['id']}/{path}", json=body)
    assert_error(response, 403)
    assert response.json()["error"]["code"] == "actor_not_allowed"
    assert snapshot(api) == before


def test_decision_is_the_mediators_alone(api: Api) -> None:
    api.put_order()
    case_id = api.open_case().json()["id"]
    api.as_("seller", SELLER)("POST", f"/v1/cases/{case_id}/reject", json={"reason": "no"})
    escalated = api.as_("buyer", BUYER)("POST", f"/v1/cases/{case_id}/escalate", json={})
    assert escalated.json()["status"] == "under_review"
    decision = {"kind": "refund", "amount": MONEY, "note": "mine"}
    for who in (("buyer", BUYER), ("seller", SELLER)):
        call = api.as_(*who)
        before = snapshot(api)
        response = call("POST", f"/v1/cases/{case_id}/decision", json=decision)
        assert_error(response, 403)
        assert snapshot(api) == before
    decided = api.as_("mediator", "m_1")("POST", f"/v1/cases/{case_id}/decision", json=decision)
    assert decided.status_code == 200, decided.text


@pytest.mark.parametrize(
    ("who", "path", "acting_as", "body"),
    [
        pytest.param(("buyer", BUYER), "accept", "seller", {}, id="buyer-accepts-as-seller"),
        pytest.param(
            ("buyer", BUYER), "reject", "seller", {"reason": "x"}, id="buyer-rejects-as-seller"
        ),
        pytest.param(
            ("buyer", BUYER), "messages", "mediator", {"body": "x"}, id="buyer-writes-as-mediator"
        ),
        pytest.param(("seller", SELLER), "withdraw", "buyer", {}, id="seller-withdraws-as-buyer"),
        pytest.param(("seller", SELLER), "accept", "buyer", {}, id="seller-accepts-as-buyer"),
        pytest.param(
            ("seller", SELLER),
            "offers",
            "buyer",
            {"kind": "refund", "amount": MONEY},
            id="seller-offers-as-buyer",
        ),
    ],
)
def test_a_party_cannot_act_as_another(
    api: Api, who: tuple[str, str], path: str, acting_as: str, body: dict[str, Any]
) -> None:
    api.put_order()
    case_id = api.open_case().json()["id"]
    call = api.as_(*who)
    before = snapshot(api)
    response = call("POST", f"/v1/cases/{case_id}/{path}", json={**body, "acting_as": acting_as})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "acting_as_not_allowed"
    assert snapshot(api) == before


@pytest.mark.parametrize(("path", "body"), [("accept", None), ("reject", {"reason": "x"})])
def test_the_seller_cannot_answer_its_own_counter_offer(api: Api, path: str, body: Any) -> None:
    api.put_order()
    case_id = api.open_case().json()["id"]
    seller = api.as_("seller", SELLER)
    counter = {"kind": "refund", "amount": MONEY}
    assert seller("POST", f"/v1/cases/{case_id}/offers", json=counter).status_code == 200
    before = snapshot(api)
    response = seller("POST", f"/v1/cases/{case_id}/{path}", json=body)
    assert_error(response, 403)
    assert response.json()["error"]["code"] == "actor_not_allowed"
    assert snapshot(api) == before


def test_unauthenticated_is_401_in_the_error_shape(api: Api) -> None:
    api.put_order()
    for headers in ({}, {"Authorization": "Bearer nope"}):
        response = api.client.get("/v1/orders/o_1", headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["type"] == "unauthenticated"
