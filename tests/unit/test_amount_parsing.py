"""Amounts typed into the portal's and the console's forms (`web.format.parse_amount`): digits
with a dot for the decimals, a comma only between groups of three digits; never an exponent,
a sign, NaN or infinity, nor more decimals than the currency has."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from restitution.api.schemas import MAX_AMOUNT
from restitution.domain.errors import InvalidInput
from restitution.domain.money import Money, currency_exponent
from restitution.web.format import major_units, parse_amount


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.50", "USD", 1250),
        ("12.5", "USD", 1250),
        ("12", "USD", 1200),
        (" 12.50 ", "USD", 1250),
        ("0.01", "USD", 1),
        (".50", "USD", 50),
        ("1,000", "USD", 100000),
        ("1,000.50", "USD", 100050),
        ("12,345,678.99", "USD", 1234567899),
        ("1000.50", "USD", 100050),
        ("1,500", "JPY", 1500),
        ("1500", "JPY", 1500),
        ("1.500", "KWD", 1500),
    ],
)
def test_plain_amounts_are_read_exactly(text: str, currency: str, minor: int) -> None:
    assert parse_amount(text, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("1e3", "such as 12.50"),
        ("1E3", "such as 12.50"),
        ("1e-2", "such as 12.50"),
        ("NaN", "such as 12.50"),
        ("inf", "such as 12.50"),
        ("Infinity", "such as 12.50"),
        ("-5", "such as 12.50"),
        ("+5", "such as 12.50"),
        ("", "such as 12.50"),
        ("$12", "such as 12.50"),
        ("12 .50", "such as 12.50"),
        ("١٢", "such as 12.50"),  # Arabic-Indic digits: Decimal reads them, people do not
        ("1.2.3", "such as 12.50"),
        ("12,50", "A comma may only separate thousands"),
        ("1,00", "A comma may only separate thousands"),
        ("1,0000", "A comma may only separate thousands"),
        ("1000,000", "A comma may only separate thousands"),
        (",100", "A comma may only separate thousands"),
        ("1,000.5,0", "A comma may only separate thousands"),
        ("12.505", "at most 2 decimal places"),
        ("0.001", "at most 2 decimal places"),
    ],
)
def test_anything_else_is_refused_in_words(text: str, says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_amount(text, "USD")
    assert refused.value.code == "invalid_amount"
    assert refused.value.param == "amount"
    assert says in refused.value.message


def test_a_currency_without_decimals_takes_whole_numbers_only() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_amount("1500.5", "JPY")
    assert "Enter an amount in JPY as a whole number" in refused.value.message
    with pytest.raises(InvalidInput) as comma:
        parse_amount("1,50", "JPY")
    assert "such as 1,000;" in comma.value.message


def test_an_amount_beyond_any_order_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_amount("9" * 5000, "USD")
    assert refused.value.code == "amount_too_large"


CURRENCIES = st.sampled_from(["USD", "EUR", "JPY", "KWD", "CLF"])


@given(st.integers(min_value=0, max_value=MAX_AMOUNT), CURRENCIES)
def test_what_an_input_field_shows_reads_back_the_same(minor: int, currency: str) -> None:
    money = Money(minor, currency)
    assert parse_amount(major_units(money), currency) == money


@given(st.integers(min_value=0, max_value=MAX_AMOUNT), CURRENCIES)
def test_thousands_separated_in_groups_of_three_read_back_the_same(
    minor: int, currency: str
) -> None:
    exponent = currency_exponent(currency)
    units, fraction = divmod(minor, 10**exponent)
    text = f"{units:,}" + (f".{fraction:0{exponent}d}" if exponent else "")
    assert parse_amount(text, currency) == Money(minor, currency)


@given(st.text(alphabet="0123456789.,eE+-naifNIF ", max_size=12))
def test_whatever_is_typed_is_read_exactly_or_refused_in_words(text: str) -> None:
    try:
        parsed = parse_amount(text, "USD")
    except InvalidInput as refused:
        assert refused.message.endswith(".")
        return
    assert parsed.amount >= 0
    plain = text.strip().replace(",", "")
    assert set(plain) <= set("0123456789.")
    whole, _, cents = plain.partition(".")
    assert parsed.amount == int(whole or "0") * 100 + int((cents + "00")[:2] or "0")
    assert len(cents) <= 2
