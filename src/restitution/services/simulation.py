"""The what-if simulator: replay stored cases under a draft policy before publishing it.

Each claimed line of each case is judged again, at the moment the case was opened, under the
draft and under the policy the case was judged under (the active one when that version is not
at hand), and the two verdicts are compared. `replay` compares one case and is pure;
`simulate` reads the cases, their orders and what their lines were granted, in batches.

What a line had already been granted when its case was opened is read from the store: what
the cases opened before it on that line granted or refunded. A line has one case at a time,
so those cases were resolved by then, and a resolved case's grant does not change; nor does
its outcome, which is replayed too: a line an earlier case closed for good (rejected, X1;
expired, D3) is refused under any policy, so a case opened on one (before that was checked)
counts among those whose baseline refuses them, and is never a change the draft makes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from restitution.adapters.db.repository import Repository
from restitution.domain.cases import Case, CaseLine
from restitution.domain.eligibility import Verdict, evaluate
from restitution.domain.money import Money
from restitution.domain.orders import Order
from restitution.domain.policy import Policy
from restitution.services.context import App

BATCH = 500  # cases read per batch, with their orders and their lines' grants

NOT_MODELLED: tuple[str, ...] = (
    "Only the verdict at opening is replayed (eligibility and the refund cap): offers, "
    "negotiation, escalation and mediators' decisions are not; a case the draft still allows "
    "is taken to end as it did.",
    "Deadlines (D1-D7) and reminders are not replayed: what a draft changes in them, or in "
    "when a case would have been resolved, is not shown.",
    "Claims the old policy refused were never opened, so never stored: what a looser draft "
    "would let in is not seen.",
    "Evidence (E1) is not asked again, and each order is judged as it is stored now.",
)


@dataclass(frozen=True)
class LineReplay:
    """One claimed line, judged under the baseline policy and under the draft."""

    line_id: str
    quantity: int
    before: Verdict
    after: Verdict


@dataclass(frozen=True)
class CaseReplay:
    case_id: str
    order_id: str
    currency: str
    created_at: datetime
    status: str
    outcome: str | None
    judged_under: str  # "policy-id vN", as the case stored it
    baseline: str  # the policy the draft is compared with
    lines: tuple[LineReplay, ...]
    granted: Money  # what the case granted or refunded (0 when it refunded nothing)

    @property
    def eligible_before(self) -> bool:
        return all(line.before.eligible for line in self.lines)

    @property
    def eligible_after(self) -> bool:
        return all(line.after.eligible for line in self.lines)

    @property
    def cap_before(self) -> Money:
        return _total((line.before.max_refund for line in self.lines), self.currency)

    @property
    def cap_after(self) -> Money:
        return _total((line.after.max_refund for line in self.lines), self.currency)

    @property
    def refusal(self) -> tuple[str, str | None] | None:
        """The draft's refusal of the first line it refuses: (code, refusing clause id)."""
        for line in self.lines:
            if not line.after.eligible:
                clauses = line.after.clause_ids
                return line.after.code or "not_eligible", clauses[0] if clauses else None
        return None

    @property
    def change(self) -> str | None:
        """`refused` (eligible before, not under the draft), `allowed` (the reverse),
        `cap` (eligible under both, another refund cap), or None: nothing changes."""
        before, after = self.eligible_before, self.eligible_after
        if before and not after:
            return "refused"
        if after and not before:
            return "allowed"
        if before and self.cap_before != self.cap_after:
            return "cap"
        return None


def replay(
    case: Case,
    order: Order,
    already_refunded: Mapping[str, int],
    baseline: Policy,
    draft: Policy,
    granted: int,
    *,
    earlier_outcomes: Mapping[str, Collection[str]] | None = None,
) -> CaseReplay:
    """Judge each claimed line of `case` at its opening under `baseline` and under `draft`.

    `already_refunded`: per line, what cases opened before this one granted on it;
    `granted`: what this case granted or refunded, in minor units of its currency;
    `earlier_outcomes`: per line, how the cases opened before this one on it ended."""
    outcomes = earlier_outcomes or {}

    def judge(policy: Policy, claimed: CaseLine) -> Verdict:
        verdict = evaluate(
            policy,
            order,
            claimed.line_id,
            case.reason,
            case.created_at,
            quantity=claimed.quantity,
            already_refunded=already_refunded.get(claimed.line_id, 0),
            earlier_outcomes=outcomes.get(claimed.line_id, ()),
        )
        # Without its advice to the buyer: never reported, and a report may keep many.
        return verdict._replace(advice=())

    lines = tuple(
        LineReplay(
            claimed.line_id, claimed.quantity, judge(baseline, claimed), judge(draft, claimed)
        )
        for claimed in case.lines
    )
    return CaseReplay(
        case_id=case.id,
        order_id=case.order_id,
        currency=case.currency,
        created_at=case.created_at,
        status=case.status,
        outcome=case.outcome,
        judged_under=f"{case.policy_id} v{case.policy_version}",
        baseline=f"{baseline.id} v{baseline.version}",
        lines=lines,
        granted=Money(granted, case.currency),
    )


