"""Orders pushed by the marketplace, and their eligibility per line and reason."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Response

from restitution.api.deps import AppDep, OperatorDep, PrincipalDep, use_case
from restitution.api.present import json_response, order_json
from restitution.api.routing import api_router
from restitution.api.schemas import MAX_AMOUNT, OrderIn
from restitution.domain.errors import InvalidInput
from restitution.domain.orders import Order, OrderLine, Payment, SellerTerms, check_times
from restitution.services import orders as service
from restitution.services.parties import PartyContact

router = api_router(prefix="/v1/orders", tags=["orders"])
OrderId = Annotated[str, Path(min_length=1, max_length=200)]


def _checked(order_id: str) -> str:
    """No NUL character: PostgreSQL cannot store one in text (refused on every backend
    alike), and one in an eligibility read would fail the statement of the reads sent with
    it. (Checked here, not as a pattern: the lean routes take plain path parameters.)"""
    if "\x00" in order_id:
        raise InvalidInput(
            "invalid_field", "order_id: must not contain NUL characters", param="order_id"
        )
    return order_id


def order_from_body(order_id: str, body: OrderIn) -> Order:
    """The domain order of a validated body (shared with `restitution orders import`)."""
    line_ids = [line.line_id for line in body.lines]
    if len(set(line_ids)) != len(line_ids):
        raise InvalidInput("duplicate_line", "line_id must be unique in an order", param="lines")
    # What was paid is the most a case can refund: it must stay an exact stored integer.
    total = body.shipping_amount + sum(line.unit_amount * line.quantity for line in body.lines)
    if total > MAX_AMOUNT:
        raise InvalidInput(
            "amount_too_large",
            f"the order's total may be at most {MAX_AMOUNT} minor units",
            param="lines",
        )
    terms = body.seller_terms
    address = terms.return_address
    order = Order(
        order_id=order_id,
        buyer_id=body.buyer_id,
        seller_id=body.seller_id,
        currency=body.currency,
        placed_at=body.placed_at,
        shipped_at=body.shipped_at,
        delivered_at=body.delivered_at,
        promised_delivery_by=body.promised_delivery_by,
        shipping_amount=body.shipping_amount,
        payment=Payment(body.payment.method, body.payment.reference),
        lines=tuple(
            OrderLine(
                line.line_id,
                line.sku,
                line.title,
                line.category,
                line.quantity,
                line.unit_amount,
                line.custom_made,
            )
            for line in body.lines
        ),
        seller_terms=SellerTerms(
            free_return_shipping=terms.free_return_shipping,
            accepts_change_of_mind=terms.accepts_change_of_mind,
            return_address=address.to_address() if address else None,
        ),
        return_shipping_estimate=body.return_shipping_estimate,
        buyer_country=body.buyer_country,
    )
    check_times(order)
    return order


@router.put(
    "/{order_id}",
    summary="Create or replace an order",
    status_code=200,
    responses={201: {"description": "Created: the order is new"}},
)
async def put_order(
    order_id: OrderId, body: OrderIn, app: AppDep, principal: OperatorDep, response: Response
) -> dict[str, Any]:
    contacts = {
        role: PartyContact(**contact.model_dump())
        for role, contact in (("buyer", body.buyer), ("seller", body.seller))
        if contact is not None
    }
    order = order_from_body(_checked(order_id), body)
    saved = await use_case(app, service.put_order, app, principal, order, contacts)
    if saved.created:
        response.status_code = 201
    return order_json(saved.order)


@router.get("/{order_id}", summary="Get an order", response_model=dict[str, Any])
async def get_order(order_id: OrderId, app: AppDep, principal: PrincipalDep) -> Response:
    order = await use_case(app, service.get_order, app, principal, _checked(order_id))
    return json_response(order_json(order))


@router.get(
    "/{order_id}/eligibility",
    summary="What may be claimed on each line, and why",
    response_model=dict[str, Any],
)
async def eligibility(order_id: OrderId, app: AppDep, principal: PrincipalDep) -> Response:
    lines = await service.eligibility_async(app, principal, _checked(order_id))
    return json_response(
        {
            "object": "eligibility",
            "order_id": order_id,
            "lines": [
                {"line_id": line_id, "reasons": [verdict.to_dict() for verdict in verdicts]}
                for line_id, verdicts in lines
            ],
        }
    )
