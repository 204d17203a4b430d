"""Orders from a file for `restitution orders import`: JSON Lines or CSV, each order validated
exactly as `PUT /v1/orders/{order_id}` validates its body.

JSON Lines: one order per line, the body of `PUT /v1/orders/{order_id}` plus its `order_id`.
CSV: one row per order line, the order's columns repeated on each of its rows; consecutive
rows with the same `order_id` make one order (see `CSV_COLUMNS`). A bad order is reported
with its line number and skipped; the others are imported.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, TextIO

from pydantic import Field, StrictStr, ValidationError

from restitution.adapters.db.bulk import order_params
from restitution.api.errors import _param
from restitution.api.routes.orders import order_from_body
from restitution.api.schemas import OrderIn
from restitution.domain.errors import DomainError
from restitution.services.parties import PartyContact

MAX_ORDER_ID_LENGTH = 200  # as the path parameter of PUT /v1/orders/{order_id}

ORDER_COLUMNS = (
    "order_id",
    "buyer_id",
    "seller_id",
    "currency",
    "placed_at",
    "shipped_at",
    "delivered_at",
    "promised_delivery_by",
    "shipping_amount",
    "payment_method",
    "payment_reference",
    "return_shipping_estimate",
    "buyer_country",
    "free_return_shipping",
    "accepts_change_of_mind",
    "return_name",
    "return_line1",
    "return_line2",
    "return_city",
    "return_postal_code",
    "return_country",
)
ADDRESS_COLUMNS = tuple(column for column in ORDER_COLUMNS if column.startswith("return_"))
LINE_COLUMNS = ("line_id", "sku", "title", "category", "quantity", "unit_amount", "custom_made")
CSV_COLUMNS = ORDER_COLUMNS + LINE_COLUMNS
INTEGER_COLUMNS = frozenset(
    ("shipping_amount", "return_shipping_estimate", "quantity", "unit_amount")
)
BOOLEAN_COLUMNS = frozenset(("free_return_shipping", "accepts_change_of_mind", "custom_made"))
BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
INTEGER = re.compile(r"^-?[0-9]+$")


class OrderRecordIn(OrderIn):
    """The body of `PUT /v1/orders/{order_id}` with the order id that is otherwise its path."""

    order_id: Annotated[StrictStr, Field(min_length=1, max_length=MAX_ORDER_ID_LENGTH)]


@dataclass(frozen=True)
class BadOrder:
    line: int
    message: str


Record = str | dict[str, Any] | BadOrder  # a JSON line, a CSV order, or already refused


@dataclass(frozen=True)
class Chunk:
    """Records to validate and encode, possibly in another process."""

    records: list[tuple[int, Record]]
    now: datetime
    sqlite: bool


@dataclass
class Parsed:
    """A chunk's orders, encoded for the `orders` table, their contacts, and the bad ones."""

    orders: list[tuple[Any, ...]] = field(default_factory=list)
    contacts: list[tuple[str, str, PartyContact]] = field(default_factory=list)
    bad: list[BadOrder] = field(default_factory=list)


def file_format(name: str, given: str | None = None) -> str:
    """`csv` or `jsonl`, as given or from the file's extension."""
    if given:
        return given.lower()
    return "csv" if name.lower().endswith(".csv") else "jsonl"


def chunks(
    handle: TextIO, fmt: str, *, now: datetime, sqlite: bool, size: int = 2000
) -> Iterator[Chunk]:
    """The file's records, `size` at a time."""
    records = _jsonl_records(handle) if fmt == "jsonl" else _csv_records(handle)
    batch: list[tuple[int, Record]] = []
    for numbered in records:
        batch.append(numbered)
        if len(batch) >= size:
            yield Chunk(batch, now, sqlite)
            batch = []
    if batch:
        yield Chunk(batch, now, sqlite)


