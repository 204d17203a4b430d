"""Exact money: integer minor units plus an ISO 4217 currency. Never a float."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from restitution.domain.errors import InvalidInput

# ISO 4217 minor-unit exponents that differ from the usual 2.
_EXPONENT_EXCEPTIONS: dict[str, int] = {
    # zero-decimal currencies
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0,
    # three-decimal currencies
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    # four-decimal
    "CLF": 4, "UYW": 4,
}  # fmt: skip


def currency_exponent(currency: str) -> int:
    """Number of minor-unit digits of an ISO 4217 code (USD 2, JPY 0, KWD 3)."""
    return _EXPONENT_EXCEPTIONS.get(currency, 2)


_VALID_CURRENCIES: set[str] = set()  # codes already checked: every Money checks its own


def validate_currency(currency: object) -> str:
    if currency.__class__ is str and currency in _VALID_CURRENCIES:
        return currency
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
        raise InvalidInput(
            "invalid_currency", "currency must be a three-letter ISO 4217 code", param="currency"
        )
    if not currency.isupper():
        raise InvalidInput(
            "invalid_currency", "currency must be upper-case, e.g. USD", param="currency"
        )
    if len(_VALID_CURRENCIES) < 1000:
        _VALID_CURRENCIES.add(currency)
    return currency


@dataclass(frozen=True, order=False)
class Money:
    """An amount in minor units of `currency`. Arithmetic only within one currency."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.amount) is not int:
            raise InvalidInput("invalid_amount", "amount must be an integer of minor units")
        validate_currency(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise InvalidInput(
                "currency_mismatch",
                f"cannot combine {self.currency} with {other.currency}",
                param="currency",
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int) -> Money:
        if type(factor) is not int:
            raise TypeError("money is multiplied by integers only")
        return Money(self.amount * factor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    @property
    def is_positive(self) -> bool:
        return self.amount > 0

    def to_dict(self) -> dict[str, object]:
        return {"amount": self.amount, "currency": self.currency}

    def __str__(self) -> str:
        return _text(self.amount, self.currency)


@lru_cache(maxsize=4096)
def _text(amount: int, currency: str) -> str:
    """`12.50 USD`. Kept per amount: an eligibility answer writes the same few amounts in
    the messages of several reasons (bench/RESULTS.md, round 6)."""
    exponent = currency_exponent(currency)
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**exponent)
    if exponent == 0:
        return f"{sign}{units} {currency}"
    return f"{sign}{units}.{minor:0{exponent}d} {currency}"


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` minor units in proportion to `weights`, exactly (largest remainder).

    The parts always add up to `total`; ties in the remainder go to the earlier weight.
    """
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("allocate takes a non-negative total and weights")
    weight_sum = sum(weights)
    if weight_sum == 0:
        parts = [0] * len(weights)
        if parts:
            parts[0] = total
        return parts
    parts = [total * w // weight_sum for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % weight_sum), i))
    for i in remainders[: total - sum(parts)]:
        parts[i] += 1
    return parts
