"""Business days: weekends and a country's public holidays are skipped."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

import holidays


@lru_cache(maxsize=64)
def _holidays_for(country: str, year: int) -> frozenset[date]:
    try:
        calendar = holidays.country_holidays(country, years=year)
    except NotImplementedError:
        return frozenset()
    return frozenset(calendar.keys())


def is_business_day(day: date, country: str) -> bool:
    return day.weekday() < 5 and day not in _holidays_for(country, day.year)


def add_business_days(start: datetime, days: int, country: str) -> datetime:
    """The same time of day, `days` business days after `start` (weekends, holidays skipped)."""
    if days < 0:
        raise ValueError("days must not be negative")
    return start + timedelta(days=_calendar_days(start.date(), days, country))


@lru_cache(maxsize=4096)
def _calendar_days(start: date, days: int, country: str) -> int:
    """How many calendar days `days` business days after `start` take (asked on every
    eligibility answer: cached per day; bench/RESULTS.md)."""
    day = start
    remaining = days
    while remaining:
        day += timedelta(days=1)
        if is_business_day(day, country):
            remaining -= 1
    return (day - start).days
