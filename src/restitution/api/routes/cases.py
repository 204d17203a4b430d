"""Cases: open, read, and every action of the lifecycle. Each route maps HTTP to one use case."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Response

from restitution.api.deps import AppDep, PrincipalDep, use_case
from restitution.api.present import case_json, event_json, json_response, page
from restitution.api.routing import api_router
from restitution.api.schemas import (
    ActionIn,
    CaseOpenIn,
    DecisionIn,
    InspectionIn,
    LabelIn,
    MessageIn,
    MoneyIn,
    OfferActionIn,
    OfferIn,
    ReasonIn,
    ReturnAddressIn,
    ShipmentIn,
    Status,
)
from restitution.domain import cases as domain
from restitution.domain.errors import unknown_cursor
from restitution.domain.money import Money
from restitution.services import cases as service
from restitution.services.auth import Principal
from restitution.services.context import App
from restitution.services.ports import CaseFilter

router = api_router(prefix="/v1/cases", tags=["cases"])

Limit = Annotated[int, Query(ge=1, le=100)]
StatusFilter = Annotated[Status | None, Query()]
IdFilter = Annotated[str | None, Query(max_length=200)]


def _money(value: MoneyIn | None) -> Money | None:
    return Money(value.amount, value.currency) if value is not None else None


def _terms(body: OfferIn) -> domain.OfferTerms:
    return domain.OfferTerms(
        kind=body.kind,
        amount=_money(body.amount),
        return_required=body.return_required,
        return_shipping_paid_by=body.return_shipping_paid_by,
    )


@router.post("", status_code=201, summary="Open a case", response_model=dict[str, Any])
async def open_case(body: CaseOpenIn, app: AppDep, principal: PrincipalDep) -> Response:
    command = domain.OpenCase(
        order_id=body.order_id,
        # quantity omitted: the whole line (WHOLE_LINE is resolved against the order)
        lines=tuple(
            domain.CaseLine(line.line_id, line.quantity or service.WHOLE_LINE)
            for line in body.lines
        ),
        reason=body.reason,
        description=body.description,
        request=_terms(body.request),
        attachments=tuple(body.attachments),
    )
    case = await use_case(app, service.open_case, app, principal, command)
    return json_response(case_json(case), 201)


@router.get("", summary="List cases", response_model=dict[str, Any])
async def list_cases(
    app: AppDep,
    principal: PrincipalDep,
    status: StatusFilter = None,
    order_id: IdFilter = None,
    buyer_id: IdFilter = None,
    seller_id: IdFilter = None,
    limit: Limit = 20,
    starting_after: IdFilter = None,
) -> Response:
    flt = CaseFilter(status=status, order_id=order_id, buyer_id=buyer_id, seller_id=seller_id)
    found = await use_case(
        app, service.list_cases, app, principal, flt, limit=limit, starting_after=starting_after
    )
    return json_response(page([case_json(case) for case in found.data], found.has_more))


@router.get("/{case_id}", summary="Get a case", response_model=dict[str, Any])
async def get_case(case_id: str, app: AppDep, principal: PrincipalDep) -> Response:
    return json_response(case_json(await use_case(app, service.get_case, app, principal, case_id)))


@router.get(
    "/{case_id}/events", summary="The case's timeline, hash-chained", response_model=dict[str, Any]
)
async def case_events(
    case_id: str,
    app: AppDep,
    principal: PrincipalDep,
    limit: Limit = 20,
    starting_after: IdFilter = None,
) -> Response:
    events = await use_case(app, service.case_events, app, principal, case_id)
    if starting_after is not None:
        ids = [stored.chained.id for stored in events]
        if starting_after not in ids:
            raise unknown_cursor("event", starting_after)
        events = events[ids.index(starting_after) + 1 :]
    return json_response(
        page([event_json(e, app.policy) for e in events[:limit]], len(events) > limit)
    )


async def _act(
    app: App, principal: Principal, case_id: str, command: domain.Command, body: ActionIn | None
) -> Response:
    acting_as = body.acting_as if body is not None else None
    return json_response(
        case_json(
            await use_case(app, service.act, app, principal, case_id, command, acting_as=acting_as)
        )
    )


@router.post("/{case_id}/messages", summary="Post a message", response_model=dict[str, Any])
async def post_message(
    case_id: str, body: MessageIn, app: AppDep, principal: PrincipalDep
) -> Response:
    command = domain.PostMessage(body=body.body, attachments=tuple(body.attachments))
    return await _act(app, principal, case_id, command, body)


@router.post("/{case_id}/offers", summary="Make a (counter-)offer", response_model=dict[str, Any])
async def make_offer(
    case_id: str, body: OfferActionIn, app: AppDep, principal: PrincipalDep
) -> Response:
    return await _act(app, principal, case_id, domain.MakeOffer(_terms(body)), body)


@router.post(
    "/{case_id}/accept",
    summary="Accept the other side's current offer",
    response_model=dict[str, Any],
)
async def accept(
    case_id: str, app: AppDep, principal: PrincipalDep, body: ActionIn | None = None
) -> Response:
    return await _act(app, principal, case_id, domain.Accept(), body)


@router.post("/{case_id}/reject", summary="Reject the current offer", response_model=dict[str, Any])
async def reject(
    case_id: str, app: AppDep, principal: PrincipalDep, body: ReasonIn | None = None
) -> Response:
    return await _act(app, principal, case_id, domain.Reject(body.reason if body else ""), body)


@router.post(
    "/{case_id}/escalate", summary="Escalate to the platform (X1)", response_model=dict[str, Any]
)
async def escalate(
    case_id: str, app: AppDep, principal: PrincipalDep, body: ReasonIn | None = None
) -> Response:
    return await _act(app, principal, case_id, domain.Escalate(body.reason if body else ""), body)


@router.post(
    "/{case_id}/decision", summary="The mediator's final decision", response_model=dict[str, Any]
)
async def decide(case_id: str, body: DecisionIn, app: AppDep, principal: PrincipalDep) -> Response:
    command = domain.Decide(
        kind=body.kind,
        amount=_money(body.amount),
        return_required=body.return_required,
        return_shipping_paid_by=body.return_shipping_paid_by,
        note=body.note,
    )
    return await _act(app, principal, case_id, command, body)


@router.post(
    "/{case_id}/withdraw", summary="The buyer withdraws the case", response_model=dict[str, Any]
)
async def withdraw(
    case_id: str, app: AppDep, principal: PrincipalDep, body: ReasonIn | None = None
) -> Response:
    return await _act(app, principal, case_id, domain.Withdraw(body.reason if body else ""), body)


@router.post(
    "/{case_id}/return/label",
    summary="The seller adds a prepaid return label",
    response_model=dict[str, Any],
)
async def add_return_label(
    case_id: str, body: LabelIn, app: AppDep, principal: PrincipalDep
) -> Response:
    command = domain.AddReturnLabel(carrier=body.carrier, label_url=body.label_url)
    return await _act(app, principal, case_id, command, body)


@router.post(
    "/{case_id}/return/address",
    summary="The seller gives the address the buyer sends the return to",
    description=(
        "While an agreed return has neither an address nor a prepaid label, its D3 deadline "
        "runs against the seller and escalates the case to the platform; once it has one, "
        "the buyer has the whole D3 period from then to ship."
    ),
    response_model=dict[str, Any],
)
async def add_return_address(
    case_id: str, body: ReturnAddressIn, app: AppDep, principal: PrincipalDep
) -> Response:
    command = domain.AddReturnAddress(address=body.address.to_address())
    return await _act(app, principal, case_id, command, body)


@router.post(
    "/{case_id}/return/shipment",
    summary="The buyer ships the return",
    response_model=dict[str, Any],
)
async def ship_return(
    case_id: str, body: ShipmentIn, app: AppDep, principal: PrincipalDep
) -> Response:
    command = domain.ShipReturn(
        carrier=body.carrier,
        tracking_number=body.tracking_number,
        postage_paid=_money(body.postage_paid),
    )
    return await _act(app, principal, case_id, command, body)


@router.post(
    "/{case_id}/return/delivered",
    summary="The return reached the seller",
    response_model=dict[str, Any],
)
async def return_delivered(
    case_id: str, app: AppDep, principal: PrincipalDep, body: ActionIn | None = None
) -> Response:
    return await _act(app, principal, case_id, domain.MarkReturnDelivered(), body)


@router.post(
    "/{case_id}/inspection",
    summary="The seller inspects the returned item (I1)",
    response_model=dict[str, Any],
)
async def inspect(
    case_id: str, body: InspectionIn, app: AppDep, principal: PrincipalDep
) -> Response:
    command = domain.Inspect(
        passed=body.passed, note=body.note, attachments=tuple(body.attachments)
    )
    return await _act(app, principal, case_id, command, body)


@router.post(
    "/{case_id}/replacement/shipment",
    summary="The seller ships a replacement",
    response_model=dict[str, Any],
)
async def ship_replacement(
    case_id: str, body: ShipmentIn, app: AppDep, principal: PrincipalDep
) -> Response:
    command = domain.ShipReplacement(carrier=body.carrier, tracking_number=body.tracking_number)
    return await _act(app, principal, case_id, command, body)


@router.post(
    "/{case_id}/replacement/delivered",
    summary="The replacement reached the buyer",
    response_model=dict[str, Any],
)
async def replacement_delivered(
    case_id: str, app: AppDep, principal: PrincipalDep, body: ActionIn | None = None
) -> Response:
    return await _act(app, principal, case_id, domain.ConfirmReplacementDelivered(), body)
