"""When to try again after a failed attempt: refunds, webhook deliveries and e-mails alike."""

from __future__ import annotations

import random
from datetime import timedelta


def backoff(attempts: int, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential back-off with jitter: about base·2^(n-1), capped, times 0.5 to 1."""
    delay: timedelta = min(base * 2 ** max(attempts - 1, 0), cap)
    jittered: timedelta = delay * (0.5 + random.random() / 2)
    return jittered
