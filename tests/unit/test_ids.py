"""Server-made ids sort in the order they were made, also within one millisecond."""

from __future__ import annotations

import os
import re
import signal
import threading

import pytest

from restitution.services import ids
from restitution.services.ids import new_id

SHAPE = re.compile(r"^case_[0-9a-hjkmnp-tv-z]{26}$")


def test_ids_made_in_a_burst_sort_in_the_order_made() -> None:
    made = [new_id("case") for _ in range(5000)]  # many share a millisecond
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(SHAPE.match(made_id) for made_id in made)


def test_ids_made_by_threads_are_distinct() -> None:
    made: list[str] = []

    def make() -> None:
        made.extend(new_id("evt") for _ in range(2000))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 8000


def test_bodies_within_a_millisecond_are_not_consecutive() -> None:
    first, second = new_id("rfd"), new_id("rfd")
    assert first < second
    assert first[-16:] != second[-16:]


def _digits(number: int, length: int) -> str:
    """Base 32 (Crockford, lower case), digit by digit: what an id's body spells."""
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    return "".join(alphabet[number >> 5 * n & 31] for n in reversed(range(length)))


@pytest.mark.parametrize(
    ("millis", "random"),
    [(0, 0), (2**50 - 1, 2**80 - 1), (1_795_000_000_000, 1), (1, 2**79), (12345, 678910)],
)
def test_the_body_spells_the_milliseconds_then_the_random_bits(millis: int, random: int) -> None:
    body = ids._base32(millis, random)
    assert body == _digits(millis, 10) + _digits(random, 16)
    assert len(body) == 26


def test_an_id_begins_with_the_time_it_was_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids, "_last", (0, 0))  # as if the first id of this process
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_795_000_000_123_456_789)
    made = ids.new_id("case")
    assert made.startswith("case_" + _digits(1_795_000_000_123, 10))
    assert len(made) == len("case_") + 26


def test_random_bytes_are_read_ahead_for_many_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """A system call per id released the GIL, and getting it back behind busy threads cost
    more than the call: the bytes of ~400 ids come from one read of the CSPRNG."""
    reads: list[int] = []
    real = ids.os.urandom

    def urandom(size: int) -> bytes:
        reads.append(size)
        return real(size)

    monkeypatch.setattr(ids.os, "urandom", urandom)
    monkeypatch.setattr(ids, "_pool", b"")
    monkeypatch.setattr(ids, "_at", 0)
    made = [new_id("evt") for _ in range(1000)]
    assert reads == [ids._POOL_BYTES] * 3  # 409 ids' 10 bytes per read
    assert len(set(made)) == 1000


def test_a_forked_child_makes_its_own_ids() -> None:
    """Not from its parent's random bytes; and not stuck on the id lock, which another
    thread of the parent may hold at the fork (reading random bytes under it)."""
    new_id("evt")  # the pool is full of bytes the parent will use
    parents = ids._pool[ids._at :]
    read, write = os.pipe()
    with ids._lock:  # held by "another thread" at the fork
        pid = os.fork()
        if pid == 0:  # the child
            try:
                signal.alarm(10)  # stuck on the lock: killed, and the test fails
                new_id("evt")
                os.write(write, ids._pool[ids._at - 10 : ids._at])
            finally:
                os._exit(0)
    os.close(write)
    childs = os.read(read, 10)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(childs) == 10
    assert childs not in parents


def test_the_body_counts_up_by_at_most_sixteen_random_bits_within_a_millisecond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_795_000_000_123_456_789)
    monkeypatch.setattr(ids, "_last", (1_795_000_000_123, 1000))
    monkeypatch.setattr(ids, "_pool", b"\xff" * 10)
    monkeypatch.setattr(ids, "_at", 0)
    made = ids.new_id("evt")
    assert made.endswith(_digits(1000 + 1 + 0xFFFF, 16))


def test_a_body_that_would_overflow_moves_to_the_next_millisecond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_795_000_000_123_456_789)
    monkeypatch.setattr(ids, "_last", (1_795_000_000_123, (1 << 80) - 1))
    monkeypatch.setattr(ids, "_pool", b"\xff" * 10)
    monkeypatch.setattr(ids, "_at", 0)
    made = ids.new_id("evt")
    assert made == "evt_" + _digits(1_795_000_000_124, 10) + _digits((1 << 79) - 1, 16)
