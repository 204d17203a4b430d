"""`json_response` renders exactly what `json.dumps` rendered before it used orjson."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from restitution.api.present import json_response

# What our payloads hold: no floats (money is integer minor units), 64-bit integers at most.
text = st.text(st.characters(exclude_categories=["Cs"]))  # no lone surrogates: not UTF-8
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | text
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=30,
)


def before(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


@given(st.dictionaries(text, values, max_size=6))
def test_the_same_bytes_as_json_dumps(payload: dict[str, Any]) -> None:
    response = json_response(payload)
    assert response.body == before(payload)
    assert response.headers["content-type"] == "application/json"


def test_non_ascii_and_integer_keys_as_before() -> None:
    payload = {"message": "A “damaged” claim — 30 días ✓", "by_line": {1: 2749, "l2": -1}}
    assert json_response(payload, 201).body == before(payload)
    assert json_response(payload, 201).status_code == 201
