"""Money is Decimal with a currency, quantized to the currency's minor units; never a float."""

from decimal import Decimal

import pytest

from portal.money import Money, MoneyError, parse_amount


def test_amounts_are_quantized_to_the_currencys_minor_units():
    assert Money(Decimal("12.5"), "USD").amount == Decimal("12.50")
    assert Money(Decimal("1500"), "JPY").amount == Decimal("1500")
    assert Money(Decimal("1.5"), "KWD").amount == Decimal("1.500")


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("12.34", "USD", 1234), ("1500", "JPY", 1500), ("1.005", "BHD", 1005), ("0.01", "EUR", 1)],
)
def test_minor_units_round_trip(amount, currency, minor):
    money = Money.parse(amount, currency)
    assert money.minor == minor
    assert Money.from_minor(minor, currency) == money


def test_a_float_is_refused():
    with pytest.raises(MoneyError):
        Money(12.5, "USD")
    with pytest.raises(MoneyError):
        parse_amount(12.5, "USD")


@pytest.mark.parametrize("text", ["abc", "", "1e5x", "NaN", "Infinity"])
def test_text_that_is_not_an_amount_is_refused(text):
    with pytest.raises(MoneyError):
        parse_amount(text, "USD")


def test_more_decimals_than_the_currency_has_is_refused():
    with pytest.raises(MoneyError, match="2 decimal places"):
        parse_amount("10.001", "USD")
    with pytest.raises(MoneyError, match="0 decimal places"):
        parse_amount("10.5", "JPY")
    assert parse_amount("10.100", "USD") == Decimal("10.10")


def test_an_unknown_currency_is_refused_not_guessed():
    with pytest.raises(MoneyError, match="Unknown currency"):
        Money(Decimal(1), "XXX")


def test_two_currencies_never_mix():
    with pytest.raises(MoneyError):
        Money.parse("1", "USD") + Money.parse("1", "EUR")
    assert Money.parse("1.10", "USD") + Money.parse("2.20", "USD") == Money.parse("3.30", "USD")
    assert Money.parse("1", "USD") < Money.parse("2", "USD")


def test_money_prints_with_separators_and_currency():
    assert str(Money.parse("1234.5", "USD")) == "1,234.50 USD"
    assert str(Money.parse("15000", "JPY")) == "15,000 JPY"
    assert Money.parse("1234.5", "USD").plain() == "1234.50"


@pytest.mark.parametrize("text", ["1e30", "99999999999999", "-1e20"])
def test_an_absurdly_large_amount_is_refused_with_a_message(text):
    with pytest.raises(MoneyError, match="not an amount Settle accepts"):
        parse_amount(text, "USD")


def test_commas_are_thousands_separators_only():
    assert parse_amount("1,234.50", "USD") == Decimal("1234.50")
    assert parse_amount("12,345,678", "JPY") == Decimal("12345678")
    for text in ["1,50", "12,34.5", "1,2345"]:
        with pytest.raises(MoneyError, match="use a dot for decimals"):
            parse_amount(text, "USD")


@pytest.mark.parametrize("text", ["1e2", "1E2", "0x10", "1_000", "+-5", "5-", "١٢"])
def test_only_digits_with_a_dot_are_an_amount(text):
    with pytest.raises(MoneyError, match="write digits"):
        parse_amount(text, "USD")


def test_a_decimal_from_the_database_is_read_whatever_its_exponent():
    assert parse_amount(Decimal("1E+2"), "USD") == Decimal("100.00")


def test_money_orders_within_a_currency_and_refuses_to_compare_across_currencies():
    a, b = Money.parse("1.00", "USD"), Money.parse("2.00", "USD")
    assert a < b and a <= b and b > a and b >= a and a <= Money.parse("1", "USD")
    for compare in (lambda: a < Money.parse("2", "EUR"), lambda: a >= Money.parse("2", "EUR"),
                    lambda: a > Money.parse("2", "EUR"), lambda: a <= Money.parse("2", "EUR")):  # fmt: skip
        with pytest.raises(MoneyError):
            compare()
