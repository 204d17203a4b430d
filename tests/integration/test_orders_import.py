"""`restitution orders import FILE`: JSON Lines or CSV, validated as PUT /v1/orders validates."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from restitution.adapters.db.engine import Database
from restitution.adapters.db.repository import Repository
from restitution.api import order_import
from restitution.cli import app
from restitution.domain.orders import Order
from restitution.services.parties import get_contacts
from tests.integration.case_steps import open_case
from tests.integration.conftest import Api, order_body

runner = CliRunner()

CSV_HEADER = (
    "order_id,buyer_id,seller_id,currency,placed_at,shipped_at,delivered_at,shipping_amount,"
    "payment_method,payment_reference,free_return_shipping,return_name,return_line1,"
    "return_city,return_postal_code,return_country,line_id,sku,title,category,quantity,"
    "unit_amount,custom_made"
)
CSV_ORDER = "2026-03-01T10:00:00Z,2026-03-02T10:00:00Z,2026-03-04T10:00:00Z"


def _jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n",
        encoding="utf-8",
    )
    return path


def _record(order_id: str, **overrides: Any) -> dict[str, Any]:
    return {"order_id": order_id, **order_body(**overrides)}


def _import(url: str, tmp_path: Path, file: Path, *options: str) -> Any:
    env = {
        "RESTITUTION_DATABASE_URL": url,
        "RESTITUTION_OPERATOR_KEY": "k",
        "RESTITUTION_STORAGE_DIR": str(tmp_path / "evidence"),
    }
    return runner.invoke(app, ["orders", "import", *options, str(file)], env=env)


def _order(url: str, order_id: str) -> Order | None:
    db = Database(url)
    try:
        with db.transaction(write=False) as conn:
            return Repository(conn).get_order(order_id)
    finally:
        db.dispose()


def test_a_good_json_lines_file_is_imported(database_url: str, tmp_path: Path) -> None:
    file = _jsonl(tmp_path / "orders.jsonl", [_record(f"o_{n}") for n in range(3)])

    result = _import(database_url, tmp_path, file)

    assert result.exit_code == 0, result.output
    assert "imported 3 orders" in result.output
    order = _order(database_url, "o_2")
    assert order is not None
    assert [line.line_id for line in order.lines] == ["l1", "l2"]
    assert order.seller_terms.return_address is not None


_SIGTERM_SEEN = Path("unset")  # where the validating processes write how they take SIGTERM
_parse_chunk = order_import.parse_chunk


def _parse_telling_sigterm(chunk: Any) -> Any:
    """`parse_chunk`, in a validating process, writing down how it takes SIGTERM."""
    with _SIGTERM_SEEN.open("a") as seen:
        seen.write(f"{signal.getsignal(signal.SIGTERM) is signal.SIG_DFL}\n")
    return _parse_chunk(chunk)


def _exit(*_: Any) -> None:
    raise SystemExit(1)


def test_the_validating_processes_end_on_sigterm_whatever_this_one_does(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # They are forked from this process: with a handler that did not exit (a worker's, run in
    # the same process before), an idle one outlived the pool's terminate and the import hung.
    # The handler here exits, so that without the reset this test fails rather than hangs.
    file = _jsonl(tmp_path / "orders.jsonl", [_record("o_1")])
    monkeypatch.setattr(f"{__name__}._SIGTERM_SEEN", tmp_path / "sigterm")
    monkeypatch.setattr(order_import, "parse_chunk", _parse_telling_sigterm)
    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        result = _import(database_url, tmp_path, file, "--jobs", "2")
    finally:
        signal.signal(signal.SIGTERM, previous)

    assert result.exit_code == 0, result.output
    assert (tmp_path / "sigterm").read_text().split() == ["True"]
    assert _order(database_url, "o_1") is not None


def test_bad_lines_are_reported_with_their_numbers_and_the_rest_imported(
    database_url: str, tmp_path: Path
) -> None:
    good = _record("o_good")
    string_quantity = _record("o_bad_quantity")
    string_quantity["lines"][0]["quantity"] = "1"
    duplicate_lines = _record("o_duplicate")
    duplicate_lines["lines"][1]["line_id"] = "l1"
    no_order_id = order_body()
    delivered_first = _record(
        "o_delivered_first", shipped_at="2026-03-05T00:00:00Z", delivered_at="2026-03-04T00:00:00Z"
    )
    file = _jsonl(
        tmp_path / "orders.jsonl",
        [good, string_quantity, "{not json", duplicate_lines, no_order_id, delivered_first,
         _record("o_last")],
    )  # fmt: skip

    result = _import(database_url, tmp_path, file)

    assert result.exit_code == 1, result.output
    assert f"{file}:2: lines.0.quantity:" in result.output
    assert f"{file}:3: " in result.output
    assert f"{file}:4: lines: line_id must be unique" in result.output
    assert f"{file}:5: order_id:" in result.output
    assert f"{file}:6: delivered_at: delivered_at must not be before shipped_at" in result.output
    assert "imported 2 orders" in result.output
    assert "5 bad" in result.output
    assert _order(database_url, "o_delivered_first") is None
    assert _order(database_url, "o_good") is not None
    assert _order(database_url, "o_last") is not None
    assert _order(database_url, "o_bad_quantity") is None


def test_a_csv_file_makes_one_order_of_consecutive_rows(database_url: str, tmp_path: Path) -> None:
    address = "Shop returns,1 Harbour Rd,Shenzhen,518000,CN"
    file = tmp_path / "orders.csv"
    file.write_text(
        "\n".join(
            [
                CSV_HEADER,
                f"o_a,b_1,s_1,USD,{CSV_ORDER},300,card,pi_1,false,{address},"
                "l1,PH-1,Phone,electronics/phones,1,2599,false",
                f"o_a,b_1,s_1,USD,{CSV_ORDER},300,card,pi_1,false,{address},"
                "l2,CS-1,Case,accessories,2,1300,",
                f"o_b,b_2,s_1,USD,{CSV_ORDER},0,paypal,,true,,,,,,l1,X,Thing,toys,3,500,",
                f"o_c,b_3,s_1,USD,{CSV_ORDER},0,card,,,,,,,,l1,X,Thing,toys,many,500,",
            ]
        )
        + "\n",
        encoding="utf-8",
    )

    result = _import(database_url, tmp_path, file)

    assert result.exit_code == 1, result.output
    assert f"{file}:5: lines.0.quantity:" in result.output
    order_a = _order(database_url, "o_a")
    assert order_a is not None
    assert [(line.line_id, line.quantity) for line in order_a.lines] == [("l1", 1), ("l2", 2)]
    assert order_a.seller_terms.return_address is not None
    assert order_a.seller_terms.return_address.country == "CN"
    order_b = _order(database_url, "o_b")
    assert order_b is not None
    assert order_b.seller_terms.free_return_shipping is True
    assert order_b.payment.method == "paypal"
    assert _order(database_url, "o_c") is None


def test_a_csv_file_s_return_shipping_estimate_is_the_order_s_not_the_address_s(
    database_url: str, tmp_path: Path
) -> None:
    header = (
        "order_id,buyer_id,seller_id,currency,placed_at,shipping_amount,payment_method,"
        "return_shipping_estimate,return_name,return_line1,return_city,return_postal_code,"
        "return_country,line_id,quantity,unit_amount"
    )
    file = tmp_path / "orders.csv"
    file.write_text(
        f"{header}\n"
        "o_with,b_1,s_1,USD,2026-03-01T10:00:00Z,0,card,800,Shop,1 Rd,Shenzhen,518000,CN,l1,1,900\n"
        "o_without,b_1,s_1,USD,2026-03-01T10:00:00Z,0,card,500,,,,,,l1,1,900\n",
        encoding="utf-8",
    )

    result = _import(database_url, tmp_path, file)

    assert result.exit_code == 0, result.output
    with_address, without = _order(database_url, "o_with"), _order(database_url, "o_without")
    assert with_address is not None and without is not None
    assert with_address.return_shipping_estimate == 800
    assert with_address.seller_terms.return_address is not None
    assert with_address.seller_terms.return_address.city == "Shenzhen"
    assert without.return_shipping_estimate == 500
    assert without.seller_terms.return_address is None


def test_importing_again_replaces_the_orders(database_url: str, tmp_path: Path) -> None:
    first = _jsonl(tmp_path / "first.jsonl", [_record("o_1"), _record("o_2")])
    assert _import(database_url, tmp_path, first).exit_code == 0
    again = _jsonl(
        tmp_path / "again.jsonl",
        [_record("o_1", buyer_id="b_9"), _record("o_1", buyer_id="b_10")],
    )

    result = _import(database_url, tmp_path, again)

    assert result.exit_code == 0, result.output
    replaced = _order(database_url, "o_1")
    assert replaced is not None
    assert replaced.buyer_id == "b_10"  # the later line of a file wins, as two PUTs would
    untouched = _order(database_url, "o_2")
    assert untouched is not None
    assert untouched.buyer_id == "b_1"


def test_an_order_with_cases_is_not_repriced_by_an_import(
    api: Api, database_url: str, tmp_path: Path
) -> None:
    open_case(api)  # on o_1, as its buyer b_1
    repriced = _record("o_1", shipping_amount=0, buyer={"email": "someone@example.com"})
    file = _jsonl(
        tmp_path / "orders.jsonl", [_record("o_2"), repriced, _record("o_3", buyer_id="b_9")]
    )

    result = _import(database_url, tmp_path, file)

    assert result.exit_code == 1, result.output
    assert f"{file}:2: shipping_amount: Order o_1 has cases" in result.output
    assert "its shipping_amount can no longer change" in result.output
    assert "imported 2 orders" in result.output
    assert "1 bad" in result.output
    kept = _order(database_url, "o_1")
    assert kept is not None and kept.shipping_amount == 300
    assert _order(database_url, "o_2") is not None and _order(database_url, "o_3") is not None
    with api.app.db.transaction(write=False) as conn:  # nor the refused record's contacts
        assert get_contacts(conn, [("buyer", "b_1")]) == {}


def test_an_order_with_cases_still_takes_its_dates_and_titles_from_an_import(
    api: Api, database_url: str, tmp_path: Path
) -> None:
    open_case(api)
    lines = order_body()["lines"]
    lines[0]["title"] = "Phone, black"
    delivered = "2026-03-06T09:00:00Z"
    file = _jsonl(tmp_path / "orders.jsonl", [_record("o_1", lines=lines, delivered_at=delivered)])

    result = _import(database_url, tmp_path, file)

    assert result.exit_code == 0, result.output
    replaced = _order(database_url, "o_1")
    assert replaced is not None and replaced.lines[0].title == "Phone, black"
    assert replaced.delivered_at is not None
    assert replaced.delivered_at.isoformat() == "2026-03-06T09:00:00+00:00"
