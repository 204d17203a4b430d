"""Domain objects to rows and back. JSON columns hold plain JSON (times as RFC 3339)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from restitution.domain.cases import Case, CaseLine, Deadline, Offer, Shipment
from restitution.domain.history import format_time
from restitution.domain.money import Money
from restitution.domain.orders import Address, Order, OrderLine, Payment, SellerTerms


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def address_from_json(data: dict[str, Any] | None) -> Address | None:
    if not data:
        return None
    return Address(
        name=data["name"],
        line1=data["line1"],
        line2=data.get("line2"),
        city=data["city"],
        postal_code=data["postal_code"],
        country=data["country"],
    )


def order_to_row(order: Order) -> dict[str, Any]:
    terms = order.seller_terms
    return {
        "order_id": order.order_id,
        "buyer_id": order.buyer_id,
        "seller_id": order.seller_id,
        "currency": order.currency,
        "placed_at": order.placed_at,
        "shipped_at": order.shipped_at,
        "delivered_at": order.delivered_at,
        "promised_delivery_by": order.promised_delivery_by,
        "shipping_amount": order.shipping_amount,
        "payment_method": order.payment.method,
        "payment_reference": order.payment.reference,
        "seller_terms": {
            "free_return_shipping": terms.free_return_shipping,
            "accepts_change_of_mind": terms.accepts_change_of_mind,
            "return_address": terms.return_address.to_dict() if terms.return_address else None,
        },
        "return_shipping_estimate": order.return_shipping_estimate,
        "buyer_country": order.buyer_country,
        "lines": [line.to_dict() for line in order.lines],
    }


def order_from_row(row: Any) -> Order:
    terms = row.seller_terms
    return Order(
        order_id=row.order_id,
        buyer_id=row.buyer_id,
        seller_id=row.seller_id,
        currency=row.currency,
        placed_at=row.placed_at,
        shipped_at=row.shipped_at,
        delivered_at=row.delivered_at,
        promised_delivery_by=row.promised_delivery_by,
        shipping_amount=row.shipping_amount,
        payment=Payment(row.payment_method, row.payment_reference),
        seller_terms=SellerTerms(
            free_return_shipping=terms["free_return_shipping"],
            accepts_change_of_mind=terms["accepts_change_of_mind"],
            return_address=address_from_json(terms.get("return_address")),
        ),
        return_shipping_estimate=row.return_shipping_estimate,
        buyer_country=row.buyer_country,
        lines=tuple(OrderLine(**line) for line in row.lines),
    )


def shipment_from_json(data: dict[str, Any] | None) -> Shipment | None:
    if data is None:
        return None
    postage = data.get("postage_paid")
    return Shipment(
        address=address_from_json(data.get("address")),
        label_url=data.get("label_url"),
        carrier=data.get("carrier"),
        tracking_number=data.get("tracking_number"),
        shipped_at=_time(data.get("shipped_at")),
        delivered_at=_time(data.get("delivered_at")),
        postage_paid=Money(postage["amount"], postage["currency"]) if postage else None,
        instructions_at=_time(data.get("instructions_at")),  # absent on returns stored before
    )


def deadline_to_json(deadline: Deadline | None) -> dict[str, Any] | None:
    if deadline is None:
        return None
    return {
        "kind": deadline.kind,
        "action": deadline.action,
        "party": deadline.party,
        "due_at": format_time(deadline.due_at),
        "auto": deadline.auto,
    }


def deadline_from_json(data: dict[str, Any] | None) -> Deadline | None:
    if data is None:
        return None
    due_at = _time(data["due_at"])
    assert due_at is not None
    return Deadline(data["kind"], data["action"], data["party"], due_at, data["auto"])


def _amount(money: Money | None) -> int | None:
    return money.amount if money is not None else None


def case_to_row(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "order_id": case.order_id,
        "buyer_id": case.buyer_id,
        "seller_id": case.seller_id,
        "currency": case.currency,
        "reason": case.reason,
        "description": case.description,
        "status": case.status,
        "outcome": case.outcome,
        "refundable_amount": case.refundable.amount,
        "refund_granted_amount": _amount(case.refund_granted),
        "refunded_amount": _amount(case.refunded),
        "default_return_payer": case.default_return_payer,
        "return_address": case.return_address.to_dict() if case.return_address else None,
        "holiday_country": case.holiday_country,
        "policy_id": case.policy_id,
        "policy_version": case.policy_version,
        "agreed_offer_id": case.agreed_offer_id,
        "seller_first_answer_at": case.seller_first_answer_at,
        "escalated_at": case.escalated_at,
        "refund_failed_at": case.refund_failed_at,
        "return_shipment": case.return_shipment.to_dict() if case.return_shipment else None,
        "replacement_shipment": (
            case.replacement_shipment.to_dict() if case.replacement_shipment else None
        ),
        "deadline": deadline_to_json(case.deadline),
        "created_at": case.created_at,
        "updated_at": case.updated_at,
        "status_since": case.status_since,
        "version": case.version,
    }


def case_from_rows(row: Any, lines: list[Any], offers: list[Any]) -> Case:
    currency = row.currency

    def money(amount: int | None) -> Money | None:
        return Money(amount, currency) if amount is not None else None

    return Case(
        id=row.id,
        order_id=row.order_id,
        buyer_id=row.buyer_id,
        seller_id=row.seller_id,
        currency=currency,
        lines=tuple(CaseLine(line.line_id, line.quantity) for line in lines),
        reason=row.reason,
        description=row.description,
        status=row.status,
        outcome=row.outcome,
        refundable=Money(row.refundable_amount, currency),
        refund_granted=money(row.refund_granted_amount),
        refunded=money(row.refunded_amount),
        default_return_payer=row.default_return_payer,
        return_address=address_from_json(row.return_address),
        holiday_country=row.holiday_country,
        policy_id=row.policy_id,
        policy_version=row.policy_version,
        agreed_offer_id=row.agreed_offer_id,
        seller_first_answer_at=row.seller_first_answer_at,
        escalated_at=row.escalated_at,
        refund_failed_at=row.refund_failed_at,
        return_shipment=shipment_from_json(row.return_shipment),
        replacement_shipment=shipment_from_json(row.replacement_shipment),
        deadline=deadline_from_json(row.deadline),
        created_at=row.created_at,
        updated_at=row.updated_at,
        status_since=row.status_since,
        version=row.version,
        offers=[
            Offer(
                id=o.id,
                by=o.by,
                kind=o.kind,
                amount=money(o.amount),
                return_required=o.return_required,
                return_shipping_paid_by=o.return_shipping_paid_by,
                status=o.status,
                created_at=o.created_at,
            )
            for o in offers
        ],
    )


def offer_to_row(case_id: str, position: int, offer: Offer) -> dict[str, Any]:
    return {
        "id": offer.id,
        "case_id": case_id,
        "position": position,
        "by": offer.by,
        "kind": offer.kind,
        "amount": _amount(offer.amount),
        "return_required": offer.return_required,
        "return_shipping_paid_by": offer.return_shipping_paid_by,
        "status": offer.status,
        "created_at": offer.created_at,
    }
