"""Eligibility decisions per second in-process: the pure domain on one core.

A decision is one verdict: may this line be claimed for this reason, now, and on what terms.
The orders mix the benchmark's not-yet-delivered order and a delivered one, every reason each,
asked as the eligibility route asks them (`evaluate_line`).
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta

from bench.data import NOW, order_body
from restitution.api.order_import import OrderRecordIn
from restitution.api.routes.orders import order_from_body
from restitution.domain.eligibility import evaluate_line
from restitution.domain.policy import REASONS
from restitution.policies import default_policy


def orders() -> list:  # type: ignore[type-arg]
    pending = order_body(0)
    delivered = order_body(1) | {"delivered_at": (NOW - timedelta(days=3)).isoformat()}
    return [
        order_from_body(body["order_id"], OrderRecordIn.model_validate(body))
        for body in (pending, delivered)
    ]


ROUNDS = 5


def measure(seconds: float) -> float:
    """The best of `ROUNDS` rounds sharing `seconds`: what one core can do, as `timeit`
    reports it (other processes on this shared machine only ever slow a round down)."""
    policy = default_policy()
    answers = orders()
    best = 0.0
    for _ in range(ROUNDS):
        done = 0
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds / ROUNDS:
            for order in answers:
                # As a server answers: every reason of a line at one `now` (`evaluate_line`),
                # a new one per answer (nothing worked out for one answer serves another).
                now = NOW + timedelta(microseconds=done)
                evaluate_line(policy, order, "l1", now)
                done += len(REASONS)
        best = max(best, done / elapsed)
    return best


if __name__ == "__main__":
    print(f"{measure(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0):.0f}")
