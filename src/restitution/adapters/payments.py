"""Refund gateways. `ledger` is the built-in one: it settles at once, in the transaction that
grants the refund, and its ledger entry is the `refund_attempts` row (gateway "ledger") that
the refund service writes for the attempt."""

from __future__ import annotations

from restitution.services.ports import GatewayResult, RefundRequest


class LedgerGateway:
    name = "ledger"
    settles_in_transaction = True

    def refund(self, request: RefundRequest) -> GatewayResult:
        return GatewayResult(succeeded=True, reference=f"ledger_{request.idempotency_key}")
