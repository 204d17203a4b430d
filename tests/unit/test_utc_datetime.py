"""UTC times on SQLite: the fused processors write and read exactly the text SQLAlchemy's own
DATETIME type does, from any time zone, to the microsecond."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from restitution.adapters.db.tables import UTCDateTime

DIALECT = sqlite.dialect()
SA_BIND = DateTime().dialect_impl(DIALECT).bind_processor(DIALECT)
SA_RESULT = DateTime().dialect_impl(DIALECT).result_processor(DIALECT, None)
BIND = UTCDateTime().bind_processor(DIALECT)
RESULT = UTCDateTime().result_processor(DIALECT, None)

moments = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60)


@given(moments, offsets)
def test_same_text_and_same_moment_back(moment: datetime, minutes: int) -> None:
    local = moment.astimezone(timezone(timedelta(minutes=minutes)))
    text = BIND(local)
    assert text == SA_BIND(moment.replace(tzinfo=None))
    assert RESULT(text) == moment
    assert RESULT(text).tzinfo is UTC


@pytest.mark.parametrize(
    "text", ["2026-11-27 10:00:00", "2026-11-27 10:00:00.5", "2026-11-27 10:00:00.123456"]
)
def test_reads_what_other_writers_left(text: str) -> None:
    assert RESULT(text) == SA_RESULT(text).replace(tzinfo=UTC)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        BIND(datetime(2026, 11, 27))
    assert BIND(None) is None and RESULT(None) is None
