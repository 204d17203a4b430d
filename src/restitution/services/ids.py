"""Server-made ids: a prefix and a sortable, unguessable body (`case_01hx…`).

Ids made by one process sort in the order they were made, also within one millisecond (as
ULIDs do): a listing ordered by time, then id, is then newest first even for rows written in
the same millisecond. Within a millisecond the random part grows by a random step.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_RANDOM_BITS = 80
_RANDOM_BYTES = _RANDOM_BITS // 8
# Random bytes read from the system's CSPRNG ahead, 409 ids' worth per system call: a call
# per id released the GIL, and getting it back behind busy threads cost more than the call.
_POOL_BYTES = 4096
_lock = threading.Lock()
_last = (0, 0)  # the milliseconds and the random part of the last id made
_pool = b""  # random bytes not used yet, from `_at` on
_at = 0


def _after_fork_in_child() -> None:
    """A forked child makes its ids afresh: not from the bytes its parent uses too, nor
    counting up from its parent's last id; and with a lock of its own (another thread of
    the parent may have held it, reading the system's random bytes, at the fork)."""
    global _lock, _last, _pool, _at
    _lock, _last, _pool, _at = threading.Lock(), (0, 0), b"", 0


os.register_at_fork(after_in_child=_after_fork_in_child)


# Two base-32 digits per 10 bits: an id's 130 bits in 13 lookups (a write request makes
# several ids; digit by digit each took ~3 µs, this ~1 µs).
_PAIRS = [first + second for first in _ALPHABET for second in _ALPHABET]
_SHIFTS = tuple(range(120, -1, -10))


def _base32(millis: int, random: int) -> str:
    """The 10 digits of `millis` then the 16 of `random`, most significant first."""
    number = millis << _RANDOM_BITS | random
    return "".join([_PAIRS[number >> shift & 1023] for shift in _SHIFTS])


def new_id(prefix: str) -> str:
    """Milliseconds since the epoch (10 chars) then 80 random bits (16 chars)."""
    global _last, _pool, _at
    millis = time.time_ns() // 1_000_000
    with _lock:
        if _at + _RANDOM_BYTES > len(_pool):
            _pool, _at = os.urandom(_POOL_BYTES), 0
        fresh = int.from_bytes(_pool[_at : _at + _RANDOM_BYTES])
        _at += _RANDOM_BYTES
        last_millis, last_random = _last
        if millis > last_millis:
            random = fresh
        else:  # the same millisecond (or the clock stepped back): keep counting up
            millis = last_millis
            random = last_random + 1 + (fresh >> (_RANDOM_BITS - 16))
            if random >= 1 << _RANDOM_BITS:  # practically never: move to the next millisecond
                millis, random = millis + 1, fresh >> 1
        _last = (millis, random)
    return f"{prefix}_{_base32(millis, random)}"
