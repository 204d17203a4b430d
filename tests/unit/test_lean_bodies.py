"""A lean route validates its body from the JSON text (`model_validate_json`), FastAPI from
`json.loads` (python mode): whatever the lean way accepts, FastAPI's accepts as the same
model, for every body of a lean route (what the lean way refuses goes to FastAPI's handler)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from restitution.api.routes import attachments, cases, orders, refunds, system, tokens, webhooks
from restitution.api.routing import lean_plan

MODELS: list[type[BaseModel]] = sorted(
    {
        plan.body.model
        for module in (system, tokens, orders, cases, attachments, refunds, webhooks)
        for route in module.router.routes
        if (plan := lean_plan(route.dependant)) is not None and plan.body is not None  # type: ignore[attr-defined]
    },
    key=lambda model: model.__name__,
)
LIKELY = ["refund", "replacement", "reject", "buyer", "seller", "USD", "l1", "https://x.test/l"]
KEYS = ["amount", "currency", "line_id", "quantity", "kind"]
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    | st.sampled_from(LIKELY),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS), children, max_size=3)
    ),
    max_leaves=8,
)


MONEY = {"amount": 100, "currency": "USD"}
VALID: dict[str, dict[str, Any]] = {  # one valid body of each, to change a field or two of
    "ActionIn": {},
    "CaseOpenIn": {
        "order_id": "o_1",
        "lines": [{"line_id": "l1"}],
        "reason": "damaged",
        "request": {"kind": "refund", "amount": MONEY},
    },
    "DecisionIn": {"kind": "refund", "amount": MONEY},
    "InspectionIn": {"passed": True},
    "LabelIn": {"carrier": "UPS", "label_url": "https://x.test/l"},
    "MessageIn": {"body": "hi"},
    "OfferActionIn": {"kind": "refund", "amount": MONEY, "acting_as": "seller"},
    "ReasonIn": {"reason": "no"},
    "ReturnAddressIn": {
        "address": {
            "name": "Shop",
            "line1": "1 Rd",
            "city": "Ningbo",
            "postal_code": "315000",
            "country": "CN",
        }
    },
    "ShipmentIn": {"carrier": "UPS", "tracking_number": "1Z", "postage_paid": MONEY},
}


def _validated(model: type[BaseModel], validate: Any) -> BaseModel | None:
    try:
        result: BaseModel = validate()
    except ValidationError:
        return None
    return result


def test_each_lean_body_has_a_valid_example() -> None:
    assert sorted(VALID) == [model.__name__ for model in MODELS]
    for model in MODELS:
        assert _validated(model, lambda m=model: m.model_validate(VALID[m.__name__])) is not None


@settings(max_examples=400)
@given(st.data())
def test_what_the_lean_way_accepts_fastapi_accepts_as_the_same(data: st.DataObject) -> None:
    model = data.draw(st.sampled_from(MODELS))
    fields = st.sampled_from(sorted(model.model_fields))
    changed = data.draw(st.dictionaries(fields, values, max_size=2))
    removed = data.draw(st.sets(fields, max_size=1))
    document = {**VALID[model.__name__], **changed}
    text = json.dumps({key: value for key, value in document.items() if key not in removed})
    lean = _validated(model, lambda: model.model_validate_json(text))
    if lean is not None:
        assert _validated(model, lambda: model.model_validate(json.loads(text))) == lean
