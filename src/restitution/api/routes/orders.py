"""Orders pushed by the marketplace, and their eligibility per line and reason."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from restitution.api.deps import AppDep, OperatorDep, PrincipalDep
from restitution.api.present import order_json
from restitution.api.schemas import OrderIn
from restitution.domain.errors import InvalidInput
from restitution.domain.orders import Address, Order, OrderLine, Payment, SellerTerms
from restitution.services import orders as service
from restitution.services.parties import PartyContact

router = APIRouter(prefix="/v1/orders", tags=["orders"])
OrderId = Annotated[str, Path(min_length=1, max_length=200)]


def _order(order_id: str, body: OrderIn) -> Order:
    line_ids = [line.line_id for line in body.lines]
    if len(set(line_ids)) != len(line_ids):
        raise InvalidInput("duplicate_line", "line_id must be unique in an order", param="lines")
    terms = body.seller_terms
    address = terms.return_address
    return Order(
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
        lines=tuple(OrderLine(**line.model_dump()) for line in body.lines),
        seller_terms=SellerTerms(
            free_return_shipping=terms.free_return_shipping,
            accepts_change_of_mind=terms.accepts_change_of_mind,
            return_address=Address(**address.model_dump()) if address else None,
        ),
        return_shipping_estimate=body.return_shipping_estimate,
        buyer_country=body.buyer_country,
    )


@router.put(
    "/{order_id}",
    summary="Create or replace an order",
    status_code=200,
    responses={201: {"description": "Created: the order is new"}},
)
def put_order(
    order_id: OrderId, body: OrderIn, app: AppDep, principal: OperatorDep, response: Response
) -> dict[str, Any]:
    contacts = {
        role: PartyContact(**contact.model_dump())
        for role, contact in (("buyer", body.buyer), ("seller", body.seller))
        if contact is not None
    }
    saved = service.put_order(app, principal, _order(order_id, body), contacts)
    if saved.created:
        response.status_code = 201
    return order_json(saved.order)


@router.get("/{order_id}", summary="Get an order")
def get_order(order_id: OrderId, app: AppDep, principal: PrincipalDep) -> dict[str, Any]:
    return order_json(service.get_order(app, principal, order_id))


@router.get("/{order_id}/eligibility", summary="What may be claimed on each line, and why")
def eligibility(order_id: OrderId, app: AppDep, principal: PrincipalDep) -> dict[str, Any]:
    lines = service.eligibility(app, principal, order_id)
    return {
        "object": "eligibility",
        "order_id": order_id,
        "lines": [
            {"line_id": line_id, "reasons": [verdict.to_dict() for verdict in verdicts]}
            for line_id, verdicts in lines
        ],
    }
