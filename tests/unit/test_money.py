import pytest

from restitution.domain.errors import InvalidInput
from restitution.domain.money import Money, allocate, currency_exponent


def test_jpy_has_no_minor_unit_and_formats_without_decimals() -> None:
    assert currency_exponent("JPY") == 0
    assert str(Money(1500, "JPY")) == "1500 JPY"


def test_usd_has_two_decimals() -> None:
    assert currency_exponent("USD") == 2
    assert str(Money(1999, "USD")) == "19.99 USD"


def test_negative_amounts_format_with_a_sign() -> None:
    assert str(Money(-5, "USD")) == "-0.05 USD"


def test_kwd_has_three_decimals() -> None:
    assert currency_exponent("KWD") == 3
    assert str(Money(1234, "KWD")) == "1.234 KWD"


@pytest.mark.parametrize(
    ("total", "weights"),
    [(301, [2000, 500]), (100, [1, 1, 1]), (1, [3, 3, 3]), (999_999, [7, 11, 13, 17]), (0, [1, 2])],
)
def test_allocate_parts_add_up_to_the_total(total: int, weights: list[int]) -> None:
    assert sum(allocate(total, weights)) == total


def test_allocate_gives_the_remainder_to_the_largest_fraction_then_the_earlier_weight() -> None:
    assert allocate(301, [2000, 500]) == [241, 60]
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]


def test_allocate_with_zero_weights_puts_everything_on_the_first_part() -> None:
    assert allocate(10, [0, 0]) == [10, 0]


@pytest.mark.parametrize("amount", [10.5, 10.0, "1000", True, None])
def test_amounts_that_are_not_integers_are_rejected(amount: object) -> None:
    with pytest.raises(InvalidInput) as raised:
        Money(amount, "USD")  # type: ignore[arg-type]
    assert raised.value.code == "invalid_amount"


@pytest.mark.parametrize("currency", ["usd", "US", "USDX", "", 840])
def test_currencies_must_be_three_upper_case_letters(currency: object) -> None:
    with pytest.raises(InvalidInput) as raised:
        Money(100, currency)  # type: ignore[arg-type]
    assert raised.value.code == "invalid_currency"


def test_money_in_different_currencies_does_not_add() -> None:
    with pytest.raises(InvalidInput) as raised:
        Money(100, "USD") + Money(100, "EUR")
    assert raised.value.code == "currency_mismatch"


def test_money_multiplies_by_integers_only() -> None:
    assert Money(250, "USD") * 3 == Money(750, "USD")
    with pytest.raises(TypeError):
        Money(250, "USD") * 1.5  # type: ignore[operator]
