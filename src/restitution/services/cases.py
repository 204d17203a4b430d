"""Use cases on cases: open one, take an action, read them. One transaction each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from restitution.adapters.db.repository import Repository
from restitution.domain.cases import (
    TRANSITIONS,
    Actor,
    Case,
    CaseLine,
    Command,
    OpenCase,
    PostMessage,
    apply,
)
from restitution.domain.cases import (
    open_case as open_new_case,
)
from restitution.domain.eligibility import evaluate, require_evidence
from restitution.domain.errors import Conflict, Forbidden, InvalidInput, PolicyViolation
from restitution.domain.money import Money
from restitution.domain.orders import Order
from restitution.services import refunds
from restitution.services.attachments import claim_attachments
from restitution.services.auth import Principal, can_see_case, not_found
from restitution.services.context import App
from restitution.services.orders import visible_claims
from restitution.services.ports import CaseFilter, StoredEvent
from restitution.services.recording import record

WHOLE_LINE = 0  # a case line's quantity when the buyer claims every unit of the line
# Refusals that name `lines`, not `reason`.
LINE_REFUSALS = ("invalid_quantity", "unknown_line", "case_already_decided")


def open_case(app: App, principal: Principal, command: OpenCase) -> Case:
    """Judge every line against the policy, then open the case with the buyer's request."""
    if principal.role not in ("buyer", "operator"):
        raise Forbidden("buyer_only", "only the buyer, or the operator for them, opens a case")
    _check_lines(command)
    ctx = app.context()
    with app.db.transaction() as conn:
        repo = Repository(conn)
        claims = visible_claims(repo, principal, command.order_id, for_write=True)
        order, granted = claims.order, claims.granted
        command = _whole_lines(command, order)
        if any(line.line_id in claims.open_lines for line in command.lines):
            raise Conflict(
                "case_already_open", "one of these lines already has a case that is not resolved"
            )
        verdicts = [
            evaluate(
                app.policy,
                order,
                line.line_id,
                command.reason,
                ctx.now,
                quantity=line.quantity,
                already_refunded=granted.get(line.line_id, 0),
                earlier_outcomes=claims.closed_as.get(line.line_id, ()),
            )
            for line in command.lines
        ]
        for verdict in verdicts:
            if not verdict.eligible:
                raise PolicyViolation(
                    verdict.code or "not_eligible",
                    verdict.message,
                    param="lines" if verdict.code in LINE_REFUSALS else "reason",
                    clauses=verdict.clause_ids,
                )
        require_evidence(app.policy, command.reason, len(command.attachments))
        refundable = sum((v.max_refund for v in verdicts), Money.zero(order.currency))
        payer = (
            "seller" if any(v.return_shipping_paid_by == "seller" for v in verdicts) else "buyer"
        )
        return_address = order.seller_terms.return_address
        result = open_new_case(
            command,
            case_id=app.new_id("case"),
            buyer_id=order.buyer_id,
            seller_id=order.seller_id,
            currency=order.currency,
            refundable=refundable,
            default_return_payer=payer,
            return_address=return_address,
            holiday_country=(return_address.country if return_address else None)
            or app.policy.holiday_country,
            actor=Actor("buyer", order.buyer_id),
            ctx=ctx,
        )
        with repo.batched_writes():  # the case and its lines at once, the rest together
            repo.insert_case(result.case, {v.line_id: v.max_refund.amount for v in verdicts})
            claim_attachments(repo, principal, command.attachments, result.case.id)
            record(app, repo, None, result)
    return result.case


def _whole_lines(command: OpenCase, order: Order) -> OpenCase:
    lines = []
    for line in command.lines:
        ordered = order.line(line.line_id)
        if line.quantity == WHOLE_LINE and ordered is not None:
            line = CaseLine(line.line_id, ordered.quantity)
        lines.append(line)
    return replace(command, lines=tuple(lines))


def _check_lines(command: OpenCase) -> None:
    if not command.lines:
        raise InvalidInput("missing_field", "a case needs at least one line", param="lines")
    ids = [line.line_id for line in command.lines]
    if len(set(ids)) != len(ids):
        raise InvalidInput("duplicate_line", "each line may appear once", param="lines")


