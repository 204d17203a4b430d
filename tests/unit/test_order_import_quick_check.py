"""The import's quick check against the full validation of PUT /v1/orders (`full_check`).

The quick check may leave any record to the full validation, but what it accepts the model
must accept too, with the very same row and contacts; and it must accept the common orders,
or the import is slow again.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field, TypeAdapter

from restitution.adapters.db.bulk import encode_orders
from restitution.api import order_import
from restitution.api.order_import import (
    CSV_COLUMNS,
    BadOrder,
    Checked,
    Chunk,
    OrderRecordIn,
    chunks,
    full_check,
    parse_chunk,
    quick_check,
)
from restitution.api.schemas import PartyContactIn

NOW = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
Path = tuple[str | int, ...]


def _record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "order_id": "o_1",
        "buyer_id": "b_1",
        "seller_id": "s_1",
        "currency": "USD",
        "placed_at": "2026-02-24T10:00:00+00:00",
        "shipped_at": "2026-02-26T10:00:00Z",
        "delivered_at": "2026-03-05T10:00:00.250+01:00",
        "promised_delivery_by": "2026-03-04T10:00:00-05:30",
        "shipping_amount": 300,
        "payment": {"method": "card", "reference": "pi_123"},
        "lines": [
            {"line_id": "l1", "sku": "PH-1", "title": "Phone", "category": "electronics/phones",
             "quantity": 1, "unit_amount": 2599},
            {"line_id": "l2", "sku": "CS-1", "title": "Case", "category": "accessories",
             "quantity": 2, "unit_amount": 1300, "custom_made": True},
        ],
        "seller_terms": {
            "free_return_shipping": False,
            "accepts_change_of_mind": True,
            "return_address": {"name": "Shop 1 returns", "line1": "1 Harbour Rd",
                               "line2": "Unit 5", "city": "Shenzhen", "postal_code": "518000",
                               "country": "CN"},
        },
        "return_shipping_estimate": 800,
        "buyer_country": "US",
        "buyer": {"email": "alice@example.test", "locale": "en-US", "name": "Alice",
                  "time_zone": "America/New_York"},
        "seller": {"email": "shop@example.test"},
    }  # fmt: skip
    record.update(overrides)
    return record


MINIMAL = {
    "order_id": "o_2",
    "buyer_id": "b",
    "seller_id": "s",
    "currency": "EUR",
    "placed_at": "2026-02-24T10:00:00Z",
    "payment": {"method": "x"},
    "lines": [{"line_id": "l", "quantity": 1, "unit_amount": 0}],
}


def _agree(record: str | dict[str, Any]) -> Checked | None:
    """Both checks of `record`; fails unless the quick one is silent or says what the full one
    says, down to the bytes written for each backend."""
    quick = quick_check(copy.deepcopy(record))
    full = full_check(7, copy.deepcopy(record))
    if quick is not None:
        assert not isinstance(full, BadOrder), f"the quick check accepted a bad order: {full}"
        assert quick == full
        for sqlite in (True, False):
            assert encode_orders([quick[0]], NOW, sqlite=sqlite) == encode_orders(
                [full[0]], NOW, sqlite=sqlite
            )
    return quick


def _both_spellings(record: dict[str, Any]) -> Iterator[str | dict[str, Any]]:
    """The record as a JSON line (ASCII-escaped and not) and as the dict a CSV row gives."""
    yield json.dumps(record)
    yield json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    yield record


def _set(record: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    """A copy of `record` with `value` at `path`; `MISSING` removes the key."""
    changed = copy.deepcopy(record)
    *parents, last = path
    target: Any = changed
    for key in parents:
        target = target[key]
    if value is MISSING:
        del target[last]
    else:
        target[last] = value
    return changed


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


def _short(value: Any) -> str:
    return repr(value)[:40]


# --------------------------------------------------------------------------- valid orders

COMMON = [
    _record(),
    MINIMAL,
    _record(buyer=None, seller=None, buyer_country=None, shipped_at=None, delivered_at=None),
    _record(seller_terms={"return_address": None}),
    _record(buyer={}, seller={"locale": "zh_Hant_TW", "name": None}),
    _record(title_with="extra fields are ignored", notes={"deep": [1, 2.5, None]}),
    _record(order_id="ö" * 200, buyer_id="😀" * 200, seller_id='s\tx\ny\\z"q'),
    _record(placed_at="1970-01-01T00:00:00Z", delivered_at="8999-12-31T23:59:59.999999Z"),
    _record(placed_at="2024-02-29T23:59:59.5+14:00", shipped_at="2026-03-01T10:00:00-23:59"),
    _record(lines=[{"line_id": f"l{n}", "quantity": 1, "unit_amount": 1} for n in range(500)]),
    _record(shipping_amount=10**15 - 2599 - 2600),
]


@pytest.mark.parametrize("record", COMMON, ids=range(len(COMMON)))
def test_common_valid_orders_take_the_quick_path_to_the_same_row(record: dict[str, Any]) -> None:
    for spelling in _both_spellings(record):
        assert _agree(spelling) is not None


def test_a_csv_file_s_orders_take_the_quick_path_to_the_same_row() -> None:
    rows = [
        ["o_a", "b_1", "s_1", "USD", "2026-03-01T10:00:00Z", "", "", "", "300", "card", "pi_1",
         "800", "US", "true", "0", "Shop", "1 Rd", "", "Shenzhen", "518000", "CN",
         "l1", "PH-1", "Phone", "electronics", "1", "2599", "false"],
        ["o_a", "b_1", "s_1", "USD", "2026-03-01T10:00:00Z", "", "", "", "300", "card", "pi_1",
         "800", "US", "true", "0", "Shop", "1 Rd", "", "Shenzhen", "518000", "CN",
         "l2", "CS-1", "Case", "accessories", "2", "1300", ""],
        ["o_b", "b_2", "s_1", "EUR", "2026-03-01T10:00:00+01:00", "", "", "", "", "paypal", "",
         "", "", "", "", "", "", "", "", "", "", "l1", "", "", "", "3", "500", "1"],
    ]  # fmt: skip
    text = io.StringIO()
    csv.writer(text).writerows([list(CSV_COLUMNS), *rows])
    text.seek(0)

    (chunk,) = chunks(text, "csv", now=NOW, sqlite=True)

    assert [line_no for line_no, _ in chunk.records] == [2, 4]
    for _, record in chunk.records:
        assert not isinstance(record, BadOrder)
        assert _agree(record) is not None


# --------------------------------------------------------------------------- every field

TEXTS = ["", "a", "\x00", "a\x00", "é", "😀", "\t\n\r\\", "\u2028", "\x1c", " ", "\u00a0"]
NOT_TEXTS = [None, MISSING, 1, 0, 1.5, True, False, [], {}, ["a"], {"a": "b"}]
INTEGERS = [0, 1, -1, 2, 10**6, 10**6 + 1, 10**15, 10**15 + 1, -(10**15), 10**30]
NOT_INTEGERS = [None, MISSING, "1", "one", 1.0, 1.5, True, False, [], {}, float("nan")]
MOMENTS = [
    "2026-03-01T10:00:00Z", "2026-03-01T10:00:00+00:00", "2026-03-01T10:00:00-00:00",
    "2026-03-01T10:00:00+05:30", "2026-03-01T10:00:00-11:45", "2026-03-01T10:00:00+23:59",
    "2026-03-01T10:00:00+24:00", "2026-03-01T10:00:00.5Z", "2026-03-01T10:00:00.123456Z",
    "2026-03-01T10:00:00.1234567Z", "2026-03-01T10:00:00,5Z", "2026-03-01T10:00:00.Z",
    "2026-03-01T10:00:00z", "2026-03-01t10:00:00Z", "2026-03-01 10:00:00Z",
    "2026-03-01_10:00:00Z", "2026-03-01T10:00Z", "2026-03-01T10Z", "2026-03-01T10:00:00",
    "2026-03-01", "2026-03-01T24:00:00Z", "2026-03-01T23:59:60Z", "2026-02-29T10:00:00Z",
    "2026-02-30T10:00:00Z", "2026-13-01T10:00:00Z", "2026-00-01T10:00:00Z",
    "1969-12-31T23:59:59.999999Z", "1970-01-01T00:00:00Z", "1970-01-01T00:30:00+01:00",
    "1970-01-01T00:30:00-01:00", "8999-12-31T23:59:59Z", "8999-12-31T23:59:59-01:00",
    "8999-12-31T23:59:59+01:00", "9000-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
    "2026-03-01T10:00:00+0530", "2026-03-01T10:00:00+05", "2026-03-01T10:00:00+05:30:15",
    "20260301T100000Z", "2026-W09-7T10:00:00Z", "2026-060T10:00:00Z", " 2026-03-01T10:00:00Z",
    "2026-03-01T10:00:00Z ", "\uff12\uff10\uff12\uff16-03-01T10:00:00Z", "2026-03-01T10:00:00\x00Z",
    "now", "", 1772359200, 1772359200.5, "1772359200", 0, None, MISSING, True, [], {},
]  # fmt: skip
PATTERNED = [
    "USD", "usd", "US", "USDD", "USD\n", "\nUSD", "U$D", "ÜSD", "CN", "cn", "C", "CNN", "CN\n",
    "a@b", "@b", "a@", "a@@b", "a\x00@b", "a b@c", "a\x1cb@c", "a\u00a0b@c", "a\u2028@b",
    "é@b", "a@b\n", "a\t@b", "en", "en-US", "zh_Hant_TW", "e", "engl", "en-", "en-U",
    "en-123456789", "en US", "en-US\n", "EN-us", "ab-cdefghij",
    "en" + "-abcdefgh" * 3 + "-abcde", "en" + "-abcdefgh" * 3 + "-abcdef",  # 35 and 36 long
]  # fmt: skip
BOOLEANS = [True, False, None, MISSING, 0, 1, "true", "false", "", [], {}]
OBJECTS = [None, MISSING, {}, [], "x", 1, [{}]]


def _paths(record: dict[str, Any], prefix: Path = ()) -> Iterator[Path]:
    for key, value in record.items():
        path = (*prefix, key)
        yield path
        if isinstance(value, dict):
            yield from _paths(value, path)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            yield (*path, 0)
            yield from _paths(value[0], (*path, 0))


def _values_for(path: Path) -> list[Any]:
    name = path[-1]
    if name in ("placed_at", "shipped_at", "delivered_at", "promised_delivery_by"):
        return MOMENTS
    if name in ("shipping_amount", "return_shipping_estimate", "quantity", "unit_amount"):
        return INTEGERS + NOT_INTEGERS
    if name in ("free_return_shipping", "accepts_change_of_mind", "custom_made"):
        return BOOLEANS
    if name in ("payment", "seller_terms", "return_address", "buyer", "seller", 0):
        return OBJECTS
    if name == "lines":
        return [None, MISSING, [], {}, "l1", [None], [[]]]
    return TEXTS + NOT_TEXTS + PATTERNED


def _mutations() -> Iterator[tuple[Path, Any]]:
    for path in _paths(_record()):
        for value in _values_for(path):
            yield path, value


@pytest.mark.parametrize(("path", "value"), list(_mutations()), ids=_short)
def test_each_field_s_odd_values_get_the_same_answer(path: Path, value: Any) -> None:
    for spelling in _both_spellings(_set(_record(), path, value)):
        _agree(spelling)


# The limits come from the model's own schema, so that a changed limit in api/schemas.py
# fails here until the quick check follows it.


def _schema_leaves() -> Iterator[tuple[Path, dict[str, Any]]]:
    schema = OrderRecordIn.model_json_schema()
    definitions = schema["$defs"]

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in node:
            return resolve(definitions[node["$ref"].rsplit("/", 1)[1]])
        branches = [branch for branch in node.get("anyOf", ()) if branch.get("type") != "null"]
        return resolve(branches[0]) if len(branches) == 1 else node

    def walk(node: dict[str, Any], prefix: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
        for name, child in node["properties"].items():
            field = resolve(child)
            path = (*prefix, name)
            if field.get("type") == "object":
                yield from walk(field, path)
            elif field.get("type") == "array":
                yield path, field
                yield from walk(resolve(field["items"]), (*path, 0))
            else:
                yield path, field

    yield from walk(schema, ())


def _limit_cases() -> Iterator[tuple[Path, Any]]:
    for path, field in _schema_leaves():
        kind = field.get("type")
        if kind == "string" and "format" not in field:
            for length in (field.get("minLength", 0), field.get("maxLength")):
                if length is None:
                    continue
                for size in (length - 1, length, length + 1):
                    if size >= 0:
                        for char in ("a", "é", "😀"):
                            yield path, char * size
        elif kind == "integer":
            for bound in (field.get("minimum"), field.get("maximum")):
                if bound is not None:
                    yield from ((path, bound + step) for step in (-1, 0, 1))
        elif kind == "array":
            for bound in (field.get("minItems"), field.get("maxItems")):
                if bound is not None:
                    for size in (bound - 1, bound, bound + 1):
                        lines = [
                            {"line_id": f"l{n}", "quantity": 1, "unit_amount": 1}
                            for n in range(max(size, 0))
                        ]
                        yield path, lines


@pytest.mark.parametrize(("path", "value"), list(_limit_cases()), ids=_short)
def test_the_schema_s_limits_get_the_same_answer(path: Path, value: Any) -> None:
    for spelling in _both_spellings(_set(_record(), path, value)):
        _agree(spelling)


def test_the_schema_s_limits_are_all_tried() -> None:
    tried = {path for path, _ in _limit_cases()}
    assert ("lines", 0, "sku") in tried
    assert ("seller_terms", "return_address", "postal_code") in tried
    assert ("buyer", "email") in tried
    assert ("lines", 0, "quantity") in tried
    assert ("order_id",) in tried


def test_the_e_mail_pattern_refuses_at_least_the_characters_the_model_refuses() -> None:
    # The model runs it with Rust's regex engine, whose \s is not Python's.
    email = PartyContactIn.model_json_schema()["properties"]["email"]["anyOf"][0]
    assert f"^{order_import._EMAIL.pattern}$" == email["pattern"]
    models_pattern = TypeAdapter(Annotated[str, Field(pattern=email["pattern"])])
    characters = (chr(code) for code in range(sys.maxunicode + 1) if not 0xD800 <= code < 0xE000)
    accepted = "".join(char for char in characters if order_import._EMAIL.fullmatch(f"{char}@b"))

    models_pattern.validate_python(f"{accepted}@b")


@pytest.mark.parametrize(
    ("record", "quick"),
    [
        (_record(lines=[*_record()["lines"], {**_record()["lines"][0]}]), False),  # same line_id
        (_record(shipping_amount=10**15 - 2599 - 2600 + 1), False),  # total above the maximum
        (_record(lines=[{"line_id": "l", "quantity": 10**6, "unit_amount": 10**15}]), False),
        (_record(shipping_amount=10**15 - 2599 - 2600), True),
    ],
)
def test_the_checks_beyond_the_model_get_the_same_answer(
    record: dict[str, Any], quick: bool
) -> None:
    for spelling in _both_spellings(record):
        assert (_agree(spelling) is not None) is quick
        assert isinstance(full_check(1, spelling), BadOrder) is not quick


# --------------------------------------------------------------------------- JSON text

VALID_LINE = json.dumps(_record())


@pytest.mark.parametrize(
    "line",
    [
        VALID_LINE.replace('"buyer_id": "b_1"', '"buyer_id": "", "buyer_id": "b_1"'),
        VALID_LINE.replace('"buyer_id": "b_1"', '"buyer_id": "b_1", "buyer_id": ""'),
        VALID_LINE.replace('"buyer_id": "b_1"', '"buyer_id": "b_1", "extra": NaN'),
        VALID_LINE.replace('"buyer_id": "b_1"', '"buyer_id": "b_1", "extra": -Infinity'),
        VALID_LINE.replace('"buyer_id": "b_1"', '"buyer_id": "b_1", "extra": 1e999'),
        VALID_LINE.replace('"buyer_id": "b_1"', '"buyer_id": "b_1", "extra": ' + "9" * 5000),
        VALID_LINE.replace('"buyer_id": "b_1"', '"buyer_id": "b_1", "x": ' + "[" * 300),
        VALID_LINE.replace('"buyer_id": "b_1"', '"buyer_id": "b_\\u0000"'),
        VALID_LINE.replace('"buyer_id": "b_1"', '"buyer_id": "b_\\ud800"'),
        VALID_LINE.replace('"buyer_id": "b_1"', '"buyer_id": "b_\\ud83d\\ude00"'),
        VALID_LINE.replace('"buyer_id": "b_1"', '"buyer_id": "b_\\t\\/\\u00e9"'),
        VALID_LINE.replace('"buyer_id": "b_1"', '"buyer_id": "b_\x01"'),
        VALID_LINE.replace('"shipping_amount": 300', '"shipping_amount": 300.0'),
        VALID_LINE.replace('"shipping_amount": 300', '"shipping_amount": 3e2'),
        VALID_LINE.replace('"shipping_amount": 300', '"shipping_amount": -0'),
        VALID_LINE + " x",
        VALID_LINE + "}",
        "\ufeff" + VALID_LINE,
        VALID_LINE[:-1],
        "[" + VALID_LINE + "]",
        "{}",
        "null",
        "",
    ],
)
def test_odd_json_gets_the_same_answer(line: str) -> None:
    _agree(line)


# --------------------------------------------------------------------------- any value

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**16), max_value=10**16)
    | st.floats(allow_nan=False)
    | st.text(st.characters(codec="utf-8"), max_size=12)
    | st.sampled_from([*MOMENTS[:-6], *PATTERNED, "USD", "CN", 0, 1, 10**15]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["line_id", "quantity", "unit_amount", "x"]), children)
    ),
    max_leaves=6,
)
PATHS = sorted(set(_paths(_record())) | {("extra",), ("lines", 1)}, key=repr)


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(st.tuples(st.sampled_from(PATHS), JSON_VALUES | st.just(MISSING)), max_size=3))
def test_any_values_anywhere_get_the_same_answer(changes: list[tuple[Path, Any]]) -> None:
    record = _record()
    for path, value in changes:
        try:
            record = _set(record, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced the path's parent
    for spelling in _both_spellings(record):
        _agree(spelling)


# --------------------------------------------------------------------------- whole chunks


def test_a_chunk_is_parsed_as_the_full_validation_alone_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records: list[tuple[int, Any]] = [
        (1, json.dumps(_record())),
        (2, json.dumps(_record(order_id="o_bad", currency="usd"))),
        (3, "{not json"),
        (4, BadOrder(4, "not a JSON object")),
        (5, MINIMAL),
        (6, json.dumps(_record(buyer_id="b_later"))),  # the same order again: this one wins
        (7, _record(order_id="o_3", lines=[])),
    ]
    for sqlite in (True, False):
        chunk = Chunk(records, NOW, sqlite)
        quick = parse_chunk(chunk)
        with monkeypatch.context() as patched:
            patched.setattr(order_import, "quick_check", lambda record: None)
            full = parse_chunk(chunk)

        assert quick == full
        assert quick.count == 3
        assert [bad.line for bad in quick.bad] == [2, 3, 4, 7]
        assert len(quick.contacts) == 4


@pytest.mark.parametrize(
    ("times", "param"),
    [
        ({"shipped_at": "2026-02-24T09:59:59.999999Z"}, "shipped_at"),  # before placed_at
        ({"delivered_at": "2026-02-26T09:00:00Z"}, "delivered_at"),  # before shipped_at
        ({"shipped_at": None, "delivered_at": "2026-02-24T09:00:00Z"}, "delivered_at"),
        ({"promised_delivery_by": "2026-02-24T04:59:59-05:00"}, "promised_delivery_by"),
    ],
)
def test_times_out_of_order_are_left_to_the_full_check_which_names_them(
    times: dict[str, Any], param: str
) -> None:
    for spelling in _both_spellings(_record(**times)):
        assert _agree(spelling) is None
        bad = full_check(7, copy.deepcopy(spelling))
        assert isinstance(bad, BadOrder) and bad.message.startswith(f"{param}: "), bad


def test_times_that_are_equal_are_in_order() -> None:
    moment = "2026-02-24T10:00:00Z"
    names = ("placed_at", "shipped_at", "delivered_at", "promised_delivery_by")
    assert _agree(_record(**dict.fromkeys(names, moment))) is not None
