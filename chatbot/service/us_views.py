"""What the US side of the service hands to front ends: typed data, money as :class:`Money` (a
``Decimal`` with its currency), never a float, never a bare amount. Times are aware (KST for display)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from chatbot.kis.models import OrderSide
from chatbot.markets.money import Money
from chatbot.markets.symbols import Symbol

__all__ = [
    "Money",
    "UsBalanceView",
    "UsCardDetail",
    "UsHoldingLine",
    "UsOpenOrder",
    "UsPendingReservation",
    "UsQuoteView",
]


@dataclass(frozen=True, slots=True)
class UsQuoteView:
    """``/price AAPL``: the last trade in dollars, the day so far, the session, and a KRW estimate."""

    symbol: Symbol
    exchange: str  # NASDAQ, NYSE, AMEX
    price: Money
    change: Money  # signed
    change_rate: Decimal  # percent, signed
    sign: str  # KIS's 1..5
    previous_close: Money
    open: Money | None  # None: KIS gave no day range (price-detail unavailable)
    high: Money | None
    low: Money | None
    volume: int
    session: str  # chatbot.markets.us_hours.UsPhase value: regular, pre_market, after_market, daytime, closed…
    next_open: dt.datetime  # the next regular open
    krw_per_usd: Decimal  # 0: KIS gave no rate
    price_krw: Money | None  # an estimate at that rate
    tradable: bool = True


@dataclass(frozen=True, slots=True)
class UsCardDetail:
    """The US part of an order card (:class:`chatbot.service.views.OrderCard` ``us``)."""

    exchange: str  # NASDAQ, NYSE, AMEX
    order_type: str  # LIMIT, LOO, LOC, MOO, MOC (chatbot.kis.overseas_protocol.UsOrderDivision names)
    price: Money | None  # None: MOO/MOC (price at the auction)
    quoted_price: Money  # the last price when the card was made (revise: the order's old price)
    amount: Money  # estimated
    fees: Money  # estimated commission and exchange fees
    krw_per_usd: Decimal  # 0: no rate known
    session: str  # the US session when quoted
    meets: str  # now | open | close | reservation: the session the order meets
    next_open: dt.datetime | None  # when it can execute, outside the sessions
    next_close: dt.datetime | None = None  # KST: the regular close an MOC/LOC order meets (None: not known)

    @property
    def total(self) -> Money:
        return self.amount  # fees are shown beside it; cash out/in is amount ± fees (see ``cash``)

    def cash(self, side: OrderSide) -> Money:
        sign = 1 if side is OrderSide.BUY else -1
        return Money.usd(self.amount.amount + sign * self.fees.amount)

    def krw(self, money: Money) -> Money | None:
        if self.krw_per_usd <= 0:
            return None
        return Money.krw((money.amount * self.krw_per_usd).quantize(Decimal(1)))


@dataclass(frozen=True, slots=True)
class UsOpenOrder:
    """A US order still working at the exchange, as /orders lists it."""

    order_no: str
    symbol: str
    name: str
    exchange: str
    side: OrderSide
    quantity: int
    price: Money  # 0 for MOO/MOC
    filled_quantity: int
    remaining: int
    time: str  # HHMMSS, KST, where KIS gives it
    # LIMIT, LOO, LOC, MOO, MOC as the bot's journal recorded it; "" for an order it did not send (KIS's
    # open-order list has no order type: a price of 0 is then MOO or MOC, which cannot be told apart)
    order_type: str = ""


@dataclass(frozen=True, slots=True)
class UsHoldingLine:
    symbol: str
    name: str
    exchange: str
    quantity: int
    average_cost: Money
    last_price: Money
    value: Money
    profit_loss: Money
    profit_loss_rate: Decimal


@dataclass(frozen=True, slots=True)
class UsBalanceView:
    """US holdings in dollars; the totals in dollars and, at the rate KIS uses, in won (an estimate)."""

    holdings: tuple[UsHoldingLine, ...]
    cash: Money
    value_total: Money
    cost_total: Money
    profit_loss_total: Money
    krw_per_usd: Decimal  # 0: no rate known
    combined_krw: Money | None = None  # domestic total + the US total at that rate (an estimate)
    unavailable: bool = False  # KIS did not answer the US queries

    @property
    def total(self) -> Money:
        return Money.usd(self.cash.amount + self.value_total.amount)

    def krw(self, money: Money) -> Money | None:
        if self.krw_per_usd <= 0:
            return None
        return Money.krw((money.amount * self.krw_per_usd).quantize(Decimal(1)))


@dataclass(frozen=True, slots=True)
class UsStatusView:
    session: str  # UsPhase value
    next_open: dt.datetime  # KST
    holiday: str  # the NYSE holiday today, if any
    early_close: str  # why today's (or the next) session closes at 13:00 ET, if it does


@dataclass(frozen=True, slots=True)
class UsPendingReservation:
    """A reservation KIS has not sent yet, as /orders lists it."""

    reservation_no: str
    received_date: dt.date  # KST, RSVN_ORD_RCIT_DT: the cancel needs it
    symbol: str
    name: str
    exchange: str
    side: OrderSide
    quantity: int
    price: Money  # 0 for a MOO sell
    order_type: str
    sent_at: dt.datetime  # the regular open KIS sends it at (KST)
