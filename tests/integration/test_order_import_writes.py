"""What `restitution orders import` writes is what PUT /v1/orders writes, byte for byte, on
both backends: whether an order is new (PostgreSQL: COPY straight into `orders`) or already
there (a temporary table and INSERT … ON CONFLICT)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Text, cast, select
from typer.testing import CliRunner

from restitution.adapters.db import tables as t
from restitution.adapters.db.engine import Database
from restitution.cli import app
from restitution.services.parties import PartyContact, get_contacts
from tests.integration.conftest import Api, order_body

runner = CliRunner()
ODD_TEXT = 'tab\there, new\nline, cr\rhere, back\\slash, "quoted", \\N, é, 😀, \u2028'


def _bodies() -> dict[str, dict[str, Any]]:
    odd = order_body(
        buyer_id="b_\\odd",
        placed_at="2026-02-24T10:00:00.123456+05:30",
        shipped_at="2026-02-26T23:30:00-08:00",
        delivered_at=None,
        payment={"method": "card\tx", "reference": ODD_TEXT},
        buyer_country="FR",
        buyer={"email": "élise@exämple.test", "locale": "fr-FR", "name": ODD_TEXT},
        seller={},
    )
    odd["lines"][0].update(sku=ODD_TEXT, title="", category="\\")
    odd["seller_terms"]["return_address"].update(name=ODD_TEXT, line2="")
    minimal = {
        "buyer_id": "b_2",
        "seller_id": "s_2",
        "currency": "EUR",
        "placed_at": "2026-02-24T10:00:00Z",
        "payment": {"method": "x"},
        "lines": [{"line_id": "l", "quantity": 1, "unit_amount": 0}],
    }
    # Each of COPY's special characters alone in an order, and an order that only the full
    # validation accepts (an offset without a colon): its row is built from the domain order.
    alone = {
        f"alone_{ord(char)}": order_body(payment={"method": "card", "reference": f"a{char}b"})
        for char in "\t\n\r\\"
    }
    full = order_body(placed_at="2026-02-24T10:00:00.5+0530")
    return {"odd": odd, "minimal": minimal, "plain": order_body(), "full": full, **alone}


def _import(url: str, tmp_path: Path, bodies: dict[str, dict[str, Any]]) -> None:
    file = tmp_path / "orders.jsonl"
    file.write_text(
        "".join(
            json.dumps({"order_id": f"imported_{name}", **body}) + "\n"
            for name, body in bodies.items()
        ),
        encoding="utf-8",
    )
    env = {
        "RESTITUTION_DATABASE_URL": url,
        "RESTITUTION_OPERATOR_KEY": "k",
        "RESTITUTION_STORAGE_DIR": str(tmp_path / "evidence"),
        "PGTZ": "Asia/Kolkata",  # PostgreSQL sessions in another time zone than UTC
    }
    result = runner.invoke(app, ["orders", "import", str(file)], env=env)
    assert result.exit_code == 0, result.output


def _stored(url: str, order_id: str, *, stamps: bool = False) -> dict[str, Any]:
    """The order's row as the database keeps it, every column as text."""
    columns = [
        cast(column, Text).label(column.name)
        for column in t.orders.columns
        if column.name != "order_id" and (stamps or column.name not in ("created_at", "updated_at"))
    ]
    db = Database(url)
    try:
        with db.transaction(write=False) as conn:
            row = conn.execute(select(*columns).where(t.orders.c.order_id == order_id)).one()
    finally:
        db.dispose()
    return dict(row._mapping)


def _contact(url: str, role: str, party_id: str) -> PartyContact | None:
    db = Database(url)
    try:
        with db.transaction(write=False) as conn:
            return get_contacts(conn, [(role, party_id)]).get((role, party_id))
    finally:
        db.dispose()


def test_new_and_replaced_orders_are_stored_as_put_stores_them(
    api: Api, database_url: str, tmp_path: Path
) -> None:
    bodies = _bodies()
    for name, body in bodies.items():
        response = api.client.put(f"/v1/orders/put_{name}", json=body, headers=api.auth())
        assert response.status_code == 201, response.text

    for _ in ("new", "replaced"):
        _import(database_url, tmp_path, bodies)

        for name in bodies:
            assert _stored(database_url, f"imported_{name}") == _stored(database_url, f"put_{name}")
    assert _contact(database_url, "buyer", "b_\\odd") == PartyContact(
        email="élise@exämple.test", locale="fr-FR", name=ODD_TEXT
    )
    assert _contact(database_url, "seller", "s_1") == PartyContact()


def test_a_batch_of_new_orders_and_orders_already_there_is_imported_whole(
    database_url: str, tmp_path: Path
) -> None:
    bodies = _bodies()
    _import(database_url, tmp_path, {"plain": bodies["plain"]})
    first = _stored(database_url, "imported_plain", stamps=True)

    changed = {**bodies, "plain": order_body(buyer_id="b_changed")}
    _import(database_url, tmp_path, changed)

    replaced = _stored(database_url, "imported_plain", stamps=True)
    assert replaced["buyer_id"] == "b_changed"
    assert replaced["created_at"] == first["created_at"]
    assert replaced["updated_at"] != first["updated_at"]
    assert _stored(database_url, "imported_odd")["payment_reference"] == ODD_TEXT
    assert _stored(database_url, "imported_minimal")["currency"] == "EUR"
