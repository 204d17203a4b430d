"""`Database.read_by_key` on the async pool (`_ReadsTogether`): the keys asked for in one turn
of the event loop go as one statement; a caller cancelled, or a statement that fails, leaves
the others their answers; a failure is each caller's own, and one that asking again would only
prolong reaches them all at once."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, NamedTuple

import pytest
from sqlalchemy import literal_column, select

from restitution.adapters.db.engine import MAX_KEYS_TOGETHER, KeyedRead, _ReadsTogether
from restitution.adapters.db.prepared import Prepared


class Row(NamedTuple):
    key: str
    value: int


ONE = Prepared(select(literal_column("1")))
MANY = Prepared(select(literal_column("2")))
READ = KeyedRead(one=ONE, param="key", many=MANY, key="key")
STORED = {"a": [Row("a", 1), Row("a", 2)], "b": [Row("b", 3)]}


class PoolBusy(Exception):
    """A failure that asking again would only prolong (as a busy pool's timeout)."""


class Reader:
    """A database of `STORED`, which records each statement sent and may fail the next ones."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str]]] = []
        self.failing: type[Exception] | None = None  # the statement of many keys fails so
        self.failing_alone = False  # and each key's alone
        self.release = asyncio.Event()
        self.release.set()

    async def read_all(self, statement: Prepared, params: Mapping[str, Any]) -> list[Any]:
        keys = list(params["ids"]) if statement is MANY else [params["key"]]
        self.sent.append(("many" if statement is MANY else "one", keys))
        await self.release.wait()
        if self.failing is not None and statement is MANY:
            raise self.failing("the statement for them all failed")
        if self.failing_alone and statement is ONE:
            raise LookupError(params["key"])
        return [row for key in keys for row in STORED.get(key, [])]

    def together(self) -> _ReadsTogether:
        return _ReadsTogether(self.read_all, final=lambda error: isinstance(error, PoolBusy))


async def sent_when(reader: Reader, count: int) -> None:
    while len(reader.sent) < count:
        await asyncio.sleep(0)


def test_the_keys_asked_in_one_turn_go_as_one_statement() -> None:
    async def main() -> None:
        reader = Reader()
        together = reader.together()
        answers: list[Any] = await asyncio.gather(
            *(together.rows(READ, key) for key in ("a", "b", "missing", "a"))
        )
        assert answers == [STORED["a"], STORED["b"], [], STORED["a"]]
        assert reader.sent == [("many", ["a", "b", "missing"])]  # "a" asked twice, read once
        assert answers[0] is not answers[3]  # each caller may keep its list
        # Asked alone in a later turn: the statement of one key.
        assert await together.rows(READ, "b") == STORED["b"]
        assert reader.sent[1:] == [("one", ["b"])]

    asyncio.run(main())


def test_a_key_asked_while_a_statement_is_out_goes_in_the_next() -> None:
    async def main() -> None:
        reader = Reader()
        reader.release.clear()
        together = reader.together()
        first = asyncio.ensure_future(together.rows(READ, "a"))
        await sent_when(reader, 1)
        second = asyncio.ensure_future(together.rows(READ, "b"))
        await sent_when(reader, 2)
        reader.release.set()
        assert (await first, await second) == (STORED["a"], STORED["b"])
        assert reader.sent == [("one", ["a"]), ("one", ["b"])]

    asyncio.run(main())


def test_a_cancelled_caller_leaves_the_others_their_rows() -> None:
    async def main() -> None:
        reader = Reader()
        reader.release.clear()
        together = reader.together()
        leaving = asyncio.ensure_future(together.rows(READ, "a"))
        staying = asyncio.ensure_future(together.rows(READ, "b"))
        await sent_when(reader, 1)
        leaving.cancel()
        reader.release.set()
        assert await staying == STORED["b"]
        with pytest.raises(asyncio.CancelledError):
            await leaving

    asyncio.run(main())


def test_when_the_statement_for_all_fails_each_caller_reads_alone() -> None:
    async def main() -> None:
        reader = Reader()
        reader.failing = RuntimeError
        together = reader.together()
        answers = await asyncio.gather(together.rows(READ, "a"), together.rows(READ, "b"))
        assert answers == [STORED["a"], STORED["b"]]
        assert reader.sent == [("many", ["a", "b"]), ("one", ["a"]), ("one", ["b"])]

    asyncio.run(main())


def test_a_failure_that_lasts_reaches_each_caller_as_its_own() -> None:
    async def main() -> None:
        reader = Reader()
        reader.failing, reader.failing_alone = RuntimeError, True
        together = reader.together()
        results = await asyncio.gather(
            together.rows(READ, "a"), together.rows(READ, "b"), return_exceptions=True
        )
        assert [(type(error), error.args) for error in results] == [  # type: ignore[union-attr]
            (LookupError, ("a",)),
            (LookupError, ("b",)),
        ]

    asyncio.run(main())


def test_a_failure_asking_again_would_prolong_reaches_every_caller_at_once() -> None:
    async def main() -> None:
        reader = Reader()
        reader.failing = PoolBusy
        together = reader.together()
        results = await asyncio.gather(
            together.rows(READ, "a"), together.rows(READ, "b"), return_exceptions=True
        )
        assert reader.sent == [("many", ["a", "b"])]  # no one read alone after it
        assert all(isinstance(error, PoolBusy) for error in results)
        assert results[0] is not results[1]  # each caller's own, with the original as cause
        assert results[0].__cause__ is results[1].__cause__  # type: ignore[union-attr]

    asyncio.run(main())


def test_when_the_statement_for_all_is_cancelled_each_caller_reads_alone() -> None:
    async def main() -> None:
        reader = Reader()
        reader.release.clear()
        together = reader.together()
        callers = asyncio.gather(together.rows(READ, "a"), together.rows(READ, "b"))
        await sent_when(reader, 1)
        for task in list(together._sending):  # as at shutdown
            task.cancel()
        reader.release.set()
        assert await callers == [STORED["a"], STORED["b"]]
        assert reader.sent == [("many", ["a", "b"]), ("one", ["a"]), ("one", ["b"])]

    asyncio.run(main())


def test_many_keys_go_as_statements_of_at_most_the_cap_side_by_side() -> None:
    async def main() -> None:
        reader = Reader()
        together = reader.together()
        keys = [f"k{number}" for number in range(2 * MAX_KEYS_TOGETHER + 2)]
        answers = await asyncio.gather(*(together.rows(READ, key) for key in keys))
        assert answers == [[] for _ in keys]
        assert reader.sent == [
            ("many", keys[:MAX_KEYS_TOGETHER]),
            ("many", keys[MAX_KEYS_TOGETHER : 2 * MAX_KEYS_TOGETHER]),
            ("many", keys[2 * MAX_KEYS_TOGETHER :]),
        ]

    asyncio.run(main())


def test_keys_whose_callers_all_left_before_the_send_are_not_read() -> None:
    async def main() -> None:
        reader = Reader()
        together = reader.together()
        leaving = asyncio.ensure_future(together.rows(READ, "a"))
        staying = asyncio.ensure_future(together.rows(READ, "b"))
        await asyncio.sleep(0)  # both asked; the send is due after this turn
        leaving.cancel()
        assert await staying == STORED["b"]
        assert reader.sent == [("one", ["b"])]

    asyncio.run(main())
