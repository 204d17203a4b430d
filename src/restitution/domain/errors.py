"""Domain errors carry a stable code; the API maps each kind to the contract's error type."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from restitution.domain.money import Money


class DomainError(Exception):
    """Base of every refusal the domain can give. `code` is stable and machine-readable.

    `money`: the amount the message names (as `str(money)`, "20.34 USD"), for a page to
    show it as its reader writes money ("$20.34").
    """

    kind = "invalid_request"

    def __init__(
        self, code: str, message: str, *, param: str | None = None, money: Money | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.money = money


class InvalidInput(DomainError):
    """The request itself is malformed or inconsistent (400/422 invalid_request)."""

    kind = "invalid_request"


class PolicyViolation(DomainError):
    """The policy forbids it; `code` names the rule (422 policy_violation)."""

    kind = "policy_violation"

    def __init__(
        self,
        code: str,
        message: str,
        *,
        param: str | None = None,
        clauses: tuple[str, ...] = (),
        money: Money | None = None,
    ) -> None:
        super().__init__(code, message, param=param, money=money)
        self.clauses = clauses


class Conflict(DomainError):
    """The case's state does not allow the action now (409 conflict)."""

    kind = "conflict"


class Forbidden(DomainError):
    """The actor may not take this action on this case (403 forbidden)."""

    kind = "forbidden"


class NotFound(DomainError):
    """No such object, or not one this party may see (404 not_found)."""

    kind = "not_found"


class Unauthenticated(DomainError):
    """No valid credentials (401 unauthenticated)."""

    kind = "unauthenticated"


def unknown_cursor(kind: str, cursor: str) -> InvalidInput:
    """A list's `starting_after` that is not one of its items (or not one the caller may see)."""
    return InvalidInput(
        "invalid_cursor",
        f"starting_after: no {kind} {cursor!r} in this list to start after",
        param="starting_after",
    )