@dataclass
class CurrencyTotals:
    """What the draft changes, in one currency (amounts in its minor units)."""

    refused_cases: int = 0
    refused_granted: int = 0  # granted or refunded on the cases the draft refuses
    allowed_cases: int = 0
    cap_cases: int = 0
    cap_change: int = 0  # draft's caps minus the baseline's, on the cases eligible under both

    def add(self, result: CaseReplay) -> None:
        change = result.change
        if change == "refused":
            self.refused_cases += 1
            self.refused_granted += result.granted.amount
        elif change == "allowed":
            self.allowed_cases += 1
        elif change == "cap":
            self.cap_cases += 1
            self.cap_change += result.cap_after.amount - result.cap_before.amount


@dataclass
class SimulationReport:
    draft: str  # "policy-id vN"
    replayed: int = 0
    against_active: Counter[str] = field(default_factory=Counter)  # judged under → cases
    baseline_refused: int = 0  # cases their baseline refuses now: their opening not reproduced
    changed: list[CaseReplay] = field(default_factory=list)
    totals: dict[str, CurrencyTotals] = field(default_factory=dict)
    refusals: Counter[tuple[str, str | None]] = field(default_factory=Counter)

    def add(self, result: CaseReplay, *, against_active: bool) -> None:
        self.replayed += 1
        if against_active:
            self.against_active[result.judged_under] += 1
        if not result.eligible_before:
            self.baseline_refused += 1
        if result.change is None:
            return
        self.changed.append(result)
        self.totals.setdefault(result.currency, CurrencyTotals()).add(result)
        if result.change == "refused" and result.refusal is not None:
            self.refusals[result.refusal] += 1


def simulate(
    app: App,
    draft: Policy,
    *,
    earlier: Sequence[Policy] = (),
    since: datetime | None = None,
    limit: int | None = None,
) -> SimulationReport:
    """Replay the cases (newest first, opened at or after `since`, at most `limit`) under
    `draft`, each compared with the policy it was judged under: the active policy or one of
    `earlier`, else the active policy (counted in `against_active`)."""
    known = {(policy.id, policy.version): policy for policy in (app.policy, *earlier)}
    report = SimulationReport(draft=f"{draft.id} v{draft.version}")
    with app.db.transaction(write=False) as conn:
        ids = Repository(conn).case_ids_newest_first(since=since, limit=limit)
        for start in range(0, len(ids), BATCH):
            repo = Repository(conn)  # one per batch: it keeps the orders it read
            cases = repo.get_cases(ids[start : start + BATCH])
            order_ids = {case.order_id for case in cases}
            repo.load_orders(order_ids)
            grants: dict[str, list[Any]] = {}
            for row in repo.line_grants(order_ids):
                grants.setdefault(row.order_id, []).append(row)
            for case in cases:
                order = repo.get_order(case.order_id)
                if order is None:  # an order is never deleted; kept for the type's sake
                    continue
                baseline = known.get((case.policy_id, case.policy_version))
                lines = grants.get(case.order_id, [])
                before, own = granted_before(case, lines)
                result = replay(
                    case,
                    order,
                    before,
                    baseline or app.policy,
                    draft,
                    own,
                    earlier_outcomes=outcomes_before(case, lines),
                )
                report.add(result, against_active=baseline is None)
    return report


def granted_before(case: Case, grants: Iterable[Any]) -> tuple[dict[str, int], int]:
    """From the case lines of its order (rows of `Repository.line_grants`): per claimed line,
    what the cases opened before `case` granted on it; and what `case` itself granted."""
    claimed = {line.line_id for line in case.lines}
    before: dict[str, int] = {}
    own = 0
    for row in grants:
        if row.case_id == case.id:
            own += row.granted_amount
        elif _earlier_on(case, claimed, row):
            before[row.line_id] = before.get(row.line_id, 0) + row.granted_amount
    return before, own


def outcomes_before(case: Case, grants: Iterable[Any]) -> dict[str, list[str]]:
    """From the same rows: per claimed line, the outcomes of the cases opened before `case`
    on it (each resolved by then, as a line has one case at a time)."""
    claimed = {line.line_id for line in case.lines}
    before: dict[str, list[str]] = {}
    for row in grants:
        if row.closed_as is not None and _earlier_on(case, claimed, row):
            before.setdefault(row.line_id, []).append(row.closed_as)
    return before


def _earlier_on(case: Case, claimed: set[str], row: Any) -> bool:
    """Whether `row` is the line of another case, opened before `case`, on a line it claims."""
    return (
        row.case_id != case.id
        and row.line_id in claimed
        and (row.created_at, row.case_id) < (case.created_at, case.id)
    )


def _total(amounts: Iterable[Money], currency: str) -> Money:
    return sum(amounts, Money.zero(currency))
