"""The case page (timeline, deadline, evidence, refund, the actions allowed now) and the
form posts that become domain commands. Shared by the portal and the console."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from restitution.api.schemas import MAX_ADDRESS_TEXT, MAX_POSTAL_CODE, MAX_SHIPPING_TEXT, MAX_URL
from restitution.domain import cases as domain
from restitution.domain.cases import Case, allowed_actions
from restitution.domain.deadline_words import deadline_words
from restitution.domain.eligibility import keeps_item_for_full_remedy
from restitution.domain.errors import DomainError, InvalidInput, NotFound
from restitution.domain.orders import Address
from restitution.domain.policy import Clause, Policy
from restitution.services import cases as service
from restitution.services import insights, orders, refunds
from restitution.services.auth import Principal
from restitution.services.context import App
from restitution.services.ports import CaseFilter, StoredEvent
from restitution.web.common import (
    checked_form,
    clauses,
    domain_error_status,
    files,
    get_app,
    redirect,
    refusal,
    render,
    text,
    upload_all,
)
from restitution.web.format import parse_amount

PARTY_NAMES = {
    "buyer": "The buyer",
    "seller": "The seller",
    "mediator": "The mediator",
    "operator": "The marketplace",
    "system": "Restitution",
}

# Actions shown as their own form on the case page, in this order.
FORM_ACTIONS = (
    "accept",
    "make_offer",
    "reject",
    "ship_return",
    "add_return_address",
    "add_return_label",
    "mark_return_delivered",
    "inspect",
    "ship_replacement",
    "confirm_replacement_delivered",
    "decide",
    "escalate",
    "post_message",
    "withdraw",
)
NEEDS_NO_ACTION = frozenset({"post_message", "withdraw", "escalate"})
# Who moves next in a status without a deadline (the deadline's party, where there is one).
# Whose move a case without a deadline waits for (the replacement's arrival has no deadline:
# only the buyer can say it came).
EXPECTED_MOVE = {
    "awaiting_seller": "seller",
    "awaiting_buyer": "buyer",
    "under_review": "mediator",
    "replacement_in_transit": "buyer",
}
# Events that report what happened to a refund: their sentence names no one ("The refund
# failed", not "The marketplace The refund failed").
REPORTED = frozenset({"refund.succeeded", "refund.failed"})
STAFF = frozenset({"mediator", "operator"})
WITHDRAW_CONFIRMATION = "I understand the case closes without a refund"


@dataclass
class Entry:
    """One line of the timeline as a person reads it."""

    at: str
    actor: str
    who: str
    says: str
    automatic: bool = False
    offer: dict[str, Any] | None = None
    note: str = ""
    attachments: list[str] = field(default_factory=list)
    clauses: list[Clause] = field(default_factory=list)
    link: str | None = None


def _who(role: str, actor_id: str | None, principal: Principal) -> str:
    if role == principal.role and actor_id == principal.party_id:
        return "You"
    return PARTY_NAMES.get(role, role)


def describe(stored: StoredEvent, principal: Principal, app: App) -> Entry:
    event = stored.chained
    data: dict[str, Any] = dict(event.data)
    automatic = bool(data.get("automatic")) or event.actor_role == "system"
    entry = Entry(
        at=event.at,
        actor=event.actor_role,
        who=_who(event.actor_role, event.actor_id, principal),
        says=event.type,
        automatic=automatic,
        clauses=clauses(app, event.clauses),
        attachments=list(data.get("attachments") or []),
    )
    kind = event.type
    if kind == "case.opened":
        entry.says = "opened the case and asked for"
        entry.offer = data.get("offer")
    elif kind == "case.offer_made":
        entry.says = "offered"
        entry.offer = data.get("offer")
    elif kind == "case.offer_accepted":
        entry.says = (
            "The seller did not answer in time, so this request was accepted automatically:"
            if automatic
            else "accepted"
        )
        entry.offer = data.get("offer")
    elif kind == "case.offer_rejected":
        entry.says = "rejected the offer"
        entry.note = str(data.get("reason") or "")
    elif kind == "case.escalated":
        entry.says = (
            "The case went to the platform automatically"
            if automatic
            else "asked the platform to decide"
        )
        entry.note = str(data.get("reason") or "")
    elif kind == "case.decided":
        if data.get("kind") == "reject":
            entry.says = "decided to reject the claim"
        else:
            entry.says = "decided:"
            entry.offer = data.get("offer")
        entry.note = str(data.get("note") or "")
    elif kind == "case.withdrawn":
        entry.says = "withdrew the case"
        entry.note = str(data.get("reason") or "")
    elif kind == "case.message_posted":
        entry.says = "wrote"
        entry.note = str(data.get("body") or "")
    elif kind == "case.return_label_added":
        entry.says = f"added a prepaid return label ({data.get('carrier')})"
        entry.link = _safe_url(data.get("label_url"))
    elif kind == "case.return_address_added":
        entry.says = "gave the address to send the return to"
        entry.note = one_line_address(data.get("address"))
    elif kind == "case.return_shipped":
        entry.says = (
            f"shipped the return with {data.get('carrier')}, tracking {data.get('tracking_number')}"
        )
    elif kind == "case.return_delivered":
        entry.says = "marked the return as delivered"
    elif kind == "case.inspected":
        passed = bool(data.get("passed"))
        if automatic:
            entry.says = "The seller did not inspect in time, so the inspection passed"
        else:
            entry.says = "inspected the returned item: " + ("passed" if passed else "failed")
        entry.note = str(data.get("note") or "")
    elif kind == "case.expired":
        entry.says = "The return was not shipped in time, so the case closed without a refund"
    elif kind == "case.replacement_shipped":
        entry.says = (
            f"shipped a replacement with {data.get('carrier')}, "
            f"tracking {data.get('tracking_number')}"
        )
    elif kind == "case.replacement_delivered":
        entry.says = "confirmed that the replacement arrived"
    elif kind == "case.converted_to_refund":
        entry.says = "The replacement was not shipped in time, so it became a full refund"
    elif kind == "refund.succeeded":
        entry.says = "The refund was sent to the original payment method"
    elif kind == "refund.failed":
        if principal.role in STAFF:  # the gateway's own words are for the staff to act on
            entry.says = "The refund failed"
            entry.note = str(data.get("reason") or "")
        else:
            entry.says = (
                "The refund did not go through yet; the marketplace's staff will try it again"
            )
    elif kind == "refund.retried":
        entry.says = "asked for the refund to be tried again"
    if automatic or kind in REPORTED:
        entry.who = ""
    return entry


def one_line_address(address: Any) -> str:
    """An address (as its event or the case JSON holds it) on one line."""
    if not isinstance(address, dict):
        return ""
    parts = [
        address.get("name"),
        address.get("line1"),
        address.get("line2"),
        " ".join(str(address[key]) for key in ("postal_code", "city") if address.get(key)),
        address.get("country"),
    ]
    return ", ".join(str(part) for part in parts if part)


def _safe_url(value: Any) -> str | None:
    url = str(value or "")
    return url if url.startswith(("https://", "http://")) else None


def deadline_view(case: Case, app: App, principal: Principal) -> dict[str, Any] | None:
    deadline = case.deadline
    if deadline is None:
        return None
    todo, otherwise = deadline_words(deadline.kind, deadline.action, principal.role)
    mine = deadline.party == principal.role
    return {
        "due_at": deadline.due_at,
        "mine": mine,
        "party": deadline.party,
        "todo": todo,
        "otherwise": otherwise,
        "clause": clauses(app, [deadline.kind])[0],
    }


def case_page(app: App, principal: Principal, case_id: str) -> dict[str, Any]:
    """Everything the case page shows, read through the same use cases as the API."""
    case = service.get_case(app, principal, case_id)
    events = service.case_events(app, principal, case_id)
    order = orders.get_order(app, principal, case.order_id)
    found_refunds, _ = refunds.list_refunds(app, principal, case.id, limit=10, starting_after=None)
    evidence = insights.case_attachments(app, case)
    actions = allowed_actions(case, principal.actor(), app.context())
    titles = {line.line_id: line for line in order.lines}
    return {
        "case": case,
        "order": order,
        "case_lines": [(titles.get(line.line_id), line.quantity) for line in case.lines],
        "entries": [describe(stored, principal, app) for stored in events],
        "evidence": evidence,
        "evidence_types": {row.id: row.content_type for row in evidence},
        "refunds": found_refunds,
        "actions": [action for action in FORM_ACTIONS if action in actions],
        "deadline": deadline_view(case, app, principal),
        "label_url": _safe_url(case.return_shipment.label_url) if case.return_shipment else None,
        "return_to": _return_to(case),
        # R2: the buyer keeps the item for less than a full refund (the seller may offer more)
        "buyer_may_keep_for_full": keeps_item_for_full_remedy(app.policy, case.reason),
        "withdraw_confirmation": WITHDRAW_CONFIRMATION,
    }


def _return_to(case: Case) -> str:
    """Where the return goes, on one line ("" when no address was given)."""
    shipment = case.return_shipment
    if shipment is None or shipment.address is None:
        return ""
    return one_line_address(shipment.address.to_dict())


def needs_action(case: Case, app: App, principal: Principal) -> bool:
    """Whether the case waits for the principal: the current deadline is theirs (without
    one, the status names them as the one to move) and they have a move that answers it.

    A case waiting for the other party is not counted, though the principal could still
    revise an offer or withdraw: those never become due."""
    party = case.deadline.party if case.deadline else EXPECTED_MOVE.get(case.status)
    if party != principal.role:
        return False
    actions = allowed_actions(case, principal.actor(), app.context())
    return any(action not in NEEDS_NO_ACTION for action in actions)


QUEUE_LIMIT = 500  # the most cases a page of the portal or the console lists


def queue(app: App, principal: Principal, flt: CaseFilter) -> list[Case]:
    """The cases the principal sees, the soonest deadline first; those waiting on nobody
    (resolved) last, the latest changed first."""
    return service.cases_by_deadline(app, principal, flt, limit=QUEUE_LIMIT)


def terms_from_form(form: FormData, case: Case, policy: Policy) -> domain.OfferTerms:
    """A remedy chosen on a form as offer terms: the domain judges whether they are allowed.
    A replacement goes with the item's return where the reason does not let the buyer keep
    it (R2), whoever proposes it here."""
    remedy = text(form, "remedy")
    payer = text(form, "return_shipping_paid_by") or None
    amount_text = text(form, "amount")
    amount = parse_amount(amount_text, case.currency) if amount_text else None
    if remedy == "full_refund":
        return domain.OfferTerms("refund", case.refundable, False, payer)
    if remedy == "return_and_refund":
        return domain.OfferTerms("refund", amount or case.refundable, True, payer)
    if remedy == "partial_refund":
        if amount is None:
            raise InvalidInput(
                "amount_required", "Enter the amount of the partial refund.", param="amount"
            )
        return domain.OfferTerms("refund", amount, False, payer)
    if remedy == "replacement":
        returned = text(form, "return_required") == "yes" or not keeps_item_for_full_remedy(
            policy, case.reason
        )
        return domain.OfferTerms("replacement", None, returned, payer)
    raise InvalidInput("remedy_required", "Choose what you are asking for.", param="remedy")


async def command_from_form(
    app: App, principal: Principal, case: Case, action: str, form: FormData
) -> domain.Command:
    if action == "accept":
        return domain.Accept()
    if action == "reject":
        return domain.Reject(text(form, "reason"))
    if action == "escalate":
        return domain.Escalate(text(form, "reason"))
    if action == "withdraw":
        if text(form, "confirm") != "yes":
            raise InvalidInput(
                "confirmation_required",
                f"To withdraw the case, tick “{WITHDRAW_CONFIRMATION}”. Nothing was changed.",
                param="confirm",
            )
        return domain.Withdraw(text(form, "reason"))
    if action == "make_offer":
        return domain.MakeOffer(terms_from_form(form, case, app.policy))
    if action == "mark_return_delivered":
        return domain.MarkReturnDelivered()
    if action == "confirm_replacement_delivered":
        return domain.ConfirmReplacementDelivered()
    if action == "add_return_label":
        label_url = text(form, "label_url", max_length=MAX_URL)
        if _safe_url(label_url) is None:
            raise InvalidInput(
                "invalid_url", "The label link must start with https://", param="label_url"
            )
        return domain.AddReturnLabel(_shipping_text(form, "carrier"), label_url)
    if action == "add_return_address":
        return domain.AddReturnAddress(_address_from_form(form))
    if action == "ship_return":
        return domain.ShipReturn(
            _shipping_text(form, "carrier"), _shipping_text(form, "tracking_number")
        )
    if action == "ship_replacement":
        return domain.ShipReplacement(
            _shipping_text(form, "carrier"), _shipping_text(form, "tracking_number")
        )
    if action == "decide":
        kind = text(form, "kind")
        amount_text = text(form, "amount")
        amount = None
        if kind == "refund":
            amount = parse_amount(amount_text, case.currency) if amount_text else case.refundable
        return domain.Decide(
            kind=kind,
            amount=amount,
            return_required=kind != "reject" and text(form, "return_required") == "yes",
            return_shipping_paid_by=text(form, "return_shipping_paid_by") or None,
            note=text(form, "note"),
        )
    if action in ("post_message", "inspect"):
        uploads = files(form)
        if action == "post_message" and not text(form, "body") and not uploads:
            raise InvalidInput("empty_message", "Write a message or attach a photo.", param="body")
        attachment_ids = await upload_all(app, principal, uploads)
        if action == "inspect":
            verdict = text(form, "passed")
            if verdict not in ("yes", "no"):
                raise InvalidInput(
                    "result_required", "Say whether the item passed inspection.", param="passed"
                )
            return domain.Inspect(verdict == "yes", text(form, "note"), attachment_ids)
        return domain.PostMessage(text(form, "body"), attachment_ids)
    raise NotFound("unknown_action", f"no action {action!r}")


def _shipping_text(form: FormData, name: str) -> str:
    return text(form, name, max_length=MAX_SHIPPING_TEXT)


def _address_from_form(form: FormData) -> Address:
    """The address fields of a form, within the API's bounds; the domain checks the rest."""

    def part(name: str) -> str:
        return text(form, name, max_length=MAX_ADDRESS_TEXT)

    return Address(
        name=part("name"),
        line1=part("line1"),
        line2=part("line2") or None,
        city=part("city"),
        postal_code=text(form, "postal_code", max_length=MAX_POSTAL_CODE),
        country=part("country").upper(),
    )


