"""Orders for the benchmarks: one shipped, not-yet-delivered line each, so a "not received"
case may be opened on it at once (no evidence needed) and a full refund is due."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

NOW = datetime.now(UTC).replace(microsecond=0)
LINE_AMOUNT = 2599
SHIPPING = 300
FULL_REFUND = LINE_AMOUNT + SHIPPING  # the one line's price and all of the shipping
PREFIX = "bo"


def order_body(index: int, prefix: str = PREFIX) -> dict[str, Any]:
    """The JSON Lines record of order `index` (the PUT body plus its order_id)."""
    return {
        "order_id": f"{prefix}_{index}",
        "buyer_id": f"b_{index % 5000}",
        "seller_id": f"s_{index % 500}",
        "currency": "USD",
        "placed_at": (NOW - timedelta(days=12)).isoformat(),
        "shipped_at": (NOW - timedelta(days=10)).isoformat(),
        "promised_delivery_by": (NOW - timedelta(days=2)).isoformat(),
        "shipping_amount": SHIPPING,
        "payment": {"method": "card", "reference": f"pi_{index}"},
        "lines": [
            {
                "line_id": "l1",
                "sku": "PH-1",
                "title": "Phone",
                "category": "electronics/phones",
                "quantity": 1,
                "unit_amount": LINE_AMOUNT,
            }
        ],
        "seller_terms": {
            "free_return_shipping": False,
            "accepts_change_of_mind": False,
            "return_address": {
                "name": "Shop returns",
                "line1": "1 Harbour Rd",
                "city": "Shenzhen",
                "postal_code": "518000",
                "country": "CN",
            },
        },
        "return_shipping_estimate": 800,
    }


def order_lines(count: int, prefix: str = PREFIX) -> Iterator[str]:
    for index in range(count):
        yield json.dumps(order_body(index, prefix), separators=(",", ":"))


def write_jsonl(path: Path, count: int, prefix: str = PREFIX) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for line in order_lines(count, prefix):
            handle.write(line + "\n")
    return path


def open_case_body(order_id: str) -> dict[str, Any]:
    """POST /v1/cases: the buyer never received the order and asks for a full refund."""
    return {
        "order_id": order_id,
        "lines": [{"line_id": "l1"}],
        "reason": "not_received",
        "description": "It never came.",
        "request": {"kind": "refund", "amount": {"amount": FULL_REFUND, "currency": "USD"}},
    }
