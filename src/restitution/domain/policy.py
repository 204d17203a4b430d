"""The policy as domain objects: clauses (W1…I1), deadlines (D1…D7) and their settings.

The policy is data: `restitution.policies` loads a versioned TOML document into a `Policy`.
Every verdict and every automatic action cites the clause ids that produced it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

REASONS: tuple[str, ...] = (
    "not_received",
    "damaged",
    "significantly_not_as_described",
    "not_as_described",
    "quality_issue",
    "changed_mind",
)

PAYERS: tuple[str, ...] = ("buyer", "seller")

CLAUSE_IDS: tuple[str, ...] = (
    "W1", "W2", "W3", "R1", "R2", "R3", "S1", "H1", "H2", "E1", "N1", "X1", "F1", "I1",
)  # fmt: skip

DEADLINE_IDS: tuple[str, ...] = ("D1", "D2", "D3", "D4", "D5", "D6", "D7")


@dataclass(frozen=True)
class Clause:
    id: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "text": self.text}


@dataclass(frozen=True)
class DeadlineRule:
    """How long a party has in a status before the deadline's automatic action fires."""

    id: str
    text: str
    days: int
    business_days: bool = False


@dataclass(frozen=True)
class Policy:
    id: str
    version: int
    clauses: Mapping[str, Clause]
    deadlines: Mapping[str, DeadlineRule]
    # W1, W2, W3
    return_window_days: int = 15
    category_windows: Mapping[str, int] = field(default_factory=lambda: {"electronics": 30})
    protection_days_after_shipping: int = 60
    # R1, R2, R3
    full_refund_reasons: frozenset[str] = frozenset(
        {"not_received", "damaged", "significantly_not_as_described"}
    )
    partial_refund_reasons: frozenset[str] = frozenset({"not_as_described", "quality_issue"})
    change_of_mind_needs_seller_terms: bool = True
    # S1
    seller_pays_return_reasons: frozenset[str] = frozenset(
        {"damaged", "significantly_not_as_described"}
    )
    # the most return postage refunded when the seller pays return shipping, in minor units
    # of the case's currency (0: never reimbursed)
    max_return_postage_reimbursement: int = 2500
    # H1, H2
    hygiene_categories: tuple[str, ...] = (
        "apparel/underwear",
        "apparel/swimwear",
        "jewelry/earrings",
    )
    hygiene_exempt_reasons: frozenset[str] = frozenset(
        {"damaged", "not_received", "significantly_not_as_described"}
    )
    custom_made_exempt_reasons: frozenset[str] = frozenset(
        {"significantly_not_as_described", "not_received"}
    )
    # E1
    evidence_required_reasons: frozenset[str] = frozenset(
        {"damaged", "significantly_not_as_described", "not_as_described", "quality_issue"}
    )
    # X1
    escalate_after_seller_answer: bool = True
    escalate_when_seller_overdue: bool = True
    # F1: business days until a refund reaches the buyer, per payment method
    refund_business_days: Mapping[str, int] = field(
        default_factory=lambda: {"card": 7, "paypal": 3, "wallet": 1, "bank_transfer": 10}
    )
    refund_business_days_default: int = 10
    holiday_country: str = "US"
    # Reminders and advice
    reminder_hours_before_deadline: int = 24
    window_reminder_hours: int = 48
    return_or_keep_threshold_percent: int = 30
    evidence_checklist: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def clause(self, clause_id: str) -> Clause:
        if clause_id in self.clauses:
            return self.clauses[clause_id]
        rule = self.deadlines[clause_id]
        return Clause(rule.id, rule.text)

    def cite(self, *clause_ids: str) -> tuple[Clause, ...]:
        return tuple(self.clause(cid) for cid in clause_ids)

    def window_days_for(self, category: str) -> tuple[int, str]:
        """The return window for a category (longest-prefix match) and the clause that set it."""
        best: str | None = None
        for prefix in self.category_windows:
            if category_matches(category, prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        if best is None:
            return self.return_window_days, "W1"
        return self.category_windows[best], "W2"

    def is_hygiene_category(self, category: str) -> bool:
        return any(category_matches(category, prefix) for prefix in self.hygiene_categories)

    def cite_memo(self, clause_ids: tuple[str, ...]) -> tuple[Clause, ...]:
        """`cite(*dict.fromkeys(clause_ids))`, remembered: the policy never changes (frozen)."""
        cited = self._citations.get(clause_ids)
        if cited is None:
            cited = self._citations[clause_ids] = self.cite(*dict.fromkeys(clause_ids))
        return cited

    def category_facts(self, category: str) -> tuple[int, str, bool]:
        """`window_days_for(category)` and `is_hygiene_category(category)`, remembered."""
        facts = self._categories.get(category)
        if facts is None:
            days, clause_id = self.window_days_for(category)
            facts = (days, clause_id, self.is_hygiene_category(category))
            if len(self._categories) < 4096:
                self._categories[category] = facts
        return facts

    # Caches, not fields: asked on every eligibility verdict (bench/RESULTS.md).
    @cached_property
    def _citations(self) -> dict[tuple[str, ...], tuple[Clause, ...]]:
        return {}

    @cached_property
    def _categories(self) -> dict[str, tuple[int, str, bool]]:
        return {}

    def refund_days_for(self, method: str) -> int:
        return self.refund_business_days.get(method, self.refund_business_days_default)


def category_matches(category: str, prefix: str) -> bool:
    """`electronics` covers `electronics` and `electronics/phones`, not `electronicsx`."""
    return category == prefix or category.startswith(prefix + "/")