async def perform(
    app: App, principal: Principal, case_id: str, action: str, form: FormData
) -> Case:
    if action == "retry_refund":  # an action on the case's refund, not on the case itself
        refunds.retry(app, principal, text(form, "refund_id"), case_id=case_id)
        return service.get_case(app, principal, case_id)
    case = service.get_case(app, principal, case_id)
    command = await command_from_form(app, principal, case, action, form)
    return service.act(app, principal, case_id, command)


async def act_and_show(
    request: Request, principal: Principal, case_id: str, action: str, area: str
) -> Response:
    """Take one action from a form; show the case again, with the refusal if there was one."""
    app = get_app(request)
    form = await checked_form(request)
    try:
        await perform(app, principal, case_id, action, form)
    except DomainError as error:
        status = domain_error_status(error)
        if status == 404:
            raise
        context = case_page(app, principal, case_id)
        context.update(error=refusal(request, error), failed_action=action, form=form)
        template = "console_case.html" if area == "console" else "case.html"
        if area == "console":
            context.update(review_context(app, principal, context["case"], context["order"]))
        return render(request, template, {**context, "title": f"Case {case_id}"}, status)
    return redirect(f"/{area}/cases/{case_id}#latest")


def review_context(app: App, principal: Principal, case: Case, order: Any) -> dict[str, Any]:
    """What the mediator weighs besides the timeline: offers side by side, the clauses that
    apply, the seller's dispute rate and the buyer's history."""
    verdicts = insights.claim_verdicts(
        app, principal, case.order_id, [(line.line_id, line.quantity) for line in case.lines],
        case.reason,
    )  # fmt: skip
    cited = [c.id for v in verdicts for c in v.clauses]
    events = service.case_events(app, principal, case.id)
    for stored in events:
        cited.extend(stored.chained.clauses)
    rates = insights.dispute_rates(app, case.seller_id)
    return {
        "seller_answer": seller_answer(events),
        "offers_by": {
            side: [offer for offer in case.offers if offer.by == side]
            for side in ("buyer", "seller", "mediator")
        },
        "applicable": clauses(app, sorted(set(cited), key=_clause_order)),
        "seller_rate": rates[0] if rates else None,
        "buyer_history": [
            row for row in insights.buyer_history(app, case.buyer_id) if row.id != case.id
        ],
    }


def seller_answer(events: list[StoredEvent]) -> str:
    """The seller's last answer to an offer, in words, from the case's events."""
    answer = "has not answered yet"
    for stored in events:
        event = stored.chained
        if event.type == "case.offer_accepted" and event.actor_role == "seller":
            answer = "accepted the buyer's offer"
        elif event.type == "case.offer_accepted" and event.data.get("automatic"):
            answer = "did not answer in time; the buyer's request was accepted automatically"
        elif event.type == "case.offer_made" and event.actor_role == "seller":
            answer = "countered with an offer of their own"
        elif event.type == "case.offer_rejected" and event.actor_role == "seller":
            reason = str(event.data.get("reason") or "").strip()
            answer = "rejected the buyer's offer" + (f": “{reason}”" if reason else "")
    return answer


def _clause_order(clause_id: str) -> tuple[int, str]:
    order = "WRSHENXFID"
    return (order.index(clause_id[0]) if clause_id[0] in order else 99, clause_id)
