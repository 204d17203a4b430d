"""Server-made ids: a prefix and a sortable, unguessable body (`case_01hx…`).

Ids made by one process sort in the order they were made, also within one millisecond (as
ULIDs do): a listing ordered by time, then id, is then newest first even for rows written in
the same millisecond. Within a millisecond the random part grows by a random step.
"""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_RANDOM_BITS = 80
_lock = threading.Lock()
_last = (0, 0)  # the milliseconds and the random part of the last id made


def _base32(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """Milliseconds since the epoch (10 chars) then 80 random bits (16 chars)."""
    global _last
    millis = time.time_ns() // 1_000_000
    with _lock:
        last_millis, last_random = _last
        if millis > last_millis:
            random = secrets.randbits(_RANDOM_BITS)
        else:  # the same millisecond (or the clock stepped back): keep counting up
            millis = last_millis
            random = last_random + 1 + secrets.randbits(16)
            if random >= 1 << _RANDOM_BITS:  # practically never: move to the next millisecond
                millis, random = millis + 1, secrets.randbits(_RANDOM_BITS - 1)
        _last = (millis, random)
    return f"{prefix}_{_base32(millis, 10)}{_base32(random, 16)}"
