"""An API client on a fresh database per test, with the test clock and the ledger gateway."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from restitution.api.app import create_api
from restitution.bootstrap import build_app
from restitution.services.clock import TestClock
from restitution.services.context import App
from restitution.settings import Settings
from tests.conftest import START

OPERATOR_KEY = "rst_op_test_key"
# A test about one backend only (the `database_url` fixture, below, serves both otherwise).
ON_POSTGRES = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
ON_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
# A 1x1 PNG: real bytes for evidence uploads.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


class Api:
    """A thin helper around TestClient that speaks as the operator or as a party."""

    def __init__(self, client: TestClient, app: App) -> None:
        self.client = client
        self.app = app
        self._tokens: dict[tuple[str, str], str] = {}

    def auth(self, role: str = "operator", party_id: str | None = None) -> dict[str, str]:
        if role == "operator":
            return {"Authorization": f"Bearer {OPERATOR_KEY}"}
        assert party_id is not None
        key = (role, party_id)
        if key not in self._tokens:
            minted = self.client.post(
                "/v1/party_tokens",
                json={"role": role, "party_id": party_id},
                headers=self.auth(),
            )
            assert minted.status_code == 201, minted.text
            self._tokens[key] = minted.json()["token"]
        return {"Authorization": f"Bearer {self._tokens[key]}"}

    def forget_tokens(self) -> None:
        """Party tokens last a day of the server's clock: after a longer jump, mint new ones."""
        self._tokens.clear()

    def as_(self, role: str, party_id: str | None = None) -> Callable[..., Any]:
        headers = self.auth(role, party_id)

        def call(method: str, path: str, **kwargs: Any) -> Any:
            extra = kwargs.pop("headers", {})
            return self.client.request(method, path, headers={**headers, **extra}, **kwargs)

        return call

    def put_order(self, order_id: str = "o_1", **overrides: Any) -> dict[str, Any]:
        body = order_body(**overrides)
        response = self.client.put(f"/v1/orders/{order_id}", json=body, headers=self.auth())
        assert response.status_code in (200, 201), response.text
        return response.json()

    def upload(self, role: str, party_id: str, data: bytes = PNG) -> str:
        response = self.client.post(
            "/v1/attachments",
            files={"file": ("photo.png", data, "image/png")},
            headers=self.auth(role, party_id),
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def open_case(self, order_id: str = "o_1", *, reason: str = "damaged", **overrides: Any) -> Any:
        attachments = overrides.pop("attachments", None)
        if attachments is None:
            attachments = [self.upload("buyer", "b_1")]
        body = {
            "order_id": order_id,
            "lines": [{"line_id": "l1", "quantity": 1}],
            "reason": reason,
            "description": "The screen is cracked.",
            "request": {"kind": "refund", "amount": {"amount": 2599 + 150, "currency": "USD"}},
            "attachments": attachments,
            **overrides,
        }
        return self.client.post("/v1/cases", json=body, headers=self.auth("buyer", "b_1"))

    def advance(self, **delta: float) -> dict[str, Any]:
        seconds = int(timedelta(**delta).total_seconds())
        response = self.client.post(
            "/v1/test/clock", json={"advance_seconds": seconds}, headers=self.auth()
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


def order_body(**overrides: Any) -> dict[str, Any]:
    """Two lines (a phone and a case), delivered the day before the test clock starts."""
    body: dict[str, Any] = {
        "buyer_id": "b_1",
        "seller_id": "s_1",
        "currency": "USD",
        "placed_at": (START - timedelta(days=10)).isoformat(),
        "shipped_at": (START - timedelta(days=8)).isoformat(),
        "delivered_at": (START - timedelta(days=1)).isoformat(),
        "promised_delivery_by": (START - timedelta(days=2)).isoformat(),
        "shipping_amount": 300,
        "payment": {"method": "card", "reference": "pi_123"},
        "lines": [
            {"line_id": "l1", "sku": "PH-1", "title": "Phone", "category": "electronics/phones",
             "quantity": 1, "unit_amount": 2599},
            {"line_id": "l2", "sku": "CS-1", "title": "Case", "category": "accessories",
             "quantity": 2, "unit_amount": 1300},
        ],
        "seller_terms": {
            "free_return_shipping": False,
            "accepts_change_of_mind": False,
            "return_address": {"name": "Shop 1 returns", "line1": "1 Harbour Rd",
                               "city": "Shenzhen", "postal_code": "518000", "country": "CN"},
        },
        "return_shipping_estimate": 800,
    }  # fmt: skip
    body.update(overrides)
    return body


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        operator_key=OPERATOR_KEY,
        test_clock=True,
        storage_dir=tmp_path / "evidence",
        webhook_allow_private=True,
        **overrides,
    )


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
def app(settings: Settings, clock: TestClock) -> Iterator[App]:
    application = build_app(settings, clock=clock, auto_migrate=False)
    yield application
    application.db.dispose()


@pytest.fixture
def api(app: App) -> Iterator[Api]:
    with TestClient(create_api(app, OPERATOR_KEY), raise_server_exceptions=False) as client:
        yield Api(client, app)
