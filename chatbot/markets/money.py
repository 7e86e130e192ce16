"""Money: a ``Decimal`` amount with its :class:`Currency`. Never a float, never a bare amount.

Arithmetic is defined within one currency only (adding won to dollars raises); a conversion is an
explicit multiplication by a rate that the caller names. Display formatting belongs to the front ends
(``chatbot.telegram.render``); ``str(money)`` is a plain, unambiguous form for logs and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Final


class Currency(StrEnum):
    KRW = "KRW"
    USD = "USD"

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]

    @property
    def places(self) -> int:
        """Decimal places of an amount (a settled sum, a fee): whole won, US cents."""
        return _PLACES[self]

    @property
    def quantum(self) -> Decimal:
        return _QUANTA[self]

    @property
    def price_units(self) -> int:
        """Integer price units per one of the currency, for paths that count prices as ``int`` (the alert
        book, KRX frames): whole won; 1/10,000 dollar (the sub-dollar tick)."""
        return _PRICE_UNITS[self]


_SYMBOLS: Final = {Currency.KRW: "₩", Currency.USD: "$"}
_PLACES: Final = {Currency.KRW: 0, Currency.USD: 2}
_QUANTA: Final = {c: Decimal(1).scaleb(-p) for c, p in _PLACES.items()}
_PRICE_UNITS: Final = {Currency.KRW: 1, Currency.USD: 10_000}


def whole_units(amount: Decimal | int) -> int:
    """An amount that must be whole (won at KIS's domestic API, a stored KRW price) as ``int``; a fraction
    is refused, never rounded."""
    whole = int(amount)
    if whole != amount:
        raise ValueError(f"{amount} is not a whole amount")
    return whole


def price_units(amount: Decimal | int, currency: Currency | str) -> int:
    """``amount`` in :attr:`Currency.price_units` (exact: a finer amount is refused)."""
    return whole_units(amount * Currency(currency).price_units)


class CurrencyMismatch(ValueError):
    """Two amounts of different currencies were added, subtracted or compared."""


@dataclass(frozen=True, slots=True)
class Money:
    """An amount with its currency. Equal amounts of one currency are equal whatever their exponent
    (``Money.krw(1) == Money.krw("1.0")``); amounts of different currencies are never equal."""

    amount: Decimal
    currency: Currency

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):  # an int or a str is accepted; a float never
            if isinstance(self.amount, float):
                raise TypeError("money is never a float")
            object.__setattr__(self, "amount", Decimal(self.amount))
        if not isinstance(self.currency, Currency):
            object.__setattr__(self, "currency", Currency(self.currency))

    @classmethod
    def krw(cls, amount: Decimal | int | str) -> Money:
        return cls(Decimal(amount), Currency.KRW)

    @classmethod
    def usd(cls, amount: Decimal | int | str) -> Money:
        return cls(Decimal(amount), Currency.USD)

    @classmethod
    def of_price_units(cls, units: int, currency: Currency | str) -> Money:
        """An integer in :attr:`Currency.price_units` (the alert book's, a notice's) as money: the inverse of
        :func:`price_units`."""
        c = Currency(currency)
        return cls(Decimal(units) / c.price_units if c.price_units != 1 else Decimal(units), c)

    @classmethod
    def zero(cls, currency: Currency) -> Money:
        return cls(Decimal(0), currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"money is compared and added with money only, not {type(other).__name__}")
        if other.currency is not self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency} do not mix")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        if isinstance(factor, float):
            raise TypeError("money is never multiplied by a float")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.amount), self.currency)

    def __bool__(self) -> bool:
        return bool(self.amount)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def quantize(self, places: int | None = None, rounding: str = ROUND_HALF_UP) -> Money:
        """Rounded to the currency's places (whole won, cents), or to ``places``."""
        quantum = self.currency.quantum if places is None else Decimal(1).scaleb(-places)
        return Money(self.amount.quantize(quantum, rounding=rounding), self.currency)

    def to_int(self) -> int:
        """Whole units (won): for the KIS domestic protocol and the integer-won paths that remain."""
        return int(self.amount.to_integral_value(ROUND_HALF_UP))

    def __format__(self, spec: str) -> str:
        """A format spec formats the amount alone (``f"{price:,}원"``); none gives ``str``."""
        return format(self.amount, spec) if spec else str(self)

    def __str__(self) -> str:
        sign = "-" if self.amount < 0 else ""
        value = abs(self.amount)
        if self.currency is Currency.KRW:
            return f"{sign}₩{value:,.0f}"
        places = 2 if value >= 1 or value == 0 else 4
        return f"{sign}{self.currency.symbol}{value:,.{places}f}"
