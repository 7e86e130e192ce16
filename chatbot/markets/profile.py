"""A market's profile: the rules an order must meet there and the money it is counted in.

``KRX`` (Korea Exchange: KOSPI, KOSDAQ, KONEX, in won) and ``US`` (NASDAQ, NYSE, AMEX, in dollars).
Each holds its currency, its tick rule, its calendar (KRX: :mod:`chatbot.markets.krx_hours`; US:
:mod:`chatbot.markets.us_hours`), its estimated fees (:mod:`chatbot.markets.fees`) and the venue its
symbols carry in the directory (:mod:`chatbot.markets.directory`). :func:`market_of` says which market
a symbol trades in.

Prices cross this interface as ``Decimal`` in the market's currency. The KRX tick functions underneath
stay ``int`` (:mod:`chatbot.markets.ticks`): the alert book and the simulator count in whole won on their
hot paths.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from chatbot.markets import krx_hours, ticks, us_hours
from chatbot.markets.fees import KRX_FEES, US_FEES, FeeSchedule
from chatbot.markets.money import Currency, Money
from chatbot.markets.symbols import Symbol, Venue


class TickRule:
    """The price grid of a market (호가가격단위)."""

    def tick(self, price: Decimal) -> Decimal:
        raise NotImplementedError

    def is_on_tick(self, price: Decimal) -> bool:
        return price > 0 and price % self.tick(price) == 0

    def round(self, price: Decimal, *, up: bool = False) -> Decimal:
        """``price`` on the grid, down (or up)."""
        raise NotImplementedError


class KrxTicks(TickRule):
    """KRX share ticks (the table in force since 2023-01-25), in whole won. ETFs and ETNs tick by their
    own rule; the quote's own tick (``Quote.tick``) says which applies to an instrument."""

    def tick(self, price: Decimal) -> Decimal:
        return Decimal(ticks.tick_size(int(price)))

    def is_on_tick(self, price: Decimal) -> bool:
        return price == price.to_integral_value() and ticks.is_on_tick(int(price))

    def round(self, price: Decimal, *, up: bool = False) -> Decimal:
        whole = int(price.to_integral_value(rounding="ROUND_CEILING" if up else "ROUND_FLOOR"))
        return Decimal(ticks.round_up_to_tick(whole) if up else ticks.round_down_to_tick(whole))


class UsTicks(TickRule):
    """US ticks (SEC Rule 612): $0.01 at or above $1, $0.0001 below."""

    def tick(self, price: Decimal) -> Decimal:
        return ticks.us_tick_size(price)

    def is_on_tick(self, price: Decimal) -> bool:
        return ticks.us_is_on_tick(price)

    def round(self, price: Decimal, *, up: bool = False) -> Decimal:
        return ticks.us_round_to_tick(price, up)


@dataclass(frozen=True, slots=True, eq=False)
class Market:
    id: Venue  # "KRX" | "US": also the venue its symbols carry in the directory
    name: str
    currency: Currency
    zone: dt.tzinfo  # the exchange's clock
    ticks: TickRule
    fees: FeeSchedule
    is_trading_day: Callable[[dt.date], bool]  # a date in the exchange's zone
    holiday_name: Callable[[dt.date], str | None]
    next_open: Callable[[dt.datetime], dt.datetime]  # the next regular-session open after a moment
    price_places: int  # decimals a price may carry: KRX 0; US 4 (sub-dollar ticks)
    lot: int = 1  # shares per trading unit

    @property
    def venue(self) -> Venue:
        return self.id

    def money(self, amount: Decimal | int | str) -> Money:
        return Money(Decimal(amount), self.currency)

    def tick_for(self, price: Money) -> Money:
        self._check(price)
        return Money(self.ticks.tick(price.amount), self.currency)

    def is_on_tick(self, price: Money) -> bool:
        self._check(price)
        return self.ticks.is_on_tick(price.amount)

    def round_to_tick(self, price: Money, *, up: bool = False) -> Money:
        self._check(price)
        return Money(self.ticks.round(price.amount, up=up), self.currency)

    def costs(self, amount: Money, *, sell: bool) -> tuple[Money, Money]:
        """Estimated (commission, tax) on an order of ``amount``."""
        return self.fees.estimate(amount, sell=sell)

    def _check(self, price: Money) -> None:
        if price.currency is not self.currency:
            raise ValueError(f"a {price.currency} price on {self.id}, which trades in {self.currency}")

    def __repr__(self) -> str:
        return f"Market({self.id})"


def _krx_next_open(now: dt.datetime) -> dt.datetime:
    return krx_hours.MarketCalendar().next_open(now.astimezone(krx_hours.KST))


def _us_next_open(now: dt.datetime) -> dt.datetime:
    return us_hours.next_session(now).open


KRX: Final = Market(
    id="KRX", name="Korea Exchange", currency=Currency.KRW, zone=krx_hours.KST, ticks=KrxTicks(), fees=KRX_FEES,
    is_trading_day=krx_hours.is_trading_day, holiday_name=krx_hours.holiday_name, next_open=_krx_next_open,
    price_places=0)
US: Final = Market(
    id="US", name="US (NASDAQ, NYSE, AMEX)", currency=Currency.USD, zone=us_hours.NEW_YORK, ticks=UsTicks(),
    fees=US_FEES, is_trading_day=us_hours.is_trading_day, holiday_name=us_hours.holiday_name,
    next_open=_us_next_open, price_places=4)
MARKETS: Final[dict[Venue, Market]] = {"KRX": KRX, "US": US}


def market_of(symbol: Symbol | Venue) -> Market:
    """The market a symbol trades in (its venue in the directory), or the market a venue names."""
    return MARKETS[symbol if isinstance(symbol, str) else symbol.venue]
