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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TextIO, TypeVar

from pydantic import Field, StrictStr, ValidationError
from pydantic_core import from_json

from restitution.adapters.db.bulk import ROW_COLUMNS, OrderBatch, Row, encode_orders, order_row
from restitution.adapters.db.engine import json_text
from restitution.adapters.db.tables import utc_text
from restitution.api.schemas import EARLIEST, LATEST, MAX_AMOUNT, OrderIn
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
ADDRESS_COLUMNS = tuple(
    column
    for column in ORDER_COLUMNS
    if column.startswith("return_") and column != "return_shipping_estimate"
)
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
Contact = tuple[str, str, PartyContact]  # role, party id, contact
_ORDER_ID = ROW_COLUMNS.index("order_id")  # in a `Row`
Checked = tuple[Row, list[Contact]]  # a valid order's row (`bulk.order_row`) and contacts


@dataclass(frozen=True)
class Chunk:
    """Records to validate and encode, possibly in another process."""

    records: list[tuple[int, Record]]
    now: datetime
    sqlite: bool


@dataclass(frozen=True)
class Parsed:
    """A chunk's valid orders, encoded for the `orders` table, their contacts, and the bad ones."""

    orders: OrderBatch
    count: int
    contacts: list[tuple[str, Contact]]  # with the id of the order that gave each
    bad: list[BadOrder]
    order_ids: list[tuple[int, str]]  # of the valid ones, with their line numbers


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
    rows: list[Row] = []
    contacts: list[tuple[str, Contact]] = []
    bad: list[BadOrder] = []
    order_ids: list[tuple[int, str]] = []
    for line_no, record in chunk.records:
        checked = (
            record
            if isinstance(record, BadOrder)
            else quick_check(record) or full_check(line_no, record)
        )
        if isinstance(checked, BadOrder):
            bad.append(checked)
        else:
            order_id = str(checked[0][_ORDER_ID])
            rows.append(checked[0])
            contacts.extend((order_id, contact) for contact in checked[1])
            order_ids.append((line_no, order_id))
    encoded = encode_orders(rows, chunk.now, sqlite=chunk.sqlite)
    return Parsed(encoded, len(rows), contacts, bad, order_ids)


def full_check(line_no: int, record: str | dict[str, Any]) -> Checked | BadOrder:
    """The record validated by the model and the checks of PUT /v1/orders, or why not."""
    # Imported here: they pull in FastAPI, which a file of good orders never needs.
    from restitution.api.errors import _param
    from restitution.api.routes.orders import order_from_body

    try:
        if isinstance(record, str):
            body = OrderRecordIn.model_validate_json(record)
        else:
            body = OrderRecordIn.model_validate(record)
        order = order_from_body(body.order_id, body)
    except ValidationError as error:
        first = error.errors()[0]
        param = _param(tuple(first.get("loc", ())))
        message = str(first.get("msg", "not valid"))
        return BadOrder(line_no, f"{param}: {message}" if param else message)
    except DomainError as error:
        param = f"{error.param}: " if error.param else ""
        return BadOrder(line_no, f"{param}{error.message}")
    contacts = [
        (role, party_id, PartyContact(**contact.model_dump()))
        for role, party_id, contact in (
            ("buyer", order.buyer_id, body.buyer),
            ("seller", order.seller_id, body.seller),
        )
        if contact is not None
    ]
    return order_row(order), contacts


# --------------------------------------------------------------------------- the quick check
#
# `full_check` builds the Pydantic model and the domain order of a record: about six times the
# cost of this check, which was most of an import's time. `quick_check` vouches for the common
# valid record with plain comparisons and builds its row directly; anything it is not sure of
# — an error, or an unusual but maybe valid spelling — goes to `full_check`, which decides and
# words the error. So it may refuse more than the model, never accept more, and must build the
# same row: tests/unit/test_order_import_quick_check.py holds it to that. The limits below are
# those of `OrderRecordIn` (api/schemas.py) and `order_from_body`.

ID_LENGTH = 200
SHORT_TEXT = 500
CATEGORY_LENGTH = 200
POSTAL_CODE_LENGTH = 40
PAYMENT_METHOD_LENGTH = 64
MAX_LINES = 500
MAX_QUANTITY = 1_000_000
EMAIL_LENGTH, LOCALE_LENGTH, NAME_LENGTH, TIME_ZONE_LENGTH = 320, 35, 200, 64
_CURRENCY = re.compile(r"[A-Z]{3}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})*")
# The model's pattern, run by Rust's regex engine there: Python's \s matches every character
# that Rust's does, and a few more, so this refuses at least what the model refuses.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
# RFC 3339 in the one spelling that Python and Pydantic read alike.
_MOMENT = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})T(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]{1,6}))?(?P<offset>Z|[+-][0-9]{2}:[0-9]{2})"
)
_UTC_OFFSETS = frozenset(("Z", "+00:00", "-00:00"))
_NO_TERMS: dict[str, Any] = {}
_T = TypeVar("_T")


class _Unsure(Exception):
    """The quick check cannot vouch for the record."""


def quick_check(record: str | dict[str, Any]) -> Checked | None:
    """The row and contacts of a record that is valid beyond doubt; None when `full_check`
    must decide."""
    if isinstance(record, str):
        try:
            # The parser of `model_validate_json`: the same values from the same text.
            record = from_json(record)
        except ValueError:
            return None
    if type(record) is not dict:
        return None
    try:
        return _quick_row(record), _quick_contacts(record)
    except _Unsure:
        return None


