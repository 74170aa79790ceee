"""Money: a Decimal amount with its ISO 4217 currency, quantized to the currency's minor units."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

# Minor units per ISO 4217 for the currencies Settle accepts. A currency missing here is refused
# rather than guessed, because a wrong exponent would charge a customer 100 times too much.
MINOR_UNITS: dict[str, int] = {
    "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0, "CNY": 2, "CZK": 2, "DKK": 2,
    "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "INR": 2, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0,
    "KWD": 3, "MXN": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PLN": 2, "SEK": 2, "SGD": 2, "TND": 3,
    "USD": 2, "ZAR": 2,
}  # fmt: skip

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


class MoneyError(ValueError):
    """An amount or currency that cannot be money; the message is fit to show a clerk."""


def minor_units(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise MoneyError(
            f"Unknown currency {currency!r}: use an ISO 4217 code such as USD"
        ) from None


def parse_amount(text: str | Decimal | int, currency: str) -> Decimal:
    """Read an amount typed by a person or sent by a gateway; refuse more digits than the currency has."""
    if isinstance(text, float):
        raise MoneyError("Amounts must never be floats")
    exponent = minor_units(currency)
    cleaned = format(text, "f") if isinstance(text, Decimal) else str(text).strip()
    if "," in cleaned:
        # Commas only as thousands separators (1,234.50); "1,50" is not a hundred and fifty.
        if not _THOUSANDS.fullmatch(cleaned):
            raise MoneyError(f"{text!r} is not an amount: use a dot for decimals, as in 1234.50")
        cleaned = cleaned.replace(",", "")
    if not _PLAIN.fullmatch(cleaned):
        # Decimal() would read "1e2" as 100: nobody types an amount that way.
        raise MoneyError(f"{text!r} is not an amount Settle accepts: write digits, as in 1234.50")
    amount = Decimal(cleaned)
    if abs(amount) >= LIMIT:
        raise MoneyError(f"{text!r} is not an amount Settle accepts")
    if -amount.as_tuple().exponent > exponent and amount != amount.quantize(_quantum(exponent)):
        raise MoneyError(f"{currency} amounts have {exponent} decimal places at most")
    return amount.quantize(_quantum(exponent))


# The columns hold 18 digits with 4 decimals: anything this large is a typing error.
LIMIT = Decimal(10) ** 13
_THOUSANDS = re.compile(r"-?\d{1,3}(,\d{3})+(\.\d+)?")
_PLAIN = re.compile(r"-?([0-9]+(\.[0-9]+)?|\.[0-9]+)")


def _quantum(exponent: int) -> Decimal:
    return Decimal(1).scaleb(-exponent)


@functools.total_ordering  # <=, > and >= from < and ==; another currency still raises
@dataclass(frozen=True, order=False)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self):
        if isinstance(self.amount, float):
            raise MoneyError("Amounts must never be floats")
        exponent = minor_units(self.currency)
        quantized = Decimal(self.amount).quantize(_quantum(exponent), rounding=ROUND_HALF_EVEN)
        object.__setattr__(self, "amount", quantized)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        return cls(parse_amount(text, currency), currency)

    @classmethod
    def from_minor(cls, units: int, currency: str) -> Money:
        return cls(Decimal(units).scaleb(-minor_units(currency)), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    @property
    def minor(self) -> int:
        """The amount in minor units (cents), as Stripe and Adyen want it."""
        return int(self.amount.scaleb(minor_units(self.currency)))

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise MoneyError(
                f"Cannot combine {self.currency} with {getattr(other, 'currency', other)}"
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def is_positive(self) -> bool:
        return self.amount > 0

    def plain(self) -> str:
        """The decimal string most gateways want: '1234.50'."""
        return f"{self.amount:f}"

    def __str__(self) -> str:
        return f"{self.amount:,.{minor_units(self.currency)}f} {self.currency}"
