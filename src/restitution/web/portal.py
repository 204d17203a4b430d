"""The buyer and seller portal, mounted at /portal. Routes translate pages and form posts
into the same use cases the API calls; the domain decides what is allowed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import Response

from restitution.domain import cases as domain
from restitution.domain.eligibility import (
    FULL_REFUND,
    PARTIAL_REFUND,
    REPLACEMENT,
    RETURN_AND_REFUND,
    Verdict,
    keeps_item_for_full_remedy,
)
from restitution.domain.errors import DomainError, InvalidInput
from restitution.domain.money import Money
from restitution.domain.orders import Order, OrderLine
from restitution.domain.policy import REASONS
from restitution.services import attachments as evidence
from restitution.services import cases as case_service
from restitution.services import insights, orders
from restitution.services.auth import Principal
from restitution.services.context import App
from restitution.services.ports import CaseFilter
from restitution.web import cases as case_views
from restitution.web import common
from restitution.web.common import (
    checked_form,
    domain_error_status,
    files,
    get_app,
    redirect,
    refusal,
    render,
    signed_in,
    text,
    upload_all,
)
from restitution.web.format import parse_amount

PARTIES = ("buyer", "seller")
MAX_QUANTITY_DIGITS = 9
Id = Annotated[str, Path(max_length=200)]


@dataclass
class LineSummary:
    """One order line on "My orders": its return window, or why it cannot be claimed."""

    line: OrderLine
    closes_at: datetime | None = None
    open_case_id: str | None = None
    possible: list[Verdict] = field(default_factory=list)
    refused: list[Verdict] = field(default_factory=list)

    @property
    def headline(self) -> Verdict | None:
        """Why nothing can be claimed: the first refusal that is not about another reason."""
        return next((v for v in self.refused if v.code != "already_delivered"), None)


def summarise(order: Order, verdicts: list[tuple[str, list[Verdict]]], open_cases: dict[str, str]
              ) -> list[LineSummary]:  # fmt: skip
    lines = {line.line_id: line for line in order.lines}
    summaries = []
    for line_id, line_verdicts in verdicts:
        summary = LineSummary(lines[line_id], open_case_id=open_cases.get(line_id))
        for verdict in line_verdicts:
            (summary.possible if verdict.eligible else summary.refused).append(verdict)
        closes = [v.window_closes_at for v in summary.possible if v.window_closes_at]
        summary.closes_at = max(closes) if closes else None
        summaries.append(summary)
    return summaries


def create_portal(app: App, operator_key: str) -> FastAPI:
    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    common.install(web, app, operator_key, "portal")

    @web.get("/login")
    def login(request: Request, token: Annotated[str, Query(max_length=500)] = "") -> Response:
        return common.sign_in_with_token(request, token)

    @web.post("/logout")
    async def logout(request: Request) -> Response:
        await checked_form(request)
        return common.sign_out(request)

    @web.get("/")
    def home(request: Request) -> Response:
        principal = signed_in(request, *PARTIES)
        return redirect(common.HOME[principal.role])

    @web.get("/orders")
    def my_orders(request: Request) -> Response:
        principal = signed_in(request, "buyer")
        found = []
        for order in insights.buyer_orders(get_app(request), principal):
            verdicts = orders.eligibility(get_app(request), principal, order.order_id)
            open_cases = insights.open_cases_by_line(get_app(request), order.order_id)
            found.append((order, summarise(order, verdicts, open_cases)))
        return render(request, "orders.html", {"orders": found, "title": "My orders"})

    @web.get("/orders/{order_id}/claim")
    def claim_form(
        request: Request,
        order_id: Id,
        line: Annotated[list[str] | None, Query()] = None,
        reason: Annotated[str, Query(max_length=64)] = "",
    ) -> Response:
        principal = signed_in(request, "buyer")
        context = claim_context(get_app(request), principal, order_id, line or [], reason)
        return render(request, "claim.html", context)

    @web.post("/orders/{order_id}/claim")
    async def claim(request: Request, order_id: Id) -> Response:
        principal = signed_in(request, "buyer")
        form = await checked_form(request)
        app = get_app(request)
        chosen = [value for value in form.getlist("line") if isinstance(value, str)]
        reason = text(form, "reason")
        try:
            lines = tuple(_claimed_line(form, line_id) for line_id in chosen)
            if not lines:
                raise InvalidInput("missing_field", "Choose at least one item.", param="lines")
            request_terms = _opening_terms(app, principal, order_id, lines, reason, form)
            attachment_ids = await upload_all(app, principal, files(form))
            case = case_service.open_case(
                app,
                principal,
                domain.OpenCase(
                    order_id=order_id,
                    lines=lines,
                    reason=reason,
                    description=text(form, "description"),
                    request=request_terms,
                    attachments=attachment_ids,
                ),
            )
        except DomainError as error:
            if domain_error_status(error) == 404:
                raise
            context = claim_context(app, principal, order_id, chosen, reason)
            context.update(error=refusal(request, error), form=form)
            return render(request, "claim.html", context, domain_error_status(error))
        return redirect(f"/portal/cases/{case.id}")

    @web.get("/cases")
    def my_cases(request: Request, needs: Annotated[str, Query(max_length=10)] = "") -> Response:
        principal = signed_in(request, *PARTIES)
        app = get_app(request)
        found = case_views.queue(app, principal, CaseFilter())
        waiting = [c for c in found if case_views.needs_action(c, app, principal)]
        shown = waiting if needs == "me" else found
        return render(
            request,
            "cases.html",
            {
                "cases": shown,
                "needs_me": needs == "me",
                "waiting_ids": {c.id for c in waiting},
                "items": insights.case_items(app, shown),
                "total": len(found),
                "title": "Cases on my orders" if principal.role == "seller" else "My cases",
            },
        )

    @web.get("/cases/{case_id}")
    def case_page(request: Request, case_id: Id) -> Response:
        principal = signed_in(request, *PARTIES)
        context = case_views.case_page(get_app(request), principal, case_id)
        return render(request, "case.html", {**context, "title": f"Case {case_id}"})

    @web.get("/cases/{case_id}/{action}")
    def action_address(request: Request, case_id: Id, action: Id) -> Response:
        """A form's address opened (reloaded after a refusal, or gone back to): the case."""
        signed_in(request, *PARTIES)
        return redirect(f"/portal/cases/{quote(case_id, safe='')}")

    @web.post("/cases/{case_id}/{action}")
    async def act(request: Request, case_id: Id, action: Id) -> Response:
        principal = signed_in(request, *PARTIES)
        return await case_views.act_and_show(request, principal, case_id, action, "portal")

    @web.get("/attachments/{attachment_id}")
    def attachment(request: Request, attachment_id: Id) -> Response:
        principal = signed_in(request, *PARTIES)
        return common.inline_attachment(evidence.download(get_app(request), principal,
                                                          attachment_id))  # fmt: skip

    return web


