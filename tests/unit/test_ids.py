"""Server-made ids sort in the order they were made, also within one millisecond."""

from __future__ import annotations

import re
import threading

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
