"""Back-off between attempts: doubling from the base, capped, with jitter of 0.5 to 1."""

from __future__ import annotations

from datetime import timedelta

from restitution.services.retry import backoff

BASE = timedelta(minutes=1)
CAP = timedelta(hours=1)


def test_backoff_doubles_with_each_attempt_within_its_jitter() -> None:
    for attempts, full in ((1, BASE), (2, 2 * BASE), (3, 4 * BASE)):
        delay = backoff(attempts, BASE, CAP)

        assert full / 2 <= delay <= full


def test_backoff_never_exceeds_the_cap() -> None:
    assert CAP / 2 <= backoff(30, BASE, CAP) <= CAP