def parse_chunk(chunk: Chunk) -> Parsed:
    """Validate every record of a chunk as PUT /v1/orders would, and encode the good ones."""
    parsed = Parsed()
    for line_no, record in chunk.records:
        _validate(line_no, record, chunk, parsed)
    return parsed


def _validate(line_no: int, record: Record, chunk: Chunk, into: Parsed) -> None:
    if isinstance(record, BadOrder):
        into.bad.append(record)
        return
    try:
        if isinstance(record, str):
            body = OrderRecordIn.model_validate_json(record)
        else:
            body = OrderRecordIn.model_validate(record)
        order = order_from_body(body.order_id, body)
    except ValidationError as error:
        into.bad.append(BadOrder(line_no, _describe(error)))
        return
    except DomainError as error:
        param = f"{error.param}: " if error.param else ""
        into.bad.append(BadOrder(line_no, f"{param}{error.message}"))
        return
    into.orders.append(order_params(order, chunk.now, sqlite=chunk.sqlite))
    for role, party_id, contact in (
        ("buyer", order.buyer_id, body.buyer),
        ("seller", order.seller_id, body.seller),
    ):
        if contact is not None:
            into.contacts.append((role, party_id, PartyContact(**contact.model_dump())))


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    param = _param(tuple(first.get("loc", ())))
    message = str(first.get("msg", "not valid"))
    return f"{param}: {message}" if param else message


def _jsonl_records(handle: TextIO) -> Iterator[tuple[int, Record]]:
    for line_no, line in enumerate(handle, start=1):
        text = line.strip()
        if not text:
            continue
        if not text.startswith("{"):
            yield line_no, BadOrder(line_no, "not a JSON object")
            continue
        yield line_no, text


def _csv_records(handle: TextIO) -> Iterator[tuple[int, Record]]:
    reader = csv.DictReader(handle)
    missing = [
        column for column in ("order_id", "line_id") if column not in (reader.fieldnames or ())
    ]
    if missing:
        yield 1, BadOrder(1, f"the header lacks the column(s) {', '.join(missing)}")
        return
    current: dict[str, Any] | None = None
    started = 0
    for row in _numbered(reader):
        line_no, values = row
        if current is not None and values.get("order_id") == current["order_id"]:
            current["lines"].append(_line(values))
            continue
        if current is not None:
            yield started, current
        current, started = _order_record(values), line_no
    if current is not None:
        yield started, current


def _numbered(reader: csv.DictReader[str]) -> Iterable[tuple[int, dict[str, str]]]:
    line_no = reader.line_num + 1
    for row in reader:
        yield line_no, row
        line_no = reader.line_num + 1


def _cell(column: str, value: str | None) -> Any:
    if value is None or value == "":
        return None
    if column in INTEGER_COLUMNS and INTEGER.match(value):
        return int(value)
    if column in BOOLEAN_COLUMNS:
        return BOOLEANS.get(value.strip().lower(), value)
    return value


def _present(values: dict[str, str], columns: Iterable[str]) -> dict[str, Any]:
    cells = {column: _cell(column, values.get(column)) for column in columns}
    return {column: value for column, value in cells.items() if value is not None}


def _line(values: dict[str, str]) -> dict[str, Any]:
    return _present(values, LINE_COLUMNS)


def _order_record(values: dict[str, str]) -> dict[str, Any]:
    cells = _present(values, ORDER_COLUMNS)
    address = {
        key.removeprefix("return_"): cells.pop(key) for key in ADDRESS_COLUMNS if key in cells
    }
    terms: dict[str, Any] = {
        key: cells.pop(key)
        for key in ("free_return_shipping", "accepts_change_of_mind")
        if key in cells
    }
    if address:
        terms["return_address"] = address
    payment = {
        key.removeprefix("payment_"): cells.pop(key)
        for key in ("payment_method", "payment_reference")
        if key in cells
    }
    return {**cells, "payment": payment, "seller_terms": terms, "lines": [_line(values)]}
