"""Who is asking, and what they may see: the operator, or one buyer, seller or mediator."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from restitution.adapters.db.tokens import find_party_token, insert_party_token
from restitution.domain.cases import Actor, Case
from restitution.domain.errors import InvalidInput, NotFound, Unauthenticated
from restitution.domain.orders import Order
from restitution.services.context import App

PARTY_ROLES = ("buyer", "seller", "mediator")
DEFAULT_TOKEN_TTL = timedelta(hours=24)
MAX_TOKEN_TTL = timedelta(days=365)


@dataclass(frozen=True)
class Principal:
    role: str  # operator, buyer, seller or mediator
    party_id: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    @property
    def key(self) -> str:
        """A stable name for idempotency records and logs."""
        return "operator" if self.is_operator else f"{self.role}:{self.party_id}"

    def actor(self) -> Actor:
        return Actor(self.role, self.party_id)


OPERATOR = Principal("operator")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class MintedToken:
    token: str
    role: str
    party_id: str
    expires_at: datetime


def mint_party_token(app: App, role: str, party_id: str, ttl_seconds: int | None) -> MintedToken:
    if role not in PARTY_ROLES:
        raise InvalidInput("invalid_role", "role must be buyer, seller or mediator", param="role")
    party_id = party_id.strip()
    if not party_id:
        raise InvalidInput("missing_field", "party_id must not be empty", param="party_id")
    # Bounds are checked on the integer: a huge one would overflow timedelta.
    if ttl_seconds is not None and not 1 <= ttl_seconds <= MAX_TOKEN_TTL.total_seconds():
        raise InvalidInput(
            "invalid_ttl", "ttl_seconds must be between 1 and 31536000", param="ttl_seconds"
        )
    ttl = DEFAULT_TOKEN_TTL if ttl_seconds is None else timedelta(seconds=ttl_seconds)
    now = app.clock.now()
    token = f"rst_{role[0]}_{secrets.token_urlsafe(32)}"
    with app.db.transaction() as conn:
        insert_party_token(conn, _hash(token), role, party_id, now + ttl, now)
    return MintedToken(token, role, party_id, now + ttl)


def authenticate(app: App, operator_key: str, token: str | None) -> Principal:
    return token_holder(app, operator_key, token)[0]


def token_holder(
    app: App, operator_key: str, token: str | None
) -> tuple[Principal, datetime | None]:
    """Who the token stands for, and until when (None: the operator key does not expire)."""
    if not token:
        raise Unauthenticated("missing_token", "send Authorization: Bearer <token>")
    if hmac.compare_digest(token.encode(), operator_key.encode()):
        return OPERATOR, None
    with app.db.transaction(write=False) as conn:
        row = find_party_token(conn, _hash(token))
    if row is None:
        raise Unauthenticated("invalid_token", "the token is not valid")
    if row.expires_at <= app.clock.now():
        raise Unauthenticated("token_expired", "the token has expired; ask for a new link")
    return Principal(row.role, row.party_id), row.expires_at


def can_see_case(principal: Principal, case: Case) -> bool:
    if principal.is_operator:
        return True
    if principal.role == "buyer":
        return case.buyer_id == principal.party_id
    if principal.role == "seller":
        return case.seller_id == principal.party_id
    return principal.role == "mediator" and seen_by_mediators(case)


def seen_by_mediators(case: Case) -> bool:
    """Mediators see the cases escalated to them, and those whose refund failed: they are
    told of the failure and may retry the refund (the repository's `_SEEN_BY_MEDIATORS`)."""
    return case.escalated_at is not None or case.refund_failed_at is not None


def can_see_order(principal: Principal, order: Order) -> bool:
    if principal.is_operator:
        return True
    if principal.role == "buyer":
        return order.buyer_id == principal.party_id
    if principal.role == "seller":
        return order.seller_id == principal.party_id
    return False


def not_found(kind: str, object_id: str) -> NotFound:
    return NotFound("resource_missing", f"no {kind} {object_id!r}", param="id")
