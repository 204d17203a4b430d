"""Server-made ids: a prefix and a sortable, unguessable body (`case_01hx…`)."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _base32(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """Milliseconds since the epoch (10 chars) then 80 random bits (16 chars)."""
    stamp = _base32(time.time_ns() // 1_000_000, 10)
    return f"{prefix}_{stamp}{_base32(secrets.randbits(80), 16)}"
