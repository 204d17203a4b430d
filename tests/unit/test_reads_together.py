"""`Database.read_by_key` on the async pool (`_ReadsTogether`): the keys asked for in one turn
of the event loop go as one statement; a caller cancelled, or a statement that fails, leaves
the others their answers."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, NamedTuple

import pytest
from sqlalchemy import literal_column, select

from restitution.adapters.db.engine import KeyedRead, _ReadsTogether
from restitution.adapters.db.prepared import Prepared


class Row(NamedTuple):
    key: str
    value: int


ONE = Prepared(select(literal_column("1")))
MANY = Prepared(select(literal_column("2")))
READ = KeyedRead(one=ONE, param="key", many=MANY, key="key")
STORED = {"a": [Row("a", 1), Row("a", 2)], "b": [Row("b", 3)]}


class Reader:
    """A database of `STORED`, which records each statement sent and may fail the next ones."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str]]] = []
        self.failing = False  # the statement of many keys fails
        self.failing_alone = False  # and each key's alone
        self.release = asyncio.Event()
        self.release.set()

    async def read_all(self, statement: Prepared, params: Mapping[str, Any]) -> list[Any]:
        keys = list(params["ids"]) if statement is MANY else [params["key"]]
        self.sent.append(("many" if statement is MANY else "one", keys))
        await self.release.wait()
        if self.failing and statement is MANY:
            raise RuntimeError("the statement for them all failed")
        if self.failing_alone and statement is ONE:
            raise LookupError(params["key"])
        return [row for key in keys for row in STORED.get(key, [])]


def test_the_keys_asked_in_one_turn_go_as_one_statement() -> None:
    async def main() -> None:
        reader = Reader()
        together = _ReadsTogether(reader.read_all)
        answers = await asyncio.gather(
            *(together.rows(READ, key) for key in ("a", "b", "missing", "a"))
        )
        assert answers == [STORED["a"], STORED["b"], [], STORED["a"]]
        assert reader.sent == [("many", ["a", "b", "missing"])]  # "a" asked twice, read once
        # Asked in a later turn: a statement of its own.
        assert await together.rows(READ, "b") == STORED["b"]
        assert reader.sent[1:] == [("many", ["b"])]

    asyncio.run(main())


def test_a_key_asked_while_a_statement_is_out_goes_in_the_next() -> None:
    async def main() -> None:
        reader = Reader()
        reader.release.clear()
        together = _ReadsTogether(reader.read_all)
        first = asyncio.ensure_future(together.rows(READ, "a"))
        while not reader.sent:
            await asyncio.sleep(0)
        second = asyncio.ensure_future(together.rows(READ, "b"))
        while len(reader.sent) < 2:
            await asyncio.sleep(0)
        reader.release.set()
        assert (await first, await second) == (STORED["a"], STORED["b"])
        assert reader.sent == [("many", ["a"]), ("many", ["b"])]

    asyncio.run(main())


def test_a_cancelled_caller_leaves_the_others_their_rows() -> None:
    async def main() -> None:
        reader = Reader()
        reader.release.clear()
        together = _ReadsTogether(reader.read_all)
        leaving = asyncio.ensure_future(together.rows(READ, "a"))
        staying = asyncio.ensure_future(together.rows(READ, "b"))
        while not reader.sent:
            await asyncio.sleep(0)
        leaving.cancel()
        reader.release.set()
        assert await staying == STORED["b"]
        with pytest.raises(asyncio.CancelledError):
            await leaving

    asyncio.run(main())


def test_when_the_statement_for_all_fails_each_caller_reads_alone() -> None:
    async def main() -> None:
        reader = Reader()
        reader.failing = True
        together = _ReadsTogether(reader.read_all)
        answers = await asyncio.gather(together.rows(READ, "a"), together.rows(READ, "b"))
        assert answers == [STORED["a"], STORED["b"]]
        assert reader.sent == [("many", ["a", "b"]), ("one", ["a"]), ("one", ["b"])]

    asyncio.run(main())


def test_a_failure_that_lasts_reaches_each_caller_as_its_own() -> None:
    async def main() -> None:
        reader = Reader()
        reader.failing = reader.failing_alone = True
        together = _ReadsTogether(reader.read_all)
        results = await asyncio.gather(
            together.rows(READ, "a"), together.rows(READ, "b"), return_exceptions=True
        )
        assert [(type(error), error.args) for error in results] == [  # type: ignore[union-attr]
            (LookupError, ("a",)),
            (LookupError, ("b",)),
        ]

    asyncio.run(main())
