"""How a viewer reads money and time: Babel formatting, their time zone, relative countdowns."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime, format_timedelta
from babel.numbers import format_currency
from markupsafe import Markup, escape

from restitution.api.schemas import MAX_AMOUNT
from restitution.domain.errors import InvalidInput
from restitution.domain.history import format_time
from restitution.domain.money import Money, currency_exponent

DEFAULT_LOCALE = "en_US"


def _locale(name: str | None) -> str:
    if not name:
        return DEFAULT_LOCALE
    try:
        return str(Locale.parse(name.replace("-", "_")))
    except (ValueError, UnknownLocaleError):
        return DEFAULT_LOCALE


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


# Digits with a dot before the decimals; a comma only between groups of three digits. ASCII
# digits only (Decimal and int() also read "١٢"), no sign, no exponent, no NaN or infinity.
_AMOUNT = re.compile(r"(?P<whole>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]*)(?:\.(?P<fraction>[0-9]*))?")
_COMMAS_AND_DIGITS = re.compile(r"[0-9,]*(?:\.[0-9,]*)?")
_EXAMPLES = {0: ("1250", "1,000"), 2: ("12.50", "1,000.50"), 3: ("12.500", "1,000.500")}


def parse_amount(text: str, currency: str, param: str = "amount") -> Money:
    """`12.50` or `1,000.50` in the currency's major unit → exact minor units (no floats)."""
    exponent = currency_exponent(currency)
    example, thousands = _EXAMPLES.get(exponent, _EXAMPLES[2])
    cleaned = text.strip()
    found = _AMOUNT.fullmatch(cleaned)
    if found is None or not (found["whole"] or found["fraction"]):
        if "," in cleaned and _COMMAS_AND_DIGITS.fullmatch(cleaned):
            raise InvalidInput(
                "invalid_amount",
                f"A comma may only separate thousands, such as {thousands}; "
                f"use a dot before the decimals, such as {_EXAMPLES[2][0]}.",
                param=param,
            )
        how = "in digits" if exponent else "as a whole number in digits"
        raise InvalidInput("invalid_amount", f"Enter an amount in {currency} {how}, such as "
                           f"{example}.", param=param)  # fmt: skip
    fraction = found["fraction"] or ""
    if len(fraction) > exponent:
        places = f"with at most {exponent} decimal places" if exponent else "as a whole number"
        raise InvalidInput("invalid_amount", f"Enter an amount in {currency} {places}.",
                           param=param)  # fmt: skip
    whole = found["whole"].replace(",", "").lstrip("0")
    # Bounded before it becomes an integer: int() refuses more than 4,300 digits, and a
    # number that long has no order anyway.
    largest = Money(MAX_AMOUNT, currency)
    if len(whole) > len(str(MAX_AMOUNT)):
        minor = MAX_AMOUNT + 1
    else:
        minor = int(whole or "0") * 10**exponent + int(fraction.ljust(exponent, "0") or "0")
    if minor > MAX_AMOUNT:
        raise InvalidInput("amount_too_large", f"Enter an amount of at most {largest}.",
                           param=param)  # fmt: skip
    return Money(minor, currency)


def major_units(money: Money) -> str:
    """The amount as an input field shows it: `12.50`."""
    exponent = currency_exponent(money.currency)
    return f"{Decimal(money.amount).scaleb(-exponent):.{exponent}f}"


@dataclass(frozen=True)
class Viewer:
    """One person looking at a page: their locale, their time zone, and the server's `now`."""

    now: datetime
    locale: str = DEFAULT_LOCALE
    time_zone: str = "UTC"

    @classmethod
    def of(cls, now: datetime, locale: str | None, time_zone: str | None) -> Viewer:
        return cls(now, _locale(locale), _zone(time_zone).key)

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.time_zone)

    def money(self, value: Money | dict[str, Any] | None) -> str:
        if value is None:
            return "—"
        if isinstance(value, dict):
            value = Money(int(value["amount"]), str(value["currency"]))
        exponent = currency_exponent(value.currency)
        return str(
            format_currency(
                Decimal(value.amount).scaleb(-exponent),
                value.currency,
                locale=self.locale,
            )
        )

    def absolute(self, moment: datetime | str | None) -> str:
        moment = _moment(moment)
        if moment is None:
            return "—"
        text = format_datetime(moment, "EEE d MMM y, HH:mm", tzinfo=self.zone, locale=self.locale)
        return f"{text} {moment.astimezone(self.zone).tzname()}"

    def date(self, moment: datetime | str | None) -> str:
        moment = _moment(moment)
        if moment is None:
            return "—"
        return str(format_datetime(moment, "EEE d MMM y", tzinfo=self.zone, locale=self.locale))

    def relative(self, moment: datetime | str | None) -> str:
        """`in 3 days`, `2 hours ago`."""
        moment = _moment(moment)
        if moment is None:
            return ""
        delta = moment - self.now
        if abs(delta) < timedelta(minutes=1):
            return "now"
        return _span(delta, self.locale, add_direction=True)

    def duration(self, delta: timedelta | None) -> str:
        if delta is None:
            return "—"
        return _span(delta, self.locale, add_direction=False)

    def time(self, moment: datetime | str | None, text: str | None = None) -> Markup:
        """A `<time>` with the relative phrase shown and the absolute time in its title."""
        moment = _moment(moment)
        if moment is None:
            return Markup("—")
        shown = text if text is not None else self.relative(moment)
        return Markup('<time datetime="{}" title="{}">{}</time>').format(
            format_time(moment), self.absolute(moment), shown
        )

    def countdown(self, moment: datetime | str | None, lead: str) -> Markup:
        """`returns close in 3 days` with the absolute time beside it for keyboard and print."""
        moment = _moment(moment)
        if moment is None:
            return Markup("")
        return Markup("{} {} <span class='muted'>({})</span>").format(
            escape(lead), self.time(moment), self.absolute(moment)
        )

    def overdue(self, moment: datetime | str | None) -> bool:
        moment = _moment(moment)
        return moment is not None and moment <= self.now


def _span(delta: timedelta, locale: str, *, add_direction: bool) -> str:
    """Days for anything from two days on, else hours, else minutes: countdowns read in days."""
    seconds = abs(delta.total_seconds())
    unit: Literal["day", "hour", "minute"] = (
        "day" if seconds >= 2 * 86400 else "hour" if seconds >= 2 * 3600 else "minute"
    )
    return str(
        format_timedelta(
            delta,
            granularity=unit,
            threshold=float("inf"),
            add_direction=add_direction,
            locale=locale,
        )
    )


def _moment(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)
