"""Ports the services name and the adapters implement: the refund gateway, the mailer and the
evidence store, and the types the case store takes and returns (a case listing's filter, a
stored event)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from restitution.domain.history import ChainedEvent


@dataclass(frozen=True)
class RefundRequest:
    refund_id: str
    case_id: str
    amount: int
    currency: str
    method: str
    payment_reference: str | None
    # The same key for every retry of one attempt: a gateway that saw it refunds only once.
    idempotency_key: str


@dataclass(frozen=True)
class GatewayResult:
    succeeded: bool
    reference: str | None = None
    error: str | None = None


class RefundGateway(Protocol):
    name: str
    # True for a gateway that keeps its books in this database (the ledger): a grant is
    # settled in the transaction that made it. Otherwise it is called after the commit.
    settles_in_transaction: bool

    def refund(self, request: RefundRequest) -> GatewayResult: ...


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    body: str
    headers: dict[str, str]


class Mailer(Protocol):
    def send(self, email: OutgoingEmail) -> None: ...


class EvidenceStore(Protocol):
    """Evidence files addressed by their content: the same bytes are stored once, under one
    key, whichever attachment rows refer to them."""

    def put(self, data: bytes, now: datetime) -> tuple[str, str]:
        """Store the bytes, or mark the stored copy written again at `now`; returns
        (storage key, sha256)."""
        ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str, *, written_before: datetime) -> bool:
        """Remove the file unless it was written (or put again) at `written_before` or later;
        a missing file is no error. True when it was removed."""
        ...


@dataclass(frozen=True)
class StoredEvent:
    """A case's event as stored, with its hash in the case's chain."""

    chained: ChainedEvent
    hash: str


@dataclass(frozen=True)
class CaseFilter:
    status: str | None = None
    order_id: str | None = None
    buyer_id: str | None = None
    seller_id: str | None = None
    reason: str | None = None
    for_mediators: bool = False  # only the cases mediators see (`auth.can_see_case`)
