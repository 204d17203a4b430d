"""JSON columns are written and read by orjson (`json_text`, `json_value`); what orjson
refuses is written and read as json.dumps and json.loads would, so nothing stored becomes
unreadable and nothing storable is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from restitution.adapters.db.engine import json_text, json_value

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(values)
def test_a_value_reads_back_as_json_reads_it(value: Any) -> None:
    text = json_text(value)
    assert json_value(text) == json.loads(text) == json.loads(json.dumps(value))


def test_keys_that_are_not_strings_become_strings_as_json_dumps_makes_them() -> None:
    assert json_value(json_text({7: "a", False: "b", None: "c"})) == json.loads(
        json.dumps({7: "a", False: "b", None: "c"})
    )


@pytest.mark.parametrize("value", [{"title": "bad \ud800 half"}, {"amount": 2**70}])
def test_what_orjson_refuses_is_written_and_read_as_json_does(value: Any) -> None:
    text = json_text(value)
    assert text == json.dumps(value)
    assert json_value(text) == value
