"""Every event's hash is of its canonical JSON: the text must never change, whatever writes
it (stored hashes are verified against it by `restitution audit verify`)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from restitution.domain.history import canonical_json

text = st.text(st.characters(exclude_categories=["Cs"]))  # a lone surrogate: below
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=15,
)


def as_json_writes_it(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@settings(max_examples=500)
@given(values)
def test_the_text_is_json_dumps_sorted_and_compact(value: Any) -> None:
    assert canonical_json(value) == as_json_writes_it(value)


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [True, None, "é\\u2028\n\x00\x7f😀"], "ä": {"z": -1, "y": ""}},
        {"title": "half \ud800 a pair"},  # orjson refuses it
        {"amount": 2**70, "minus": -(2**70)},  # beyond 64 bits: orjson refuses it
    ],
)
def test_known_texts(value: Any) -> None:
    assert canonical_json(value) == as_json_writes_it(value)