def _quick_row(body: dict[str, Any]) -> Row:
    payment = _object(body.get("payment"))
    shipping_amount = _amount(body.get("shipping_amount", 0))
    lines_total, lines_json = _quick_lines(body.get("lines"))
    if shipping_amount + lines_total > MAX_AMOUNT:
        raise _Unsure
    placed = _moment(body.get("placed_at"))
    shipped = _optional(_moment, body.get("shipped_at"))
    delivered = _optional(_moment, body.get("delivered_at"))
    promised = _optional(_moment, body.get("promised_delivery_by"))
    # `_moment`'s texts have one width: they sort as the times do.
    if (
        (shipped is not None and shipped < placed)
        or (delivered is not None and delivered < (shipped or placed))
        or (promised is not None and promised < placed)
    ):
        raise _Unsure  # out of order: `check_times` says which
    return (  # in `bulk.ROW_COLUMNS` order
        _text(body.get("order_id"), MAX_ORDER_ID_LENGTH, min_length=1),
        _id(body.get("buyer_id")),
        _id(body.get("seller_id")),
        _pattern(_CURRENCY, body.get("currency")),
        placed,
        shipped,
        delivered,
        promised,
        shipping_amount,
        _text(payment.get("method"), PAYMENT_METHOD_LENGTH, min_length=1),
        _optional_text(payment.get("reference"), SHORT_TEXT),
        json_text(_quick_terms(_object(body.get("seller_terms", _NO_TERMS)))),
        _optional(_amount, body.get("return_shipping_estimate")),
        _optional_pattern(_COUNTRY, body.get("buyer_country")),
        lines_json,
    )


# The JSON columns are the dicts of `codec.order_to_row` (the same keys in the same order),
# written as every JSON column is (`json_text`).


def _quick_lines(value: Any) -> tuple[int, str]:
    """What the lines cost in all, and their JSON."""
    if type(value) is not list or not 1 <= len(value) <= MAX_LINES:
        raise _Unsure
    line_ids = set()
    total = 0
    lines = []
    for given in value:
        line = _object(given)
        line_id = _id(line.get("line_id"))
        quantity = _integer(line.get("quantity"), 1, MAX_QUANTITY)
        unit_amount = _amount(line.get("unit_amount"))
        line_ids.add(line_id)
        total += quantity * unit_amount
        lines.append(
            {
                "line_id": line_id,
                "sku": _text(line.get("sku", ""), SHORT_TEXT),
                "title": _text(line.get("title", ""), SHORT_TEXT),
                "category": _text(line.get("category", ""), CATEGORY_LENGTH),
                "quantity": quantity,
                "unit_amount": unit_amount,
                "custom_made": _boolean(line.get("custom_made", False)),
            }
        )
    if len(line_ids) != len(lines):
        raise _Unsure
    return total, json_text(lines)


def _quick_terms(terms: dict[str, Any]) -> dict[str, Any]:
    address = terms.get("return_address")
    return {
        "free_return_shipping": _boolean(terms.get("free_return_shipping", False)),
        "accepts_change_of_mind": _boolean(terms.get("accepts_change_of_mind", False)),
        "return_address": None if address is None else _quick_address(_object(address)),
    }


def _quick_address(address: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": _text(address.get("name"), SHORT_TEXT),
        "line1": _text(address.get("line1"), SHORT_TEXT),
        "city": _text(address.get("city"), SHORT_TEXT),
        "postal_code": _text(address.get("postal_code"), POSTAL_CODE_LENGTH),
        "country": _pattern(_COUNTRY, address.get("country")),
        "line2": _optional_text(address.get("line2"), SHORT_TEXT),
    }


def _quick_contacts(body: dict[str, Any]) -> list[Contact]:
    contacts = []
    for role in ("buyer", "seller"):
        given = body.get(role)
        if given is not None:
            contact = _object(given)
            party_contact = PartyContact(
                email=_optional(_email, contact.get("email")),
                locale=_optional(_locale, contact.get("locale")),
                name=_optional_text(contact.get("name"), NAME_LENGTH),
                time_zone=_optional_text(contact.get("time_zone"), TIME_ZONE_LENGTH),
            )
            contacts.append((role, body[f"{role}_id"], party_contact))
    return contacts


def _object(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise _Unsure
    return value


def _text(value: Any, max_length: int, *, min_length: int = 0) -> str:
    if type(value) is not str or not min_length <= len(value) <= max_length or "\x00" in value:
        raise _Unsure
    return value


def _id(value: Any) -> str:
    return _text(value, ID_LENGTH, min_length=1)


def _optional_text(value: Any, max_length: int) -> str | None:
    return None if value is None else _text(value, max_length)


def _pattern(pattern: re.Pattern[str], value: Any) -> str:
    if type(value) is not str or pattern.fullmatch(value) is None:
        raise _Unsure
    return value


def _optional_pattern(pattern: re.Pattern[str], value: Any) -> str | None:
    return None if value is None else _pattern(pattern, value)


def _email(value: Any) -> str:
    return _pattern(_EMAIL, _text(value, EMAIL_LENGTH))


def _locale(value: Any) -> str:
    return _pattern(_LOCALE, _text(value, LOCALE_LENGTH))


def _integer(value: Any, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _Unsure
    return value


def _amount(value: Any) -> int:
    return _integer(value, 0, MAX_AMOUNT)


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise _Unsure
    return value


def _moment(value: Any) -> str:
    """The time as `tables.utc_text` writes it."""
    if type(value) is not str or (parts := _MOMENT.fullmatch(value)) is None:
        raise _Unsure
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Unsure from None
    if not EARLIEST <= moment < LATEST:
        raise _Unsure
    date, time, fraction, offset = parts.groups("")
    if offset in _UTC_OFFSETS:  # the common case, written out faster than by utc_text
        return f"{date} {time}.{fraction:0<6}"
    return utc_text(moment)


def _optional(check: Callable[[Any], _T], value: Any) -> _T | None:
    return None if value is None else check(value)


# --------------------------------------------------------------------------- reading files


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