def act(
    app: App,
    principal: Principal,
    case_id: str,
    command: Command,
    *,
    acting_as: str | None = None,
) -> Case:
    """One action on one case, by whoever the principal is (or acts as, for the operator)."""
    ctx = app.context()
    with app.db.transaction() as conn:
        repo = Repository(conn)
        case = _visible_case(repo, principal, case_id, for_write=True)
        actor = actor_for(principal, case, command.action, acting_as)
        result = apply(case, command, actor, ctx)
        attachments = getattr(command, "attachments", ())
        if attachments:
            claim_attachments(repo, principal, attachments, case.id)
        if isinstance(command, PostMessage):
            repo.insert_message(
                {
                    "id": app.new_id("msg"),
                    "case_id": case.id,
                    "author_role": actor.role,
                    "author_id": actor.id,
                    "body": command.body.strip(),
                    "attachments": list(command.attachments),
                    "created_at": ctx.now,
                }
            )
        recorded = refunds.record_settling(app, repo, case, result)
    refunds.execute_if_automatic(app, recorded.case)
    return recorded.case


def actor_for(principal: Principal, case: Case, action: str, acting_as: str | None) -> Actor:
    """The party acting: the principal itself, or for the operator the party it acts for.

    The operator acts as itself where the table allows it; otherwise as `acting_as`, or
    as the only party the table lets take this action in this status.
    """
    if not principal.is_operator:
        if acting_as not in (None, principal.role):
            raise InvalidInput(
                "acting_as_not_allowed",
                "only the operator may act for another party",
                param="acting_as",
            )
        return principal.actor()
    row = TRANSITIONS.get((case.status, action))
    allowed = sorted(row.actors) if row else []
    if acting_as is None and "operator" in allowed:
        return Actor("operator", "operator")
    parties = [role for role in allowed if role in ("buyer", "seller", "mediator")]
    role = acting_as or (parties[0] if len(parties) == 1 else None)
    if role is None:
        if not parties:
            role = "buyer"  # the table will refuse with the right conflict
        else:
            raise InvalidInput(
                "acting_as_required",
                f"say which party the operator acts for: one of {', '.join(parties)}",
                param="acting_as",
            )
    if role not in ("buyer", "seller", "mediator"):
        raise InvalidInput(
            "invalid_role", "acting_as is buyer, seller or mediator", param="acting_as"
        )
    party_id = {"buyer": case.buyer_id, "seller": case.seller_id}.get(role, "operator")
    return Actor(role, party_id)


def _visible_case(
    repo: Repository, principal: Principal, case_id: str, *, for_write: bool = False
) -> Case:
    case = repo.get_case(case_id, for_write=for_write)
    if case is None or not can_see_case(principal, case):
        raise not_found("case", case_id)
    return case


def get_case(app: App, principal: Principal, case_id: str) -> Case:
    with app.db.transaction(write=False) as conn:
        return _visible_case(Repository(conn), principal, case_id)


@dataclass(frozen=True)
class Page:
    data: Sequence[Any]
    has_more: bool


def list_cases(
    app: App, principal: Principal, flt: CaseFilter, *, limit: int, starting_after: str | None
) -> Page:
    flt, visible_to = _visible(principal, flt)
    with app.db.transaction(write=False) as conn:
        found, has_more = Repository(conn).list_cases(
            flt, limit=limit, starting_after=starting_after, visible_to=visible_to
        )
    return Page(found, has_more)


def cases_by_deadline(app: App, principal: Principal, flt: CaseFilter, *, limit: int) -> list[Case]:
    """The first `limit` cases the principal sees, the soonest deadline first (a queue)."""
    flt, visible_to = _visible(principal, flt)
    with app.db.transaction(write=False) as conn:
        return Repository(conn).cases_by_deadline(flt, limit=limit, visible_to=visible_to)


def _visible(principal: Principal, flt: CaseFilter) -> tuple[CaseFilter, tuple[str, str] | None]:
    """`flt` narrowed to what the principal sees: a party its own cases (the column and
    its id), a mediator those mediators see."""
    visible_to: tuple[str, str] | None = None
    if principal.role in ("buyer", "seller"):
        assert principal.party_id is not None
        visible_to = (f"{principal.role}_id", principal.party_id)
    if principal.role == "mediator":
        flt = CaseFilter(**{**flt.__dict__, "for_mediators": True})
    return flt, visible_to


def case_events(app: App, principal: Principal, case_id: str) -> list[StoredEvent]:
    with app.db.transaction(write=False) as conn:
        repo = Repository(conn)
        _visible_case(repo, principal, case_id)
        return repo.case_events(case_id)