def _claimed_line(form: Any, line_id: str) -> domain.CaseLine:
    raw = text(form, f"quantity_{line_id}") or "0"
    # ASCII digits only (str.isdigit() also takes "²", which int() refuses), and few of them
    # (int() refuses more than 4,300 digits; no order has that many of a line anyway).
    if not (raw.isascii() and raw.isdigit() and len(raw) <= MAX_QUANTITY_DIGITS):
        raise InvalidInput(
            "invalid_quantity", "The quantity must be a whole number.", param="lines"
        )
    return domain.CaseLine(line_id, int(raw) or case_service.WHOLE_LINE)


def _opening_terms(
    app: App,
    principal: Principal,
    order_id: str,
    lines: tuple[domain.CaseLine, ...],
    reason: str,
    form: Any,
) -> domain.OfferTerms:
    """The remedy chosen on the form as the buyer's first offer."""
    remedy = text(form, "remedy")
    order = orders.get_order(app, principal, order_id)
    if remedy in (FULL_REFUND, RETURN_AND_REFUND):
        if reason not in REASONS:
            raise InvalidInput("invalid_reason", "Choose what went wrong.", param="reason")
        quantities = [
            (line.line_id, line.quantity or _ordered(order, line.line_id)) for line in lines
        ]
        verdicts = insights.claim_verdicts(app, principal, order_id, quantities, reason)
        total = sum((v.max_refund for v in verdicts), Money.zero(order.currency))
        return domain.OfferTerms("refund", total, remedy == RETURN_AND_REFUND)
    if remedy == PARTIAL_REFUND:
        amount_text = text(form, "amount")
        if not amount_text:
            raise InvalidInput(
                "amount_required", "Enter the amount of the partial refund.", param="amount"
            )
        return domain.OfferTerms("refund", parse_amount(amount_text, order.currency), False)
    if remedy == REPLACEMENT:  # for the item sent back, unless the reason lets the buyer keep it
        return domain.OfferTerms(
            "replacement", None, not keeps_item_for_full_remedy(app.policy, reason)
        )
    raise InvalidInput("remedy_required", "Choose what you would like.", param="remedy")


def _ordered(order: Order, line_id: str) -> int:
    line = order.line(line_id)
    return line.quantity if line else 1


def claim_context(
    app: App, principal: Principal, order_id: str, chosen: list[str], reason: str
) -> dict[str, Any]:
    order = orders.get_order(app, principal, order_id)
    line_ids = [line.line_id for line in order.lines]
    chosen = [line_id for line_id in chosen if line_id in line_ids] or line_ids[:1]
    all_verdicts = dict(orders.eligibility(app, principal, order_id))
    first = chosen[0]
    reason = reason if reason in REASONS else ""
    context: dict[str, Any] = {
        "title": "Report a problem",
        "order": order,
        "chosen": chosen,
        "reason": reason,
        "reasons": [(v.reason, v) for v in all_verdicts[first]],
        "open_cases": insights.open_cases_by_line(app, order_id),
    }
    if reason:
        verdicts = insights.claim_verdicts(
            app, principal, order_id, [(line.line_id, line.quantity) for line in order.lines],
            reason,
        )  # fmt: skip
        by_line = {v.line_id: v for v in verdicts}
        selected = [by_line[line_id] for line_id in chosen]
        advice: dict[str, Any] = {}
        for verdict in selected:
            for item in verdict.advice:
                advice.setdefault(item.code, item)
        full_amount = sum(
            (v.max_refund for v in selected if v.eligible), Money.zero(order.currency)
        )
        context.update(
            line_verdicts=by_line,
            refused=next((v for v in selected if not v.eligible), None),
            remedies=selected[0].remedies if all(v.eligible for v in selected) else (),
            # for every unit of the lines chosen: the form picks how many, without script
            full_amount=full_amount,
            units=sum(line.quantity for line in order.lines if line.line_id in chosen),
            partial_example=Money(full_amount.amount // 2, order.currency),
            advice=list(advice.values()),
            clauses_applied=common.clauses(app, [c.id for v in selected for c in v.clauses]),
            evidence_required=any(v.evidence_required for v in selected),
            return_payer=selected[0].return_shipping_paid_by,
        )
    return context
