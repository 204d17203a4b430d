"""Random walks through the case machine: any actor, any action, any payload, any time.

Whatever happens, `apply()` either takes the action (one event, version + 1) or refuses it
with a `DomainError` and leaves the case as it was; the invariants below hold after every step.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from restitution.domain.cases import (
    ACTIONS,
    DEADLINE_COMMANDS,
    ROLES,
    SYSTEM,
    TRANSITIONS,
    Accept,
    Actor,
    AddReturnAddress,
    AddReturnLabel,
    ConfirmReplacementDelivered,
    Decide,
    Escalate,
    FailRefund,
    Inspect,
    MakeOffer,
    MarkReturnDelivered,
    OfferTerms,
    PostMessage,
    Reject,
    RetryRefund,
    SettleRefund,
    ShipReplacement,
    ShipReturn,
    Withdraw,
    apply,
    can,
    compute_deadline,
    deadline_command,
    return_instructions_since,
)
from restitution.domain.eligibility import keeps_item_for_full_remedy
from restitution.domain.errors import DomainError
from restitution.domain.money import Money
from restitution.domain.orders import Address
from restitution.domain.policy import REASONS

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
REFUNDABLE = 2899
ACTORS = {role: Actor(role, f"{role}_1") for role in ROLES}

DEADLINE_KIND_BY_STATUS = {
    "awaiting_seller": {"D1", "D2"},
    "awaiting_buyer": {"D2"},
    "awaiting_return_shipment": {"D3"},
    "return_in_transit": {"D4"},
    "awaiting_inspection": {"D5"},
    "awaiting_replacement_shipment": {"D6"},
    "under_review": {"D7"},
    "refund_pending": {None},
    "resolved": {None},
    "replacement_in_transit": {None},
}

AGREED_NOT_YET_REFUNDING = (
    "awaiting_return_shipment",
    "return_in_transit",
    "awaiting_inspection",
    "awaiting_replacement_shipment",
    "replacement_in_transit",
)

texts = st.sampled_from(["", "  ", "ups", "note"])
valid_money = st.builds(Money, st.integers(1, REFUNDABLE), st.just("USD"))
any_money = st.builds(Money, st.integers(-5, REFUNDABLE + 5), st.sampled_from(["USD", "EUR"]))
amounts = st.one_of(valid_money, any_money, st.none())
payers = st.sampled_from([None, "buyer", "seller", "courier"])
offer_terms = st.builds(
    OfferTerms,
    kind=st.sampled_from(["refund", "refund", "replacement", "voucher"]),
    amount=amounts,
    return_required=st.booleans(),
    return_shipping_paid_by=payers,
)

COMMANDS = {
    "make_offer": st.builds(MakeOffer, offer_terms),
    "accept": st.just(Accept()),
    "reject": st.builds(Reject, texts),
    "escalate": st.builds(Escalate, texts),
    "decide": st.builds(
        Decide,
        kind=st.sampled_from(["refund", "replacement", "reject", "shrug"]),
        amount=amounts,
        return_required=st.booleans(),
        return_shipping_paid_by=payers,
        note=texts,
    ),
    "withdraw": st.builds(Withdraw, texts),
    "post_message": st.builds(PostMessage, texts, st.sampled_from([(), ("att_1",)])),
    "add_return_label": st.builds(AddReturnLabel, texts, texts),
    "add_return_address": st.builds(
        AddReturnAddress,
        st.builds(Address, texts, texts, texts, texts, st.sampled_from(["CN", "cn", "", "CHN"])),
    ),
    "ship_return": st.builds(ShipReturn, texts, texts, st.one_of(st.none(), any_money)),
    "mark_return_delivered": st.just(MarkReturnDelivered()),
    "inspect": st.builds(Inspect, st.booleans(), texts),
    "ship_replacement": st.builds(ShipReplacement, texts, texts),
    "confirm_replacement_delivered": st.just(ConfirmReplacementDelivered()),
    "settle_refund": st.builds(SettleRefund, st.sampled_from([None, "rfd_1"])),
    "fail_refund": st.builds(FailRefund, st.sampled_from([None, "rfd_1"]), texts),
    "retry_refund": st.builds(RetryRefund, st.sampled_from([None, "rfd_1"])),
    **{action: st.just(cls()) for action, cls in DEADLINE_COMMANDS.items()},
}

# Payloads a well-behaved client would send, so that walks get deep into the lifecycle.
valid_terms = st.one_of(
    st.builds(OfferTerms, st.just("refund"), valid_money, st.booleans(), payers.filter(bool)),
    st.builds(OfferTerms, st.just("replacement"), st.none(), st.booleans()),
)
PLAUSIBLE_COMMANDS = {
    **COMMANDS,
    "make_offer": st.builds(MakeOffer, valid_terms),
    "decide": st.one_of(
        st.builds(Decide, st.just("reject")),
        st.builds(Decide, st.just("refund"), valid_money, st.booleans()),
        st.builds(Decide, st.just("replacement"), st.none(), st.booleans()),
    ),
    "post_message": st.just(PostMessage("hello")),
    "add_return_label": st.just(AddReturnLabel("ups", "https://labels.example/1")),
    "add_return_address": st.just(
        AddReturnAddress(Address("Shop", "1 Rd", "Ningbo", "315000", "CN"))
    ),
    "ship_return": st.builds(ShipReturn, st.just("ups"), st.just("1Z1"), st.none()),
    "ship_replacement": st.just(ShipReplacement("dhl", "JD1")),
}

MOVES = (
    *["someone_takes_an_allowed_action"] * 10,
    *["anyone_tries_anything"] * 2,
    *["clock_fires_the_deadline"] * 2,
    *["time_passes"] * 2,
    *["time_reaches_the_deadline"] * 2,
    "buyer_withdraws",
)

seconds = st.one_of(
    st.integers(0, 3600),
    st.integers(0, 3 * 86400),
    st.integers(0, 40 * 86400),
)


class CaseMachine(RuleBasedStateMachine):
    """Filled in by the test with the `policy`, `ctx_at` and `open_at` fixtures."""

    policy = None
    ctx_at = None
    open_at = None

    @initialize(
        reason=st.sampled_from(REASONS),
        amount=st.integers(1, REFUNDABLE),
        wants_return=st.booleans(),
        kind=st.sampled_from(["refund", "replacement"]),
        order_has_return_address=st.booleans(),
    )
    def open(self, reason, amount, wants_return, kind, order_has_return_address):
        # A request the buyer may make (R2: keeping the item is for less than everything)
        keeps_whole = keeps_item_for_full_remedy(type(self).policy, reason)
        return_required = reason == "changed_mind" or (
            reason != "not_received"
            and (wants_return or (kind == "replacement" and not keeps_whole))
        )
        if not keeps_whole and not return_required:
            amount = min(amount, REFUNDABLE - 1)
        terms = OfferTerms(
            kind, Money(amount, "USD") if kind == "refund" else None, return_required
        )
        self.now = T0
        extra = {} if order_has_return_address else {"return_address": None}
        self.case = type(self).open_at(T0, reason=reason, request=terms, **extra)

    # ------------------------------------------------------------------ steps

    def _step(self, command, actor):
        before = self.case
        snapshot = copy.deepcopy(before)
        ctx = type(self).ctx_at(self.now)
        try:
            result = apply(before, command, actor, ctx)
        except DomainError:
            assert before == snapshot, "a refused action changed the case"
            return
        row = TRANSITIONS[(snapshot.status, command.action)]
        assert actor.role in row.actors
        assert result.case.status in row.targets
        assert result.case.version == snapshot.version + 1
        assert before == snapshot, "apply() changed the case it was given"
        event = result.event
        assert (event.actor, event.at) == (actor, self.now)
        assert (event.data["from"], event.data["to"]) == (snapshot.status, result.case.status)
        if command.action in DEADLINE_COMMANDS:
            assert snapshot.deadline is not None
            assert self.now >= snapshot.deadline.due_at
            assert snapshot.deadline.kind in event.clauses
        self.case = result.case

    # One rule with weighted moves: separate rules get switched off at random per walk
    # (hypothesis' swarm testing), which leaves the deep statuses rarely reached.
    @rule(data=st.data(), move=st.sampled_from(MOVES))
    def step(self, data, move):
        getattr(self, move)(data)

    def anyone_tries_anything(self, data):
        actor = ACTORS[data.draw(st.sampled_from(ROLES))]
        action = data.draw(st.sampled_from(ACTIONS))
        self._step(data.draw(COMMANDS[action]), actor)

    def someone_takes_an_allowed_action(self, data):
        ctx = type(self).ctx_at(self.now)
        allowed = [
            (actor, action)
            for actor in ACTORS.values()
            for action in ACTIONS
            if action != "withdraw" and can(self.case, action, actor, ctx)
        ]
        if allowed:
            actor, action = data.draw(st.sampled_from(allowed))
            self._step(data.draw(PLAUSIBLE_COMMANDS[action]), actor)

    def buyer_withdraws(self, data):
        self._step(Withdraw(data.draw(texts)), ACTORS["buyer"])

    def clock_fires_the_deadline(self, data):
        command = deadline_command(self.case)
        if command is not None:
            self._step(command, SYSTEM)

    def time_passes(self, data):
        self.now += timedelta(seconds=data.draw(seconds))

    def time_reaches_the_deadline(self, data):
        if self.case.deadline is not None and self.case.deadline.due_at > self.now:
            early = timedelta(seconds=data.draw(st.sampled_from([0, 1])))
            self.now = self.case.deadline.due_at - early

    # ------------------------------------------------------------------ invariants

    @invariant()
    def money_never_exceeds_refundable(self):
        case = self.case
        assert case.refundable.currency == case.currency
        for amount in (case.refunded, case.refund_granted):
            if amount is not None:
                assert amount.currency == case.currency
                assert 0 < amount.amount <= case.refundable.amount
        for offer in case.offers:
            if offer.amount is not None:
                assert offer.amount.currency == case.currency
                assert 0 < offer.amount.amount <= case.refundable.amount

    @invariant()
    def refund_is_granted_only_while_a_refund_is_owed(self):
        case = self.case
        if case.status == "refund_pending":
            assert case.refund_granted is not None
        if case.outcome in ("replaced", "rejected", "withdrawn", "expired"):
            assert case.refund_granted is None
        agreed = case.agreed_offer
        if case.status in AGREED_NOT_YET_REFUNDING and agreed is not None:
            assert case.refund_granted == (agreed.amount if agreed.kind == "refund" else None)

    @invariant()
    def outcome_is_set_iff_resolved(self):
        assert (self.case.outcome is not None) == (self.case.status == "resolved")

    @invariant()
    def a_return_expires_only_when_the_buyer_knew_where_to_send_it(self):
        if self.case.outcome == "expired":
            assert return_instructions_since(self.case) is not None

    @invariant()
    def refunded_only_when_resolved_by_refund(self):
        if self.case.refunded is not None:
            assert self.case.outcome in ("refunded", "partially_refunded")

    @invariant()
    def resolved_case_accepts_no_action(self):
        if self.case.status == "resolved":
            ctx = type(self).ctx_at(self.now + timedelta(days=365))
            for action in ACTIONS:
                for actor in ACTORS.values():
                    assert not can(self.case, action, actor, ctx)

    @invariant()
    def deadline_follows_from_the_status(self):
        case = self.case
        assert case.deadline == compute_deadline(case, type(self).policy)
        kind = case.deadline.kind if case.deadline else None
        assert kind in DEADLINE_KIND_BY_STATUS[case.status]

    @invariant()
    def at_most_one_open_offer_and_only_while_negotiating(self):
        open_offers = [o for o in self.case.offers if o.status == "open"]
        assert len(open_offers) <= 1
        if open_offers:
            assert self.case.status in ("awaiting_seller", "awaiting_buyer")
        if self.case.status == "awaiting_seller":
            assert self.case.current_offer is not None
            assert self.case.current_offer.by == "buyer"

    @invariant()
    def agreement_points_at_an_accepted_offer(self):
        agreed = self.case.agreed_offer
        if self.case.agreed_offer_id is not None:
            assert agreed is not None and agreed.status == "accepted"


def test_case_machine_keeps_its_invariants(policy, ctx_at, open_at):
    machine = type(
        "BoundCaseMachine",
        (CaseMachine,),
        {
            "policy": policy,
            "ctx_at": staticmethod(ctx_at),
            "open_at": staticmethod(open_at),
        },
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=150,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
